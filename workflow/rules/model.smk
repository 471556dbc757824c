# The starting checkpoint of every run: built and SFT-warmed (embedded default), or, from the
# hub / a local directory (paper configs), loaded once and referenced: base/ then holds only
# reference.json (hub id + resolved commit, or directory + digest), which every later job loads.


rule base_model:
    input:
        # the training problems feed the SFT warm-up of a built model; a pretrained one reads none
        train=warmup_input,
    output:
        directory("results/models/{model}/base"),
    params:
        job=job_settings("base_model"),
    log:
        "logs/base_model/{model}.log",
    benchmark:
        "results/benchmarks/base_model/{model}.tsv"
    threads: workflow.cores
    resources:
        gpu=1,
    conda:
        conda_env("train")
    script:
        "../scripts/base_model.py"
