"""A killed `snakemake --cores all` is finished by rerunning the README command: the tables equal
those of an uninterrupted run, whether the kill hit `train` (after a checkpoint), `generate` or
`tables`. Kills go to the whole process group: SIGINT (Ctrl-C), SIGTERM (a scheduler) and
SIGKILL (a crashed node; Snakemake's lock then stays, and `snakemake --unlock` is run first, as
Snakemake documents)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def _config(tmp_path: Path) -> Path:
    config = yaml.safe_load((ROOT / "tests" / "slurm" / "config.yaml").read_text())
    config.pop("verifiers")
    config["benchmarks"] = {"arith_easy": config["benchmarks"]["arith_easy"]}
    config["training"].update(max_steps=6, save_steps=2)
    config["laser"].update(warmup_reasoning_steps=2, warmup_sr_steps=2)
    config["methods"] = {"laser": {}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _start(workdir: Path, config: Path) -> subprocess.Popen:
    # the README command; the workflow profile (profiles/default) applies by itself
    out = open(workdir / "snakemake.out", "w")
    return subprocess.Popen([SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--cores", "all",
                             "--configfile", str(config)], cwd=workdir, start_new_session=True,
                            stdout=out, stderr=subprocess.STDOUT)


def _run(workdir: Path, config: Path) -> None:
    proc = _start(workdir, config)
    assert proc.wait(timeout=1200) == 0, (workdir / "snakemake.out").read_text()[-3000:]


def _kill_when(workdir: Path, config: Path, ready, what: str, sig: int) -> None:
    proc = _start(workdir, config)
    deadline = time.time() + 900
    while not ready():
        assert proc.poll() is None, f"the workflow ended before {what} was reached"
        assert time.time() < deadline, f"{what} was never reached"
        time.sleep(0.2)
    os.killpg(proc.pid, sig)
    proc.wait(timeout=300)
    if sig == signal.SIGKILL:
        unlock = subprocess.run([SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--unlock",
                                 "--configfile", str(config)], cwd=workdir, capture_output=True, text=True)
        assert unlock.returncode == 0, unlock.stderr


def _tables(workdir: Path) -> dict[str, bytes]:
    # job_times holds the jobs' measured wall times, which no two runs share
    return {p.name: p.read_bytes() for p in sorted((workdir / "results" / "tables").glob("*.csv"))
            if p.name != "job_times.csv"}


@pytest.mark.slow
def test_killed_workflow_reruns_to_the_same_tables(tmp_path):
    config = _config(tmp_path)
    ref, work = tmp_path / "ref", tmp_path / "work"
    ref.mkdir(), work.mkdir()
    _run(ref, config)
    expected = _tables(ref)
    assert "main.csv" in expected
    # every job leaves Snakemake's benchmark file (wall time, memory) beside the results
    for job in ("prepare_data", "base_model/tiny", "calibrate/tiny", "train/tiny/laser", "generate/tiny/base",
                "tables", "figures"):
        lines = (ref / "results" / "benchmarks" / f"{job}.tsv").read_text().splitlines()
        assert lines[0].split("\t")[:2] == ["s", "h:m:s"] and float(lines[1].split("\t")[0]) > 0, job
    # ... gathered in the job-times table; provenance.json records the resolved config
    times = (ref / "results" / "tables" / "job_times.csv").read_text()
    for row in ("prepare_data,,", "train,\"model=tiny, method=laser\",", "generate,\"model=tiny, method=base\",",
                "tables,,", "figures,,"):
        assert row in times, (row, times)
    provenance = json.loads((ref / "results" / "provenance.json").read_text())
    assert set(provenance["config"]["methods"]) == {"laser"} and provenance["models"]["tiny"]["source"] == "build"

    ckpts = work / "results" / "train" / "tiny" / "laser" / "checkpoints"
    _kill_when(work, config, lambda: (ckpts / "checkpoint-2").is_dir(), "train after its first checkpoint",
               signal.SIGKILL)
    assert not (work / "results" / "models" / "tiny" / "laser").exists()
    _run(work, config)
    assert _tables(work) == expected

    for out in ("generations", "tables", "figures"):  # generate and what reads it rerun
        shutil.rmtree(work / "results" / out)
    gen_log = work / "logs" / "generate" / "tiny" / "laser.log"
    gen_log.unlink()
    _kill_when(work, config, lambda: gen_log.is_file() and gen_log.stat().st_size > 0, "generate",
               signal.SIGINT)
    _run(work, config)
    assert _tables(work) == expected

    shutil.rmtree(work / "results" / "tables")
    (work / "logs" / "tables.log").unlink()
    _kill_when(work, config, (work / "logs" / "tables.log").is_file, "tables", signal.SIGTERM)
    _run(work, config)
    assert _tables(work) == expected
