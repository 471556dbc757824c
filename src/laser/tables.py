"""The tables under results/tables/ (the paper's, from the results files; layout in config/README.md,
"Output contract"), computed here and written as CSV, Markdown and LaTeX (`write_table`).

A *run* is one (model, method, benchmark) generation file, scored, optionally with the
generative judge's file beside it. Each judge is a list of scores per record:
``last_token`` = the last-token score (``self_rewarding_scores``: r_s, or p(z_c) for a model
trained with the SFT ablation, as the generation's ``metadata.json`` records),
``generative`` = the prompted judge's 0/1, or an external verifier's probability. The ``score``
column of the tables names which score a row judges by.

Self-verification F1 follows the official code: a class with no members (no correct, or no
incorrect, solutions) has rate 0.0, so F1 = 0, and that 0 enters the averages over benchmarks.
Only a benchmark without any response has NaN cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import metrics
from .config import BUILTIN_JUDGES
from .io import InputError, read_json, read_jsonl, write_text

KEYS = ["model", "method", "benchmark", "judge"]

# What each judge's scores are (the `score` column): the last-token judge's comes from the run.
SCORE_OF_JUDGE = {"generative": "verdict"}  # 1.0 for a boxed "correct", else 0.0
VERIFIER_SCORE = "p_correct"  # an external verifier's probability of correct


@dataclass
class Run:
    model: str
    method: str
    benchmark: str
    records: list[dict]
    judges: dict[str, list[list[float]]] = field(default_factory=dict)
    score: str = "r_s"  # the last-token score: "r_s" or "p_zc" (laser.scoring.SCORES)

    def score_of(self, judge: str) -> str:
        """What `judge`'s scores are: r_s / p_zc (last token), verdict, or p_correct (a verifier)."""
        return self.score if judge == "last_token" else SCORE_OF_JUDGE.get(judge, VERIFIER_SCORE)


def load_run(generation_path: str | Path, judge_path: str | Path | None = None,
             verifier_paths: dict[str, str | Path] | None = None) -> Run:
    """Read `results/generations/{model}/{method}/{benchmark}.jsonl`, its generative-judge file
    and its external verifiers' files ({name: path}), each a judge of the run. The last-token
    score's kind is `scoring.score` of the `metadata.json` beside the file (r_s when absent)."""
    path = Path(generation_path)
    records = read_jsonl(path)
    meta = path.parent / "metadata.json"
    score = (read_json(meta).get("scoring") or {}).get("score", "r_s") if meta.exists() else "r_s"
    run = Run(path.parts[-3], path.parts[-2], path.stem, records, score=score)
    for line, rec in enumerate(records, 1):
        if "self_rewarding_scores" not in rec:
            raise InputError(f"{path}:{line}: no self_rewarding_scores (file not scored)")
    run.judges["last_token"] = [r["self_rewarding_scores"] for r in records]
    if judge_path is not None:
        run.judges["generative"] = _judge_scores(judge_path, "judge_scores", path, records)
    for name, vpath in sorted((verifier_paths or {}).items()):
        run.judges[name] = _judge_scores(vpath, "verifier_scores", path, records)
    return run


def _judge_scores(path, field: str, generation_path: Path, records: list[dict]) -> list[list[float]]:
    judged = read_jsonl(path, required=[field])
    if len(judged) != len(records) or any(j.get("id") != r.get("id") for j, r in zip(judged, records)):
        raise InputError(f"{path}: records do not match {generation_path} (ids/order)")
    for line, (j, r) in enumerate(zip(judged, records), 1):
        if len(j[field]) != len(r["responses"]):
            raise InputError(f"{path}, line {line}: {len(j[field])} {field} for {len(r['responses'])} responses")
    return [j[field] for j in judged]


def _average_rows(df: pd.DataFrame, value_cols: list[str]) -> pd.DataFrame:
    """benchmark = 'average': the mean over benchmarks of each column. F1 = 0 of a benchmark
    with an empty class counts (official); NaN cells (benchmarks without responses) are skipped."""
    if df.empty:
        return df
    keys = ["model", "method", "judge", "score"]
    avg = df.groupby(keys, sort=False)[value_cols].mean(numeric_only=True).reset_index()
    avg["benchmark"] = "average"
    return avg


def main_table(runs: list[Run], threshold: float = 0.5) -> pd.DataFrame:
    """The paper's Table 1, long: one row per (model, method, benchmark, judge) + averages."""
    rows = []
    for run in runs:
        base = metrics.summary_row(run.records, model=run.model, method=run.method, benchmark=run.benchmark)
        lengths = [n for r in run.records for n in r.get("response_lengths", [])]
        for judge, scores in run.judges.items():
            rows.append({**base, "judge": judge, "score": run.score_of(judge),
                         "n_responses": sum(len(r["acc_list"]) for r in run.records),
                         **metrics.verification_row(run.records, scores, threshold),
                         "mean_length": sum(lengths) / len(lengths) if lengths else math.nan})
    cols = ["model", "method", "benchmark", "judge", "score", "n_problems", "n_samples", "n_responses", "accuracy",
            "f1_filtered", "f1_all", "true_acc", "false_acc", "judgement_acc", "boxed", "finished", "mean_length"]
    df = pd.DataFrame(rows, columns=cols)
    values = ["accuracy", "f1_filtered", "f1_all", "true_acc", "false_acc", "judgement_acc", "boxed",
              "finished", "mean_length"]
    avg = _average_rows(df, values)
    if not avg.empty:
        counts = df.groupby(["model", "method", "judge", "score"], sort=False)[["n_problems", "n_responses"]].sum()
        avg = avg.join(counts, on=["model", "method", "judge", "score"])
        df = pd.concat([df, avg], ignore_index=True)[cols]
    return df.astype({"n_problems": "Int64", "n_samples": "Int64", "n_responses": "Int64"})


def table1(main: pd.DataFrame) -> pd.DataFrame:
    """Wide layout of Table 1: rows (model, method, judge, score), columns accuracy and F1 per benchmark."""
    index_cols = ["model", "method", "judge", "score"]
    if main.empty:
        return pd.DataFrame(columns=index_cols)
    wide = main.pivot_table(index=index_cols, columns="benchmark",
                            values=["accuracy", "f1_filtered"], sort=False, dropna=False)
    order = list(dict.fromkeys(main["benchmark"]))
    wide = wide.reindex(columns=[(v, b) for v in ("accuracy", "f1_filtered") for b in order])
    wide.columns = [f"{'acc' if v == 'accuracy' else 'f1'}_{b}" for v, b in wide.columns]
    index = main[index_cols].drop_duplicates()
    return index.merge(wide.reset_index(), on=index_cols)


def scaling_table(runs: list[Run], *, n_subsets: int, seed: int) -> pd.DataFrame:
    rows = []
    for run in runs:
        for judge, scores in run.judges.items():
            for point in metrics.scaling_curve(run.records, scores, n_subsets=n_subsets, seed=seed):
                rows.append({"model": run.model, "method": run.method, "benchmark": run.benchmark,
                             "judge": judge, **point})
    return pd.DataFrame(rows, columns=KEYS + ["k", "n_subsets", "majority", "weighted", "best_of_k"])


def calibration_length_table(runs: list[Run], n_bins: int = 10) -> pd.DataFrame:
    rows = [{"model": run.model, "method": run.method, "benchmark": run.benchmark, "judge": judge,
             **metrics.calibration_row(run.records, scores, n_bins)}
            for run in runs for judge, scores in run.judges.items()]
    return pd.DataFrame(rows, columns=KEYS + ["n_scored", "ece", "auroc", "auroc_within", "spearman_length",
                                              "mean_score_correct", "mean_score_incorrect"])


def c_ref_table(paths: list[str | Path]) -> pd.DataFrame:
    rows = []
    for p in map(Path, paths):
        cal = read_json(p)
        rows.append({"model": p.stem, "token": cal["token"], "token_id": cal["token_id"], "n": cal["n"],
                     "n_sampled": cal["n_sampled"], "c_ref_mean": cal["c_ref_mean"], "c_ref_std": cal["c_ref_std"],
                     "min": cal["min"], "max": cal["max"]})
    return pd.DataFrame(rows, columns=["model", "token", "token_id", "n", "n_sampled", "c_ref_mean", "c_ref_std",
                                       "min", "max"])


def ablations_table(main: pd.DataFrame, reference: str = "laser") -> pd.DataFrame:
    """Average accuracy and last-token F1 of every method (`score`: r_s, or p_zc for the SFT
    ablation), and the difference to `reference`."""
    avg = main[(main["benchmark"] == "average") & (main["judge"] == "last_token")]
    out = avg[["model", "method", "score", "accuracy", "f1_filtered", "f1_all"]].rename(
        columns={"accuracy": "avg_accuracy", "f1_filtered": "avg_f1_filtered", "f1_all": "avg_f1_all"})
    out = out.reset_index(drop=True)
    for col in ("avg_accuracy", "avg_f1_filtered"):
        ref = out[out["method"] == reference].set_index("model")[col]
        out[f"delta_{col.removeprefix('avg_')}"] = out[col] - out["model"].map(ref)
    return out


def pooled_scores(runs: list[Run], judge: str = "last_token") -> dict[tuple[str, str], list[tuple[float, bool]]]:
    """(score, correct) of every solution with a boxed answer, per (model, method), benchmarks pooled."""
    pooled: dict[tuple, list] = {}
    for run in runs:
        pooled.setdefault((run.model, run.method), []).extend(
            (s, c) for s, c, b, _ in metrics.flat(run.records, run.judges[judge]) if b)
    return pooled


def reliability_table(runs: list[Run], n_bins: int = 10, judge: str = "last_token") -> pd.DataFrame:
    """Reliability-diagram bins of clip(r_s, 0, 1) per (model, method), benchmarks pooled."""
    out = []
    for (model, method), rows in pooled_scores(runs, judge).items():
        for b in metrics.reliability_bins([min(max(s, 0.0), 1.0) for s, _ in rows], [c for _, c in rows], n_bins):
            out.append({"model": model, "method": method, **b})
    return pd.DataFrame(out, columns=["model", "method", "bin_lo", "bin_hi", "count", "mean_prob", "accuracy"])


def verifiers_table(main: pd.DataFrame, calibration: pd.DataFrame) -> pd.DataFrame:
    """External verifiers next to LaSeR's self-reward (docs/paper.md, Evaluation protocol): for every (model,
    method) some verifier judged, one row per benchmark and judge (r_s and each verifier), + averages."""
    cols = KEYS + ["score", "n_responses", "f1_filtered", "f1_all", "true_acc", "false_acc", "judgement_acc", "ece",
                   "auroc"]
    per = main[main["benchmark"] != "average"]
    judged = per.loc[~per["judge"].isin(BUILTIN_JUDGES), ["model", "method"]].drop_duplicates()
    if judged.empty:
        return pd.DataFrame(columns=cols)
    rows = per.merge(judged, on=["model", "method"])
    rows = rows[rows["judge"] != "generative"].merge(calibration[KEYS + ["ece", "auroc"]], on=KEYS, how="left")[cols]
    avg = _average_rows(rows, cols[6:])
    avg = avg.join(rows.groupby(["model", "method", "judge", "score"], sort=False)["n_responses"].sum(),
                   on=["model", "method", "judge", "score"])
    return pd.concat([rows, avg], ignore_index=True)[cols].astype({"n_responses": "Int64"})


def all_tables(runs: list[Run], calibration_paths: list, *, threshold: float = 0.5, n_subsets: int = 64,
               seed: int = 0, ece_bins: int = 10, reference_method: str = "laser") -> dict[str, pd.DataFrame]:
    """Every table under results/tables/, by name."""
    main = main_table(runs, threshold=threshold)
    calibration = calibration_length_table(runs, ece_bins)
    return {
        "main": main,
        "table1": table1(main),
        "scaling": scaling_table(runs, n_subsets=n_subsets, seed=seed),
        "calibration_length": calibration,
        "reliability": reliability_table(runs, ece_bins),
        "c_ref": c_ref_table(calibration_paths),
        "ablations": ablations_table(main, reference_method),
        "verifiers": verifiers_table(main, calibration),
    }


# ---------------------------------------------------------------- writing, and the tables of records

def write_table(df, csv_path: str | Path, float_format: str = "%.4f") -> None:
    """Write `df` as CSV plus .md and .tex beside it (atomically)."""
    csv_path = Path(csv_path)
    write_text(csv_path, df.to_csv(index=False, float_format=float_format))
    write_text(csv_path.with_suffix(".md"), df.to_markdown(index=False, floatfmt=".4f") + "\n")
    write_text(csv_path.with_suffix(".tex"),
               df.to_latex(index=False, float_format=lambda x: f"{x:.4f}", escape=True))


def _shown(text: str | None) -> str | None:
    """A prompt suffix as a JSON string literal, so leading spaces and newlines stay visible."""
    import json

    return None if text is None else json.dumps(text, ensure_ascii=False)


def prompts_table(metadata_paths: list[str | Path]):
    """The prompts behind every result: one row per checkpoint (model, method) from
    `results/generations/{model}/{method}/metadata.json`, with ``eval_suffix`` (appended to each
    benchmark problem at evaluation), ``train_suffix`` (of the training prompts; empty where the
    training data brings its own) and ``dataset_prompts`` (benchmarks evaluated with their own
    chat prompts instead). Suffixes are shown as JSON string literals ("" = the bare problem)."""
    import pandas as pd

    from .io import InputError, read_json

    cols = ["model", "method", "eval_suffix", "train_suffix", "dataset_prompts"]
    rows = []
    for path in metadata_paths:
        path = Path(path)
        prompt = read_json(path).get("prompt")
        if not isinstance(prompt, dict) or "eval_suffix" not in prompt:
            raise InputError(f"{path}: no 'prompt' record (written before prompts were recorded); "
                             f"rerun the generate rule")
        rows.append({"model": path.parts[-3], "method": path.parts[-2], "eval_suffix": _shown(prompt["eval_suffix"]),
                     "train_suffix": _shown(prompt.get("train_suffix")),
                     "dataset_prompts": " ".join(prompt.get("dataset_prompts") or [])})
    return pd.DataFrame(rows, columns=cols)


def job_times_table(jobs: list[dict]):
    """Wall time and peak memory of every job, from Snakemake's benchmark files: `jobs` lists
    {rule, wildcards, benchmark}; jobs without a file (run before the rule had a benchmark
    directive) are left out. ``seconds`` is the job's wall time, ``cpu_seconds`` its CPU time and
    ``max_rss_mb`` its peak resident memory (MB), as Snakemake measured them over the job's process
    tree (NaN where it could not)."""
    import pandas as pd

    cols = ["rule", "wildcards", "seconds", "cpu_seconds", "max_rss_mb"]
    rows = []
    for job in jobs:
        path = Path(job["benchmark"])
        if not path.is_file():
            continue
        bench = pd.read_csv(path, sep="\t", na_values=["NA", "-"]).iloc[-1]  # one row (no repeat())
        rows.append({"rule": job["rule"], "wildcards": job["wildcards"], "seconds": bench["s"],
                     "cpu_seconds": bench.get("cpu_time"), "max_rss_mb": bench.get("max_rss")})
    return pd.DataFrame(rows, columns=cols)
