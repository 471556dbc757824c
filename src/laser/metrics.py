"""Metrics over generation records (official LaSeR format)."""

from __future__ import annotations


def accuracy(records: list[dict]) -> float:
    """Mean correctness over problems x samples (the paper's accuracy); NaN for no samples."""
    flags = [bool(a) for r in records for a in r["acc_list"]]
    return sum(flags) / len(flags) if flags else float("nan")


def finished_rate(records: list[dict]) -> float:
    flags = [bool(f) for r in records for f in r.get("finished", [])]
    return sum(flags) / len(flags) if flags else float("nan")


def boxed_rate(records: list[dict]) -> float:
    flags = [p is not None for r in records for p in r["pred_answers"]]
    return sum(flags) / len(flags) if flags else float("nan")


def summary_row(records: list[dict], **keys) -> dict:
    n = [len(r["acc_list"]) for r in records]
    return {**keys, "n_problems": len(records), "n_samples": max(n) if n else 0,
            "accuracy": accuracy(records), "boxed": boxed_rate(records),
            "finished": finished_rate(records)}
