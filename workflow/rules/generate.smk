# Sampling n solutions per problem for every benchmark with one engine per checkpoint, each
# solution scored by its last token right after generation; then the prompted judge.


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
    log:
        "logs/generate/{model}/{method}.log",
    threads: workflow.cores
    resources:
        gpu=TP,
    conda:
        "../envs/vllm.yaml"
    script:
        "../scripts/generate.py"


rule judge:
    input:
        model="results/models/{model}/{method}",
        generations=expand(
            "results/generations/{{model}}/{{method}}/{benchmark}.jsonl", benchmark=BENCHMARKS
        ),
    output:
        expand("results/judge/{{model}}/{{method}}/{benchmark}.jsonl", benchmark=BENCHMARKS),
    log:
        "logs/judge/{model}/{method}.log",
    threads: workflow.cores
    resources:
        gpu=TP,
    conda:
        "../envs/vllm.yaml"
    script:
        "../scripts/judge.py"
