"""What each job reads of the config, resolved once, when Snakemake parses the workflow.

Every rule passes its job's settings as `params.job` (workflow/rules/common.smk, `job_settings`),
so Snakemake reruns a job exactly when what it reads changes (a prompt edit regenerates and
retrains only the runs whose prompt it is), and the job's script hands them to one library call:
no job reads the config itself. The settings are plain JSON (params are compared between runs),
and each function here is the one place that says which keys a job depends on.

How a run is logged (the `wandb` section) is not a setting of any job: the Snakefile exports it
as the standard WANDB_* variables (`wandb_environment`), so that switching wandb on reruns nothing.
"""

from __future__ import annotations

from typing import Any

from .config import eval_suffix, run_settings, train_suffix


def _model(config: dict, model: str) -> dict:
    """What a job that loads the model's base checkpoint reads of its section: everything else
    (architecture, SFT, path) made that checkpoint, and the base_model job reads it
    (`base_model`); its `prompt` and `laser` overrides enter the jobs resolved."""
    return {"name": model, "z_c": config["models"][model]["z_c"]}


# what makes the base checkpoint, per source: a schema default added to the other source's keys
# (the SFT of a built model) reruns no pretrained model's jobs
_BASE_KEYS = {"build": ("source", "z_c", "architecture", "sft"), "pretrained": ("source", "z_c", "path", "revision")}


def train_prompt(config: dict, model: str) -> dict:
    """How `model`'s training prompts are built from the bare training problems
    (`laser.prompts.with_prompt`): its train suffix, or the dataset's own chat prompts."""
    return {"suffix": train_suffix(config, model), "messages_key": config["train_data"]["messages_key"]}


def eval_prompt(config: dict, model: str, method: str, benchmark: str) -> dict:
    """How the evaluation prompts of checkpoint (`model`, `method`) on `benchmark` are built."""
    return {"suffix": eval_suffix(config, model, method), "messages_key": config["benchmarks"][benchmark]["messages_key"]}


def prepare_data(config: dict) -> dict[str, Any]:
    """Bare problems only: the prompts are the later jobs' own."""
    return {"seed": config["seed"], "train_data": config.get("train_data"), "benchmarks": config["benchmarks"]}


def base_model(config: dict, model: str) -> dict[str, Any]:
    """A built model is warmed up on the training problems under its training prompt (and taught the
    judge template); a pretrained one is only referenced."""
    spec = config["models"][model]
    job = {"model": {"name": model, **{k: spec[k] for k in _BASE_KEYS[spec["source"]] if k in spec}},
           "seed": config["seed"]}
    if spec["source"] == "build":
        job.update(prompt=train_prompt(config, model), judge_template=config["judge"]["template"])
    return job


def calibrate(config: dict, model: str) -> dict[str, Any]:
    """c_ref is the training-time constant: sampled under the training prompt, as long as training samples."""
    return {"model": _model(config, model), "seed": config["seed"], "n_problems": config["calibration"]["n_problems"],
            "generation": config["generation"], "max_tokens": config["training"]["max_completion_length"],
            "prompt": train_prompt(config, model)}


def train(config: dict, model: str, method: str) -> dict[str, Any]:
    """One training run: the training section, the run's LaSeR settings, its prompts and the reward's grading."""
    t = config["training"]
    val = t["validation"]["benchmark"]
    return {"model": _model(config, model), "method": method, "seed": config["seed"], "training": t,
            "run": run_settings(config, model, method), "grading": config["grading"],
            "prompt": train_prompt(config, model),
            # the paper validates with the training prompt
            "validation_prompt": None if val is None else {"suffix": train_suffix(config, model),
                                                           "messages_key": config["benchmarks"][val]["messages_key"]}}


def generate(config: dict, model: str, method: str) -> dict[str, Any]:
    """Sampling, last-token scoring and the prompted judge of one checkpoint on every benchmark."""
    trained_here = method != "base" or config["models"][model]["source"] == "build"
    own_prompts = "train_data" in config and not config["train_data"]["messages_key"]
    return {"model": _model(config, model), "method": method, "run": run_settings(config, model, method),
            "generation": config["generation"], "extraction": config["grading"]["extraction"],
            "route": config["scoring"]["route"], "judge": config["judge"],
            "benchmarks": {name: {"n_samples": spec["n_samples"], "prompt": eval_prompt(config, model, method, name)}
                           for name, spec in config["benchmarks"].items()},
            # recorded with the generations (the prompts table): the suffix this checkpoint was trained
            # under, null when the data brought its own chat prompts or the workflow did not train it
            "train_suffix": train_suffix(config, model) if trained_here and own_prompts else None}


def verify(config: dict, verifier: str, **checkpoint) -> dict[str, Any]:
    """An external verifier's section; the checkpoint it scores (wildcards model, method) changes none of it."""
    return config["verifiers"][verifier]


def tables(config: dict) -> dict[str, Any]:
    return {"threshold": config["scoring"]["threshold"], **config["analysis"]}


def figures(config: dict) -> dict[str, Any]:
    return {}  # drawn from the runs and the tables, with no setting of their own


def provenance(config: dict) -> dict[str, Any]:
    return config  # all of it is recorded


def wandb_environment(config: dict) -> dict[str, str]:
    """The `wandb` section as the WANDB_* variables wandb reads; set only where the user has not
    set them (the variables win, as wandb's own documentation says)."""
    w = config["wandb"]
    values = {"WANDB_MODE": w["mode"], "WANDB_PROJECT": w["project"], "WANDB_ENTITY": w["entity"]}
    return {k: str(v) for k, v in values.items() if v is not None}
