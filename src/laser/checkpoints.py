"""A training run's checkpoints and what ties them to the run that wrote them: a killed job
resumes from its last complete checkpoint only when its fingerprint (`run_fingerprint`: settings,
training section, base model, data, seed, c_ref) is unchanged; otherwise the checkpoints are
deleted and training starts from step 0 (config/README.md, "Resuming only the same run")."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from .config import world_size
from .io import write_text

# What a run's checkpoints depend on. Keys that only say how it is run or saved are left out,
# so that a new checkpoint interval or port still resumes.
_NOT_IN_FINGERPRINT = ("save_steps", "save_total_limit")


FINGERPRINT_FILE = "run_fingerprint.json"


def run_fingerprint(job: dict, *, base_dir: str, train_records: list[dict], c_ref: float | None) -> dict:
    """Everything that determines a training run's trajectory: its resolved settings (the train job's,
    `laser.jobs.train`), the base checkpoint (a pretrained model's resolved hub commit or local
    files' digest, `laser.model.base_version`), the training data (prompts included), the seed, the
    world size and c_ref."""
    from .model import base_version

    t = {k: v for k, v in job["training"].items() if k not in _NOT_IN_FINGERPRINT}
    t["launcher"] = {"world_size": world_size(job)}
    data = hashlib.sha256(json.dumps(train_records, sort_keys=True).encode()).hexdigest()
    return {"seed": job["seed"], "settings": job["run"], "training": t, "grading": job["grading"], "c_ref": c_ref,
            "base_checkpoint": base_version(base_dir), "train_data": data}


def prepare_checkpoints(out: Path, fingerprint: dict) -> str | None:
    """The checkpoint to resume from: the last complete one in `out` if the same run wrote it
    (one a kill left half-written is deleted). Checkpoints of another run (a config edit, a new
    base model or data) are deleted and training starts from step 0, said in the job log. Call on
    the main process only."""
    from transformers.trainer_utils import get_last_checkpoint

    stamp = out / FINGERPRINT_FILE
    old = json.loads(stamp.read_text()) if stamp.is_file() else None
    if old == fingerprint:
        for partial in sorted(p for p in out.glob("checkpoint-*") if checkpoint_state(p) is None):
            print(f"deleting {partial}: a killed job left it half-written", flush=True)
            shutil.rmtree(partial)
        last = get_last_checkpoint(str(out))
        if last:
            print(f"resuming from {last} (same run)", flush=True)
        return last
    last = get_last_checkpoint(str(out)) if out.is_dir() else None
    if last or old:
        why = ("have no run fingerprint" if old is None else "were written by another run (differs in: "
               + ", ".join(sorted(k for k in fingerprint if old.get(k) != fingerprint[k])) + ")")
        print(f"checkpoints in {out} {why}; deleting them and training from step 0", flush=True)
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(stamp, json.dumps(fingerprint, indent=2, sort_keys=True) + "\n")
    return None


def checkpoint_state(checkpoint: str | Path) -> dict | None:
    """The checkpoint's trainer_state.json, or None when Trainer did not finish writing the
    checkpoint: that file is its last, and a kill while it was written leaves it unreadable."""
    checkpoint = Path(checkpoint)
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return None
    return state if checkpoint.name == f"checkpoint-{state.get('global_step')}" else None
