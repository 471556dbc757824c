# GRPO baseline, LaSeR and ablations, each from the model's base checkpoint, same seed and data.


rule train:
    input:
        model="results/models/{model}/base",
        train="results/data/train.jsonl",
        calibration=calibration_input,
        validation=validation_input,
    output:
        model=directory("results/models/{model}/{method}"),
        metrics="results/train/{model}/{method}/metrics.csv",
    params:
        job=job_settings("train"),
    log:
        "logs/train/{model}/{method}.log",
    benchmark:
        "results/benchmarks/train/{model}/{method}.tsv"
    wildcard_constraints:
        # "(?!)" matches nothing: with no methods the rule produces nothing (an empty constraint is none)
        method="|".join(METHODS_TRAINED) or "(?!)",
    threads: workflow.cores
    resources:
        gpu=LAUNCH["num_processes"] * LAUNCH["num_machines"],
        nodes=LAUNCH["num_machines"],
    conda:
        conda_env("train")
    script:
        "../scripts/train.py"
