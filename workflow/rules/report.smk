# Tables and figures from the results.


rule accuracy_table:
    input:
        expand(
            "results/generations/{model}/{method}/{benchmark}.jsonl",
            model=MODELS,
            method=METHODS,
            benchmark=BENCHMARKS,
        ),
    output:
        report(
            "results/tables/accuracy.csv",
            caption="../report/accuracy.rst",
            category="Tables",
        ),
    log:
        "logs/accuracy_table.log",
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/accuracy_table.py"
