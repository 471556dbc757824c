"""Issue #19's hypothesis: LaSeR's r_s surfaces a verification ability the base model already has.
Vary how much the tiny base model is taught to judge solutions (`models.tiny.sft.
verification_steps`, with `verification_pairs`: a correct and a slipped solution of each problem,
so only checking the steps tells them apart), rerun the whole pipeline, and put the base model's
verification ability next to what LaSeR's r_s learns, side by side in one table.

    python benchmarks/verification_strength.py [--steps 0 600 2400] [--seeds 0 1] [--out verification_runs]
    python benchmarks/verification_strength.py --summarize verification_runs   # finished runs only

Per run (OUT/steps_<n>/seed_<s>), means over the three held-out sets:
- `pairs`: how often the base model's prompted judge prefers a held-out problem's reference
  solution to one with a slip (P("correct") vs P("incorrect") at the verdict; 0.5 is chance),
  the skill the SFT teaches;
- `judge within`: the base model's prompted judge (its verdicts) ranking its own solutions of one
  problem (`metrics.auroc_within`), the ability LaSeR is meant to surface;
- `r_s within`: LaSeR's r_s ranking the same checkpoint's solutions of one problem;
- `w - m`: r_s-weighted minus majority vote at k = 16; and accuracy of base / GRPO / LaSeR.
Last line: the correlation over runs of `judge within` with `r_s within`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def workdir(out: Path, steps: int, seed: int, check: bool) -> Path:
    return out / f"{'check' if check else 'steps'}_{steps}" / f"seed_{seed}"


def run(steps: int, seed: int, out: Path, cores: str, check: bool) -> Path:
    from seed_robustness import run_pipeline, seed_config

    wd = workdir(out, steps, seed, check)
    config = seed_config(seed)
    config["models"]["tiny"]["sft"].update(verification_steps=steps, verification_pairs=True, verification_check=check)
    if check:  # room for the written check before the verdict
        config["judge"]["max_tokens"] = 128
    print(f"steps {steps}, seed {seed}: {run_pipeline(wd, config, cores):.0f} s", flush=True)
    return wd


def pair_preference(wd: Path, n: int = 300) -> float:
    """Fraction of `n` held-out synthetic problems (none in training) on which the base model's judge
    gives the reference solution a higher P("correct") - P("incorrect") at the verdict than the same
    solution with a slip (`tasks.slipped_solution`). With `verification_check`, each verdict follows the
    reference's check of that solution (`model.check_text`): then it measures the verdict given a right check."""
    import random

    import torch
    import yaml
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from laser import tasks
    from laser.io import read_jsonl
    from laser.model import check_text, resolve_base
    from laser.prompts import judge_prompt

    config = yaml.safe_load((wd / "config.yaml").read_text())
    template, check = config["judge"]["template"], config["models"]["tiny"]["sft"].get("verification_check")
    path = resolve_base(wd / "results" / "models" / "tiny" / "base")
    tok, model = AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path).eval()
    yes, no = tok.convert_tokens_to_ids(["c", "i"])  # first tokens of "correct" / "incorrect" (byte-level)
    seen = {r["problem"] for r in read_jsonl(wd / "results" / "data" / "train.jsonl")}
    held = tasks.generate(list(tasks.TIERS), n, seed=10_000, exclude=seen)
    rng = random.Random(0)

    def margin(rec: dict, solution: str) -> float:
        text = tok.apply_chat_template([{"role": "user", "content": judge_prompt(template, rec["problem"], solution)}],
                                       tokenize=False, add_generation_prompt=True)
        text += (check_text(rec, solution) if check else "") + "\\boxed{"
        with torch.no_grad():
            logits = model(torch.tensor([tok(text, add_special_tokens=False).input_ids])).logits[0, -1]
        return float(logits[yes] - logits[no])

    return sum(margin(r, r["solution"]) > margin(r, tasks.slipped_solution(r["problem"], rng))
               for r in held) / n


def row(wd: Path, steps: int, seed: int, check: bool) -> dict:
    import pandas as pd

    from seed_robustness import seed_rows, voting_rows

    res = wd / "results"
    votes = pd.DataFrame(voting_rows(seed, res))
    main = pd.DataFrame(seed_rows(seed, res))
    acc = main[(main["judge"] == "last_token") & (main["benchmark"] == "average")].set_index("method")["accuracy"]
    return {"steps": f"{steps}{' check' if check else ''}", "seed": seed, "pairs": pair_preference(wd),
            "judge_within": votes["base_judge_auroc_within"].mean(), "rs_within": votes["auroc_within"].mean(),
            "w_minus_m": (votes["weighted"] - votes["majority"]).mean(),
            "accuracy": " / ".join(f"{acc[m]:.2f}" for m in ("base", "grpo", "laser"))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, nargs="+", default=[0, 600, 2400])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--out", default="verification_runs")
    ap.add_argument("--cores", default="all")
    ap.add_argument("--check", action="store_true",
                    help="verification_check: the judge writes a check (solve again, copy the answer, mark each character) before its verdict")
    ap.add_argument("--summarize", metavar="OUT", help="only tabulate the finished runs under OUT")
    args = ap.parse_args()

    import pandas as pd

    out = Path(args.summarize or args.out)
    rows = []
    for steps in args.steps:
        for seed in args.seeds:
            wd = run(steps, seed, out, args.cores, args.check) if not args.summarize else \
                workdir(out, steps, seed, args.check)
            if (wd / "results" / "tables" / "main.csv").exists():
                rows.append(row(wd, steps, seed, args.check))
    if not rows:
        print(f"no finished runs under {out}", file=sys.stderr)
        return 1
    df = pd.DataFrame(rows)
    print("| verification_steps | seed | judge prefers reference to slipped | base judge AUROC within problems | "
          "LaSeR r_s AUROC within problems | weighted - majority, k = 16 | accuracy base / GRPO / LaSeR |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['steps']} | {r['seed']} | {r['pairs']:.2f} | {r['judge_within']:.2f} | {r['rs_within']:.2f} | "
              f"{r['w_minus_m']:+.3f} | {r['accuracy']} |")
    if len(df) > 2:
        print(f"\ncorrelation over {len(df)} runs, base judge within vs r_s within: "
              f"{df['judge_within'].corr(df['rs_within']):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
