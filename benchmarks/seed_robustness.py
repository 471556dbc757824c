"""The embedded default's headline over seeds: the whole pipeline (data, model init, SFT, RL,
sampling) rerun for each seed, one after the other, each in its own directory.

    python benchmarks/seed_robustness.py [--seeds 0 1 2 3 4] [--out seed_runs]
    python benchmarks/seed_robustness.py --summarize seed_runs        # tables of finished runs only
    python benchmarks/seed_robustness.py --check-readme results       # README's seed-0 table vs a run

Seed s sets `seed: s` and `generation.seed: 42 + s` (seed 0 is the shipped config, unchanged).
Prints per seed the accuracy and last-token F1 (filtered) of base, GRPO and LaSeR on every
held-out set, then mean [min, max] over seeds as Markdown (written to OUT/summary.md, the
README's table), and last `min laser-grpo F1 gap over seeds: x` (smallest LaSeR - GRPO F1 over
seeds and sets). A finished seed is not rerun (Snakemake has nothing to do).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
METHODS = ("base", "grpo", "laser")
BEGIN, END = "<!-- seed-0 table1: begin -->", "<!-- seed-0 table1: end -->"


def seed_config(seed: int) -> dict:
    import yaml

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["seed"] = seed
    config["generation"]["seed"] = 42 + seed
    return config


def run_seed(seed: int, out: Path, cores: str) -> float:
    import yaml

    wd = out / f"seed_{seed}"
    wd.mkdir(parents=True, exist_ok=True)
    (wd / "config.yaml").write_text(yaml.safe_dump(seed_config(seed), sort_keys=False))
    start = time.time()
    with open(wd / "snakemake.log", "w") as log:
        subprocess.run(["snakemake", "--cores", cores, "-s", str(ROOT / "Snakefile"), "-d", str(wd),
                        "--configfile", str(wd / "config.yaml"), "--workflow-profile", str(ROOT / "profiles" / "default")],
                       check=True, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "WANDB_MODE": "offline"})
    return time.time() - start


def seed_rows(seed: int, results: Path):
    """Per method: average accuracy, and accuracy / last-token F1 per benchmark."""
    import pandas as pd

    main = pd.read_csv(results / "tables" / "main.csv")
    main = main[(main["judge"] == "last_token") & main["method"].isin(METHODS)]
    rows = []
    for _, r in main.iterrows():
        rows.append({"seed": seed, "method": r["method"], "benchmark": r["benchmark"],
                     "accuracy": r["accuracy"], "f1": r["f1_filtered"]})
    return rows


def summarize(df) -> tuple[str, float]:
    """Markdown table of mean [min, max] over seeds, and the smallest LaSeR - GRPO F1 gap."""
    benches = [b for b in dict.fromkeys(df["benchmark"]) if b != "average"]
    seeds = sorted(df["seed"].unique())
    pivot = df.pivot_table(index=["seed", "benchmark"], columns="method", values=["accuracy", "f1"])
    gaps = pivot[("f1", "laser")] - pivot[("f1", "grpo")]
    gaps = gaps[gaps.index.get_level_values("benchmark") != "average"]

    def cell(method, value, bench):
        xs = df[(df["method"] == method) & (df["benchmark"] == bench)][value]
        return f"{xs.mean():.2f} [{xs.min():.2f}, {xs.max():.2f}]"

    head = "| checkpoint | " + " | ".join(f"acc {b}" for b in benches + ["average"]) + " | " + \
        " | ".join(f"F1 {b}" for b in benches + ["average"]) + " |"
    lines = [f"Mean [min, max] over seeds {', '.join(map(str, seeds))}; last-token judge (r_s > 0.5), F1 filtered.", "",
             head, "|" + "---|" * (1 + 2 * (len(benches) + 1))]
    for method in METHODS:
        lines.append(f"| {method} | " + " | ".join(cell(method, "accuracy", b) for b in benches + ["average"]) + " | "
                     + " | ".join(cell(method, "f1", b) for b in benches + ["average"]) + " |")
    per_seed = gaps.groupby(level="seed").min()
    acc = pivot.xs("average", level="benchmark")["accuracy"]
    lines += ["", "| seed | min LaSeR - GRPO F1 over sets | LaSeR - GRPO average accuracy |", "|---|---|---|"]
    lines += [f"| {s} | {per_seed[s]:.2f} | {acc.loc[s, 'laser'] - acc.loc[s, 'grpo']:+.3f} |" for s in seeds]
    return "\n".join(lines) + "\n", float(gaps.min())


def check_readme(results: Path) -> int:
    """The README's seed-0 table (between its markers) equals this run's results/tables/table1.md."""
    text = (ROOT / "README.md").read_text()
    m = re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), text, re.S)
    if not m:
        print(f"README.md: no block between {BEGIN!r} and {END!r}", file=sys.stderr)
        return 2
    got = (results / "tables" / "table1.md").read_text()
    if m.group(1).strip() != got.strip():
        print(f"README.md's seed-0 table differs from {results}/tables/table1.md:\n--- README\n{m.group(1)}"
              f"--- this run\n{got}", file=sys.stderr)
        return 1
    print(f"README.md's seed-0 table matches {results}/tables/table1.md")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--out", default="seed_runs", help="one directory per seed under this one")
    ap.add_argument("--cores", default="all")
    ap.add_argument("--summarize", metavar="OUT", help="only tabulate the finished seeds under OUT")
    ap.add_argument("--check-readme", metavar="RESULTS", help="compare README's seed-0 table with RESULTS")
    args = ap.parse_args()
    if args.check_readme:
        return check_readme(Path(args.check_readme))

    import pandas as pd

    out = Path(args.summarize or args.out)
    rows = []
    for seed in args.seeds:
        wd = out / f"seed_{seed}"
        if not args.summarize:
            print(f"seed {seed}: running the pipeline in {wd} ...", flush=True)
            print(f"seed {seed}: {run_seed(seed, out, args.cores):.0f} s", flush=True)
        if not (wd / "results" / "tables" / "main.csv").exists():
            print(f"seed {seed}: no results yet, skipped")
            continue
        rows += seed_rows(seed, wd / "results")
        df = pd.DataFrame(rows)
        s = df[df["seed"] == seed].pivot_table(index="method", columns="benchmark", values=["accuracy", "f1"])
        print(f"seed {seed}:\n{s.round(3).to_string()}", flush=True)
    if not rows:
        return 1
    table, gap = summarize(pd.DataFrame(rows))
    (out / "summary.md").write_text(table)
    print("\n" + table)
    print(f"min laser-grpo F1 gap over seeds: {gap:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
