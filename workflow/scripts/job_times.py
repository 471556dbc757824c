import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))
from _bootstrap import setup

setup(snakemake)
from laser.tables import job_times_table, write_table

df = job_times_table(snakemake.params.jobs)
write_table(df, snakemake.output.csv)
print(df.to_string(index=False))
