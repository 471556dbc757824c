"""A bad config stops before the first job (issue #13, point 7): what the config alone decides (and,
for a built model, the tokenizer the workflow builds; for a local model, its config.json) fails
when Snakemake parses the workflow, in one line naming the key; what needs a hub model or the
prepared data fails at the start of the first job that has them, in one line, not a traceback."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, save_untrained
from laser import tiny
from laser.checks import preflight
from laser.config import ConfigError
from laser.config import validate as _validate


def validate(config, source="config"):
    """What Snakemake does when it parses the workflow: validate, then the preflight checks."""
    config = _validate(config, source)
    preflight(config, source)
    return config

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def _default() -> dict:
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


@pytest.fixture(scope="module")
def local_model(tmp_path_factory) -> Path:
    """A local pretrained model (save_pretrained) with a 512-token context."""
    return save_untrained(tmp_path_factory.mktemp("local512") / "model", num_layers=1, max_position_embeddings=512)


def _pretrained(config: dict, path) -> dict:
    config["models"] = {"local": {"source": "pretrained", "path": str(path), "z_c": tiny.ZC}}
    return config


def _set(path: str, value, *more):
    """A mutation setting config key `path` to `value` (and each further path, value pair)."""
    pairs = [(path, value), *zip(more[::2], more[1::2])]

    def mutate(c):
        for path, value in pairs:
            *head, last = path.split(".")
            node = c
            for k in head:
                node = node.setdefault(k, {})
            node[last] = value
    return mutate


# (mutation of the embedded default, the one-line message); every one fails in laser.config.validate
BAD = {
    # z_c against the tokenizer the workflow builds (was: the base_model job, after prepare_data)
    "z_c not a token": (_set("models.tiny.z_c", "<|nope|>"),
                        "config key 'models.tiny.z_c': '<|nope|>' is not a token of the tokenizer"),
    "z_c ordinary": (_set("models.tiny.z_c", "a"), "config key 'models.tiny.z_c': 'a' is an ordinary token"),
    "z_c is EOS": (_set("models.tiny.z_c", tiny.EOS),
                   "config key 'models.tiny.z_c': '<|endoftext|>' is the tokenizer's end-of-sequence or padding"),
    # placeholders and names the schema knows
    "judge template": (_set("judge.template", "Is it right? {solution}"),
                       "config key 'judge.template': Verification prompt; must contain {problem} and {solution}"),
    "scoring route": (_set("scoring.route", "fast"), "config key 'scoring.route': 'fast' is not one of"),
    "loss": (_set("methods.laser.loss", "bce"), "config key 'methods.laser.loss': 'bce' is not one of"),
    "verifier methods": (_set("verifiers", {"v": {"path": "org/rm", "kind": "outcome", "methods": ["lazer"]}}),
                         "config key 'verifiers.v.methods': unknown method(s) 'lazer'"),
    "verifier path": (_set("verifiers", {"v": {"path": "/no/such/rm", "kind": "outcome"}}),
                      "config key 'verifiers.v.path': '/no/such/rm' is not a directory, nor a hub id"),
    # tensor parallelism (was: vLLM's start in the generate job)
    "tp with transformers": (lambda c: c["generation"].update(backend="transformers", tensor_parallel_size=2),
                             "config key 'generation.tensor_parallel_size': 2 needs backend vllm"),
    "tp vs heads": (_set("generation.tensor_parallel_size", 2),
                    "config key 'generation.tensor_parallel_size': 2 does not divide the 3 attention heads of "
                    "model tiny"),
    # lengths against the built model's context (was: TRL / vLLM inside train, calibrate, generate)
    "training lengths": (lambda c: c["training"].update(max_prompt_length=400, max_completion_length=200),
                         "config keys 'training.max_prompt_length' (400) + 'training.max_completion_length' (200) + 3 "
                         "(EOS, z_c, scored token) = 603 tokens exceed model tiny's context of 512 tokens"),
    "max_tokens alone": (_set("generation.max_tokens", 600),
                         "config key 'generation.max_tokens': 600 tokens + 3 (EOS, z_c, scored token) leave no room"),
    "max_tokens + prompts": (_set("generation.max_tokens", 480),
                             "config key 'generation.max_tokens': 64 of 64 prompts of benchmark arith_easy (base "
                             "prompt) do not fit model tiny's context of 512 tokens"),
    "judge max_tokens": (_set("judge.max_tokens", 300),
                         "config key 'judge.max_tokens': the prompted judge's prompts on benchmark arith_easy do not "
                         "fit model tiny's context of 512 tokens"),
    # the synthetic task's prompts, built from the seed (was: the train job)
    "every prompt too long": (
        _set("training.max_prompt_length", 10),
        "config key 'training.max_prompt_length': every training prompt is longer than 10 tokens"),
    # the shortest training prompt has 45 tokens, the shortest of the first 32 arith_hard ones 46
    "every validation prompt too long": (
        lambda c: c["training"].update(max_prompt_length=45, validation={"benchmark": "arith_hard", "n_problems": 32}),
        "config key 'training.max_prompt_length': every validation prompt is longer than 45 tokens"),
    "synthetic messages_key": (_set("benchmarks.arith_easy.messages_key", "prompt"),
                               "config key 'benchmarks.arith_easy.messages_key': the synthetic task's records"),
    "synthetic answer_key": (_set("train_data.answer_key", "final_answer"),
                             "config key 'train_data.answer_key': the synthetic task's records"),
    # a local model directory (was: the base_model job)
    "local path missing": (lambda c: _pretrained(c, "/no/such/model"),
                           "config key 'models.local.path': '/no/such/model' is not a directory, nor a hub id"),
    # already at parse time before: the batch split, warm-ups, validation benchmark
    "batch split": (_set("training.gradient_accumulation_steps", 3),
                    "do not split evenly into 'training.gradient_accumulation_steps' (3)"),
    "warm-ups": (_set("laser.warmup_reasoning_steps", 8, "laser.warmup_sr_steps", 16, "training.max_steps", 24),
                 "config key 'methods.laser': warm-ups w_r + w_sr = 24"),
    "validation benchmark": (_set("training.validation.benchmark", "math500"),
                             "config key 'training.validation.benchmark': 'math500' is not a benchmark"),
}


@pytest.mark.parametrize("mutate, message", BAD.values(), ids=BAD.keys())
def test_bad_config_fails_validation_in_one_line(mutate, message):
    config = _default()
    mutate(config)
    with pytest.raises(ConfigError) as err:
        validate(config)
    text = str(err.value)
    assert message in text, text
    assert "\n" not in text and text.startswith("config: config key")


def test_local_model_config_json_is_read_at_parse_time(tmp_path, local_model):
    config = _pretrained(_default(), local_model)
    config["training"].update(max_prompt_length=300, max_completion_length=300)
    with pytest.raises(ConfigError, match=re.escape("= 603 tokens exceed model local's context of 512 tokens")):
        validate(config)
    config = _pretrained(_default(), local_model)
    config["generation"]["tensor_parallel_size"] = 4  # 2 heads
    with pytest.raises(ConfigError, match="4 does not divide the 2 attention heads of model local"):
        validate(config)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="config key 'models.local.path': .*empty has no config.json"):
        validate(_pretrained(_default(), tmp_path / "empty"))
    validate(_pretrained(_default(), local_model))  # fits: nothing else is known before the jobs


def test_synthetic_problems_exhausted_names_the_key(monkeypatch):
    import laser.tasks

    def exhausted(tiers, n, seed, exclude=frozenset()):
        raise ValueError(f"cannot draw {n} distinct problems from tiers {tiers}: space exhausted after 3")

    monkeypatch.setattr(laser.tasks, "generate", exhausted)
    with pytest.raises(ConfigError, match=r"config key 'benchmarks.arith_easy.n_problems': cannot draw 64 distinct"):
        validate(_default())


def test_sft_ablation_needs_z_c_plus_one_in_the_vocabulary():
    from laser.checks import ModelFacts, check_model

    config = _default()
    config["methods"]["laser_sft"] = {"loss": "sft"}
    config = validate(config)
    check_model(config, "tiny", ModelFacts(512, 3, 261), zc_id=259)
    with pytest.raises(ConfigError, match=r"config key 'methods.laser_sft.loss': the SFT ablation trains token id "
                                          r"z_c \+ 1 = 260, outside the vocabulary of model tiny \(size 260\)"):
        check_model(config, "tiny", ModelFacts(512, 3, 260), zc_id=259)
    with pytest.raises(ConfigError, match=r"'models.tiny.z_c': token id 259 is outside the vocabulary"):
        check_model(config, "tiny", ModelFacts(512, 3, 200), zc_id=259)


def test_parse_time_tokenizer_is_the_built_one():
    """The checks at parse time use the built tokenizer in plain Python: same ids, chat prompts, z_c."""
    from tokenizers.pre_tokenizers import ByteLevel

    from laser.prompts import render_prompts
    from laser.model import check_z_c

    real, light = tiny.build_tokenizer(), tiny.ParseTimeTokenizer()
    assert len(real) == len(light) and set(real.all_special_tokens) == set(light.all_special_tokens)
    assert (real.eos_token_id, real.pad_token_id) == (light.eos_token_id, light.pad_token_id)
    assert real.added_tokens_encoder == light.added_tokens_encoder
    texts = ["Compute 12 + 3.", " é ü 中 \n\t 😀", "a <|user|> b <|reserved_special_token_0|><|endoftext|>c",
             "".join(map(chr, range(512))), "<|user|", ""]
    for text in texts:
        assert real(text, add_special_tokens=False).input_ids == light(text).input_ids, text
    tokens = [*ByteLevel.alphabet(), *tiny.SPECIAL_TOKENS, "ab", "<|nope|>"]
    assert real.convert_tokens_to_ids(tokens) == light.convert_tokens_to_ids(tokens)
    conversations = [[{"role": "user", "content": t}] for t in texts] + [
        [{"role": "system", "content": "s"}, {"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A"},
         {"role": "user", "content": "again"}]]
    for messages in conversations:
        for gen in (True, False):
            assert real.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen) == \
                light.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
            kw = dict(add_generation_prompt=gen, tokenize=True, return_dict=True)
            assert list(real.apply_chat_template(messages, **kw)["input_ids"]) == \
                light.apply_chat_template(messages, **kw)["input_ids"]
    records = [{"messages": m} for m in conversations]
    assert render_prompts(real, records) == render_prompts(light, records)
    for z_c in [*tiny.SPECIAL_TOKENS, "a", "<|nope|>"]:
        outcome = []
        for tok in (real, light):
            try:
                outcome.append(check_z_c(tok, z_c, "k"))
            except ValueError as e:
                outcome.append(str(e))
        assert outcome[0] == outcome[1], z_c


def test_parse_time_checks_need_only_the_light_environment():
    """The Snakefile's process and the light jobs (workflow/envs/analysis.yaml) validate the config
    without torch, transformers, tokenizers, vllm, jinja2, numpy, pandas or datasets (a snakemake-only
    environment has yaml and jsonschema)."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'transformers', 'tokenizers', 'vllm', 'trl', 'jinja2', 'numpy', 'pandas', 'datasets'):\n"
        "            raise ImportError(f'{name} is not in the light env')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"sys.path.insert(0, {str(ROOT / 'src')!r})\n"
        "from laser.checks import preflight\n"
        "from laser.config import load\n"
        f"preflight(load({str(ROOT / 'config' / 'config.yaml')!r}))\n"
        "print('ok')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout == "ok\n", res.stderr[-2000:]


# ---------------------------------------------------------------- through Snakemake

def _snakemake(*args, cwd, timeout=300):
    return subprocess.run([SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(cwd), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=timeout)


@pytest.mark.parametrize("case", ["z_c not a token", "tp vs heads", "max_tokens + prompts", "every prompt too long"])
def test_snakemake_stops_at_parse_time(tmp_path, case):
    mutate, message = BAD[case]
    config = _default()
    mutate(config)
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(config))
    res = _snakemake("-n", "--configfile", cfg, cwd=tmp_path)
    assert res.returncode != 0 and message in res.stdout + res.stderr
    assert "Traceback" not in res.stderr and "Building DAG" not in res.stdout + res.stderr


# ---------------------------------------------------------------- the model's context against the data

def _math500_config(local_model, math500: Path, max_tokens: int) -> dict:
    """A local pretrained model with a 512-token context trained by both methods and evaluated on
    MATH500 from a local JSONL (the report in issue #13)."""
    config = _default()
    config["benchmarks"] = {"math500": {"source": "jsonl", "path": str(math500), "n_samples": 1}}
    config["training"]["validation"]["benchmark"] = None
    config["laser"]["c_ref"] = {"source": "constant", "value": -10.0}
    config["generation"].update(max_tokens=max_tokens, backend="transformers")
    config["judge"]["generative"] = False
    return _pretrained(config, local_model)


def _longest_math500_prompt(local_model, math500) -> int:
    from transformers import AutoTokenizer

    from laser.prompts import build_messages, render_prompts

    tok = AutoTokenizer.from_pretrained(local_model)
    problems = [json.loads(line)["problem"] for line in math500.open()]
    return max(len(i) for i in render_prompts(tok, [{"messages": build_messages(p, "")} for p in problems])[1])


def test_context_check_names_benchmark_lengths_and_keys(local_model, benchmarks_dir, tmp_path):
    """The generate job's own check (a hub model's, known only once downloaded): its prompts on the
    prepared benchmark, with the model's tokenizer."""
    import laser.jobs
    from laser.checks import check_job
    from laser.data import prepare

    math500 = benchmarks_dir / "math500" / "test.jsonl"
    # validated only: the parse-time checks would stop it first (the next test)
    config = _validate(_math500_config(local_model, math500, max_tokens=300))  # fits the context on its own
    config["prompt"]["eval_suffix"] = config["prompt"]["base_eval_suffix"] = ""
    longest = _longest_math500_prompt(local_model, math500)
    assert longest + 300 + 3 > 512
    job = laser.jobs.generate(config, "local", "base")
    records = prepare(config["benchmarks"]["math500"], name="math500", seed=0)
    with pytest.raises(ConfigError) as err:
        check_job(job, str(local_model), benchmarks={"math500": records})
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith("config key 'generation.max_tokens': ") and "of 500 prompts of benchmark math500" in text
    assert f"the longest has {longest} tokens, + generation.max_tokens (300) + 3 = {longest + 303}" in text
    assert "model local's context of 512 tokens" in text and "leave those problems out of benchmarks.math500" in text
    # the other jobs check their own requests: the model's numbers
    assert check_job(laser.jobs.calibrate(config, "local"), str(local_model)) == \
        tiny.build_tokenizer().convert_tokens_to_ids(tiny.ZC)


def test_built_model_is_checked_against_jsonl_benchmarks_at_parse_time(benchmarks_dir):
    """A built model with a local JSONL benchmark: both are known when the workflow is parsed."""
    from laser.checks import preflight

    config = _default()
    config["benchmarks"]["math500"] = {"source": "jsonl", "path": str(benchmarks_dir / "math500" / "test.jsonl"),
                                       "n_samples": 1}
    with pytest.raises(ConfigError, match=r"^config: config key 'generation.max_tokens': \d+ of 500 prompts of "
                                          r"benchmark math500 \(base prompt\) do not fit model tiny's context of 512"):
        preflight(validate(config))


@pytest.mark.slow
def test_workflow_stops_before_training_when_math500_does_not_fit(local_model, benchmarks_dir, tmp_path):
    """The user's report: every generate job died in vLLM after both methods had trained. A local
    model and a local benchmark file are both known when the workflow is parsed: it stops then, in
    one line, and no job runs."""
    math500 = benchmarks_dir / "math500" / "test.jsonl"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(_math500_config(local_model, math500, max_tokens=300)))
    work = tmp_path / "work"
    work.mkdir()
    res = _snakemake("--cores", "2", "--configfile", cfg, cwd=work, timeout=600)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-3000:]
    assert "config: config key 'generation.max_tokens': " in out and "prompts of benchmark math500" in out, out[-3000:]
    assert "Traceback" not in out
    assert not (work / "results").exists()


def test_calibration_leaves_out_prompts_that_do_not_fit(monkeypatch):
    import laser.generation as generation
    from laser.calibrate import calibrate
    from laser.prompts import build_messages
    from laser.io import InputError

    tok = tiny.build_tokenizer()
    seen = {}

    def fake_generate(model_dir, jobs, cfg, *, zc_id, route, tokenizer):
        problems, _ = jobs["calibration"]
        seen["problems"] = [p["id"] for p in problems]
        return {"calibration": [{"zc_logprobs": [-10.0], "finished": [True]} for _ in problems]}

    monkeypatch.setattr(generation, "load_tokenizer", lambda _: tok)
    monkeypatch.setattr(generation, "generate", fake_generate)
    # prompt tokens: <|user|> + bytes + <|assistant|>
    train = [{"id": i, "messages": build_messages("x" * (10 * i), "")} for i in range(1, 7)]
    cal = calibrate("m", train, n=6, z_c=tiny.ZC, gen_cfg={}, seed=0, max_tokens=20, context=20 + 3 + 42)
    assert sorted(seen["problems"]) == [1, 2, 3, 4] and cal["n_sampled"] == 4
    with pytest.raises(InputError, match="config key 'training.max_completion_length': no sampled calibration"):
        calibrate("m", train, n=6, z_c=tiny.ZC, gen_cfg={}, seed=0, max_tokens=20, context=20 + 3 + 5)
    calibrate("m", train, n=6, z_c=tiny.ZC, gen_cfg={}, seed=0, max_tokens=20)  # no context: all of them
    assert sorted(seen["problems"]) == [1, 2, 3, 4, 5, 6]


def test_job_errors_are_one_line(tmp_path):
    """workflow/scripts/_bootstrap.py: a ConfigError or InputError ends a job with its message only."""
    code = ("import sys\n"
            f"sys.path[:0] = [{str(ROOT / 'workflow' / 'scripts')!r}, {str(ROOT / 'src')!r}]\n"
            "import _bootstrap\n"
            "_bootstrap._one_line_errors()\n"
            "from laser.io import InputError\n"
            "raise InputError(\"config key 'x': bad\")\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and res.stderr == "error: config key 'x': bad\n"
    res = subprocess.run([sys.executable, "-c", code.replace("from laser.io import InputError\n", "")
                          .replace("InputError(", "KeyError(")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "Traceback" in res.stderr


def test_sft_verification_examples_need_integer_answers_before_the_warm_up():
    """models.<name>.sft.verification_steps makes wrong answers by changing digits: a non-integer
    answer in the training data stops the base_model job before the first SFT phase, not after it."""
    from laser.io import InputError
    from laser.model import sft_warmup

    train = [{"id": "t0", "answer": "7", "solution": "\\boxed{7}"},
             {"id": "t1", "answer": "\\frac{1}{2}", "solution": "\\boxed{\\frac{1}{2}}"}]
    with pytest.raises(InputError, match=re.escape("config key 'models.m.sft.verification_steps': verification "
                                                   "examples need integer answers") + ".*record t1"):
        sft_warmup(None, None, train, {"max_steps": 5, "verification_steps": 3}, seed=0, workdir="unused",
                   judge_template="{problem} {solution}", where="models.m.sft")


def test_paired_verification_examples_need_the_synthetic_problems_before_the_warm_up():
    """models.<name>.sft.verification_pairs slips a step of the synthetic task's solutions: a
    problem of other training data stops the base_model job before the first SFT phase."""
    from laser.io import InputError
    from laser.model import sft_warmup

    train = [{"id": "t0", "problem": "Compute 12 + 30.", "answer": "42", "solution": "\\boxed{42}"},
             {"id": "t1", "problem": "How many primes are below 20?", "answer": "8", "solution": "\\boxed{8}"}]
    with pytest.raises(InputError, match=re.escape("config key 'models.m.sft.verification_pairs'") + ".*record t1"):
        sft_warmup(None, None, train, {"max_steps": 5, "verification_steps": 3, "verification_pairs": True}, seed=0,
                   workdir="unused", judge_template="{problem} {solution}", where="models.m.sft")
