"""A pretrained model's base/ references its files instead of copying them: reference.json names
the hub id and the commit it resolved to (or a local directory and the digest of its files), and
every loader reads the model from there (the `hub` fixture, conftest.py: an offline cache)."""

import json
import os
import shutil

import pytest
import torch

from laser import tiny
from laser.io import InputError, dir_digest

COMMIT, OTHER = "c" * 40, "d" * 40
SPEC = {"source": "pretrained", "path": "org/tiny", "z_c": tiny.ZC}


def _weights(path):
    from safetensors.torch import load_file

    return load_file(path / "model.safetensors")


def _scale(path, factor):
    """Edit a checkpoint's weights in place (a new commit, or an edited local directory)."""
    from safetensors.torch import save_file

    save_file({k: v * factor for k, v in _weights(path).items()}, path / "model.safetensors", metadata={"format": "pt"})


def test_hub_model_is_referenced_at_the_commit_it_resolved_to(hub, tiny_checkpoint, tmp_path):
    from laser.checks import loaded_facts
    from laser.generation import load_model, load_tokenizer
    from laser.model import base_version, make_base, read_reference, resolve_base

    snapshot, ref = hub
    shutil.copytree(tiny_checkpoint, snapshot("org/tiny", COMMIT))
    ref("org/tiny", "main", COMMIT)
    base = tmp_path / "base"
    make_base(SPEC, [], base, seed=0, name="m")
    assert os.listdir(base) == ["reference.json"]  # no copy of the weights
    reference = read_reference(base)
    assert {k: reference[k] for k in ("source", "path", "revision", "requested_revision")} == \
        {"source": "hub", "path": "org/tiny", "revision": COMMIT, "requested_revision": None}
    assert {"config.json", "model.safetensors"} <= set(reference["files"])
    assert resolve_base(base) == str(snapshot("org/tiny", COMMIT))
    assert base_version(base) == f"org/tiny@{COMMIT}"

    # main moves on to a commit with other weights: base/ still loads the commit it recorded
    shutil.copytree(tiny_checkpoint, snapshot("org/tiny", OTHER))
    _scale(snapshot("org/tiny", OTHER), 2.0)
    ref("org/tiny", "main", OTHER)
    model = load_model(str(base))
    want = _weights(tiny_checkpoint)
    assert all(torch.equal(p, want[n]) for n, p in model.state_dict().items() if n in want)
    zc_id = tiny.build_tokenizer().convert_tokens_to_ids(tiny.ZC)
    assert load_tokenizer(str(base)).convert_tokens_to_ids(tiny.ZC) == zc_id
    assert loaded_facts(str(base)).context == 256
    # rule base_model rerun (a revision edit, or --forcerun): the new commit, another training fingerprint
    make_base(SPEC, [], base, seed=0, name="m")
    assert resolve_base(base) == str(snapshot("org/tiny", OTHER)) and base_version(base) == f"org/tiny@{OTHER}"

    # the cache lost a file of the recorded commit and the hub cannot be reached: one line naming the reference
    (snapshot("org/tiny", OTHER) / "model.safetensors").unlink()
    with pytest.raises(InputError, match=rf"base/reference.json: org/tiny at commit {OTHER} is not \(completely\) "
                                         r"in the Hugging Face cache .*model.safetensors"):
        resolve_base(base)


def test_laser_score_reads_a_referenced_model(hub, tiny_checkpoint, tmp_path):
    """`laser-score --model results/models/<name>/base` scores with the referenced files."""
    from laser.model import make_base
    from laser.scoring import main

    snapshot, ref = hub
    shutil.copytree(tiny_checkpoint, snapshot("org/tiny", COMMIT))
    make_base({**SPEC, "revision": COMMIT}, [], tmp_path / "base", seed=0, name="m")
    rows = tmp_path / "in.jsonl"
    rows.write_text(json.dumps({"problem": "1+1?", "answer": "2", "responses": ["\\boxed{2}", "3"]}) + "\n")
    scores = []
    for model in (tmp_path / "base", snapshot("org/tiny", COMMIT)):
        out = tmp_path / f"{model.name}.jsonl"
        assert main(["--model", str(model), "--input", str(rows), "--output", str(out), "--z-c", tiny.ZC,
                     "--c-ref", "-5", "--backend", "transformers", "--dtype", "float32"]) == 0
        scores.append(json.loads(out.read_text())["zc_logprobs"])
    assert scores[0] == scores[1] and len(scores[0]) == 2


def test_local_directory_is_referenced_and_its_files_checked(tiny_checkpoint, tmp_path):
    from laser.model import base_version, make_base, read_reference, resolve_base

    local = shutil.copytree(tiny_checkpoint, tmp_path / "local")
    base = tmp_path / "base"
    make_base({**SPEC, "path": str(local)}, [], base, seed=0, name="m")
    assert os.listdir(base) == ["reference.json"]
    reference = read_reference(base)
    assert (reference["source"], reference["path"]) == ("local", str(local.resolve()))
    assert reference["revision"] == base_version(base) == "sha256:" + dir_digest(local)
    assert resolve_base(base) == str(local.resolve())

    os.utime(local / "config.json", ns=(1, 1))  # new file times, same contents: the digest decides, still valid
    assert resolve_base(base) == str(local.resolve())
    _scale(local, 1.01)
    for check in (resolve_base, base_version):  # every load, and the training fingerprint
        with pytest.raises(InputError, match=rf"base/reference.json: the files of {local} changed since rule "
                                             rf"base_model recorded them .*\(snakemake --forcerun {base}\)"):
            check(base)
    make_base({**SPEC, "path": str(local)}, [], base, seed=0, name="m")  # what --forcerun does
    assert base_version(base) == "sha256:" + dir_digest(local) != reference["revision"]
    shutil.rmtree(local)
    with pytest.raises(InputError, match=f"the local model directory {local} is gone"):
        resolve_base(base)


def test_built_and_trained_checkpoints_are_loaded_as_they_are(tiny_checkpoint):
    from laser.model import base_version, read_reference, resolve_base

    assert read_reference(tiny_checkpoint) is None
    assert resolve_base(tiny_checkpoint) == str(tiny_checkpoint)
    assert base_version(tiny_checkpoint) == dir_digest(tiny_checkpoint)


def test_a_broken_reference_names_its_file(tmp_path):
    from laser.model import resolve_base

    (tmp_path / "reference.json").write_text(json.dumps({"source": "hub", "path": "org/tiny"}))
    with pytest.raises(InputError, match=r"reference.json: not a base-model reference .*rerun rule base_model"):
        resolve_base(tmp_path)


def test_provenance_records_what_the_jobs_loaded(hub, tiny_checkpoint, tmp_path, monkeypatch):
    from laser.model import make_base
    from laser.provenance import sources

    snapshot, ref = hub
    shutil.copytree(tiny_checkpoint, snapshot("org/tiny", COMMIT))
    ref("org/tiny", "main", COMMIT)
    monkeypatch.chdir(tmp_path)
    config = {"models": {"m": SPEC}, "benchmarks": {}}
    assert "loaded" not in sources(config)["models"]["m"]  # before rule base_model ran
    make_base(SPEC, [], "results/models/m/base", seed=0, name="m")
    ref("org/tiny", "main", OTHER)  # main moved on since: the cache now says OTHER, the jobs used COMMIT
    model = sources(config)["models"]["m"]
    assert (model["commit"], model["loaded"]) == (OTHER, {"source": "hub", "path": "org/tiny", "revision": COMMIT})
