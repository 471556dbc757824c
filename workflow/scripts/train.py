if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(snakemake.scriptdir)))
    from _bootstrap import setup

    job = setup(snakemake)
    from laser.launch import run

    calibration = snakemake.input.calibration  # a path, or an empty list when c_ref is not calibrated
    # in this process, or through `accelerate launch` (training.launcher: GPUs, nodes, FSDP/ZeRO)
    run(job, base_dir=snakemake.input.model, out_dir=snakemake.output.model,
        run_dir=str(Path(snakemake.output.metrics).parent), train_path=snakemake.input.train,
        calibration=calibration if isinstance(calibration, str) else None,
        val_path=snakemake.input.validation or None)
