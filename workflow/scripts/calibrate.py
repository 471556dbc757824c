# vLLM starts worker processes that re-import this file: everything stays under the guard.
if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(snakemake.scriptdir)))
    from _bootstrap import setup

    job = setup(snakemake)
    from laser.calibrate import calibrate_job

    calibrate_job(job, snakemake.input.model, snakemake.input.train, snakemake.output[0])
