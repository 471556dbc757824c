# Shared helpers for the rules.

from snakemake_interface_executor_plugins.settings import DeploymentMethod


def conda_env(name):
    """A rule's conda environment under --use-conda, for its `conda:` (relative to this folder):
    workflow/envs/analysis.yaml, or for the environments with torch and vLLM the config's
    `conda_flavour` (train-cpu.yaml or train-gpu.yaml, ...). Chosen once, when the workflow is parsed."""
    return f"../envs/{name}-{config['conda_flavour']}.yaml" if name in ("train", "vllm") else f"../envs/{name}.yaml"


# the cpu flavour's training environment has no vLLM (TRL's vLLM rollouts are for GPU configs)
if (DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method and config["conda_flavour"] == "cpu"
        and METHODS_TRAINED and config["training"]["use_vllm"]):
    raise WorkflowError("config: config key 'training.use_vllm': true needs 'conda_flavour: gpu' under --use-conda "
                        "(workflow/envs/train-cpu.yaml has no vLLM)")


# Small aggregation rules run on the submit host, never as cluster jobs (--executor slurm);
# provenance there also sees the checkout and the Hugging Face cache the run was started from.
localrules:
    tables,
    figures,
    job_times,
    provenance,


def job_settings(rule):
    """A rule's `params.job`: what its jobs read of the config, resolved by `laser.jobs.<rule>` (called
    with the job's wildcards). The job's script hands it to the library and reads no config, and
    Snakemake's params trigger reruns a job exactly when its settings change."""
    resolve = getattr(laser.jobs, rule)
    return lambda wc: resolve(config, **dict(wc.items()))


def c_ref_source(wc):
    """Where a run's c_ref comes from (`base` is scored with the laser and model settings)."""
    return laser.config.run_settings(config, wc.model, wc.method)["c_ref"]["source"]


def warmup_input(wc):
    """The training problems, for a built model's SFT warm-up; a pretrained model reads none."""
    return "results/data/train.jsonl" if config["models"][wc.model]["source"] == "build" else []


def verifier_gpus(wc):
    """GPUs of a verifier's job (a 72B reward model is spread over them)."""
    return config["verifiers"][wc.verifier]["gpus"]


def calibration_input(wc):
    """The calibration file a run reads (training or scoring), if its c_ref is calibrated."""
    return f"results/calibration/{wc.model}.json" if c_ref_source(wc) == "calibrated" else []


def validation_input(wc):
    """The benchmark validated on during training (training.validation), if any."""
    name = config["training"]["validation"]["benchmark"]
    return f"results/data/benchmarks/{name}.jsonl" if name else []


def reference_input(wc):
    """The reference (base) model, scored beside the policy in reference-forward mode."""
    return f"results/models/{wc.model}/base" if c_ref_source(wc) == "reference" else []


def judge_outputs():
    """Generative-judge files, when that judge is on."""
    if not config["judge"]["generative"]:
        return []
    return expand("results/judge/{model}/{method}/{benchmark}.jsonl", model=MODELS, method=METHODS,
                  benchmark=BENCHMARKS)


def verifier_outputs():
    """External verifiers' files: every configured verifier on the methods it judges."""
    return [
        path
        for name in config["verifiers"]
        for path in expand(
            "results/verifiers/{verifier}/{model}/{method}/{benchmark}.jsonl",
            verifier=name,
            model=MODELS,
            method=laser.config.verifier_methods(config, name),
            benchmark=BENCHMARKS,
        )
    ]


def analysis_inputs():
    """Everything the tables and figures read."""
    return dict(
        generations=expand(
            "results/generations/{model}/{method}/{benchmark}.jsonl",
            model=MODELS,
            method=METHODS,
            benchmark=BENCHMARKS,
        ),
        # scoring.score (r_s, or p_zc for loss: sft) labels the last-token judge's table rows
        metadata=expand("results/generations/{model}/{method}/metadata.json", model=MODELS, method=METHODS),
        judge=judge_outputs(),
        verifiers=verifier_outputs(),
        calibration=expand("results/calibration/{model}.json", model=CALIBRATED),
        train_metrics=expand(
            "results/train/{model}/{method}/metrics.csv", model=MODELS, method=METHODS_TRAINED
        ),
    )


def job_benchmarks():
    """Every job upstream of the job-times table (rule `job_times`), with its benchmark file. The
    table's own job and `provenance` write theirs after it runs, so they are not in it. Called
    when report.smk is parsed, after the rules it names are defined."""
    calibrated = [m for m in MODELS if f"results/calibration/{m}.json" in analysis_inputs()["calibration"]]
    jobs = [("prepare_data", {}), *[("base_model", dict(model=m)) for m in MODELS],
            *[("calibrate", dict(model=m)) for m in calibrated],
            *[("train", dict(model=m, method=x)) for m in MODELS for x in METHODS_TRAINED],
            *[("generate", dict(model=m, method=x)) for m in MODELS for x in METHODS],
            *[("verify", dict(verifier=v, model=m, method=x)) for v in config["verifiers"] for m in MODELS
              for x in laser.config.verifier_methods(config, v)],
            ("tables", {}), ("figures", {})]
    return [dict(rule=r, wildcards=", ".join(f"{k}={v}" for k, v in wc.items()),
                 benchmark=str(getattr(rules, r).benchmark).format(**wc)) for r, wc in jobs]

