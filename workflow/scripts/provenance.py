import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))
from _bootstrap import setup

config = setup(snakemake)  # all of the config, schema defaults filled in
from laser.provenance import write_provenance

record = write_provenance(snakemake.output[0], config, snakemake.params.stamp, snakemake.params.configfiles)
print({k: record[k] for k in ("workflow", "models", "verifiers")})
