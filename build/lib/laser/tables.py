"""Tables under results/tables/: one CSV per analysis, also rendered as Markdown and LaTeX."""

from __future__ import annotations

from pathlib import Path

from .io import write_text


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
