# Shared helpers for the rules.


# Small aggregation rules run on the submit host, never as cluster jobs (--executor slurm).
localrules:
    tables,
    figures,


def c_ref_source(wc):
    """Where a run's c_ref comes from (`base` is scored with the laser and model settings)."""
    return laser.config.run_settings(config, wc.model, wc.method)["c_ref"]["source"]


def calibration_input(wc):
    """The calibration file a run reads (training or scoring), if its c_ref is calibrated."""
    return f"results/calibration/{wc.model}.json" if c_ref_source(wc) == "calibrated" else []


def reference_input(wc):
    """The reference (base) model, scored beside the policy in reference-forward mode."""
    return f"results/models/{wc.model}/base" if c_ref_source(wc) == "reference" else []


def judge_outputs():
    """Generative-judge files, when that judge is on."""
    if not config["judge"]["generative"]:
        return []
    return expand("results/judge/{model}/{method}/{benchmark}.jsonl", model=MODELS, method=METHODS,
                  benchmark=BENCHMARKS)


def analysis_inputs():
    """Everything the tables and figures read."""
    return dict(
        generations=expand(
            "results/generations/{model}/{method}/{benchmark}.jsonl",
            model=MODELS,
            method=METHODS,
            benchmark=BENCHMARKS,
        ),
        judge=judge_outputs(),
        calibration=expand("results/calibration/{model}.json", model=MODELS),
        train_metrics=expand(
            "results/train/{model}/{method}/metrics.csv", model=MODELS, method=METHODS_TRAINED
        ),
    )
