# Sampling n solutions per problem for every benchmark with one engine per checkpoint.


rule generate:
    input:
        model="results/models/{model}/{method}",
        benchmarks=expand("results/data/benchmarks/{benchmark}.jsonl", benchmark=BENCHMARKS),
    output:
        generations=expand(
            "results/generations/{{model}}/{{method}}/{benchmark}.jsonl", benchmark=BENCHMARKS
        ),
        metadata="results/generations/{model}/{method}/metadata.json",
    log:
        "logs/generate/{model}/{method}.log",
    threads: workflow.cores
    conda:
        "../envs/vllm.yaml"
    script:
        "../scripts/generate.py"
