# vLLM starts worker processes that re-import this file: everything stays under the guard.
if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(snakemake.scriptdir)))
    from _bootstrap import setup

    job = setup(snakemake)
    from laser.evaluate import generate_job

    calibration = snakemake.input.calibration  # a path, or an empty list when c_ref is not calibrated
    generate_job(job, model_dir=snakemake.input.model, benchmark_files=list(snakemake.input.benchmarks),
                 calibration=calibration if isinstance(calibration, str) else None,
                 reference=snakemake.input.reference or None, generations=list(snakemake.output.generations),
                 judge_files=list(snakemake.output.judge), metadata_file=snakemake.output.metadata,
                 base_dir=f"results/models/{snakemake.wildcards.model}/base")
