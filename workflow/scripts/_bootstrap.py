"""Imported first by every script: makes src/ importable without PYTHONPATH (Snakemake clears
it for conda jobs; the package is not installed into the rules' conda environments, so that a job
runs this checkout's code: docs/cluster.md), sends logs to the rule's log file as well, sets
thread counts, and returns the job's settings (`params.job`, resolved by `laser.jobs` when the
workflow is parsed: no job reads the config itself)."""

import os
import sys
from pathlib import Path


class _Tee:
    """Write to the terminal (progress bars stay visible) and to the rule's log file."""

    def __init__(self, stream, log):
        self.stream, self.log = stream, log

    def write(self, data):
        self.log.write(data)
        return self.stream.write(data)

    def flush(self):
        self.log.flush()
        self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def _one_line_errors():
    """A bad config or input (laser's ConfigError, InputError: the message names the key, file or
    line) ends the job with that one line, not a traceback; any other error keeps its traceback."""
    from laser.config import ConfigError
    from laser.io import InputError

    default = sys.excepthook

    def hook(kind, value, tb):
        if issubclass(kind, (ConfigError, InputError)):
            print(f"error: {value}", file=sys.stderr, flush=True)
        else:
            default(kind, value, tb)

    sys.excepthook = hook


def setup(snakemake):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    _one_line_errors()
    if snakemake.log:
        Path(snakemake.log[0]).parent.mkdir(parents=True, exist_ok=True)
        log = open(snakemake.log[0], "w", buffering=1)
        sys.stdout, sys.stderr = _Tee(sys.stdout, log), _Tee(sys.stderr, log)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import torch

        torch.set_num_threads(max(1, snakemake.threads))
    except ImportError:
        pass
    return snakemake.params.job  # what the job reads of the config, resolved (laser.jobs)
