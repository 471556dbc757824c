"""The prompted (generative) judge: strict parsing, skipped/unparsable accounting, alignment."""

import pytest

from laser import generation
from laser.generation import Sample
from laser.judge import judge, parse_verdict
from laser.prompts import judge_prompt

JUDGE = {"template": "P: {problem}\nS: {solution}\nVerdict?", "max_tokens": 8, "temperature": 0.0}
CFG = {"backend": "transformers", "temperature": 1.0, "top_p": 1.0, "max_tokens": 12, "seed": 42,
       "dtype": "float32", "tensor_parallel_size": 1, "batch_size": 8, "vllm_kv_cache_gib": 0.25}


@pytest.mark.parametrize("text,verdict", [
    ("The steps check out. \\boxed{correct}", "correct"),
    ("\\boxed{ Incorrect }", "incorrect"),
    ("\\boxed{correct} ... wait, \\boxed{incorrect}", "incorrect"),  # the last box counts
    ("correct", "unparsable"),                                    # no box
    ("\\boxed{yes}", "unparsable"),
    ("\\boxed{12}", "unparsable"),
    ("", "unparsable"),
])
def test_parse_verdict_is_strict(text, verdict):
    assert parse_verdict(text) == verdict


def test_prompt_fills_both_fields_literally():
    assert judge_prompt("A {problem} B {solution}", "x{y}", "\\boxed{2}") == "A x{y} B \\boxed{2}"


def test_judge_records_align_and_count(monkeypatch, tiny_checkpoint):
    seen = []

    def fake(model_dir, tok, prompt_ids, ns, cfg, zc_id, route, seeds):
        seen.append((cfg["temperature"], cfg["max_tokens"], [tok.decode(p) for p in prompt_ids]))
        answers = ["\\boxed{correct}", "\\boxed{incorrect}", "hmm"]
        return [[Sample([1], answers[i % 3], True)] for i in range(len(prompt_ids))]

    monkeypatch.setattr(generation, "_transformers", fake)
    records = [{"id": "a", "problem": "1+1", "responses": ["\\boxed{2}", "none", "\\boxed{3}"],
                "pred_answers": ["2", None, "3"]},
               {"id": "b", "problem": "2+2", "responses": ["\\boxed{4}"], "pred_answers": ["4"]}]
    out = judge(str(tiny_checkpoint), records, CFG, JUDGE)
    assert out[0]["judge_verdicts"] == ["correct", "skipped", "incorrect"]
    assert out[0]["judge_scores"] == [1.0, 0.0, 0.0]
    assert out[1] == {"id": "b", "judge_verdicts": ["unparsable"], "judge_scores": [0.0], "judge_responses": ["hmm"]}
    temperature, max_tokens, prompts = seen[0]
    assert (temperature, max_tokens) == (0.0, 8) and len(prompts) == 3  # unboxed one not judged
    assert prompts[1] == "<|user|>P: 1+1\nS: \\boxed{3}\nVerdict?<|assistant|>"


@pytest.mark.slow
def test_judge_runs_the_model(tiny_checkpoint):
    """The judge's verdicts are the model's own greedy answers to the judge prompt, parsed: each
    one computed here independently (transformers' greedy `generate` on the rendered prompt)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    records = [{"id": "a", "problem": "1+1", "responses": ["\\boxed{2}", "\\boxed{3}"], "pred_answers": ["2", "3"]},
               {"id": "b", "problem": "7-4", "responses": ["7-4=3. \\boxed{3}"], "pred_answers": ["3"]}]
    out = judge(str(tiny_checkpoint), records, CFG, JUDGE)
    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint, dtype=torch.float32).eval()
    for rec, got in zip(records, out):
        want = []
        for response in rec["responses"]:
            chat = [{"role": "user", "content": judge_prompt(JUDGE["template"], rec["problem"], response)}]
            ids = tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)
            with torch.no_grad():
                seq = model.generate(**ids, do_sample=False, max_new_tokens=JUDGE["max_tokens"],
                                     pad_token_id=tok.pad_token_id)
            want.append(tok.decode(seq[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))
        assert got["judge_responses"] == want
        assert got["judge_verdicts"] == [parse_verdict(t) for t in want]
        assert got["judge_scores"] == [float(parse_verdict(t) == "correct") for t in want]


def _teach_verdicts(checkpoint, out_dir, examples, steps=150):
    """`checkpoint` fine-tuned to answer each (problem, solution) judge prompt with its verdict
    (memorised: a model whose judgements are known), saved to `out_dir`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    rows = []
    for problem, solution, verdict in examples:
        chat = [{"role": "user", "content": judge_prompt(JUDGE["template"], problem, solution)}]
        prompt = tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
        answer = tok(f"\\boxed{{{verdict}}}", add_special_tokens=False).input_ids + [tok.eos_token_id]
        rows.append((torch.tensor([prompt + answer]), torch.tensor([[-100] * len(prompt) + answer])))
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        ids, labels = rows[step % len(rows)]
        model(input_ids=ids, labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


@pytest.mark.slow
def test_judge_returns_the_verdicts_a_model_gives(tiny_checkpoint, tmp_path):
    """A model taught to call 1+1 = 2 and 7-4 = 3 correct and 1+1 = 3, 7-4 = 5 incorrect: the judge,
    through the real engine and its parser, returns exactly those verdicts and scores, and skips
    the unboxed solution."""
    examples = [("1+1", "\\boxed{2}", "correct"), ("1+1", "\\boxed{3}", "incorrect"),
                ("7-4", "7-4=3. \\boxed{3}", "correct"), ("7-4", "7-4=5. \\boxed{5}", "incorrect")]
    model = _teach_verdicts(tiny_checkpoint, tmp_path / "judge", examples)
    records = [{"id": "a", "problem": "1+1", "responses": ["\\boxed{2}", "no box", "\\boxed{3}"],
                "pred_answers": ["2", None, "3"]},
               {"id": "b", "problem": "7-4", "responses": ["7-4=5. \\boxed{5}", "7-4=3. \\boxed{3}"],
                "pred_answers": ["5", "3"]}]
    out = judge(str(model), records, CFG, {**JUDGE, "max_tokens": 24})  # the byte-level verdict is 15 tokens
    assert out[0]["judge_verdicts"] == ["correct", "skipped", "incorrect"]
    assert out[1]["judge_verdicts"] == ["incorrect", "correct"]
    assert out[0]["judge_scores"] == [1.0, 0.0, 0.0] and out[1]["judge_scores"] == [0.0, 1.0]
    assert out[0]["judge_responses"][1] is None and out[1]["judge_responses"][1] == "\\boxed{correct}"

