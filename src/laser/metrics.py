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


def self_verification(scores, correct, threshold: float = 0.5) -> dict:
    """The paper's self-verification metrics: true_acc = share of correct solutions judged
    correct (score > threshold), false_acc = share of incorrect ones judged incorrect,
    F1 = their harmonic mean (0 when both are 0), acc = overall agreement.
    A class with no members gives NaN for its rate and for F1."""
    pairs = list(zip(scores, correct))
    pos = [s > threshold for s, c in pairs if c]
    neg = [s <= threshold for s, c in pairs if not c]
    true_acc = sum(pos) / len(pos) if pos else float("nan")
    false_acc = sum(neg) / len(neg) if neg else float("nan")
    if pos and neg:
        f1 = 2 * true_acc * false_acc / (true_acc + false_acc) if true_acc + false_acc else 0.0
    else:
        f1 = float("nan")
    acc = (sum(pos) + sum(neg)) / len(pairs) if pairs else float("nan")
    return {"true_acc": true_acc, "false_acc": false_acc, "f1": f1, "acc": acc}
