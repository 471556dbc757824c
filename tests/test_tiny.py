import pytest

from laser import tiny
from laser.io import InputError
from laser.model import check_z_c


def test_tokenizer_round_trip_after_reload(tiny_checkpoint):
    """Byte-level BPE without merges: whitespace survives save/reload (transformers 5)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    for text in [" a  b\n\tc ", "What is 12 + 3?  \\boxed{15}", "é ü 中", "  leading"]:
        ids = tok(text, add_special_tokens=False).input_ids
        assert tok.decode(ids) == text
        assert len(ids) == len(text.encode())  # one token per byte: no merges


def test_special_tokens_and_template(tiny_checkpoint):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    assert tok.eos_token == tiny.EOS and tok.pad_token == tiny.EOS
    zc = tok.convert_tokens_to_ids(tiny.ZC)
    assert check_z_c(tok, tiny.ZC, "models.tiny.z_c") == zc
    # ordinary text (even text spelling the token's bytes differently) never yields z_c
    assert zc not in tok("reserved_special_token_0 <|reserved <|user|>", add_special_tokens=False).input_ids
    msgs = [{"role": "user", "content": "Q?"}]
    assert tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) == "<|user|>Q?<|assistant|>"
    full = tok.apply_chat_template(msgs + [{"role": "assistant", "content": "A"}], tokenize=False)
    assert full == "<|user|>Q?<|assistant|>A<|endoftext|>"


def test_z_c_checks():
    tok = tiny.build_tokenizer()
    with pytest.raises(InputError, match="models.x.z_c.*not a token"):
        check_z_c(tok, "<|no_such_token|>", "models.x.z_c")
    with pytest.raises(InputError, match="ordinary token"):
        check_z_c(tok, "a", "models.x.z_c")


def test_model_untied_and_deterministic(tiny_checkpoint):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint)
    assert model.config.model_type == "qwen2" and not model.config.tie_word_embeddings
    assert model.get_input_embeddings().weight.data_ptr() != model.get_output_embeddings().weight.data_ptr()
    tok = tiny.build_tokenizer()
    again = tiny.build_model(tok, hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128,
                             max_position_embeddings=256, seed=0)
    for (n, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), n
    other = tiny.build_model(tok, hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128,
                             max_position_embeddings=256, seed=1)
    assert not torch.equal(other.lm_head.weight, again.lm_head.weight)


def test_sft_warmup_learns_and_is_deterministic(tmp_path):
    """A few SFT steps through TRL lower the loss on the task, identically for one seed."""
    import torch

    from laser import data, model as M

    train = data.prepare({"source": "synthetic", "tiers": ["easy"], "n_problems": 64},
                         name="train", seed=0, suffix="")
    sft = {"max_steps": 12, "learning_rate": 3e-3, "batch_size": 8, "warmup_steps": 0, "weight_decay": 0.0}
    tok = tiny.build_tokenizer()

    def run(tag):
        m = tiny.build_model(tok, hidden_size=64, num_layers=1, num_heads=2, intermediate_size=64,
                             max_position_embeddings=256, seed=0)
        return M.sft_warmup(m, tok, train, sft, seed=0, workdir=str(tmp_path / tag))

    def loss(m):
        rec = train[0]
        text = tok.apply_chat_template(rec["messages"] + [{"role": "assistant", "content": rec["solution"]}],
                                       tokenize=False)
        ids = torch.tensor([tok(text, add_special_tokens=False).input_ids])
        with torch.no_grad():
            return m(input_ids=ids, labels=ids).loss.item()

    def after_eos(m):  # mean log p(<|user|> | x, y, EOS) over 16 problems
        user = tok.convert_tokens_to_ids(tiny.USER)
        out = []
        with torch.no_grad():
            for r in train[:16]:
                text = tok.apply_chat_template(r["messages"] + [{"role": "assistant", "content": r["solution"]}],
                                               tokenize=False)
                logits = m(input_ids=torch.tensor([tok(text, add_special_tokens=False).input_ids])).logits[0, -1]
                out.append(logits.log_softmax(-1)[user].item())
        return sum(out) / len(out)

    fresh = tiny.build_model(tok, hidden_size=64, num_layers=1, num_heads=2, intermediate_size=64,
                             max_position_embeddings=256, seed=0)
    a, b = run("a"), run("b")
    assert loss(a) < loss(fresh) - 0.5
    # the position after EOS, where c_ref reads the unused z_c, is trained as in packed
    # pretraining: a new user turn starts there (12 steps: about -5.8 -> -4.2)
    before, after = after_eos(fresh), after_eos(a)
    assert after > before + 1.0, (before, after)
    for (n, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), n


def test_own_verification_examples_are_the_models_solutions_labelled_by_the_grader(warm_checkpoint, tmp_path,
                                                                                   capsys):
    """sft.verification_own: the judge is taught on the model's own sampled solutions, each labelled
    by the grader, half correct and half incorrect."""
    import random
    import re

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from laser import data
    from laser.grading import grade_response
    from laser.model import _judge_rows, _own_verification_examples

    tok = AutoTokenizer.from_pretrained(warm_checkpoint)
    model = AutoModelForCausalLM.from_pretrained(warm_checkpoint)
    train = data.prepare({"source": "synthetic", "tiers": ["easy", "medium"], "n_problems": 40}, name="train",
                         seed=3, suffix=" Put the answer in \\boxed{}.")
    rows = _judge_rows("P: {problem}\nS: {solution}\nOK?",
                       _own_verification_examples(model, tok, train, 16, random.Random(0), seed=0))
    sampled = [int(n) for n in re.findall(r"own verification examples: (\d+) (?:in)?correct", capsys.readouterr().out)]
    assert sum(sampled) >= 8  # most are the model's own solutions
    verdicts = [r["completion"][0]["content"] for r in rows]
    assert len(rows) == 16 and verdicts.count("\\boxed{correct}") == verdicts.count("\\boxed{incorrect}") == 8
    answers = {r["problem"]: r["answer"] for r in train}
    for row, verdict in zip(rows, verdicts):  # every label is the grader's
        problem, solution = re.fullmatch(r"P: (.*)\nS: (.*)\nOK\?", row["prompt"][0]["content"], re.S).groups()
        assert (verdict == "\\boxed{correct}") == grade_response(solution, answers[problem], "lenient")[1]



def test_paired_verification_examples_judge_two_solutions_of_each_problem():
    """sft.verification_pairs: every problem comes with its correct solution and a slipped one,
    labelled by what the grader says, so a judge cannot answer from the problem alone."""
    import collections
    import random

    from laser import data
    from laser.grading import grade_response
    from laser.model import _verification_examples

    train = data.prepare({"source": "synthetic", "tiers": ["easy", "hard"], "n_problems": 30}, name="train",
                         seed=2, suffix=" Put the answer in \\boxed{}.")
    examples = _verification_examples(train, 40, random.Random(0), pairs=True)
    answers = {r["problem"]: r["answer"] for r in train}
    assert len(examples) == 40
    for problem, solution, ok in examples:
        assert ok == grade_response(solution, answers[problem], "lenient")[1]
    labels = collections.defaultdict(list)
    for problem, _, ok in examples:
        labels[problem].append(ok)
    assert all(v.count(True) == v.count(False) for v in labels.values())


def test_paired_own_verification_examples_take_both_outcomes_of_one_problem(monkeypatch, capsys):
    """sft.verification_pairs with verification_own: a problem whose sampled solutions (here
    canned, in place of the model's) include a correct and an incorrect one gives one of each;
    problems with one outcome give none, and slipped reference pairs make up the rest."""
    import random
    import re

    from laser import data, model
    from laser.grading import grade_response

    train = data.prepare({"source": "synthetic", "tiers": ["easy"], "n_problems": 12}, name="train", seed=1,
                         suffix=" Put the answer in \\boxed{}.")
    answers = {r["problem"]: r["answer"] for r in train}
    mixed = {r["problem"] for r in train[:4]}  # these have both outcomes among their samples

    def canned(_model, _tok, records, n, _max_tokens, _seed):
        return [[f"\\boxed{{{r['answer']}}}", f"\\boxed{{{int(r['answer']) + 1}}}"] if r["problem"] in mixed
                else [f"\\boxed{{{r['answer']}}}"] * n for r in records]

    class Tok:
        def __call__(self, text, add_special_tokens=False):
            return type("Enc", (), {"input_ids": text.split()})()

    monkeypatch.setattr(model, "_sample_solutions", canned)
    examples = model._own_verification_examples(None, Tok(), train, 20, random.Random(0), seed=0, pairs=True)
    own = int(re.search(r"(\d+) problems with a correct and an incorrect", capsys.readouterr().out).group(1))
    assert own == 4 and len(examples) == 20
    for k in range(0, 20, 2):
        (p1, s1, ok1), (p2, s2, ok2) = examples[k:k + 2]
        assert p1 == p2 and (ok1, ok2) == (True, False)
        assert grade_response(s1, answers[p1], "lenient")[1] and not grade_response(s2, answers[p2], "lenient")[1]
        assert (p1 in mixed and s2.startswith("\\boxed")) == (k < 8)  # sampled pairs first, then slipped ones


def test_checked_verification_rows_rederive_the_reference_before_the_verdict():
    """sft.verification_check: each verdict follows the problem's reference steps and answer, the
    judged solution's answer copied, and a mark per character of the two (padded to width 5), with a
    mismatch ('!') exactly where the verdict is incorrect; the judge's parser reads the verdict, and the documented
    judge.max_tokens (128) covers every row."""
    import random

    from laser import data
    from laser.grading import last_boxed
    from laser.judge import parse_verdict
    from laser.model import _judge_rows, _verification_examples
    from laser.tiny import build_tokenizer

    train = data.prepare({"source": "synthetic", "tiers": ["easy", "medium", "hard"], "n_problems": 300},
                         name="train", seed=4, suffix=" Put the answer in \\boxed{}.")
    examples = _verification_examples(train, 600, random.Random(0), pairs=True)
    references = {r["problem"]: r for r in train}
    rows = _judge_rows("P: {problem}\nS: {solution}\nOK?", examples, references)
    tok = build_tokenizer()
    for (problem, solution, ok), row in zip(examples, rows):
        text = row["completion"][0]["content"]
        check, verdict = text.rsplit("\\boxed{", 1)
        ref = references[problem]
        answer, given = ref["answer"].ljust(5, "_"), last_boxed(solution).ljust(5, "_")
        head, marks = check.split(f" Answer {answer}. Given {given}. Match ")
        assert head.startswith("Check: ") and head[len("Check: "):] in ref["solution"]  # the reference's steps
        assert marks == "".join("=" if a == b else "!" for a, b in zip(answer, given)) + ". "
        assert ("!" in marks) == (not ok)
        assert parse_verdict(text) == ("correct" if ok else "incorrect")
        assert len(tok(text, add_special_tokens=False).input_ids) + 1 <= 128  # + EOS
    assert len({r["completion"][0]["content"] for r in rows[::2]}) > 100


def test_sft_warmup_second_phase_holds_checked_verdicts_and_solutions(monkeypatch, tmp_path):
    """The verification phase's data (TRL's trainer replaced by a recorder): with verification_check
    the judge rows re-derive before the verdict, half the rows are solutions; without it, bare verdicts."""
    import trl

    from laser import data
    from laser.model import sft_warmup

    seen = []

    class Recorder:
        def __init__(self, model, args, train_dataset, processing_class):
            self.model = model
            seen.append([r["completion"][0]["content"] for r in train_dataset])

        def train(self):
            pass

    monkeypatch.setattr(trl, "SFTTrainer", Recorder)
    train = data.prepare({"source": "synthetic", "tiers": ["easy", "hard"], "n_problems": 40}, name="train",
                         seed=5, suffix=" Put the answer in \\boxed{}.")
    sft = {"max_steps": 2, "learning_rate": 1e-3, "batch_size": 4, "warmup_steps": 0, "weight_decay": 0.0,
           "verification_steps": 5, "verification_pairs": True}

    def phase2(**extra):
        seen.clear()
        model = type("M", (), {"config": type("C", (), {"max_position_embeddings": 256})()})()
        sft_warmup(model, None, train, {**sft, **extra}, seed=0, workdir=str(tmp_path), judge_template="{problem} {solution}")
        return seen[1]

    checked, bare = phase2(verification_check=True), phase2()
    assert len(checked) == 20
    assert sum(c.startswith("Check: ") and c.endswith(("\\boxed{correct}", "\\boxed{incorrect}")) for c in checked) == 10
    assert sum(c in ("\\boxed{correct}", "\\boxed{incorrect}") for c in bare) == 10
    assert not any(c.startswith("Check: ") for c in bare)
