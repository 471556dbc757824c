if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(snakemake.scriptdir)))
    from _bootstrap import setup

    config = setup(snakemake)
    from laser.io import read_jsonl
    from laser.train import train

    calibration = snakemake.input.calibration  # a path, or an empty list when c_ref is not calibrated
    train(config, model=snakemake.wildcards.model, method=snakemake.wildcards.method,
          base_dir=snakemake.input.model, out_dir=snakemake.output.model,
          run_dir=str(Path(snakemake.output.metrics).parent),
          train_records=read_jsonl(snakemake.input.train),
          calibration=calibration if isinstance(calibration, str) else None)
