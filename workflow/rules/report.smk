# Tables and figures from the results (light, CPU-only jobs); the run's job times and provenance.

import laser.provenance

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
        job=job_settings("tables"),
    log:
        "logs/tables.log",
    benchmark:
        "results/benchmarks/tables.tsv"
    conda:
        conda_env("analysis")
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
        job=job_settings("figures"),
    log:
        "logs/figures.log",
    benchmark:
        "results/benchmarks/figures.tsv"
    conda:
        conda_env("analysis")
    script:
        "../scripts/figures.py"


rule job_times:
    input:
        # after every job it lists
        tables=rules.tables.output.main,
        figures=rules.figures.output.scaling,
    output:
        csv=report("results/tables/job_times.csv", caption="../report/table_job_times.rst", category="Run"),
        rendered=expand("results/tables/job_times.{ext}", ext=["md", "tex"]),
    params:
        job={},  # reads no config section
        jobs=job_benchmarks(),
    log:
        "logs/job_times.log",
    benchmark:
        "results/benchmarks/job_times.tsv"
    conda:
        conda_env("analysis")
    script:
        "../scripts/job_times.py"


rule provenance:
    input:
        # rewritten whenever the results are
        tables=rules.tables.output.main,
        figures=rules.figures.output.scaling,
    output:
        report("results/provenance.json", caption="../report/provenance.rst", category="Run"),
    params:
        job=job_settings("provenance"),  # all of the config: it is recorded
        # git commit, package versions: a change regenerates this file only (no job reads it)
        stamp=laser.provenance.stamp(workflow.basedir),
        configfiles=list(map(str, workflow.config_settings.configfiles)),
    log:
        "logs/provenance.log",
    benchmark:
        "results/benchmarks/provenance.tsv"
    conda:
        conda_env("analysis")
    script:
        "../scripts/provenance.py"
