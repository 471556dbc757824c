"""Share of the policy's weights that one AdamW step at the paper's learning rate (1e-6) moves,
with the workflow's precision path (float32 master weights, bf16 autocast compute) side by side
with pure bf16 storage (what the GPU path did before: weights loaded and kept in bf16).

    python benchmarks/precision_update.py [--base results/models/tiny/base]

Both runs go through `laser.train.build_trainer` with `training.mixed_precision: bf16` (bf16
compute is available on CPU), from the same base model, data and seed, LaSeR's L_sr active
from the first step so that every run has a gradient. Last line:
`moved at lr 1e-6: float32 master <x> vs bf16 storage <y>`.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
import laser.jobs  # noqa: E402


def one_step_moved_fraction(config: dict, base_dir: str, train_records: list[dict], *,
                            store_bf16: bool = False, learning_rate: float = 1e-6) -> float:
    """Fraction of parameters (elements) changed by one optimizer step of `laser.train`'s trainer.
    `store_bf16` casts the loaded policy to bf16 before the optimizer exists (pure bf16 storage)."""
    import torch

    from laser.train import build_trainer

    config = copy.deepcopy(config)
    config["training"].update(max_steps=1, learning_rate=learning_rate, mixed_precision="bf16", save_steps=10**6)
    config["laser"].update(warmup_reasoning_steps=0, warmup_sr_steps=0)
    config["methods"] = {"laser": {"laser": True}}
    with tempfile.TemporaryDirectory() as tmp:
        trainer = build_trainer(laser.jobs.train(config, next(iter(config["models"])), "laser"), base_dir=base_dir,
                                run_dir=tmp, train_records=train_records, calibration=None)
        trainer.args.report_to = []
        if store_bf16:
            trainer.model.to(torch.bfloat16)
        assert trainer.args.bf16 and trainer.accelerator.mixed_precision == "bf16"
        before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
        trainer.train()
        moved = total = 0
        for n, p in trainer.model.named_parameters():
            moved += int((p.detach() != before[n]).sum())
            total += p.numel()
    return moved / total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    ap.add_argument("--base", default=str(ROOT / "results" / "models" / "tiny" / "base"))
    ap.add_argument("--train", default=str(ROOT / "results" / "data" / "train.jsonl"))
    args = ap.parse_args()

    from laser.config import load
    from laser.io import read_jsonl

    config = load(args.config)
    config["laser"]["c_ref"] = {"source": "constant", "value": -10.0}
    records = read_jsonl(args.train)[:256]
    master = one_step_moved_fraction(config, args.base, records)
    pure = one_step_moved_fraction(config, args.base, records, store_bf16=True)
    print(f"moved at lr 1e-6: float32 master {master:.3f} vs bf16 storage {pure:.3f}")


if __name__ == "__main__":
    main()
