"""Train one method (GRPO baseline, LaSeR or an ablation) from a model's base checkpoint: the
config turned into TRL's arguments (`build_trainer`), the training prompts, the verifier reward,
and the run (`train`): checkpoints under `results/train/{model}/{method}/checkpoints/`, resumed
by a killed job when the same run wrote them (`laser.checkpoints`), the final model saved
atomically to `results/models/{model}/{method}/`, metrics and wandb (`laser.trainlog`). Several
processes or machines: `laser.launch`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from transformers.integrations import WandbCallback

from .checkpoints import FINGERPRINT_FILE, checkpoint_state, prepare_checkpoints, run_fingerprint
from .config import compute_bf16, per_device_batch, world_size
from .grading import grade
from .io import InputError, atomic_path
from .trainlog import LaserWandb, MetricsCSV, finish_wandb, wandb_settings, write_metrics


# LaserConfig's names for the LaSeR training knobs of the `laser` settings
LASER_ARGS = {"alpha": "sr_coef", "class_balanced": "class_balanced", "swa": "swa", "tau": "swa_tau",
              "swa_std_threshold": "swa_std_threshold", "warmup_reasoning_steps": "warmup_reasoning_steps",
              "warmup_sr_steps": "warmup_sr_steps"}


def accuracy_reward_fn(format_gate: bool, extraction: str = "lenient"):
    """The verifier reward r_v: `grading.format_gate` and `grading.extraction` (the official
    training reward extracts as the official evaluation, without its `</answer>` cut)."""
    def accuracy(completions, answer, **_):
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        return [float(grade(t, a, format_gate=format_gate, extraction=extraction)[1])
                for t, a in zip(texts, answer)]

    return accuracy


def laser_config(job: dict, *, zc_id: int, c_ref: float | None, cuda: bool, **overrides):
    """TRL's and LaSeR's arguments (`LaserConfig`) of one train job (`laser.jobs.train`): the training
    section and the run's LaSeR settings; `overrides` replace any of them (the run's output folder,
    evaluation and logging, which `build_trainer` adds; a benchmark's batch layout)."""
    from .trainer import LaserConfig

    t, s = job["training"], job["run"]
    kwargs = dict(
        seed=job["seed"], data_seed=job["seed"],
        max_steps=t["max_steps"], learning_rate=t["learning_rate"], lr_scheduler_type="constant",
        weight_decay=t["weight_decay"], max_grad_norm=t["max_grad_norm"],
        per_device_train_batch_size=per_device_batch(job),
        gradient_accumulation_steps=t["gradient_accumulation_steps"],
        num_generations=t["num_generations"], max_completion_length=t["max_completion_length"],
        temperature=t["temperature"], top_p=t["top_p"], beta=t["kl_coef"], epsilon=t["clip"],
        delta=t["dual_clip"], loss_type=t["loss_type"], scale_rewards="group", mask_truncated_completions=False,
        use_vllm=t["use_vllm"], vllm_mode=t["vllm_mode"],
        vllm_importance_sampling_correction=t["vllm_importance_sampling_correction"],
        logging_steps=1, save_strategy="steps", save_steps=t["save_steps"], save_only_model=False,
        save_total_limit=t["save_total_limit"],
        use_cpu=not cuda, bf16=compute_bf16(job, cuda), gradient_checkpointing=t["gradient_checkpointing"],
        vllm_gpu_memory_utilization=t["vllm_gpu_memory_utilization"],
        vllm_enable_sleep_mode=t["vllm_enable_sleep_mode"], vllm_tensor_parallel_size=t["vllm_tensor_parallel_size"],
        dataloader_num_workers=0, disable_tqdm=False,
        laser=s["laser"], zc_token_id=zc_id, beta_v=s["beta_v"], sr_loss_type=s["loss"],
        c_ref=c_ref, c_ref_mode="reference" if s["c_ref"]["source"] == "reference" else "constant",
        **{arg: s[key] for key, arg in LASER_ARGS.items() if key in s},  # GRPO: unused, defaults
    )
    return LaserConfig(**{**kwargs, **overrides})


def build_trainer(job: dict, *, base_dir: str, run_dir: str, train_records: list[dict], calibration: str | None,
                  val_records: list[dict] | None = None):
    """The configured LaserTrainer (GRPO when the run has laser: false) of one train job (its
    settings: `laser.jobs.train`), not yet trained. `train_records` / `val_records` (bare problems)
    get the model's training prompt; prompts longer than `training.max_prompt_length` tokens are
    dropped (counted in the log), as verl does."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .calibrate import resolve_c_ref
    from .model import check_z_c, resolve_base
    from .trainer import LaserTrainer

    model, method = job["model"]["name"], job["method"]
    t, s = job["training"], job["run"]
    weights = resolve_base(base_dir)  # base_dir itself, or the files a pretrained model's base/ references
    tok = AutoTokenizer.from_pretrained(weights)
    zc_id = check_z_c(tok, job["model"]["z_c"], f"models.{model}.z_c")
    c_ref = resolve_c_ref(s["c_ref"], calibration, model_dir=base_dir, zc_id=zc_id, where=f"models.{model}")
    limit = t["max_prompt_length"]
    train_records = _prompts_that_fit(train_records, job["prompt"], tok, limit, "training")
    val = t["validation"]
    if val_records is not None:
        val_records = _prompts_that_fit(val_records[:val["n_problems"]], job["validation_prompt"], tok, limit,
                                        "validation")
    run_dir = Path(run_dir)
    wandb_cfg = wandb_settings(run_dir)
    args = laser_config(
        job, zc_id=zc_id, c_ref=c_ref, cuda=torch.cuda.is_available(), output_dir=str(run_dir / "checkpoints"),
        run_name=f"{model}-{method}", eval_strategy="steps" if val_records else "no", eval_steps=val["every"],
        num_generations_eval=val["n_samples"], per_device_eval_batch_size=8 * val["n_samples"],
        report_to=["wandb"] if wandb_cfg else [])
    if args.world_size != world_size(job):
        raise InputError(f"config key 'training.launcher': {world_size(job)} training process(es) configured, "
                         f"but this job runs {args.world_size}; start it through `laser.launch.run`")
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
                           reward_funcs=[accuracy_reward_fn(job["grading"]["format_gate"], job["grading"]["extraction"])],
                           args_laser_ref_model=ref,
                           callbacks=[MetricsCSV(run_dir / "metrics.csv", s["laser"])])
    if wandb_cfg:  # transformers' wandb callback, started as this run's wandb run
        trainer.remove_callback(WandbCallback)
        trainer.add_callback(LaserWandb(wandb_cfg, name=f"{model}-{method}", group=model))
    return trainer


def _prompts_that_fit(records: list[dict], prompt: dict, tok, limit: int, what: str) -> list[dict]:
    """`records` with the model's training prompt, those over `limit` tokens dropped."""
    from .prompts import filter_overlong, with_prompt

    records = with_prompt(records, prompt)
    kept, dropped = filter_overlong(records, tok, limit)
    if dropped:
        print(f"{what}: dropped {dropped} of {len(records)} prompts longer than training.max_prompt_length = "
              f"{limit} tokens", flush=True)
    if not kept:
        raise InputError(f"config key 'training.max_prompt_length': every {what} prompt is longer than {limit} tokens")
    return kept


def train(job: dict, *, base_dir: str, out_dir: str, run_dir: str, train_records: list[dict],
          calibration: str | None, val_records: list[dict] | None = None, callbacks: list | None = None) -> None:
    """Train one run (its settings: `laser.jobs.train`), resuming from the last checkpoint of the same
    run (`run_fingerprint`). Under `accelerate launch` every process runs this; the checkpoint is
    gathered by all of them (FSDP / ZeRO-3 need that) into a temporary folder that the main process
    moves into place. `callbacks`: further TrainerCallbacks (a caller's own logging or stopping rule)."""
    from transformers.trainer_utils import get_last_checkpoint

    trainer = build_trainer(job, base_dir=base_dir, run_dir=run_dir, train_records=train_records,
                            calibration=calibration, val_records=val_records)
    for callback in callbacks or []:
        trainer.add_callback(callback)
    out = Path(trainer.args.output_dir)
    fingerprint = run_fingerprint(job, base_dir=base_dir, train_records=train_records + (val_records or []),
                                  c_ref=trainer.args.c_ref)
    if trainer.is_world_process_zero():
        prepare_checkpoints(out, fingerprint)
    trainer.accelerator.wait_for_everyone()
    last = get_last_checkpoint(str(out)) if (out / FINGERPRINT_FILE).is_file() else None
    if last and checkpoint_state(last)["global_step"] >= trainer.args.max_steps:
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
            finish_wandb(trainer, exit_code=1)  # a later attempt in this process starts its own run
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
