import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))
from _bootstrap import setup

job = setup(snakemake)
from laser.model import base_model_job

# a built model is warmed up on the training problems under its training prompt; a pretrained one is referenced
base_model_job(job, snakemake.input.train or None, snakemake.output[0])
