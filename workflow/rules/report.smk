# Tables and figures from the results (light, CPU-only jobs).

TABLES = [
    "main", "table1", "scaling", "calibration_length", "reliability", "c_ref", "ablations", "verifiers", "prompts",
]
FIGURES = ["scaling", "rs_histograms", "reliability", "training_curves"]


rule tables:
    input:
        **analysis_inputs(),
    output:
        **{
            name: report(
                f"results/tables/{name}.csv",
                caption=f"../report/table_{name}.rst",
                category="Tables",
            )
            for name in TABLES
        },
        rendered=expand("results/tables/{name}.{ext}", name=TABLES, ext=["md", "tex"]),
    params:
        settings=settings("scoring", "analysis"),
    log:
        "logs/tables.log",
    benchmark:
        "results/benchmarks/tables.tsv"
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/tables.py"


rule figures:
    input:
        **analysis_inputs(),
        scaling="results/tables/scaling.csv",
        reliability="results/tables/reliability.csv",
    output:
        **{
            name: report(
                f"results/figures/{name}.png",
                caption=f"../report/figure_{name}.rst",
                category="Figures",
            )
            for name in FIGURES
        },
        svg=expand("results/figures/{name}.svg", name=FIGURES),
    params:
        settings=settings("scoring", "analysis"),
    log:
        "logs/figures.log",
    benchmark:
        "results/benchmarks/figures.tsv"
    conda:
        "../envs/analysis.yaml"
    script:
        "../scripts/figures.py"
