# The starting checkpoint of every run: built and SFT-warmed (embedded default) or
# loaded from the hub / a local directory (paper configs).


rule base_model:
    input:
        train="results/data/train.jsonl",
    output:
        directory("results/models/{model}/base"),
    params:
        settings=lambda wc: settings("seed", "judge", model=wc.model),
    log:
        "logs/base_model/{model}.log",
    threads: workflow.cores
    resources:
        gpu=1,
    conda:
        "../envs/train.yaml"
    script:
        "../scripts/base_model.py"
