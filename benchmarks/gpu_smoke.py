"""GPU smoke run of the embedded default's stages on one CUDA GPU, with no network: the tiny
model is built and warmed up locally, c_ref calibrated, GRPO and LaSeR trained for a few steps,
and each checkpoint generates on the held-out sets with the transformers backend. It calls the
same package functions as the Snakemake rules (so it runs where snakemake is not installed).

    python benchmarks/gpu_smoke.py OUT_DIR [--sft-steps 1000] [--rl-steps 12]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--sft-steps", type=int, default=1000)
    ap.add_argument("--rl-steps", type=int, default=12)
    args = ap.parse_args()

    import torch

    from laser.calibrate import calibrate
    from laser.config import load
    from laser.data import prepare_all
    from laser.generation import generate
    from laser.io import write_json
    from laser.metrics import accuracy
    from laser.model import make_base
    from laser.train import train

    assert torch.cuda.is_available(), "no CUDA device"
    out = Path(args.out)
    config = load(ROOT / "config" / "config.yaml")
    config["models"]["tiny"]["sft"]["max_steps"] = args.sft_steps
    config["generation"].update(backend="transformers", batch_size=256)
    config["training"].update(max_steps=args.rl_steps, save_steps=10**6)
    config["laser"].update(warmup_reasoning_steps=2, warmup_sr_steps=4)
    report = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    t0 = time.time()

    train_recs, benches = prepare_all(config)
    base = out / "models" / "tiny" / "base"
    t = time.time()
    make_base(config["models"]["tiny"], train_recs, base, seed=config["seed"], name="tiny")
    report["sft_seconds"] = round(time.time() - t, 1)

    t = time.time()
    cal = calibrate(str(base), train_recs, n=config["calibration"]["n_problems"], z_c=config["models"]["tiny"]["z_c"],
                    gen_cfg=config["generation"], seed=config["seed"],
                    max_tokens=config["training"]["max_completion_length"])
    write_json(out / "calibration.json", cal)
    report["calibration"] = {k: cal[k] for k in ("c_ref_mean", "c_ref_std", "n")}
    report["calibration_seconds"] = round(time.time() - t, 1)

    models = {"base": str(base)}
    for method in ("grpo", "laser"):
        t = time.time()
        run = out / "train" / method
        train(config, model="tiny", method=method, base_dir=str(base), out_dir=str(out / "models" / method),
              run_dir=str(run), train_records=train_recs, calibration=str(out / "calibration.json"))
        report[f"train_{method}_seconds"] = round(time.time() - t, 1)
        models[method] = str(out / "models" / method)
        import pandas as pd

        df = pd.read_csv(run / "metrics.csv")
        report[f"train_{method}_last"] = df.iloc[-1][["step", "reward_mean", "sr_mse", "sv_f1", "step_time"]].to_dict()

    for method, path in models.items():
        t = time.time()
        gens = generate(path, {k: (v, b["n_samples"]) for (k, v), b in
                               zip(benches.items(), config["benchmarks"].values())}, config["generation"])
        report[f"accuracy_{method}"] = {k: round(accuracy(v), 4) for k, v in gens.items()}
        report[f"generate_{method}_seconds"] = round(time.time() - t, 1)
    report["total_seconds"] = round(time.time() - t0, 1)
    write_json(out / "gpu_smoke.json", report)
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
