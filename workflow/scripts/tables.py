import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))
from _bootstrap import setup

job = setup(snakemake)
import _inputs
from laser.tables import all_tables
from laser.tables import prompts_table, write_table

tables = all_tables(_inputs.runs(snakemake), snakemake.input.calibration, threshold=job["threshold"],
                    n_subsets=job["scaling_subsets"], seed=job["seed"], ece_bins=job["ece_bins"],
                    reference_method=job["reference_method"])
tables["prompts"] = prompts_table(snakemake.input.metadata)
for name, df in tables.items():
    write_table(df, getattr(snakemake.output, name))
print(tables["main"].to_string(index=False, float_format=lambda x: f"{x:.3f}"))
