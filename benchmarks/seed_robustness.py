"""The embedded default's headline over seeds: the whole pipeline (data, model init, SFT, RL,
sampling) rerun for each seed, one after the other, each in its own directory.

    python benchmarks/seed_robustness.py [--seeds 0 1 2 3 4] [--out seed_runs]
    python benchmarks/seed_robustness.py --summarize seed_runs        # tables of finished runs only
    python benchmarks/seed_robustness.py --check-readme results       # README's seed-0 row vs a run

Seed s sets `seed: s`, which also fixes the sampling seed (`generation.seed` null: 42 + s), as
`snakemake --config seed=s` does; seed 0 is the shipped config.
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
BEGIN, END = "<!-- seed table: begin -->", "<!-- seed table: end -->"


def seed_config(seed: int) -> dict:
    import yaml

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["seed"] = seed
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


def voting_rows(seed: int, results: Path):
    """LaSeR's r_s at inference-time scaling: majority vs r_s-weighted vote at the largest k, and
    r_s AUROC pooled and within problems (does it rank one problem's solutions?)."""
    import pandas as pd

    sc = pd.read_csv(results / "tables" / "scaling.csv")
    sc = sc[(sc["method"] == "laser") & (sc["judge"] == "last_token")]
    cal = pd.read_csv(results / "tables" / "calibration_length.csv")
    cal = cal[(cal["method"] == "laser") & (cal["judge"] == "last_token")].set_index("benchmark")
    rows = []
    for bench, g in sc.groupby("benchmark", sort=False):
        top = g[g["k"] == g["k"].max()].iloc[0]
        rows.append({"seed": seed, "benchmark": bench, "k": int(top["k"]), "majority": top["majority"],
                     "weighted": top["weighted"], "auroc": cal.loc[bench, "auroc"],
                     "auroc_within": cal.loc[bench, "auroc_within"]})
    return rows


def seed_line(df, seed: int, benches: list[str]) -> str:
    """One seed's row of the README table: last-token F1 of GRPO and LaSeR per set, the average
    accuracies, and the smallest LaSeR - GRPO F1 gap over the sets."""
    d = df[df["seed"] == seed].set_index(["method", "benchmark"])
    f1 = {m: [d.loc[(m, b), "f1"] for b in benches] for m in ("grpo", "laser")}
    acc = {m: d.loc[(m, "average"), "accuracy"] for m in METHODS}
    gap = min(lf - gf for lf, gf in zip(f1["laser"], f1["grpo"]))
    return (f"| {seed} | " + " / ".join(f"{x:.2f}" for x in f1["grpo"]) + " | "
            + " / ".join(f"{x:.2f}" for x in f1["laser"]) + " | "
            + " / ".join(f"{acc[m]:.3f}" for m in METHODS) + f" | {gap:.3f} |")


def summarize(df) -> tuple[str, float]:
    """Markdown: one row per seed, then mean [min, max] over seeds; and the smallest LaSeR - GRPO
    F1 gap over seeds and sets."""
    benches = [b for b in dict.fromkeys(df["benchmark"]) if b != "average"]
    seeds = sorted(df["seed"].unique())

    def cell(method, value, bench):
        xs = df[(df["method"] == method) & (df["benchmark"] == bench)][value]
        return f"{xs.mean():.2f} [{xs.min():.2f}, {xs.max():.2f}]"

    names = " / ".join(b.removeprefix("arith_") for b in benches)
    lines = [f"| seed | GRPO F1 {names} | LaSeR F1 {names} | accuracy base / GRPO / LaSeR | "
             "min LaSeR - GRPO F1 |", "|---|---|---|---|---|"]
    lines += [seed_line(df, s, benches) for s in seeds]
    lines += ["", f"Mean [min, max] over seeds {', '.join(map(str, seeds))}:", "",
              "| checkpoint | " + " | ".join(f"acc {b}" for b in benches + ["average"]) + " | "
              + " | ".join(f"F1 {b}" for b in benches + ["average"]) + " |",
              "|" + "---|" * (1 + 2 * (len(benches) + 1))]
    for method in METHODS:
        lines.append(f"| {method} | " + " | ".join(cell(method, "accuracy", b) for b in benches + ["average"]) + " | "
                     + " | ".join(cell(method, "f1", b) for b in benches + ["average"]) + " |")
    piv = df[df["benchmark"] != "average"].pivot_table(index=["seed", "benchmark"], columns="method", values="f1")
    return "\n".join(lines) + "\n", float((piv["laser"] - piv["grpo"]).min())


def check_readme(results: Path) -> int:
    """README.md's seed-0 row (between its seed-table markers) is the one this run's tables give."""
    import pandas as pd

    text = (ROOT / "README.md").read_text()
    m = re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), text, re.S)
    if not m:
        print(f"README.md: no block between {BEGIN!r} and {END!r}", file=sys.stderr)
        return 2
    df = pd.DataFrame(seed_rows(0, results))
    line = seed_line(df, 0, [b for b in dict.fromkeys(df["benchmark"]) if b != "average"])
    if line not in m.group(1).splitlines():
        readme = next((x for x in m.group(1).splitlines() if x.startswith("| 0 |")), "(none)")
        print(f"README.md's seed-0 row differs from {results}/tables/main.csv:\n  README:   {readme}\n"
              f"  this run: {line}", file=sys.stderr)
        return 1
    print(f"README.md's seed-0 row matches {results}/tables/main.csv: {line}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--out", default="seed_runs", help="one directory per seed under this one")
    ap.add_argument("--cores", default="all")
    ap.add_argument("--summarize", metavar="OUT", help="only tabulate the finished seeds under OUT")
    ap.add_argument("--check-readme", metavar="RESULTS", help="compare README's seed-0 row with RESULTS")
    args = ap.parse_args()
    if args.check_readme:
        return check_readme(Path(args.check_readme))

    import pandas as pd

    out = Path(args.summarize or args.out)
    rows, votes = [], []
    for seed in args.seeds:
        wd = out / f"seed_{seed}"
        if not args.summarize:
            print(f"seed {seed}: running the pipeline in {wd} ...", flush=True)
            print(f"seed {seed}: {run_seed(seed, out, args.cores):.0f} s", flush=True)
        if not (wd / "results" / "tables" / "main.csv").exists():
            print(f"seed {seed}: no results yet, skipped")
            continue
        rows += seed_rows(seed, wd / "results")
        votes += voting_rows(seed, wd / "results")
        df = pd.DataFrame(rows)
        s = df[df["seed"] == seed].pivot_table(index="method", columns="benchmark", values=["accuracy", "f1"])
        print(f"seed {seed}:\n{s.round(3).to_string()}", flush=True)
    if not rows:
        return 1
    table, gap = summarize(pd.DataFrame(rows))
    v = pd.DataFrame(votes).groupby("benchmark", sort=False)[["k", "majority", "weighted", "auroc", "auroc_within"]]
    table += ("\nLaSeR's r_s at test time, mean over seeds: majority vs r_s-weighted vote at the largest k, "
              "AUROC pooled and within problems:\n\n" + v.mean().round(3).to_markdown() + "\n")
    (out / "summary.md").write_text(table)
    print("\n" + table)
    print(f"min laser-grpo F1 gap over seeds: {gap:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
