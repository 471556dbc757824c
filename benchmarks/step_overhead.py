"""Median optimizer-step time of LaSeR (SWA active from the first step) over GRPO, measured side
by side in one process on the embedded default (same base model, seed, data and settings).

    python benchmarks/step_overhead.py [--steps 20] [--base results/models/tiny/base]

Needs the embedded default's base model and data (`snakemake --cores all results/models/tiny/base`).
Last line: `laser/grpo step time ratio: <x>` (target <= 1.10).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
import laser.jobs  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    ap.add_argument("--base", default=str(ROOT / "results" / "models" / "tiny" / "base"))
    ap.add_argument("--train", default=str(ROOT / "results" / "data" / "train.jsonl"))
    args = ap.parse_args()

    import pandas as pd

    from laser.config import load
    from laser.io import read_jsonl
    from laser.train import train

    config = load(args.config)
    config["training"].update(max_steps=args.steps, save_steps=10**6)
    # SWA (stage 3) from the first step: the most expensive LaSeR configuration
    config["laser"].update(warmup_reasoning_steps=0, warmup_sr_steps=0, c_ref={"source": "constant", "value": -13.0})
    config["methods"] = {"grpo": {"laser": False}, "laser": {"laser": True}}
    records = read_jsonl(args.train)
    medians = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("grpo", "laser"):
            run = Path(tmp) / method
            train(laser.jobs.train(config, "tiny", method), base_dir=args.base, out_dir=str(run / "model"),
                  run_dir=str(run), train_records=records, calibration=None)
            times = pd.read_csv(run / "metrics.csv")["step_time"].iloc[1:]  # first step warms up
            medians[method] = statistics.median(times)
            print(f"{method}: median step time {medians[method]:.3f} s over {len(times)} steps")
    print(f"laser/grpo step time ratio: {medians['laser'] / medians['grpo']:.3f}")


if __name__ == "__main__":
    main()
