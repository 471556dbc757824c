"""tests/test_learning.py's experiment over seeds: how large LaSeR's widening of the held-out r_s
gap is, and how little GRPO's moves, seed by seed (issue #18: size the test's thresholds).

    OMP_NUM_THREADS=1 python benchmarks/learning_margins.py [--seeds 0 1 2 3 4] [--same-warm]
                                                            [--set steps=24 --set held_samples=8 ...]

Seed s: the warm checkpoint built as tests/conftest.py's `warm_checkpoint` with seed s (model
init, SFT data and order; seed 0 is the test's; --same-warm keeps seed 0's for every s), training
data seed 2s+1, held-out data seed 2s+2, held-out sampling seed s, trainer seed s.
`--set key=value` overrides a key of the test's SETTING. Prints per seed the held-out rows, the
r_s gap (mean r_s of 'correct' minus 'incorrect') and AUROC of base, GRPO and LaSeR with the
changes from base and the AUROC's standard error (Hanley & McNeil), then mean [min, max].
"""

from __future__ import annotations

import argparse
import ast
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]
os.environ.setdefault("WANDB_MODE", "disabled")


def build_warm(path: Path, seed: int) -> Path:
    """tests/conftest.py's warm_checkpoint recipe at `seed` (the fixture's is seed 0)."""
    from laser import data
    from laser.model import make_base

    train = data.prepare({"source": "synthetic", "tiers": ["easy", "medium"], "n_problems": 400}, name="train",
                         seed=seed, suffix=" Put the answer in \\boxed{}.")
    spec = {"source": "build", "z_c": "<|reserved_special_token_0|>",
            "architecture": {"hidden_size": 64, "num_layers": 2, "num_heads": 2, "intermediate_size": 128,
                             "max_position_embeddings": 512},
            "sft": {"max_steps": 80, "learning_rate": 0.003, "batch_size": 16, "warmup_steps": 5,
                    "weight_decay": 0.0}}
    make_base(spec, train, path, seed=seed, name="warm")
    return path


def auroc_se(a: float, labels) -> float:
    """Hanley & McNeil (1982) standard error of an AUROC a."""
    n1 = sum(1 for y in labels if y)
    n0 = len(labels) - n1
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    return math.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0))


def value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--same-warm", action="store_true", help="seed 0's warm checkpoint for every seed")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override the test's SETTING")
    args = p.parse_args()

    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from test_learning import SETTING, experiment

    overrides = {k: value(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    unknown = set(overrides) - set(SETTING)
    if unknown:
        p.error(f"unknown SETTING keys: {sorted(unknown)}")
    print("setting:", {**SETTING, **overrides}, "same warm:", args.same_warm, flush=True)
    keys = ("rows", "pos", "g_base", "g_grpo", "g_laser", "dg_grpo", "dg_laser", "a_base", "a_grpo", "a_laser",
            "da_grpo", "da_laser", "se_laser", "z_laser", "secs")
    print(" ".join(f"{k:>8}" for k in ("seed",) + keys), flush=True)
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            start = time.time()
            warm_seed = 0 if args.same_warm else seed
            warm = Path(tmp) / f"warm{warm_seed}"
            if not warm.is_dir():
                build_warm(warm, warm_seed)
            gaps, labels = experiment(warm, Path(tmp) / f"run{seed}", seed=seed, **overrides)
            (g0, a0), (gg, ag), (gl, al) = gaps["base"], gaps["grpo"], gaps["laser"]
            # AUROC gain in standard errors of the base AUROC and LaSeR's (same rows), combined
            se = math.hypot(auroc_se(a0, labels), auroc_se(al, labels))
            row = dict(rows=len(labels), pos=sum(labels) / len(labels), g_base=g0, g_grpo=gg, g_laser=gl,
                       dg_grpo=gg - g0, dg_laser=gl - g0, a_base=a0, a_grpo=ag, a_laser=al, da_grpo=ag - a0,
                       da_laser=al - a0, se_laser=se, z_laser=(al - a0) / se, secs=time.time() - start)
            table.append(row)
            print(f"{seed:>8} " + " ".join(f"{row[k]:>8.3f}" for k in keys), flush=True)
    for name, f in (("mean", lambda v: sum(v) / len(v)), ("min", min), ("max", max)):
        print(f"{name:>8} " + " ".join(f"{f([r[k] for r in table]):>8.3f}" for k in keys))
    print("min over seeds: dg_laser - |dg_grpo| = %.3f, da_laser - |da_grpo| = %.3f"
          % (min(r["dg_laser"] - abs(r["dg_grpo"]) for r in table),
             min(r["da_laser"] - abs(r["da_grpo"]) for r in table)))


if __name__ == "__main__":
    main()
