# vLLM starts worker processes that re-import this file: everything stays under the guard.
if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(snakemake.scriptdir)))
    from _bootstrap import setup

    config = setup(snakemake)
    from laser.generation import generate, metadata
    from laser.io import read_jsonl, write_json, write_jsonl

    names = list(config["benchmarks"])
    jobs = {name: (read_jsonl(path), config["benchmarks"][name]["n_samples"])
            for name, path in zip(names, snakemake.input.benchmarks)}
    outs = generate(snakemake.input.model, jobs, config["generation"])
    for name, path in zip(names, snakemake.output.generations):
        write_jsonl(path, outs[name])
    write_json(snakemake.output.metadata, {
        **metadata(snakemake.input.model, config["generation"]),
        "n_samples": {name: n for name, (_, n) in jobs.items()},
        "instruction_suffix": config["prompt"]["instruction_suffix"]})
