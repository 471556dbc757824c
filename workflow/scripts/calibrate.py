# vLLM starts worker processes that re-import this file: everything stays under the guard.
if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(snakemake.scriptdir)))
    from _bootstrap import setup

    config = setup(snakemake)
    from laser.calibrate import calibrate
    from laser.checks import check_job, loaded_facts
    from laser.data import training_records
    from laser.io import read_jsonl, write_json

    name = snakemake.wildcards.model
    check_job(config, name, snakemake.input.model)  # the model against the config and the benchmarks
    # the base model samples under the training prompt: c_ref is the training-time constant
    result = calibrate(snakemake.input.model, training_records(config, name, read_jsonl(snakemake.input.train)),
                       n=config["calibration"]["n_problems"], z_c=config["models"][name]["z_c"],
                       gen_cfg=config["generation"], seed=config["seed"],
                       max_tokens=config["training"]["max_completion_length"],
                       context=loaded_facts(snakemake.input.model).context)
    write_json(snakemake.output[0], result)
    print(f"c_ref({name}) = {result['c_ref_mean']:.3f} +- {result['c_ref_std']:.3f} over {result['n']} solutions")
