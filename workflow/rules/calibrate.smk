# c_ref calibration: log pi_ref(z_c | x, y, EOS) over solutions sampled from the base model.


rule calibrate:
    input:
        model="results/models/{model}/base",
        train="results/data/train.jsonl",
    output:
        "results/calibration/{model}.json",
    params:
        job=job_settings("calibrate"),
    log:
        "logs/calibrate/{model}.log",
    benchmark:
        "results/benchmarks/calibrate/{model}.tsv"
    threads: workflow.cores
    resources:
        gpu=1,
    conda:
        conda_env("vllm")
    script:
        "../scripts/calibrate.py"
