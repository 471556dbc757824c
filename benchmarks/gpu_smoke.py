"""GPU smoke run of the embedded default's stages on one CUDA GPU, with no network: the tiny
model is built and warmed up locally, c_ref calibrated, GRPO and LaSeR trained for a few steps,
each checkpoint generates on the held-out sets with the transformers backend and scores every
solution by one decoding step on the KV cache (checked against a full re-prefill), the prompted
judge and a tiny external verifier (outcome RM) run, and the tables and figures are written. It
calls the same package functions as the Snakemake rules (so it runs where snakemake is not
installed).

    python benchmarks/gpu_smoke.py OUT_DIR [--sft-steps 1000] [--rl-steps 12] [--verification-steps 150] [--cpu]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
import laser.jobs  # noqa: E402


# One-token vs re-prefill: both routes compute log pi(z_c | x, y, EOS) from the same weights; they
# differ only in floating-point evaluation order (one decoding step on the KV cache vs a full
# prefill: other kernels, other shapes). Both take the log-softmax in float32, so the difference is
# what the compute dtype leaves in the logits. It is bounded in ulps of that dtype at the log-prob's
# magnitude (|log p| = logsumexp(logits) - logit(z_c), the scale of the largest logits):
# - 16-bit dtypes: the logits are rounded to 8 (bf16) or 11 (fp16) mantissa bits and GEMMs
#   accumulate in float32, so the routes differ by a few output roundings: 4 ulps (0.5 nats at
#   |log p| = 23 in bf16; 0.26 ulps measured on CPU for the tiny model).
# - float32: no output rounding dominates; the difference is summation-order noise accumulated over
#   the layers: 64 ulps (1.2e-4 nats at |log p| = 23; 3 ulps measured on CPU for the tiny model).
# Both stay far below what a wrong position or a wrong cache mask gives (0.1 to several nats).
ROUTE_TOLERANCE_ULPS = {"bfloat16": 4, "float16": 4, "float32": 64}


def route_tolerance(logp: float, dtype: str) -> float:
    """Largest accepted |one-token - re-prefill| difference of one log-prob computed in `dtype`
    (a generation dtype; "auto" is judged as bfloat16, the coarsest a checkpoint is stored in)."""
    import torch

    dtype = "bfloat16" if dtype == "auto" else dtype
    ulp = torch.finfo(getattr(torch, dtype)).eps * 2.0 ** math.floor(math.log2(max(abs(logp), 1.0)))
    return ROUTE_TOLERANCE_ULPS[dtype] * ulp


def compare_routes(onetoken: dict, reprefill: dict, dtype: str) -> dict:
    """log pi(z_c) of the same responses by both routes: the largest difference, the worst ratio
    to `route_tolerance` and the pairs over it (only responses sampled identically are compared)."""
    diffs = []
    for bench in onetoken:
        for r, q in zip(onetoken[bench], reprefill[bench]):
            for ids_a, ids_b, a, b in zip(r["response_token_ids"], q["response_token_ids"], r["zc_logprobs"],
                                          q["zc_logprobs"]):
                if ids_a == ids_b:
                    diffs.append((abs(a - b), abs(a - b) / route_tolerance(b, dtype), bench, a, b))
    if not diffs:
        raise AssertionError("one-token vs re-prefill: no response was sampled identically by both runs")
    over = [{"benchmark": d[2], "onetoken": d[3], "reprefill": d[4]} for d in diffs if d[1] > 1]
    return {"compared": len(diffs), "max_abs_diff": max(d[0] for d in diffs),
            "max_ratio_to_tolerance": max(d[1] for d in diffs), "n_over_tolerance": len(over),
            "over_tolerance": over[:20]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--sft-steps", type=int, default=1000)
    ap.add_argument("--rl-steps", type=int, default=12)
    ap.add_argument("--verification-steps", type=int, default=150, help="second SFT phase (judge format)")
    ap.add_argument("--cpu", action="store_true", help="allow a CPU run (to check this script before a GPU session)")
    args = ap.parse_args()

    import torch

    from laser.calibrate import calibrate
    from laser.config import load
    from laser.data import prepare_all
    from laser.prompts import with_prompt
    from laser.generation import generate
    from laser.io import write_json
    from laser.metrics import accuracy
    from laser.model import make_base
    from laser.train import train

    assert torch.cuda.is_available() or args.cpu, "no CUDA device (use --cpu to check the script on a CPU)"
    out = Path(args.out)
    config = load(ROOT / "config" / "config.yaml")
    config["models"]["tiny"]["sft"].update(max_steps=args.sft_steps, verification_steps=args.verification_steps)
    config["generation"].update(backend="transformers", batch_size=256)
    config["training"].update(max_steps=args.rl_steps, save_steps=10**6)
    # warm-ups scaled to the run (2 and 4 for the default 12 steps), so every stage is reached
    config["laser"].update(warmup_reasoning_steps=max(1, args.rl_steps // 6), warmup_sr_steps=max(1, args.rl_steps // 3))
    report = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu", "torch": torch.__version__}
    t0 = time.time()

    train_recs, benches = prepare_all(config)
    train_recs = with_prompt(train_recs, laser.jobs.train_prompt(config, "tiny"))  # as base_model and calibrate build it
    base = out / "models" / "tiny" / "base"
    t = time.time()
    make_base(config["models"]["tiny"], train_recs, base, seed=config["seed"], name="tiny",
              judge_template=config["judge"]["template"])
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
        train(laser.jobs.train(config, "tiny", method), base_dir=str(base), out_dir=str(out / "models" / method),
              run_dir=str(run), train_records=train_recs, calibration=str(out / "calibration.json"))
        report[f"train_{method}_seconds"] = round(time.time() - t, 1)
        models[method] = str(out / "models" / method)
        import pandas as pd

        df = pd.read_csv(run / "metrics.csv")
        report[f"train_{method}_last"] = df.iloc[-1][["step", "reward_mean", "sr_mse", "sv_f1", "step_time"]].to_dict()

    from laser.tables import Run, all_tables
    from laser.figures import all_figures
    from laser.generation import load_tokenizer
    from laser.io import write_jsonl
    from laser.judge import judge
    from laser.scoring import add_self_rewarding_scores
    from laser.tables import write_table

    from laser import tiny
    from laser.config import validate
    from laser.verifiers import verify

    # an external verifier (random tiny outcome RM: the verify path on the GPU, not its scores)
    verifier_dir = out / "verifier_orm"
    base_tok = load_tokenizer(str(base))
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_verifiers import build_reward_model

    tiny.save_pretrained(build_reward_model(base_tok, kind="outcome", seed=0), base_tok, verifier_dir)
    orm = validate({**config, "verifiers": {"orm": {"path": str(verifier_dir), "kind": "outcome"}}})["verifiers"]["orm"]
    zc_id = base_tok.convert_tokens_to_ids(config["models"]["tiny"]["z_c"])
    runs = []
    for method, path in models.items():
        # benchmark records hold the bare problem; each checkpoint's prompt comes from its eval suffix
        jobs = {k: (with_prompt(v, laser.jobs.eval_prompt(config, "tiny", method, k)), config["benchmarks"][k]["n_samples"])
                for k, v in benches.items()}
        t = time.time()
        gens = generate(path, jobs, config["generation"], zc_id=zc_id, route="onetoken")
        report[f"generate_and_score_{method}_seconds"] = round(time.time() - t, 1)
        t = time.time()
        again = generate(path, jobs, config["generation"], zc_id=zc_id, route="reprefill")
        report[f"generate_reprefill_{method}_seconds"] = round(time.time() - t, 1)
        routes = compare_routes(gens, again, config["generation"]["dtype"])
        report[f"onetoken_vs_reprefill_max_abs_diff_{method}"] = routes["max_abs_diff"]
        report[f"onetoken_vs_reprefill_{method}"] = routes
        t = time.time()
        for bench, recs in gens.items():
            add_self_rewarding_scores(recs, beta_v=config["laser"]["beta_v"], c_ref=cal["c_ref_mean"])
            write_jsonl(out / "generations" / method / f"{bench}.jsonl", recs)
            judged = judge(path, recs, config["generation"], config["judge"])
            verified = verify(recs, orm, progress=False)
            runs.append(Run("tiny", method, bench, recs, {"last_token": [r["self_rewarding_scores"] for r in recs],
                                                          "generative": [j["judge_scores"] for j in judged],
                                                          "orm": [v["verifier_scores"] for v in verified]}))
        report[f"judge_and_verify_{method}_seconds"] = round(time.time() - t, 1)
        report[f"accuracy_{method}"] = {k: round(accuracy(v), 4) for k, v in gens.items()}
    tables = all_tables(runs, [out / "calibration.json"])
    for name, df in tables.items():
        write_table(df, out / "tables" / f"{name}.csv")
    import pandas as pd

    curves = {("tiny", m): pd.read_csv(out / "train" / m / "metrics.csv") for m in ("grpo", "laser")}
    all_figures(runs, tables["scaling"], tables["reliability"], curves, out / "figures")
    avg = tables["main"][tables["main"]["benchmark"] == "average"]
    report["main_average"] = avg[["method", "judge", "accuracy", "f1_filtered"]].to_dict("records")
    report["total_seconds"] = round(time.time() - t0, 1)
    write_json(out / "gpu_smoke.json", report)
    print(json.dumps(report, indent=2, default=str))
    # after the report is written, so a failing run keeps its numbers
    for method in models:
        routes = report[f"onetoken_vs_reprefill_{method}"]
        assert not routes["n_over_tolerance"], (
            f"{method}: one-token and re-prefill log pi(z_c) differ beyond the tolerance ({ROUTE_TOLERANCE_ULPS} "
            f"ulps of {config['generation']['dtype']} at |log p|) for {routes['n_over_tolerance']} of "
            f"{routes['compared']} responses (worst {routes['max_ratio_to_tolerance']:.1f}x): "
            f"{routes['over_tolerance'][:5]}")


if __name__ == "__main__":
    main()
