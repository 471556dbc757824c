"""Provenance: hub revisions reach `from_pretrained` (a local Hugging Face cache stands in for the
hub, offline), results/provenance.json records them with the config, the git state and the
package versions, and the job-times table reads Snakemake's benchmark files."""

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from laser import provenance, tiny
from laser.config import ConfigError, validate
from laser.io import InputError
from tiny_verifiers import save_verifier

COMMIT, OTHER = "a" * 40, "b" * 40  # the `hub` fixture (conftest.py): an offline Hugging Face cache


def _default():
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def test_model_revision_reaches_from_pretrained(hub, tiny_checkpoint, tmp_path):
    from transformers import AutoModelForCausalLM

    from laser.model import make_base, resolve_base

    snapshot, ref = hub
    shutil.copytree(tiny_checkpoint, snapshot("org/tiny", COMMIT))
    ref("org/tiny", "main", OTHER)  # main has moved on to a commit this cache does not hold
    spec = {"source": "pretrained", "path": "org/tiny", "z_c": tiny.ZC}
    make_base({**spec, "revision": COMMIT}, [], tmp_path / "base", seed=0, name="m")
    assert resolve_base(tmp_path / "base") == str(snapshot("org/tiny", COMMIT))
    AutoModelForCausalLM.from_pretrained(resolve_base(tmp_path / "base"))
    with pytest.raises(InputError, match="config key 'models.m.path': cannot load 'org/tiny'"):
        make_base(spec, [], tmp_path / "main", seed=0, name="m")  # main: not in the cache


def test_verifier_revision_reaches_from_pretrained(hub, tmp_path):
    from laser.verifiers import load_verifier

    snapshot, ref = hub
    save_verifier(snapshot("org/rm", COMMIT), "outcome")
    ref("org/rm", "main", OTHER)
    config = _default()
    config["verifiers"] = {"rm": {"path": "org/rm", "kind": "outcome", "revision": COMMIT}}
    model, tok = load_verifier(validate(config)["verifiers"]["rm"])
    assert type(model).__name__.endswith("ForSequenceClassification")
    del config["verifiers"]["rm"]["revision"]
    with pytest.raises(OSError):
        load_verifier(validate(config)["verifiers"]["rm"])


def test_remote_code_from_the_hub_needs_a_revision(tmp_path):
    config = _default()
    config["verifiers"] = {"rm": {"path": "Qwen/Qwen2.5-Math-RM-72B", "kind": "outcome", "trust_remote_code": True}}
    with pytest.raises(ConfigError, match=re.escape("config key 'verifiers.rm.revision': trust_remote_code runs code "
                                                    "from the hub repository 'Qwen/Qwen2.5-Math-RM-72B'; pin it")):
        validate(config)
    config["verifiers"]["rm"]["revision"] = COMMIT
    validate(config)
    (tmp_path / "config.json").write_text("{}")
    config["verifiers"]["rm"] = {"path": str(tmp_path), "kind": "outcome", "trust_remote_code": True}
    validate(config)  # a local directory is what it is


def test_sources_record_revisions_and_resolved_commits(hub, tmp_path):
    snapshot, ref = hub
    ref("org/tiny", "v1", COMMIT)
    ref("org/ds", "main", OTHER, "dataset")
    bench = tmp_path / "b.jsonl"
    bench.write_text('{"problem": "1+1", "answer": "2"}\n')
    config = _default()
    config["models"]["hubbed"] = {"source": "pretrained", "path": "org/tiny", "revision": "v1", "z_c": tiny.ZC}
    config["models"]["local"] = {"source": "pretrained", "path": str(tmp_path), "z_c": tiny.ZC}
    config["benchmarks"] = {"hub": {"source": "hub", "name": "org/ds", "n_samples": 1},
                            "file": {"source": "jsonl", "path": str(bench), "n_samples": 1}}
    config["training"]["validation"]["benchmark"] = "file"
    (tmp_path / "config.json").write_text("{}")  # the local model directory
    config["verifiers"] = {"rm": {"path": "org/rm", "kind": "outcome", "trust_remote_code": True, "revision": "main"}}
    src = provenance.sources(validate(config))
    assert src["models"] == {
        "tiny": {"source": "build", "revision": "built locally"},
        "hubbed": {"source": "pretrained", "hub_id": "org/tiny", "revision": "v1", "commit": COMMIT},
        "local": {"source": "pretrained", "path": str(tmp_path.resolve()), "revision": "local path"}}
    assert src["datasets"]["benchmarks.hub"] == {"source": "hub", "hub_id": "org/ds", "revision": None, "commit": OTHER}
    assert src["datasets"]["benchmarks.file"]["sha256"] == provenance._sha256(bench)
    assert src["datasets"]["train_data"]["source"] == "synthetic"
    # never downloaded here: the configured revision, no commit
    assert src["verifiers"]["rm"] == {"hub_id": "org/rm", "revision": "main", "commit": None, "trust_remote_code": True}


def test_provenance_json(tmp_path):
    config = validate(_default())
    stamp = provenance.stamp(ROOT)
    configfile = str(ROOT / "config" / "config.yaml")
    record = provenance.write_provenance(tmp_path / "provenance.json", config, stamp, [configfile])
    assert json.loads((tmp_path / "provenance.json").read_text()) == record
    assert record["config"] == config and record["config"]["wandb"]["mode"] == "offline"  # schema defaults in
    assert record["packages"]["torch"] and record["packages"]["transformers"] and record["packages"]["snakemake"]
    assert set(provenance.PACKAGES) == set(record["packages"])
    git = record["workflow"]
    assert re.fullmatch(r"[0-9a-f]{40}", git["commit"]) and isinstance(git["dirty"], bool)
    assert record["models"]["tiny"]["revision"] == "built locally"
    assert record["configfiles"] == [str(Path(configfile).resolve())]
    outside = provenance.git_state(tmp_path)  # not a git checkout
    assert outside["commit"] is None and outside["dirty"] is None and "not a git repository" in outside["note"]


def test_job_times_table(tmp_path):
    from laser.tables import job_times_table

    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "laser.tsv").write_text(header + "12.5\t0:00:12\t345.6\t1\t1\t1\t0\t0\t50\t11.0\n")
    (tmp_path / "tables.tsv").write_text(header + "0.5\t0:00:00\tNA\tNA\tNA\tNA\tNA\tNA\tNA\tNA\n")
    df = job_times_table([
        {"rule": "train", "wildcards": "model=tiny, method=laser", "benchmark": tmp_path / "train" / "laser.tsv"},
        {"rule": "generate", "wildcards": "model=tiny, method=base", "benchmark": tmp_path / "missing.tsv"},
        {"rule": "tables", "wildcards": "", "benchmark": tmp_path / "tables.tsv"}])
    assert df["rule"].tolist() == ["train", "tables"]  # a job without a benchmark file is left out
    assert df.iloc[0].tolist() == ["train", "model=tiny, method=laser", 12.5, 11.0, 345.6]
    assert df.iloc[1]["seconds"] == 0.5 and df.iloc[1][["cpu_seconds", "max_rss_mb"]].isna().all()
