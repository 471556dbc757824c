"""What a training run logs: one row per optimizer step in `metrics.csv` (the output contract's
column names) and, through transformers' wandb callback, one wandb run per training run
(offline by default), continued by a resumed job."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from transformers import TrainerCallback
from transformers.integrations import WandbCallback

from .io import write_text

# TRL's log keys -> the contract's column names
RENAME = {"reward": "reward_mean", "completions/mean_length": "completion_length", "loss": "loss"}


WANDB_ID_FILE = "wandb_run_id"


def wandb_settings(run_dir: str | Path) -> dict | None:
    """wandb.init's settings of a training run, or None when it does not log to wandb: the standard
    WANDB_MODE, WANDB_PROJECT, WANDB_ENTITY and WANDB_DIR, which the Snakefile sets from the `wandb`
    config section where the user has not (`laser.jobs.wandb_environment`); unset, the schema's defaults."""
    from .config import load_schema

    default = {k: v.get("default") for k, v in load_schema()["properties"]["wandb"]["properties"].items()}
    mode = os.environ.get("WANDB_MODE") or default["mode"]
    if mode == "disabled":
        return None
    return {"mode": mode, "project": os.environ.get("WANDB_PROJECT") or default["project"],
            "entity": os.environ.get("WANDB_ENTITY") or default["entity"], "dir": os.environ.get("WANDB_DIR") or str(run_dir)}


def wandb_run_id(checkpoints: str | Path) -> str:
    """The wandb run id of the run whose checkpoints are in `checkpoints`, made by its first attempt
    and kept beside its fingerprint: a resumed job continues the same wandb run, and a run that
    restarts from step 0 (`prepare_checkpoints` deleted the folder) gets a new one. Random rather
    than a hash of the fingerprint, so that a fresh rerun of the same config (another clone,
    results deleted) never appends to an earlier run."""
    import secrets

    path = Path(checkpoints) / WANDB_ID_FILE
    if path.is_file():
        return path.read_text().strip()
    run_id = secrets.token_hex(8)
    write_text(path, run_id + "\n")
    return run_id


class LaserWandb(WandbCallback):
    """transformers' wandb callback (logging unchanged), whose run is started with this training
    run's id (`wandb_run_id`, or WANDB_RUN_ID when set) and `resume="allow"` (or WANDB_RESUME), and
    finished at the end of training."""

    def __init__(self, settings: dict, *, name: str, group: str):
        super().__init__()
        self.settings, self.name, self.group = settings, name, group

    def setup(self, args, state, model, **kw):
        if state.is_world_process_zero and self._wandb.run is None:
            Path(self.settings["dir"]).mkdir(parents=True, exist_ok=True)
            self._wandb.init(id=os.environ.get("WANDB_RUN_ID") or wandb_run_id(args.output_dir),
                             resume=os.environ.get("WANDB_RESUME") or "allow", name=self.name, group=self.group,
                             **self.settings)
        super().setup(args, state, model, **kw)

    def on_train_end(self, args, state, control, **kw):
        super().on_train_end(args, state, control, **kw)
        if state.is_world_process_zero and self._wandb.run is not None:
            self._wandb.finish()


def finish_wandb(trainer, exit_code: int) -> None:
    cb = next((c for c in trainer.callback_handler.callbacks if isinstance(c, LaserWandb)), None)
    if cb is not None and cb._wandb.run is not None and trainer.is_world_process_zero():
        cb._wandb.run.finish(exit_code=exit_code)


class MetricsCSV(TrainerCallback):
    """Rewrites metrics.csv from the trainer's log history at every log (survives resumes)."""

    def __init__(self, path: str | Path, laser: bool):
        self.path, self.laser = Path(path), laser

    def on_log(self, args, state, control, logs=None, **kw):
        if state.is_world_process_zero:
            write_metrics(state.log_history, self.path, self.laser)


def _column(key: str) -> str:
    if key.startswith("eval_"):  # validation rows (training.validation)
        return "val_" + _column(key[len("eval_"):])
    return RENAME.get(key, key).replace("/", "_")


def write_metrics(history: list[dict], path: Path, laser: bool) -> None:
    """One row per optimizer step; validation values (`val_*`) join the row of their step."""
    rows = [{"step": h["step"], **{_column(k): v for k, v in h.items() if k != "step"}}
            for h in history if "reward" in h]
    df = pd.DataFrame(rows).drop_duplicates("step", keep="last")
    val = [{"step": h["step"], **{_column(k): v for k, v in h.items() if k != "step"}}
           for h in history if "eval_reward" in h]
    if val:
        df = df.merge(pd.DataFrame(val).drop_duplicates("step", keep="last"), on="step", how="left")
    if not laser:
        df["sr_mse"] = float("nan")  # contract: empty for GRPO
    front = ["step", "reward_mean", "sr_mse", "sv_f1", "sv_acc", "sv_true_acc", "sv_false_acc",
             "rs_mean_correct", "rs_mean_incorrect", "completion_length", "stage"]
    cols = [c for c in front if c in df] + sorted(c for c in df if c not in front)
    write_text(path, df[cols].to_csv(index=False))
