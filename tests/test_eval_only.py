"""Evaluation only (`methods: {}`): a pretrained checkpoint, such as a released LaSeR model, is
generated, scored with its constant c_ref and tabled, with no calibration and no training."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from laser.config import ConfigError, validate

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
RELEASED = ROOT / "config" / "released.yaml"


def _snakemake(*args, cwd, timeout=300, env=None):
    return subprocess.run([SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(cwd), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=timeout, env={**os.environ, **(env or {})})


def _job_counts(stdout: str) -> dict[str, int]:
    stats = stdout[stdout.index("Job stats"):]
    return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", stats, re.M)}


def test_released_config_plans_no_calibration_or_training(tmp_path):
    res = _snakemake("-n", "--configfile", RELEASED, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    counts = _job_counts(res.stdout)
    assert "calibrate" not in counts and "train" not in counts
    assert (counts["prepare_data"], counts["base_model"], counts["generate"], counts["tables"]) == (1, 3, 3, 1)
    assert "results/generations/orz-7b-laser/base/aime25.jsonl" in res.stdout
    docs = (ROOT / "config" / "README.md").read_text()
    assert f"{counts['total']}: prepare_data 1, base_model 3, generate 3, tables 1" in docs


def test_eval_only_config_calibrates_when_asked(tmp_path):
    """c_ref calibrated: calibrate (on training problems) is planned, train is not."""
    config = yaml.safe_load(RELEASED.read_text())
    for spec in config["models"].values():
        spec.pop("laser")
    config["laser"]["c_ref"] = {"source": "calibrated"}
    with pytest.raises(ConfigError, match=r"'train_data' is required: model [\w.-]+'s c_ref is calibrated on it"):
        validate(yaml.safe_load(yaml.safe_dump(config)))
    config["train_data"] = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())["train_data"]
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(config))
    res = _snakemake("-n", "--configfile", cfg, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    counts = _job_counts(res.stdout)
    assert "train" not in counts
    assert (counts["prepare_data"], counts["base_model"], counts["calibrate"], counts["generate"]) == (1, 3, 3, 3)


def test_methods_and_training_may_be_left_out():
    config = yaml.safe_load(RELEASED.read_text())
    config.pop("methods")
    validate(config)
    assert config["methods"] == {} and config["training"]["max_steps"] == 400 and "train_data" not in config
    config["methods"] = {"laser": {}}
    with pytest.raises(ConfigError, match=r"'train_data' is required: methods \(laser\) train on it"):
        validate(config)


PROBLEMS = [f"Item {100 + i}: give the code." for i in range(8)]


@pytest.fixture(scope="module")
def parrot(tmp_path_factory) -> Path:
    """A tiny checkpoint saved with save_pretrained that answers every question with \\boxed{7}:
    a stand-in for a hub checkpoint, whose correctness the test sets through the answers."""
    from laser.prompts import build_messages
    from laser.model import make_base

    path = tmp_path_factory.mktemp("parrot") / "model"
    train = [{"id": f"t{i}", "problem": f"Item {i}: give the code.", "answer": "7", "solution": "\\boxed{7}",
              "messages": build_messages(f"Item {i}: give the code.", "")} for i in range(64)]
    spec = {"source": "build", "z_c": "<|reserved_special_token_0|>",
            "architecture": {"hidden_size": 64, "num_layers": 2, "num_heads": 2, "intermediate_size": 128,
                             "max_position_embeddings": 256},
            "sft": {"max_steps": 30, "learning_rate": 0.01, "batch_size": 16, "warmup_steps": 2, "weight_decay": 0.0}}
    make_base(spec, train, path, seed=0, name="parrot")
    return path


@pytest.mark.slow
def test_pretrained_checkpoint_is_evaluated_without_calibration_or_training(tmp_path, parrot):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from laser.generation import zc_logprobs_transformers
    from laser.prompts import build_messages, render_prompts

    # log pi(z_c | x, "\boxed{7}", EOS) of each problem by a plain forward; c_ref puts r_s > 0.5 on
    # the upper half, and the answers make 3 of 4 solutions there correct and 3 of 4 below
    # incorrect: true_acc = false_acc = F1 = 0.75, which only the constant c_ref gives.
    tok, model = AutoTokenizer.from_pretrained(parrot), AutoModelForCausalLM.from_pretrained(parrot)
    zc_id = tok.convert_tokens_to_ids("<|reserved_special_token_0|>")
    _, prompt_ids = render_prompts(tok, [{"messages": build_messages(p, "")} for p in PROBLEMS])
    boxed = tok("\\boxed{7}", add_special_tokens=False).input_ids
    logp = zc_logprobs_transformers(model, prompt_ids, [boxed] * len(PROBLEMS), zc_id=zc_id, eos_id=tok.eos_token_id,
                                    pad_id=tok.pad_token_id)
    order = sorted(range(len(PROBLEMS)), key=lambda i: logp[i])
    low, high = order[:4], order[4:]
    assert logp[high[0]] - logp[low[-1]] > 1e-3, "the split needs distinct log-probs"
    beta_v, c_ref = 0.1, (logp[high[0]] + logp[low[-1]]) / 2 - 0.5 / 0.1
    answers = {i: "7" for i in high[1:] + low[:1]} | {i: "8" for i in high[:1] + low[1:]}
    bench = tmp_path / "codes.jsonl"
    bench.write_text("".join(json.dumps({"problem": p, "answer": answers[i]}) + "\n" for i, p in enumerate(PROBLEMS)))

    config = {
        "seed": 0,
        "prompt": {"base_eval_suffix": ""},
        "benchmarks": {"codes": {"source": "jsonl", "path": str(bench), "n_samples": 1}},
        # a hub id, found offline in a Hugging Face cache (HF_HOME below) that holds one commit of it
        "models": {"released": {"source": "pretrained", "path": "org/parrot", "z_c": "<|reserved_special_token_0|>",
                                "laser": {"c_ref": {"source": "constant", "value": c_ref}}}},
        "laser": {"beta_v": beta_v},
        "methods": {},
        # greedy (so n_samples 1), every solution the \boxed{7} scored above; transformers: no vLLM start-up
        "generation": {"backend": "transformers", "temperature": 0.0, "max_tokens": 16, "dtype": "float32",
                       "vllm_kv_cache_gib": 0.25},
        "judge": {"generative": False},
    }
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    work = tmp_path / "work"
    work.mkdir()
    commit, repo = "0123456789abcdef" * 2 + "01234567", tmp_path / "hf" / "hub" / "models--org--parrot"
    shutil.copytree(parrot, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    res = _snakemake("--cores", "2", "--configfile", cfg, cwd=work, timeout=900,
                     env={"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"})
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]

    results = work / "results"
    # base/ references the commit main resolved to (no copy of the weights); generation loaded it
    assert sorted(p.name for p in (results / "models/released/base").iterdir()) == [".snakemake_timestamp",
                                                                                    "reference.json"]
    reference = json.loads((results / "models/released/base/reference.json").read_text())
    assert (reference["source"], reference["path"], reference["revision"]) == ("hub", "org/parrot", commit)
    assert json.loads((results / "generations/released/base/metadata.json").read_text())["model_files"] == \
        {"source": "hub", "path": "org/parrot", "revision": commit}
    records = [json.loads(line) for line in (results / "generations/released/base/codes.jsonl").open()]
    for rec, lp in zip(records, logp):
        assert rec["response_token_ids"] == [boxed], rec["responses"]
        assert rec["zc_logprobs"] == pytest.approx([lp], abs=1e-4)
        assert rec["self_rewarding_scores"] == pytest.approx([beta_v * (x - c_ref) for x in rec["zc_logprobs"]])
    scoring = json.loads((results / "generations/released/base/metadata.json").read_text())["scoring"]
    assert scoring["c_ref"] == pytest.approx(c_ref) and scoring["c_ref_source"] == "constant"

    import pandas as pd

    main = pd.read_csv(results / "tables/main.csv")
    assert set(zip(main["model"], main["method"], main["judge"])) == {("released", "base", "last_token")}
    row = main.set_index("benchmark").loc["codes"]
    assert row["accuracy"] == pytest.approx(0.5)
    assert (row["true_acc"], row["false_acc"], row["f1_filtered"]) == pytest.approx((0.75, 0.75, 0.75), abs=1e-4)

    # nothing calibrated or trained, and no training data prepared
    assert not (results / "calibration").exists() and not (results / "train").exists()
    assert not (results / "data" / "train.jsonl").exists()
    assert sorted(p.name for p in (results / "models" / "released").iterdir()) == ["base"]
    jobs = {p.name.removesuffix(".tsv") for p in (results / "benchmarks").iterdir()}
    assert {"prepare_data", "base_model", "generate", "tables"} <= jobs and not {"calibrate", "train"} & jobs
