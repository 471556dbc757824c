import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))
from _bootstrap import setup

config = setup(snakemake)
import pandas as pd

from laser.io import read_jsonl
from laser.metrics import summary_row
from laser.tables import write_table

rows = []
for path in map(Path, snakemake.input):
    model, method = path.parts[-3], path.parts[-2]
    rows.append(summary_row(read_jsonl(path), model=model, method=method, benchmark=path.stem))
df = pd.DataFrame(rows)
write_table(df, snakemake.output[0])
print(df.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
