"""Reading the analysis rules' inputs back into runs (shared by tables.py and figures.py)."""

from pathlib import Path


def runs(snakemake):
    from laser.tables import load_run

    judge = {Path(p).parts[-3:]: p for p in snakemake.input.judge}
    verifiers: dict = {}  # results/verifiers/{verifier}/{model}/{method}/{benchmark}.jsonl
    for p in snakemake.input.verifiers:
        verifiers.setdefault(Path(p).parts[-3:], {})[Path(p).parts[-4]] = p
    return [load_run(p, judge.get(Path(p).parts[-3:]), verifiers.get(Path(p).parts[-3:]))
            for p in snakemake.input.generations]


def training_curves(snakemake) -> dict:
    import pandas as pd

    return {(Path(p).parts[-3], Path(p).parts[-2]): pd.read_csv(p) for p in snakemake.input.train_metrics}
