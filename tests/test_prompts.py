"""Training and evaluation prompts: per model and method, recorded, and each job's `params` hold
exactly the suffix it reads (so a prompt edit reruns the jobs it affects and no others)."""

import copy
import re
from types import SimpleNamespace

import pytest
import yaml

import laser.config
from conftest import ROOT
from laser.config import ConfigError, eval_suffix, load, prompt_settings, train_suffix, validate

OFFICIAL_BASE = "\nPlease reason step by step, and put your final answer within \\boxed{}."
TRAIN = " Please reason step by step, and put your final answer within \\boxed{}."


def _default():
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def test_defaults_fall_back_train_eval_base():
    config = validate(_default())
    assert config["prompt"] == {"train_suffix": " Put the answer in \\boxed{}.", "eval_suffix": None,
                                "base_eval_suffix": None}
    # the embedded default: one suffix for everything
    assert {eval_suffix(config, "tiny", m) for m in ("base", "grpo", "laser")} == {" Put the answer in \\boxed{}."}
    config["prompt"]["eval_suffix"] = ""
    assert (eval_suffix(config, "tiny", "laser"), eval_suffix(config, "tiny", "base")) == ("", "")
    config["models"]["tiny"]["prompt"] = {"base_eval_suffix": "\nB", "train_suffix": " T"}
    assert prompt_settings(config, "tiny") == {"train_suffix": " T", "eval_suffix": "", "base_eval_suffix": "\nB"}
    assert train_suffix(config) == " Put the answer in \\boxed{}." and train_suffix(config, "tiny") == " T"
    config["models"]["tiny"]["prompt"]["eval_suffix"] = None  # null in an override: falls back to train_suffix
    assert eval_suffix(config, "tiny", "grpo") == " T"


def test_paper_config_follows_the_official_evaluation():
    """src/eval_math.py: the bare problem, plus "\\nPlease reason ..." for base Qwen2.5-7B only."""
    config = load(ROOT / "config" / "paper.yaml")
    for model in config["models"]:
        for method in ("base", *config["methods"]):
            want = OFFICIAL_BASE if (model, method) == ("qwen2.5-7b", "base") else ""
            assert eval_suffix(config, model, method) == want, (model, method)
        assert train_suffix(config, model) == TRAIN  # the validation prompts' (the data brings its own)
    assert config["train_data"]["messages_key"] == "prompt"
    assert config["train_data"]["answer_key"] == "reward_model.ground_truth"
    small = load(ROOT / "config" / "gpu-small.yaml")
    assert eval_suffix(small, "qwen2.5-1.5b", "base") == OFFICIAL_BASE
    assert eval_suffix(small, "qwen2.5-1.5b", "laser") == ""
    assert train_suffix(small, "qwen2.5-1.5b") == TRAIN


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["prompt"].update(instruction_suffix=" x"),
     "config key 'prompt.instruction_suffix' was replaced by 'train_suffix', 'eval_suffix' and 'base_eval_suffix'"),
    (lambda c: c["models"]["tiny"].update(prompt={"instruction_suffix": ""}),
     "config key 'models.tiny.prompt.instruction_suffix' was replaced"),
    (lambda c: c["models"]["tiny"].update(prompt={"eval_sufix": ""}),
     "config key 'models.tiny.prompt': unknown key(s) 'eval_sufix'"),
    (lambda c: c["prompt"].update(eval_suffix=3), "config key 'prompt.eval_suffix': 3 is not of type"),
])
def test_bad_prompt_config_names_the_key(mutate, message):
    config = _default()
    mutate(config)
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate(config)


# ---------------------------------------------------------------- the rules' params

def _rule_params() -> dict[str, str]:
    """`params:` block of every rule, as Python keyword arguments."""
    out = {}
    for f in (ROOT / "workflow" / "rules").glob("*.smk"):
        for m in re.finditer(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)+)", f.read_text(), flags=re.M):
            block = re.search(r"^    params:\n((?:        .*\n|\s*\n)+)", m.group(2), flags=re.M)
            if block:
                out[m.group(1)] = block.group(1)
    return out


def _params(config: dict) -> dict[tuple, dict]:
    """Every job's params under `config`, evaluated from the rule files with common.smk's `settings`."""
    src = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    ns = {"config": config, "laser": laser}
    exec(re.search(r"^def settings\(.*?(?=^\S)", src, flags=re.M | re.S).group(0), ns)
    models, methods = list(config["models"]), ["base", *config["methods"]]
    jobs = {"prepare_data": [{}], "base_model": [{"model": m} for m in models],
            "calibrate": [{"model": m} for m in models],
            "train": [{"model": m, "method": r} for m in models for r in config["methods"]],
            "generate": [{"model": m, "method": r} for m in models for r in methods],
            "verify": [{"verifier": v, "model": m, "method": r} for v in config["verifiers"] for m in models
                       for r in laser.config.verifier_methods(config, v)],
            "tables": [{}], "figures": [{}]}
    out = {}
    for rule, block in _rule_params().items():
        if rule not in jobs:  # job_times, provenance: the run's record, remade after any change by design
            continue
        params = eval("dict(" + block + ")", ns)
        for wc in jobs[rule]:
            out[(rule, *wc.values())] = {k: v(SimpleNamespace(**wc)) if callable(v) else v for k, v in params.items()}
    return out


def _rerun(before: dict, after: dict) -> set:
    return {job for job in before if before[job] != after[job]}


def test_prompt_edits_rerun_exactly_the_jobs_that_read_them():
    config = validate(_default())
    config["prompt"].update(eval_suffix=" E", base_eval_suffix="")  # three separate suffixes
    before = _params(config)
    assert {"prepare_data", "base_model", "calibrate", "train", "generate", "tables"} <= {j[0] for j in before}

    def edit(fn):
        c = copy.deepcopy(config)
        fn(c)
        return _rerun(before, _params(validate(c)))

    assert edit(lambda c: c["prompt"].update(eval_suffix=" E2")) == {("generate", "tiny", "grpo"),
                                                                       ("generate", "tiny", "laser")}
    assert edit(lambda c: c["prompt"].update(base_eval_suffix="\nB")) == {("generate", "tiny", "base")}
    # null falls back: base_eval_suffix to eval_suffix, so the base model's prompt changes too
    assert edit(lambda c: c["prompt"].update(base_eval_suffix=None)) == {("generate", "tiny", "base")}
    per_model = edit(lambda c: c["models"]["tiny"].update(prompt={"base_eval_suffix": "\nB"}))
    assert per_model == {("generate", "tiny", "base")}
    trained = {("prepare_data",), ("base_model", "tiny"), ("calibrate", "tiny"), ("train", "tiny", "grpo"),
               ("train", "tiny", "laser")}
    assert edit(lambda c: c["prompt"].update(train_suffix=" T2")) == trained
    # a per-model training suffix: that model's jobs, not the shared training file
    assert edit(lambda c: c["models"]["tiny"].update(prompt={"train_suffix": " T2"})) == trained - {("prepare_data",)}


def test_laser_knob_edits_rerun_laser_only_and_scoring_edits_every_scored_run():
    config = validate(_default())
    before = _params(config)

    def edit(fn):
        c = copy.deepcopy(config)
        fn(c)
        return _rerun(before, _params(validate(c)))

    laser = {("train", "tiny", "laser"), ("generate", "tiny", "laser")}
    for key, value in (("alpha", 0.3), ("tau", 0.2), ("warmup_sr_steps", 8), ("swa", False)):
        assert edit(lambda c: c["laser"].update({key: value})) == laser, key
    assert edit(lambda c: c["methods"]["laser"].update(alpha=0.3)) == laser
    # r_s = beta_v (log p - c_ref) scores every run, GRPO's logged in training too
    assert edit(lambda c: c["laser"].update(beta_v=0.3)) == laser | {
        ("train", "tiny", "grpo"), ("generate", "tiny", "grpo"), ("generate", "tiny", "base")}


def test_pretrained_base_model_does_not_read_the_prompt():
    config = validate(yaml.safe_load((ROOT / "config" / "gpu-small.yaml").read_text()))
    before = _params(config)
    config["prompt"]["train_suffix"] = " other"
    changed = _rerun(before, _params(config))
    assert ("base_model", "qwen2.5-1.5b") not in changed and ("calibrate", "qwen2.5-1.5b") in changed


# ---------------------------------------------------------------- recorded with the results

def test_prompts_table_from_generation_metadata(tmp_path):
    import pandas as pd

    from laser.io import InputError, write_json
    from laser.tables import prompts_table, write_table

    paths = []
    for method, suffix in (("base", OFFICIAL_BASE), ("laser", "")):
        p = tmp_path / "generations" / "qwen" / method / "metadata.json"
        write_json(p, {"prompt": {"eval_suffix": suffix, "dataset_prompts": [], "train_suffix": None}})
        paths.append(p)
    df = prompts_table(paths)
    assert df.to_dict("records") == [
        {"model": "qwen", "method": "base", "eval_suffix": '"\\nPlease reason step by step, and put your final '
         'answer within \\\\boxed{}."', "train_suffix": None, "dataset_prompts": ""},
        {"model": "qwen", "method": "laser", "eval_suffix": '""', "train_suffix": None, "dataset_prompts": ""}]
    write_table(df, tmp_path / "prompts.csv")
    assert pd.read_csv(tmp_path / "prompts.csv", keep_default_na=False)["eval_suffix"].tolist() == \
        df["eval_suffix"].tolist()
    old = tmp_path / "generations" / "qwen" / "grpo" / "metadata.json"
    write_json(old, {"instruction_suffix": " x"})
    with pytest.raises(InputError, match="no 'prompt' record.*rerun the generate rule"):
        prompts_table([old])
