"""Training and evaluation prompts: per model and method, recorded, and each job's settings
(`params.job`, laser.jobs) hold exactly the prompt it reads (so a prompt edit reruns the jobs it
affects and no others)."""

import copy
import re
from pathlib import Path

import pytest
import yaml

import laser.config
import laser.jobs
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


# ---------------------------------------------------------------- the jobs' settings

def _params(config: dict) -> dict[tuple, dict]:
    """Every job's `params.job` under `config`: what laser.jobs resolves for it (each rule passes
    `job_settings("<rule>")`, workflow/rules/common.smk; the slow test below asks Snakemake itself)."""
    models, methods = list(config["models"]), ["base", *config["methods"]]
    jobs = {"prepare_data": [{}], "base_model": [{"model": m} for m in models],
            "calibrate": [{"model": m} for m in models],
            "train": [{"model": m, "method": r} for m in models for r in config["methods"]],
            "generate": [{"model": m, "method": r} for m in models for r in methods],
            "verify": [{"verifier": v, "model": m, "method": r} for v in config["verifiers"] for m in models
                       for r in laser.config.verifier_methods(config, v)],
            "tables": [{}], "figures": [{}]}
    return {(rule, *wc.values()): getattr(laser.jobs, rule)(config, **wc) for rule, wcs in jobs.items() for wc in wcs}


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
    # the training prompt: the jobs that build it, not the data file (bare problems); the generate
    # jobs record it beside their (retrained) checkpoints' generations
    trained = {("base_model", "tiny"), ("calibrate", "tiny"), ("train", "tiny", "grpo"), ("train", "tiny", "laser"),
               ("generate", "tiny", "base"), ("generate", "tiny", "grpo"), ("generate", "tiny", "laser")}
    assert edit(lambda c: c["prompt"].update(train_suffix=" T2")) == trained
    assert edit(lambda c: c["models"]["tiny"].update(prompt={"train_suffix": " T2"})) == trained


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
    # keys of a built model (a new SFT default) rerun no pretrained model's job
    config["models"]["qwen2.5-1.5b"]["sft"]["verification_own"] = 0.5
    config["models"]["qwen2.5-1.5b"]["architecture"]["num_layers"] = 7
    assert _rerun(before, _params(config)) == changed


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


def _small_run_config() -> dict:
    """The embedded default cut to a minute of CPU: every rule, a handful of problems and steps."""
    config = _default()
    config["prompt"].update(eval_suffix=" E", base_eval_suffix="")  # three separate suffixes
    config["train_data"]["n_problems"] = 64
    for spec in config["benchmarks"].values():
        spec.update(n_problems=4, n_samples=1)
    config["models"]["tiny"]["sft"].update(max_steps=4, warmup_steps=0, verification_steps=0)
    config["calibration"]["n_problems"] = 4
    config["training"].update(max_steps=2, prompts_per_step=2, num_generations=2, max_completion_length=16,
                              save_steps=1, validation={"benchmark": None})
    config["laser"].update(warmup_sr_steps=0, c_ref={"source": "constant", "value": -10.0})  # no calibrate job
    config["generation"].update(backend="transformers", max_tokens=16)
    config["judge"].update(generative=False)
    config["analysis"]["scaling_subsets"] = 2
    return config


def _jobs_to_rerun(cwd, config) -> set:
    """Snakemake's own answer: the jobs a dry run of `config` plans after the finished run in `cwd`
    (the run's record, tables, figures, job times and provenance left out: they follow any change)."""
    import re
    import subprocess
    import sys

    cfg = cwd / "edited.yaml"
    cfg.write_text(yaml.safe_dump(config))
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    res = subprocess.run([snakemake, "-s", str(ROOT / "Snakefile"), "-d", str(cwd), "-n", "--configfile", str(cfg)],
                         capture_output=True, text=True, cwd=cwd, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = set()
    for rule, body in re.findall(r"^rule (\w+):\n((?:    .*\n)+)", res.stdout, flags=re.M):
        wildcards = re.search(r"wildcards: (.*)", body)
        values = tuple(v.split("=", 1)[1] for v in wildcards.group(1).split(", ")) if wildcards else ()
        if rule not in ("all", "tables", "figures", "job_times", "provenance"):
            jobs.add((rule, *values))
    return jobs


@pytest.mark.slow
def test_snakemake_reruns_exactly_the_jobs_that_read_an_edited_prompt(tmp_path):
    """A real run of every rule, then Snakemake's dry run after each prompt edit: the jobs that
    read the edited prompt rerun, with what depends on their outputs, and no other (the data
    files hold bare problems, so no prompt reruns prepare_data)."""
    import subprocess
    import sys

    config = _small_run_config()
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    res = subprocess.run([snakemake, "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "--cores", "2",
                          "--configfile", str(cfg)], capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert res.returncode == 0, res.stderr[-4000:]
    assert _jobs_to_rerun(tmp_path, config) == set()  # nothing to do after the run

    def edit(fn):
        c = copy.deepcopy(config)
        fn(c)
        return _jobs_to_rerun(tmp_path, c)

    generate = {("generate", "tiny", m) for m in ("base", "grpo", "laser")}
    assert edit(lambda c: c["prompt"].update(eval_suffix=" E2")) == generate - {("generate", "tiny", "base")}
    assert edit(lambda c: c["models"]["tiny"].update(prompt={"base_eval_suffix": "\nB"})) == {
        ("generate", "tiny", "base")}
    # the training prompt: the SFT warm-up reads it, so the built model and all that starts from it
    assert edit(lambda c: c["prompt"].update(train_suffix=" T2")) == {
        ("base_model", "tiny"), ("train", "tiny", "grpo"), ("train", "tiny", "laser"), *generate}
