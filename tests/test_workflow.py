"""The Snakemake workflow itself: dry runs plan the DAG; bad config fails before any job."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def _snakemake(*args, cwd=ROOT):
    return subprocess.run([SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(cwd), *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def test_dry_run_plans_the_pipeline(tmp_path):
    res = _snakemake("-n", "--configfile", str(ROOT / "config" / "config.yaml"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    for rule in ("prepare_data", "base_model", "calibrate", "train", "generate", "tables", "figures"):
        assert f"rule {rule}:" in out, rule
    assert "results/judge/tiny/laser/arith_hard.jsonl" in out  # the prompted judge runs inside generate


def test_generative_judge_can_be_switched_off(tmp_path):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["judge"]["generative"] = False
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(config))
    res = _snakemake("-n", "--configfile", str(cfg), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "results/judge/" not in res.stdout and "rule tables:" in res.stdout


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["generation"].update(temperatur=1.0), "config key 'generation': unknown key(s) 'temperatur'"),
    (lambda c: c["benchmarks"]["arith_easy"].update(n_samples=0),
     "config key 'benchmarks.arith_easy.n_samples': 0 is less than the minimum of 1"),
    (lambda c: c["benchmarks"].update(m={"source": "jsonl", "path": "/nope.jsonl", "n_samples": 1}),
     "config key 'benchmarks.m.path': file not found: /nope.jsonl"),
    (lambda c: c["training"].update(launcher={"num_processes": 3}),
     "do not split evenly into 'training.gradient_accumulation_steps' (1) x 'training.launcher.num_processes'"),
    (lambda c: c["training"].update(validation={"benchmark": "math500"}),
     "config key 'training.validation.benchmark': 'math500' is not a benchmark"),
])
def test_bad_config_fails_before_any_job(tmp_path, mutate, message):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    mutate(config)
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(config))
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "keep.txt").write_text("earlier result")
    res = _snakemake("--cores", "1", "--configfile", str(cfg), cwd=tmp_path)
    assert res.returncode != 0
    assert message in res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    assert (tmp_path / "results" / "keep.txt").read_text() == "earlier result"
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["keep.txt"]


def _write(path, config):
    path.write_text(yaml.safe_dump(config))
    return path


def test_jsonl_benchmark_config_plans(tmp_path, benchmarks_dir):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["benchmarks"] = {"aime24": {"source": "jsonl", "path": str(benchmarks_dir / "aime24" / "test.jsonl"),
                                       "n_samples": 2}}
    config["training"]["validation"]["benchmark"] = "aime24"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(config))
    # a local file is read when the workflow is parsed: AIME prompts (up to 968 bytes, one token each)
    # do not fit the tiny model's 512 tokens with generation.max_tokens
    res = _snakemake("-n", "--configfile", str(cfg), cwd=tmp_path)
    assert res.returncode != 0 and "12 of 30 prompts of benchmark aime24 (base prompt) do not fit" in res.stdout
    config["models"]["tiny"]["architecture"]["max_position_embeddings"] = 1280
    res = _snakemake("-n", "--configfile", str(_write(cfg, config)), cwd=tmp_path)  # and it validates on AIME
    assert res.returncode != 0 and "every validation prompt is longer than 128 tokens" in res.stdout
    config["training"]["max_prompt_length"] = 1024
    cfg.write_text(yaml.safe_dump(config))
    res = _snakemake("-n", "--configfile", str(cfg), cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr
    assert "results/generations/tiny/base/aime24.jsonl" in res.stdout + res.stderr


def test_paper_config_plans_the_whole_dag(tmp_path):
    """config/paper.yaml: 3 models x (base + 5 methods) x 5 benchmarks, as documented."""
    res = _snakemake("-n", "--configfile", str(ROOT / "config" / "paper.yaml"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    stats = res.stdout[res.stdout.index("Job stats"):]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", stats, re.M))
    assert counts == {"prepare_data": "1", "base_model": "3", "calibrate": "3", "train": "15", "generate": "18",
                      "verify": "9", "tables": "1", "figures": "1", "job_times": "1", "provenance": "1", "all": "1",
                      "total": "54"}
    # the memory plan, per GPU, of every train and generate job, before any job starts
    assert "memory plan per GPU (gpu_memory_gib: 79)" in res.stderr
    assert len(re.findall(r"^  (train|generate) +\S+: [\d.]+ GiB = weights", res.stderr, re.M)) == 6
    docs = (ROOT / "config" / "README.md").read_text()
    assert "54: prepare_data 1, base_model 3, calibrate 3, train 15, generate 18 (with the prompted judge), verify 9" in docs


def test_config_changes_rerun_the_jobs_that_read_them(tmp_path):
    """Each job's settings are its `params.job`: editing a key reruns the jobs that read it, not the others."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["train_data"]["n_problems"] = 30
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(config))
    target = "results/data/train.jsonl"
    assert _snakemake(target, "--cores", "1", "--configfile", str(cfg), cwd=tmp_path).returncode == 0
    assert "Nothing to be done" in _snakemake(target, "-n", "--configfile", str(cfg), cwd=tmp_path).stdout
    config["analysis"]["seed"] = 7  # read by tables and figures only
    cfg.write_text(yaml.safe_dump(config))
    assert "Nothing to be done" in _snakemake(target, "-n", "--configfile", str(cfg), cwd=tmp_path).stdout
    config["train_data"]["n_problems"] = 31
    cfg.write_text(yaml.safe_dump(config))
    res = _snakemake(target, "-n", "--configfile", str(cfg), cwd=tmp_path)
    assert "rule prepare_data:" in res.stdout and "Params have changed" in res.stdout, res.stdout[-2000:]
    # every rule that runs a script passes its job's settings, resolved by laser.jobs (or none)
    rules = {m.group(1): m.group(2) for f in (ROOT / "workflow" / "rules").glob("*.smk")
             for m in re.finditer(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)+)", f.read_text(), flags=re.M)}
    wired = {r for r, body in rules.items() if f'job=job_settings("{r}")' in body}
    assert {r for r, body in rules.items() if "script:" in body} - wired == {"job_times"}  # it reads no config


def test_config_overrides_apply_to_the_default_and_to_a_configfile(tmp_path):
    """`--config key=value` overrides the embedded default or a `--configfile`, as in any workflow."""
    assert _snakemake("-n", "--config", "seed=1", cwd=tmp_path).returncode == 0
    res = _snakemake("-n", "--config", "seed=-1", cwd=tmp_path)  # reaches validation: it was applied
    assert res.returncode != 0 and "config key 'seed': -1 is less than the minimum of 0" in res.stdout + res.stderr
    paper = str(ROOT / "config" / "paper.yaml")
    res = _snakemake("-n", "--configfile", paper, "--config", "seed=-2", cwd=tmp_path)
    assert res.returncode != 0 and "config key 'seed': -2 is less than the minimum of 0" in res.stdout + res.stderr
