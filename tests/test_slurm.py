"""The workflow on a real (single-node, throw-away) SLURM cluster through profiles/slurm.

tests/slurm/start_cluster.sh starts munged, slurmctld and slurmd from a generated config in a
temporary directory (one node: this machine, two fake GPUs); the fixture stops them by PID.
The jobs run with the profile's own settings (executor, retries, keep-going, per-rule GPU
requests, local aggregation rules), scaled to the node (memory, CPUs) and with the status
query the test cluster supports (`squeue`: it has no slurmdbd, so no `sacct`).

Needs root and the Debian packages slurmctld slurmd slurm-client munge (.ci/run installs them).
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT
from tiny_verifiers import save_verifier

pytestmark = pytest.mark.slow

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
SLURM = ROOT / "tests" / "slurm"
PROFILE = ROOT / "profiles" / "slurm" / "config.yaml"
PARTITION = "test"  # the test cluster's partition (start_cluster.sh)

GPU_RULES = {"base_model", "calibrate", "train", "generate", "verify"}
LOCAL_RULES = {"tables", "figures", "job_times", "provenance"}  # localrules in workflow/rules/common.smk


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Environment (SLURM_CONF, PATH) of a running single-node SLURM cluster."""
    missing = [exe for exe in ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "srun")
               if shutil.which(exe) is None]
    if missing:
        pytest.fail(f"SLURM is not installed (missing {', '.join(missing)}): "
                    "apt-get install -y slurmctld slurmd slurm-client munge  (.ci/run does this)")
    if os.geteuid() != 0:
        pytest.fail("the test SLURM cluster needs root (slurmd, mknod of the fake GPU device)")
    cluster_dir = tmp_path_factory.mktemp("slurm")
    res = subprocess.run(["bash", str(SLURM / "start_cluster.sh"), str(cluster_dir)],
                         capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        pytest.fail(f"test SLURM cluster did not start:\n{res.stdout}\n{res.stderr}")
    env = {**os.environ, "SLURM_CONF": str(cluster_dir / "slurm.conf"),
           "PATH": f"{cluster_dir / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    for var in [v for v in env if v.startswith("SLURM_") and v != "SLURM_CONF"]:
        del env[var]  # in case pytest itself runs inside a SLURM job
    try:
        yield env
    finally:
        subprocess.run(["bash", str(SLURM / "stop_cluster.sh"), str(cluster_dir)], timeout=120)


def _rules_in_workflow():
    return {m for f in (ROOT / "workflow" / "rules").glob("*.smk")
            for m in re.findall(r"^rule (\w+):", f.read_text(), flags=re.M)}


def test_profile_asks_for_gpus_and_resources_for_every_cluster_rule():
    profile = yaml.safe_load(PROFILE.read_text())
    assert profile["executor"] == "slurm"
    assert profile["retries"] >= 1
    assert set(profile["default-resources"]) == {"slurm_partition", "slurm_account"}
    common = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    local = set(re.search(r"^localrules:\n((?:\s+\w+,?\n)+)", common, flags=re.M).group(1)
                .replace(",", " ").split())
    assert local == LOCAL_RULES
    resources, threads = profile["set-resources"], profile["set-threads"]
    for rule in _rules_in_workflow() - LOCAL_RULES:
        assert rule in resources, f"rule {rule} runs on the cluster but has no set-resources"
        assert {"mem_mb", "runtime"} <= set(resources[rule]), rule
        assert rule in threads, rule
    rules = {m.group(1): m.group(2) for f in (ROOT / "workflow" / "rules").glob("*.smk")
             for m in re.finditer(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)+)", f.read_text(), flags=re.M)}
    for rule in GPU_RULES:  # the rules ask for their GPUs (counts from the config) ...
        assert re.search(r"resources:\s*\n\s+gpu=", rules[rule]), rule
        assert "gpu" not in resources[rule], rule  # ... which the profile must not override
        assert resources[rule]["cpus_per_gpu"] == threads[rule], rule
    assert resources["train"]["tasks_per_gpu"] == 0  # accelerate starts the GPU processes


def _test_profile(tmp_path) -> Path:
    """profiles/slurm with requests that fit the test node (2 cores, 2 fake GPUs) and the
    status command it supports."""
    profile = yaml.safe_load(PROFILE.read_text())
    for rule, res in profile["set-resources"].items():
        res["mem_mb"] = 2000
        # base_model (SFT) runs alone and gets both cores; the other GPU jobs run in pairs.
        cpus = 2 if rule == "base_model" else 1
        profile["set-threads"][rule] = cpus
        if rule in GPU_RULES:
            res["cpus_per_gpu"] = cpus
    profile.update({
        "slurm-status-command": "squeue",  # no slurmdbd, so no sacct
        "slurm-init-seconds-before-status-checks": 5,
        "slurm-keep-successful-logs": True,  # the test checks that every job went through SLURM
    })
    out = tmp_path / "profile"
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return out


def _command(tmp_path, snakefile, workdir, *args, partition=True):
    """snakemake as README's cluster command, with the test partition (or, partition=False,
    the profile's empty partition and account: the cluster's default partition, no account)."""
    workdir.mkdir()
    return [SNAKEMAKE, "-s", str(snakefile), "-d", str(workdir),
            "--workflow-profile", str(_test_profile(tmp_path)),
            *(["--default-resources", f"slurm_partition={PARTITION}"] if partition else []), *args]


@pytest.fixture(scope="module")
def workflow_run(cluster, tmp_path_factory):
    """The whole DAG on tests/slurm/config.yaml, started in the background so that the
    retry test's jobs run on the cluster meanwhile: (process, workdir, output file)."""
    tmp = tmp_path_factory.mktemp("workflow")
    wd, log = tmp / "run", tmp / "snakemake.out"
    cmd = _command(tmp, ROOT / "Snakefile", wd, "--configfile", str(SLURM / "config.yaml"))
    save_verifier(wd / "verifier_orm", "outcome")  # the config's `verifiers.orm`
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, cwd=wd,
                                env=cluster)
    try:
        yield proc, wd, log
    finally:
        if proc.poll() is None:  # e.g. only the retry test was selected
            proc.terminate()  # snakemake cancels its SLURM jobs
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _slurm_logs(workdir, rule):
    """The SLURM logs of a rule's jobs (<wildcards>/<jobid>.log), in submission order."""
    logs = (workdir / ".snakemake" / "slurm_logs" / f"rule_{rule}").rglob("*.log")
    return sorted(logs, key=lambda p: (str(p.parent), int(p.stem)))


def test_retry_then_success_and_permanent_failure_names_its_log(cluster, workflow_run, tmp_path):
    # (workflow_run: the whole DAG is already running on the cluster beside this test's jobs)
    wd = tmp_path / "run"
    cmd = _command(tmp_path, SLURM / "Snakefile", wd, partition=False)
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=wd, env=cluster, timeout=600)
    out = res.stdout + res.stderr
    # `flaky` fails in its first SLURM job and succeeds in the resubmitted one.
    assert (wd / "flaky.txt").read_text().startswith("attempt 2 job "), out[-3000:]
    assert len(_slurm_logs(wd, "flaky")) == 2
    assert "Trying to restart job" in out
    # `broken` fails in all 1 + retries SLURM jobs; then the run fails naming the SLURM log.
    assert res.returncode != 0
    logs = _slurm_logs(wd, "broken")
    assert len(logs) == 1 + yaml.safe_load(PROFILE.read_text())["retries"], out[-3000:]
    assert not (wd / "broken.txt").exists()
    assert "Error in rule broken" in out
    assert str(logs[-1]) in out, out[-3000:]
    assert "fails for good" in logs[-1].read_text(errors="replace")


def test_workflow_runs_through_slurm(workflow_run):
    proc, wd, log = workflow_run
    returncode = proc.wait(timeout=1200)
    out = log.read_text(errors="replace")
    assert returncode == 0, out[-6000:]

    config = yaml.safe_load((SLURM / "config.yaml").read_text())
    benchmarks, methods = list(config["benchmarks"]), list(config["methods"])
    expected = ["results/data/train.jsonl", "results/calibration/tiny.json",
                "results/models/tiny/base/config.json", "results/tables/main.csv",
                "results/figures/scaling.png"]
    expected += [f"results/data/benchmarks/{b}.jsonl" for b in benchmarks]
    expected += [f"results/models/tiny/{m}/config.json" for m in methods]
    expected += [f"results/train/tiny/{m}/metrics.csv" for m in methods]
    expected += [f"results/generations/tiny/{m}/{f}" for m in ["base", *methods]
                 for f in [*(f"{b}.jsonl" for b in benchmarks), "metadata.json"]]
    expected += [f"results/verifiers/orm/tiny/laser/{b}.jsonl" for b in benchmarks]
    missing = [f for f in expected if not (wd / f).is_file()]
    assert not missing, f"missing results: {missing}\n{out[-3000:]}"

    # Every job except the local aggregation ran as a SLURM job on the test cluster ...
    n_jobs = {"prepare_data": 1, "base_model": 1, "calibrate": 1, "train": len(methods),
              "generate": 1 + len(methods), "verify": 1}
    for rule, n in n_jobs.items():
        logs = _slurm_logs(wd, rule)
        assert len(logs) == n, (rule, logs)
        # a job's stdout and stderr share its log, each flushed in blocks, so a multi-byte
        # character (a progress bar's) can be split between them: read the log as bytes with care
        assert all(f"Finished jobid: 0 (Rule: {rule})" in log.read_text(errors="replace") for log in logs), rule
    assert len(re.findall(r"has been submitted with SLURM jobid \d+", out)) == sum(n_jobs.values())
    # ... with a GPU for the GPU rules, and the accuracy table was made on the submit host.
    for rule in GPU_RULES:
        assert "gpu=1" in _slurm_logs(wd, rule)[0].read_text(errors="replace"), rule
    for rule in LOCAL_RULES:
        assert not _slurm_logs(wd, rule)
        assert re.search(rf"localrule {rule}:", out), rule
    verifiers = pd.read_csv(wd / "results" / "tables" / "verifiers.csv")
    assert set(verifiers["judge"]) == {"last_token", "orm"} and set(verifiers["method"]) == {"laser"}
    assert verifiers["benchmark"].tolist().count("average") == 2
