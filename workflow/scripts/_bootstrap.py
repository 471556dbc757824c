"""Imported first by every script: makes src/ importable without PYTHONPATH (Snakemake clears
it for conda jobs), sends logs to the rule's log file as well, and sets thread counts."""

import os
import sys
from pathlib import Path


def setup(snakemake):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import torch

        torch.set_num_threads(max(1, snakemake.threads))
    except ImportError:
        pass
    from laser import config

    config.validate(snakemake.config, source="config")  # fills schema defaults in this process
    return snakemake.config
