import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))
from _bootstrap import setup

setup(snakemake)
import _inputs
import pandas as pd
from laser.figures import all_figures

written = all_figures(_inputs.runs(snakemake), pd.read_csv(snakemake.input.scaling),
                      pd.read_csv(snakemake.input.reliability), _inputs.training_curves(snakemake),
                      Path(snakemake.output.scaling).parent)
missing = set(map(str, snakemake.output)) - set(map(str, written))
assert not missing, f"figures not written: {missing}"
