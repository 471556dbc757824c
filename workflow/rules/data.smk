# Data preparation: the training split and every benchmark, normalised to one schema.


rule prepare_data:
    output:
        train="results/data/train.jsonl",
        benchmarks=expand("results/data/benchmarks/{benchmark}.jsonl", benchmark=BENCHMARKS),
    params:
        settings=settings("seed", "train_data", "benchmarks", prompt="train"),
    log:
        "logs/prepare_data.log",
    benchmark:
        "results/benchmarks/prepare_data.tsv"
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/prepare_data.py"
