"""The embedded default's headline over seeds: the whole pipeline (data, model init, SFT, RL,
sampling) rerun for each seed, one after the other, each in its own directory.

    python benchmarks/seed_robustness.py [--seeds 0 1 2 3 4] [--out seed_runs]
    python benchmarks/seed_robustness.py --summarize seed_runs        # tables of finished runs only
    python benchmarks/seed_robustness.py --check-readme results       # README's seed-0 row vs a run

Seed s sets `seed: s`, which also fixes the sampling seed (`generation.seed` null: 42 + s), as
`snakemake --config seed=s` does; seed 0 is the shipped config.
Prints per seed the accuracy and self-verification F1 (filtered) of base, GRPO and LaSeR on every
held-out set, for both judges, then mean [min, max] over seeds as Markdown (written to
OUT/summary.md, the README's table): accuracy, LaSeR's last-token F1 against the prompted judge's
F1 of base and GRPO (the paper's Table 1 comparison; base's and GRPO's last-token F1 as a sanity
check), LaSeR's r_s AUROC, ECE and AUROC within problems, and majority vs r_s-weighted voting at
the largest k. Last line: the smallest LaSeR last-token F1 minus the best prompted-judge F1 of base
and GRPO, over seeds and sets. A finished seed is not rerun (Snakemake has nothing to do).
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
JUDGES = ("last_token", "generative")
BEGIN, END = "<!-- seed table: begin -->", "<!-- seed table: end -->"


def seed_config(seed: int) -> dict:
    import yaml

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["seed"] = seed
    return config


def run_pipeline(wd: Path, config: dict, cores: str) -> float:
    """The whole workflow with `config` in working directory `wd` (log: wd/snakemake.log); seconds taken."""
    import yaml

    wd.mkdir(parents=True, exist_ok=True)
    (wd / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    start = time.time()
    with open(wd / "snakemake.log", "w") as log:
        subprocess.run(["snakemake", "--cores", cores, "-s", str(ROOT / "Snakefile"), "-d", str(wd),
                        "--configfile", str(wd / "config.yaml"), "--workflow-profile", str(ROOT / "profiles" / "default")],
                       check=True, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "WANDB_MODE": "offline"})
    return time.time() - start


def run_seed(seed: int, out: Path, cores: str) -> float:
    return run_pipeline(out / f"seed_{seed}", seed_config(seed), cores)


def seed_rows(seed: int, results: Path):
    """Per method, benchmark and judge (last-token r_s, the prompted judge): accuracy and F1 (filtered)."""
    import pandas as pd

    main = pd.read_csv(results / "tables" / "main.csv")
    main = main[main["judge"].isin(JUDGES) & main["method"].isin(METHODS)]
    return [{"seed": seed, "method": r["method"], "benchmark": r["benchmark"], "judge": r["judge"],
             "accuracy": r["accuracy"], "f1": r["f1_filtered"]} for _, r in main.iterrows()]


def voting_rows(seed: int, results: Path):
    """LaSeR's r_s per benchmark: AUROC and ECE pooled, AUROC within problems (does it rank one
    problem's solutions?), and majority vs r_s-weighted vote at the largest k."""
    import pandas as pd

    sc = pd.read_csv(results / "tables" / "scaling.csv")
    sc = sc[(sc["method"] == "laser") & (sc["judge"] == "last_token")]
    allcal = pd.read_csv(results / "tables" / "calibration_length.csv")
    cal = allcal[(allcal["method"] == "laser") & (allcal["judge"] == "last_token")].set_index("benchmark")
    # the base model's own verification ability: its prompted judge's ranking within problems
    base = allcal[(allcal["method"] == "base") & (allcal["judge"] == "generative")].set_index("benchmark")
    rows = []
    for bench, g in sc.groupby("benchmark", sort=False):
        top = g[g["k"] == g["k"].max()].iloc[0]
        rows.append({"seed": seed, "benchmark": bench, "k": int(top["k"]), "majority": top["majority"],
                     "weighted": top["weighted"], "auroc": cal.loc[bench, "auroc"], "ece": cal.loc[bench, "ece"],
                     "auroc_within": cal.loc[bench, "auroc_within"],
                     "base_judge_auroc_within": base.loc[bench, "auroc_within"] if bench in base.index else float("nan")})
    return rows


def _f1(d, method: str, judge: str, bench: str) -> float:
    return d[(d["method"] == method) & (d["judge"] == judge) & (d["benchmark"] == bench)]["f1"].iloc[0]


def seed_gaps(df, seed: int, benches: list[str]) -> list[float]:
    """Per set: LaSeR's last-token F1 minus the best prompted-judge F1 of base and GRPO (the paper's
    Table 1 comparison: LaSeR's self-rewarding score against the baselines' self-verification)."""
    d = df[df["seed"] == seed]
    return [_f1(d, "laser", "last_token", b) - max(_f1(d, "base", "generative", b), _f1(d, "grpo", "generative", b))
            for b in benches]


def seed_line(df, seed: int, benches: list[str]) -> str:
    """One seed's row of the README table: LaSeR's last-token F1 and the prompted judge's F1 of base
    and GRPO per set, the average accuracies, and the smallest gap over the sets (`seed_gaps`)."""
    d = df[df["seed"] == seed]

    def f1s(method, judge):
        return " / ".join(f"{_f1(d, method, judge, b):.2f}" for b in benches)

    acc = {m: d[(d["method"] == m) & (d["judge"] == "last_token") & (d["benchmark"] == "average")]["accuracy"].iloc[0]
           for m in METHODS}
    return (f"| {seed} | {f1s('laser', 'last_token')} | {f1s('base', 'generative')} | {f1s('grpo', 'generative')} | "
            + " / ".join(f"{acc[m]:.3f}" for m in METHODS) + f" | {min(seed_gaps(df, seed, benches)):.3f} |")


def _cell(xs) -> str:
    return f"{xs.mean():.2f} [{xs.min():.2f}, {xs.max():.2f}]"


def summarize(df, votes=None) -> tuple[str, float]:
    """Markdown: one row per seed, then mean [min, max] over seeds of accuracy, of each judge's F1
    (base's and GRPO's last-token F1 as the sanity check that untrained r_s judges nothing correct)
    and of LaSeR's r_s at test time (`votes`: `voting_rows`); and the smallest gap over seeds and sets."""
    benches = [b for b in dict.fromkeys(df["benchmark"]) if b != "average"]
    seeds = sorted(df["seed"].unique())
    names = " / ".join(b.removeprefix("arith_") for b in benches)
    lines = [f"| seed | LaSeR last-token F1 {names} | base prompted-judge F1 | GRPO prompted-judge F1 | "
             "accuracy base / GRPO / LaSeR | min LaSeR - best prompted F1 |", "|---|---|---|---|---|---|"]
    lines += [seed_line(df, s, benches) for s in seeds]
    cols = benches + ["average"]
    lines += ["", f"Mean [min, max] over seeds {', '.join(map(str, seeds))}:", "",
              "| | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    one = df[df["judge"] == "last_token"]  # accuracy is the checkpoint's, whichever judge
    for method in METHODS:
        lines.append(f"| accuracy {method} | " + " | ".join(
            _cell(one[(one["method"] == method) & (one["benchmark"] == b)]["accuracy"]) for b in cols) + " |")
    for method, judge, label in (("laser", "last_token", "F1 LaSeR last-token"),
                                 ("base", "generative", "F1 base prompted judge"),
                                 ("grpo", "generative", "F1 GRPO prompted judge"),
                                 ("laser", "generative", "F1 LaSeR prompted judge"),
                                 ("base", "last_token", "F1 base last-token (sanity: 0)"),
                                 ("grpo", "last_token", "F1 GRPO last-token (sanity: 0)")):
        sel = df[(df["method"] == method) & (df["judge"] == judge)]
        lines.append(f"| {label} | " + " | ".join(_cell(sel[sel["benchmark"] == b]["f1"]) for b in cols) + " |")
    if votes is not None and len(votes):
        ks = sorted(votes["k"].unique())
        for key, label in (("auroc", "LaSeR r_s AUROC"), ("ece", "LaSeR r_s ECE"),
                           ("auroc_within", "LaSeR r_s AUROC within problems"),
                           ("base_judge_auroc_within", "base prompted judge AUROC within problems"),
                           ("majority", f"majority vote, k = {'/'.join(map(str, ks))}"),
                           ("weighted", "r_s-weighted vote"), ("margin", "weighted - majority")):
            v = votes.assign(margin=votes["weighted"] - votes["majority"])
            lines.append(f"| {label} | " + " | ".join(_cell(v[v["benchmark"] == b][key]) for b in benches) + " | |")
    gap = min(g for s in seeds for g in seed_gaps(df, s, benches))
    return "\n".join(lines) + "\n", float(gap)


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
    table, gap = summarize(pd.DataFrame(rows), pd.DataFrame(votes))
    (out / "summary.md").write_text(table)
    print("\n" + table)
    print(f"min LaSeR last-token F1 - best prompted-judge F1 (base, GRPO) over seeds and sets: {gap:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
