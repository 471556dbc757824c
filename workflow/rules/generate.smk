# Sampling n solutions per problem for every benchmark with one engine per checkpoint, each
# solution scored by its last token right after generation and, in the same engine, by the
# prompted judge; then the external verifiers (reward models), if configured.


rule generate:
    input:
        model="results/models/{model}/{method}",
        benchmarks=expand("results/data/benchmarks/{benchmark}.jsonl", benchmark=BENCHMARKS),
        calibration=calibration_input,
        reference=reference_input,
    output:
        generations=expand(
            "results/generations/{{model}}/{{method}}/{benchmark}.jsonl", benchmark=BENCHMARKS
        ),
        metadata="results/generations/{model}/{method}/metadata.json",
        # the prompted judge runs in the same engine (the checkpoint is loaded once)
        judge=expand("results/judge/{{model}}/{{method}}/{benchmark}.jsonl", benchmark=BENCHMARKS)
        if config["judge"]["generative"]
        else [],
    params:
        job=job_settings("generate"),
    log:
        "logs/generate/{model}/{method}.log",
    benchmark:
        "results/benchmarks/generate/{model}/{method}.tsv"
    threads: workflow.cores
    resources:
        gpu=TP,
    conda:
        conda_env("vllm")
    script:
        "../scripts/generate.py"


rule verify:
    input:
        generations=expand(
            "results/generations/{{model}}/{{method}}/{benchmark}.jsonl", benchmark=BENCHMARKS
        ),
    output:
        expand(
            "results/verifiers/{{verifier}}/{{model}}/{{method}}/{benchmark}.jsonl",
            benchmark=BENCHMARKS,
        ),
    params:
        job=job_settings("verify"),
    log:
        "logs/verify/{verifier}/{model}/{method}.log",
    benchmark:
        "results/benchmarks/verify/{verifier}/{model}/{method}.tsv"
    threads: workflow.cores
    resources:
        gpu=verifier_gpus,
    conda:
        conda_env("train")
    script:
        "../scripts/verify.py"
