"""Run one training method (GRPO baseline, LaSeR or an ablation) from a model's base checkpoint.

Checkpoints go to `results/train/{model}/{method}/checkpoints/` and a killed run resumes from the
last one; the final model is saved atomically to `results/models/{model}/{method}/`; one row per
optimizer step is written to `results/train/{model}/{method}/metrics.csv` and to wandb (the `wandb`
config section: offline by default; one wandb run per training run, continued by a resumed job).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pandas as pd
from transformers import TrainerCallback
from transformers.integrations import WandbCallback

from .config import ConfigError, check_training, compute_bf16, per_device_batch, run_settings, world_size
from .grading import grade
from .io import InputError, atomic_path, write_text

# TRL's log keys -> the contract's column names
RENAME = {"reward": "reward_mean", "completions/mean_length": "completion_length", "loss": "loss"}


def check_training_config(config: dict, model: str, method: str) -> None:
    """Clear errors before training starts (named config keys); the same check runs when
    Snakemake parses the workflow (`laser.config.check_training`)."""
    try:
        check_training(config, method)
    except ConfigError as e:
        raise InputError(str(e)) from None


# What a run's checkpoints depend on. Keys that only say how it is run or saved are left out,
# so that a new checkpoint interval or port still resumes.
_NOT_IN_FINGERPRINT = ("save_steps", "save_total_limit")
FINGERPRINT_FILE = "run_fingerprint.json"


def run_fingerprint(config: dict, *, model: str, method: str, base_dir: str, train_records: list[dict],
                    c_ref: float | None) -> dict:
    """Everything that determines a training run's trajectory: its resolved settings, the base
    checkpoint (a pretrained model's resolved hub commit or local files' digest, `laser.model.base_version`),
    the training data (prompts included), the seed, the world size and c_ref."""
    from .model import base_version

    t = {k: v for k, v in config["training"].items() if k not in _NOT_IN_FINGERPRINT}
    t["launcher"] = {"world_size": world_size(config)}
    data = hashlib.sha256(json.dumps(train_records, sort_keys=True).encode()).hexdigest()
    return {"seed": config["seed"], "settings": run_settings(config, model, method), "training": t,
            "grading": config["grading"], "c_ref": c_ref, "base_checkpoint": base_version(base_dir),
            "train_data": data}


# LaserConfig's names for the LaSeR training knobs of the `laser` settings
LASER_ARGS = {"alpha": "sr_coef", "class_balanced": "class_balanced", "swa": "swa", "tau": "swa_tau",
              "swa_std_threshold": "swa_std_threshold", "warmup_reasoning_steps": "warmup_reasoning_steps",
              "warmup_sr_steps": "warmup_sr_steps"}


def prepare_checkpoints(out: Path, fingerprint: dict) -> str | None:
    """The checkpoint to resume from: the last complete one in `out` if the same run wrote it
    (one a kill left half-written is deleted). Checkpoints of another run (a config edit, a new
    base model or data) are deleted and training starts from step 0, said in the job log. Call on
    the main process only."""
    from transformers.trainer_utils import get_last_checkpoint

    stamp = out / FINGERPRINT_FILE
    old = json.loads(stamp.read_text()) if stamp.is_file() else None
    if old == fingerprint:
        for partial in sorted(p for p in out.glob("checkpoint-*") if _state(p) is None):
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


WANDB_ID_FILE = "wandb_run_id"


def wandb_settings(config: dict, run_dir: str | Path) -> dict | None:
    """wandb.init's settings of a training run from the `wandb` config section, or None when the
    run does not log to wandb. The standard WANDB_MODE, WANDB_PROJECT, WANDB_ENTITY and WANDB_DIR
    take precedence when set."""
    w = config["wandb"]
    mode = os.environ.get("WANDB_MODE") or w["mode"]
    if mode == "disabled":
        return None
    return {"mode": mode, "project": os.environ.get("WANDB_PROJECT") or w["project"],
            "entity": os.environ.get("WANDB_ENTITY") or w["entity"], "dir": os.environ.get("WANDB_DIR") or str(run_dir)}


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


def _finish_wandb(trainer, exit_code: int) -> None:
    cb = next((c for c in trainer.callback_handler.callbacks if isinstance(c, LaserWandb)), None)
    if cb is not None and cb._wandb.run is not None and trainer.is_world_process_zero():
        cb._wandb.run.finish(exit_code=exit_code)


def accuracy_reward_fn(format_gate: bool, extraction: str = "lenient"):
    """The verifier reward r_v: `grading.format_gate` and `grading.extraction` (the official
    training reward extracts as the official evaluation, without its `</answer>` cut)."""
    def accuracy(completions, answer, **_):
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        return [float(grade(t, a, format_gate=format_gate, extraction=extraction)[1])
                for t, a in zip(texts, answer)]

    return accuracy


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


def build_trainer(config: dict, *, model: str, method: str, base_dir: str, run_dir: str,
                  train_records: list[dict], calibration: str | None, val_records: list[dict] | None = None):
    """The configured LaserTrainer (GRPO when the method has laser: false), not yet trained.
    `train_records` / `val_records` get the model's training prompt; prompts longer than
    `training.max_prompt_length` tokens are dropped (counted in the log), as verl does."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .calibrate import resolve_c_ref
    from .model import check_z_c, resolve_base
    from .trainer import LaserConfig, LaserTrainer

    check_training_config(config, model, method)
    t, s = config["training"], run_settings(config, model, method)
    weights = resolve_base(base_dir)  # base_dir itself, or the files a pretrained model's base/ references
    tok = AutoTokenizer.from_pretrained(weights)
    zc_id = check_z_c(tok, config["models"][model]["z_c"], f"models.{model}.z_c")
    c_ref = resolve_c_ref(s["c_ref"], calibration, model_dir=base_dir, zc_id=zc_id, where=f"models.{model}")
    train_records = _prompts_that_fit(config, model, tok, train_records, "training", config["train_data"])
    val = t["validation"]
    if val_records is not None:  # the paper validates with the training prompt
        val_records = _prompts_that_fit(config, model, tok, val_records[:val["n_problems"]], "validation",
                                        config["benchmarks"][val["benchmark"]])
    run_dir = Path(run_dir)
    wandb_cfg = wandb_settings(config, run_dir)
    cuda = torch.cuda.is_available()
    args = LaserConfig(
        output_dir=str(run_dir / "checkpoints"),
        run_name=f"{model}-{method}",
        seed=config["seed"], data_seed=config["seed"],
        max_steps=t["max_steps"], learning_rate=t["learning_rate"], lr_scheduler_type="constant",
        weight_decay=t["weight_decay"], max_grad_norm=t["max_grad_norm"],
        per_device_train_batch_size=per_device_batch(config),
        gradient_accumulation_steps=t["gradient_accumulation_steps"],
        num_generations=t["num_generations"], max_completion_length=t["max_completion_length"],
        temperature=t["temperature"], top_p=t["top_p"], beta=t["kl_coef"], epsilon=t["clip"],
        delta=t["dual_clip"], loss_type=t["loss_type"], scale_rewards="group", mask_truncated_completions=False,
        use_vllm=t["use_vllm"], vllm_mode=t["vllm_mode"],
        vllm_importance_sampling_correction=t["vllm_importance_sampling_correction"],
        logging_steps=1, save_strategy="steps", save_steps=t["save_steps"], save_only_model=False,
        save_total_limit=t["save_total_limit"],
        eval_strategy="steps" if val_records else "no", eval_steps=val["every"],
        num_generations_eval=val["n_samples"], per_device_eval_batch_size=8 * val["n_samples"],
        report_to=["wandb"] if wandb_cfg else [],
        use_cpu=not cuda, bf16=compute_bf16(config, cuda), gradient_checkpointing=t["gradient_checkpointing"],
        vllm_gpu_memory_utilization=t["vllm_gpu_memory_utilization"],
        vllm_enable_sleep_mode=t["vllm_enable_sleep_mode"], vllm_tensor_parallel_size=t["vllm_tensor_parallel_size"],
        dataloader_num_workers=0, disable_tqdm=False,
        laser=s["laser"], zc_token_id=zc_id, beta_v=s["beta_v"], sr_loss_type=s["loss"],
        c_ref=c_ref, c_ref_mode="reference" if s["c_ref"]["source"] == "reference" else "constant",
        **{arg: s[key] for key, arg in LASER_ARGS.items() if key in s},  # GRPO: unused, defaults
    )
    if args.world_size != world_size(config):
        raise InputError(f"config key 'training.launcher': {world_size(config)} training process(es) configured, "
                         f"but this job runs {args.world_size}; start it through `laser.train.run`")
    # float32 master weights and optimizer state; bf16 only as autocast compute (args.bf16).
    # Weights stored in bf16 would round most lr-1e-6 AdamW updates away.
    policy = AutoModelForCausalLM.from_pretrained(weights, dtype=torch.float32)
    if args.gradient_checkpointing:  # now, not first in train(): the model is what the memory plan assumes
        policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs=args.gradient_checkpointing_kwargs)
    ref_dtype = torch.bfloat16 if args.bf16 else torch.float32  # no grads: compute precision is enough
    ref = AutoModelForCausalLM.from_pretrained(weights, dtype=ref_dtype) if args.c_ref_mode == "reference" else None
    def rows(records):
        return Dataset.from_list([{"prompt": r["messages"], "answer": r["answer"]} for r in records])

    trainer = LaserTrainer(model=policy, args=args, train_dataset=rows(train_records), processing_class=tok,
                           eval_dataset=rows(val_records) if val_records else None,
                           reward_funcs=[accuracy_reward_fn(config["grading"]["format_gate"], config["grading"]["extraction"])],
                           args_laser_ref_model=ref,
                           callbacks=[MetricsCSV(run_dir / "metrics.csv", s["laser"])])
    if wandb_cfg:  # transformers' wandb callback, started as this run's wandb run
        trainer.remove_callback(WandbCallback)
        trainer.add_callback(LaserWandb(wandb_cfg, name=f"{model}-{method}", group=model))
    return trainer


def _prompts_that_fit(config: dict, model: str, tok, records: list[dict], what: str, spec: dict) -> list[dict]:
    """`records` with the model's training prompt (`spec`: their dataset's config), overlong ones dropped."""
    from .config import prompt_settings
    from .prompts import filter_overlong, with_prompt

    limit = config["training"]["max_prompt_length"]
    records = with_prompt(records, spec, prompt_settings(config, model)["train_suffix"])
    kept, dropped = filter_overlong(records, tok, limit)
    if dropped:
        print(f"{what}: dropped {dropped} of {len(records)} prompts longer than training.max_prompt_length = "
              f"{limit} tokens", flush=True)
    if not kept:
        raise InputError(f"config key 'training.max_prompt_length': every {what} prompt is longer than {limit} tokens")
    return kept


def train(config: dict, *, model: str, method: str, base_dir: str, out_dir: str, run_dir: str,
          train_records: list[dict], calibration: str | None, stop_after: int | None = None,
          val_records: list[dict] | None = None) -> None:
    """Train one method, resuming from the last checkpoint of the same run (`run_fingerprint`). Under
    `accelerate launch` every process runs this; the checkpoint is gathered by all of them
    (FSDP / ZeRO-3 need that) into a temporary folder that the main process moves into place."""
    from transformers.trainer_utils import get_last_checkpoint

    trainer = build_trainer(config, model=model, method=method, base_dir=base_dir, run_dir=run_dir,
                            train_records=train_records, calibration=calibration, val_records=val_records)
    if stop_after is not None:  # tests: simulate a job killed after this many steps
        trainer.add_callback(_StopAfter(stop_after))
    out = Path(trainer.args.output_dir)
    fingerprint = run_fingerprint(config, model=model, method=method, base_dir=base_dir,
                                  train_records=train_records + (val_records or []), c_ref=trainer.args.c_ref)
    if trainer.is_world_process_zero():
        prepare_checkpoints(out, fingerprint)
    trainer.accelerator.wait_for_everyone()
    last = get_last_checkpoint(str(out)) if (out / FINGERPRINT_FILE).is_file() else None
    if last and _state(last)["global_step"] >= trainer.args.max_steps:
        # the run had ended (killed while publishing): resuming would train one step too many
        from transformers.trainer_callback import TrainerState

        trainer._load_from_checkpoint(last)
        trainer.state = TrainerState.load_from_json(str(Path(last) / "trainer_state.json"))
        if trainer.is_world_process_zero():
            write_metrics(trainer.state.log_history, Path(run_dir) / "metrics.csv", trainer.args.laser)
    else:
        try:
            trainer.train(resume_from_checkpoint=last)
        except BaseException:
            _finish_wandb(trainer, exit_code=1)  # a later attempt in this process starts its own run
            raise
    out_dir = Path(out_dir)
    saving = out_dir.with_name(f".{out_dir.name}.saving")
    if trainer.is_world_process_zero():
        shutil.rmtree(saving, ignore_errors=True)  # left by a killed job
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(saving))
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        trainer.processing_class.save_pretrained(str(saving))
        with atomic_path(out_dir, is_dir=True) as tmp:
            tmp.rmdir()
            saving.rename(tmp)
    trainer.accelerator.wait_for_everyone()


def _state(checkpoint: str | Path) -> dict | None:
    """The checkpoint's trainer_state.json, or None when Trainer did not finish writing the
    checkpoint: that file is its last, and a kill while it was written leaves it unreadable."""
    checkpoint = Path(checkpoint)
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return None
    return state if checkpoint.name == f"checkpoint-{state.get('global_step')}" else None


# ---------------------------------------------------------------- multi-process launch

def launch_command(config: dict, spec_path: str) -> list[str] | None:
    """The `accelerate launch` command that runs this training job on several processes or
    machines (training.launcher), or None to train in this process (one process, no
    accelerate config). Without an accelerate config, several processes are started as
    accelerate's multi-GPU launch (torch.distributed); on a machine without GPUs the same launch
    gives `MULTI_CPU` processes (gloo), because the trainer asks for the CPU. Multi-node jobs are
    started with one `srun` task per node inside the SLURM allocation; each task finds its rank
    and the main node from SLURM's variables."""
    la = config["training"]["launcher"]
    world = world_size(config)
    if world == 1 and not la["accelerate_config"]:
        return None
    cmd = ["accelerate", "launch", "--num_processes", str(world),
           "--num_machines", str(la["num_machines"]), "--main_process_port", str(la["main_process_port"])]
    if la["accelerate_config"]:
        cmd += ["--config_file", la["accelerate_config"]]
    elif world > 1:
        cmd += ["--multi_gpu"]
    tail = ["-m", "laser.train", "--spec", spec_path]
    if la["num_machines"] == 1:
        return cmd + tail
    import shlex

    inner = " ".join(map(shlex.quote, cmd)) + (
        ' --machine_rank "$SLURM_NODEID"'
        ' --main_process_ip "$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)" '
    ) + " ".join(map(shlex.quote, tail))
    return ["srun", "--nodes", str(la["num_machines"]), "--ntasks-per-node", "1", "bash", "-c", inner]


def run(config: dict, *, model: str, method: str, base_dir: str, out_dir: str, run_dir: str, train_path: str,
        calibration: str | None, val_path: str | None = None) -> None:
    """Train in this process, or through `accelerate launch` when the launcher asks for more."""
    import subprocess
    import sys

    from .io import read_jsonl, write_json

    check_training_config(config, model, method)  # before any process starts
    spec = {"config": config, "model": model, "method": method, "base_dir": base_dir, "out_dir": out_dir,
            "run_dir": run_dir, "train_path": train_path, "calibration": calibration, "val_path": val_path}
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    spec_path = str(Path(run_dir) / "launch_spec.json")
    cmd = launch_command(config, spec_path)
    if cmd is None:
        train(config, model=model, method=method, base_dir=base_dir, out_dir=out_dir, run_dir=run_dir,
              train_records=read_jsonl(train_path), calibration=calibration,
              val_records=read_jsonl(val_path) if val_path else None)
        return
    write_json(spec_path, spec)
    print("launching:", " ".join(cmd), flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                         os.environ.get("PYTHONPATH", "")])}
    subprocess.run(cmd, check=True, env=env, stdout=sys.stdout, stderr=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    """Entry point of each process started by `accelerate launch` (see `run`)."""
    import argparse

    from .io import read_json, read_jsonl

    ap = argparse.ArgumentParser(prog="python -m laser.train")
    ap.add_argument("--spec", required=True, help="launch_spec.json written by laser.train.run")
    spec = read_json(ap.parse_args(argv).spec)
    train(spec["config"], model=spec["model"], method=spec["method"], base_dir=spec["base_dir"],
          out_dir=spec["out_dir"], run_dir=spec["run_dir"], train_records=read_jsonl(spec["train_path"]),
          calibration=spec["calibration"], val_records=read_jsonl(spec["val_path"]) if spec.get("val_path") else None)


class _StopAfter(TrainerCallback):
    def __init__(self, steps: int):
        self.steps = steps

    def on_step_end(self, args, state, control, **kw):
        if state.global_step >= self.steps:
            raise KeyboardInterrupt(f"simulated kill after step {state.global_step}")


if __name__ == "__main__":
    main()
