"""Why the embedded default's last-token judge can fail to cross the 0.5 threshold: the r_s
geometry (beta_v, c_ref) against the update size (alpha), measured side by side.

    python benchmarks/sr_diagnosis.py --results results            # (1) re-threshold, seconds
    python benchmarks/sr_diagnosis.py --results results --train    # (2) + LaSeR variants, ~75 s each

(1) From a finished run's generations: log pi(z_c | x, y, EOS) does not depend on beta_v for the
    base and GRPO checkpoints (z_c is never trained there), so their r_s = beta_v (log p - c_ref)
    under any beta_v is exact. Printed per beta_v: the share of their solutions with r_s > 0.5 (a
    random "correct" verdict) and their last-token F1, and AUROC (beta-free ranking).
(2) LaSeR trained from the same base checkpoint, seed and data with several (beta_v, alpha):
    r_s means of correct / incorrect finished solutions and training-time F1 over the last
    8 steps. Equal alpha * beta_v gives an equal initial pull on log p(z_c) towards r_s = 1 while
    the distance to the threshold, 0.5 / beta_v nats, differs: that separates the geometry from
    the number and size of the updates.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
import laser.jobs  # noqa: E402

BETAS = (0.1, 0.15, 0.2, 0.25, 0.3)
VARIANTS = ((0.1, 1.0), (0.1, 2.0), (0.2, 1.0))  # (beta_v, alpha); 0.1 x 2 = 0.2 x 1


def rethreshold(results: Path, config: dict, model: str) -> None:
    from laser.io import read_json, read_jsonl
    from laser.metrics import auroc, flat, verification_row

    cal = read_json(results / "calibration" / f"{model}.json")
    c_ref = cal["c_ref_mean"]
    print(f"c_ref {c_ref:.2f} +- {cal['c_ref_std']:.2f} (n={cal['n']}); largest reachable r_s = -beta_v * c_ref; "
          f"r_s = 0.5 needs log p(z_c) = c_ref + 0.5 / beta_v")
    for beta in BETAS:
        print(f"  beta_v {beta:<5} max r_s {-beta * c_ref:5.2f}  threshold at c_ref + {0.5 / beta:.1f} nats "
              f"= {c_ref + 0.5 / beta:6.2f}; base model's share above it if log p ~ N(c_ref, std): "
              f"{0.5 * math.erfc(0.5 / beta / cal['c_ref_std'] / math.sqrt(2)):.3f}")
    names = list(config["benchmarks"])
    print(f"\n{'method':<8} {'beta_v':<7}" + "".join(f"{n + ' F1 / >0.5':>24}" for n in names) + f"{'AUROC (avg)':>13}")
    for method in ("base", *config["methods"]):
        runs = {n: read_jsonl(results / "generations" / model / method / f"{n}.jsonl") for n in names}
        au = []  # r_s is affine in log p(z_c): the AUROC does not depend on beta_v
        for r in runs.values():
            pairs = list(flat(r, [x["zc_logprobs"] for x in r]))
            au.append(auroc([s for s, *_ in pairs], [c for _, c, *_ in pairs]))
        for beta in BETAS:
            cells = []
            for recs in runs.values():
                scores = [[beta * (lp - c_ref) for lp in r["zc_logprobs"]] for r in recs]
                row = verification_row(recs, scores)
                above = [s > 0.5 for sc in scores for s in sc]
                cells.append(f"{row['f1_filtered']:.2f} / {sum(above) / len(above):.2f}")
            print(f"{method:<8} {beta:<7}" + "".join(f"{c:>24}" for c in cells) + f"{sum(au) / len(au):>13.2f}")


def variants(results: Path, config: dict, model: str, pairs) -> None:
    import pandas as pd

    from laser.io import read_json, read_jsonl
    from laser.train import train

    records = read_jsonl(results / "data" / "train.jsonl")
    c_ref = read_json(results / "calibration" / f"{model}.json")["c_ref_mean"]  # the run's calibrated constant
    print(f"\nLaSeR from {results}/models/{model}/base, {config['training']['max_steps']} steps, L_sr from step "
          f"{config['laser']['warmup_reasoning_steps'] + 1}; last 8 steps:")
    print(f"{'beta_v':<7}{'alpha':<7}{'rs correct':>11}{'rs incorrect':>13}{'gap':>7}{'sv_f1':>7}{'sv_true_acc':>12}{'reward':>8}")
    for beta, alpha in pairs:
        cfg = {**config, "laser": {**config["laser"], "beta_v": beta, "alpha": alpha,
                                   "c_ref": {"source": "constant", "value": c_ref}},
               "methods": {"laser": {"laser": True}}}
        with tempfile.TemporaryDirectory() as tmp:
            train(laser.jobs.train(cfg, model, "laser"), base_dir=str(results / "models" / model / "base"),
                  out_dir=f"{tmp}/model", run_dir=tmp, train_records=records, calibration=None)
            m = pd.read_csv(f"{tmp}/metrics.csv").tail(8).mean(numeric_only=True)
        print(f"{beta:<7}{alpha:<7}{m['rs_mean_correct']:>11.3f}{m['rs_mean_incorrect']:>13.3f}"
              f"{m['rs_mean_correct'] - m['rs_mean_incorrect']:>7.3f}{m['sv_f1']:>7.3f}{m['sv_true_acc']:>12.3f}"
              f"{m['reward_mean']:>8.3f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default="results", help="a finished run's results/ folder")
    ap.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--train", action="store_true", help="also train the LaSeR variants")
    ap.add_argument("--variants", default=",".join(f"{b}:{a}" for b, a in VARIANTS),
                    help="beta_v:alpha pairs to train (default %(default)s)")
    args = ap.parse_args()

    from laser.config import load

    config = load(args.config)
    results = Path(args.results)
    rethreshold(results, config, args.model)
    if args.train:
        variants(results, config, args.model, [tuple(map(float, v.split(":"))) for v in args.variants.split(",")])


if __name__ == "__main__":
    main()
