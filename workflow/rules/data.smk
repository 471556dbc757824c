# Data preparation: the training split and every benchmark, normalised to one schema.


rule prepare_data:
    output:
        # no training file for an evaluation-only config (no train_data)
        train="results/data/train.jsonl" if "train_data" in config else [],
        benchmarks=expand("results/data/benchmarks/{benchmark}.jsonl", benchmark=BENCHMARKS),
    params:
        job=job_settings("prepare_data"),  # bare problems: the prompts are the later jobs' own
    log:
        "logs/prepare_data.log",
    benchmark:
        "results/benchmarks/prepare_data.tsv"
    conda:
        conda_env("analysis")
    script:
        "../scripts/prepare_data.py"
