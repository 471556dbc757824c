import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))
from _bootstrap import setup

config = setup(snakemake)
from laser.checks import check_job
from laser.data import training_records
from laser.io import read_jsonl
from laser.model import make_base

name = snakemake.wildcards.model
spec = config["models"][name]
# before the SFT warm-up or the download of the weights: the model's tokenizer and config against
# the config and, for a built model (whose job starts after prepare_data), the benchmark files
if spec["source"] == "build":
    check_job(config, name)
else:
    check_job(config, name, spec["path"], revision=spec.get("revision"), benchmark_files={})
# a built model is warmed up on the training problems under its training prompt; a pretrained one needs none
train = training_records(config, name, read_jsonl(snakemake.input.train)) if snakemake.input.train else []
make_base(config["models"][name], train, snakemake.output[0],
          seed=config["seed"], name=name, judge_template=config["judge"]["template"])
