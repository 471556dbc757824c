import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))
from _bootstrap import setup

job = setup(snakemake)
from laser.data import prepare_all
from laser.io import write_jsonl

train, benches = prepare_all(job)
if snakemake.output.train:  # none for an evaluation-only config
    write_jsonl(snakemake.output.train, train)
for name, path in zip(job["benchmarks"], snakemake.output.benchmarks):
    write_jsonl(path, benches[name])
print(f"train: {len(train)} problems; " + ", ".join(f"{k}: {len(v)}" for k, v in benches.items()))
