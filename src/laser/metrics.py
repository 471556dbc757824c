"""Metrics over generation records (official LaSeR format), docs/paper.md, Method.

A judge's `scores` are one list per record aligned with ``responses``: the last-token judge's
``self_rewarding_scores`` (r_s; p(z_c) for the SFT ablation) or the generative judge's 0/1
``judge_scores``. "filtered" means the responses with a boxed answer (the ones a judge scores),
"all" every response.
"""

from __future__ import annotations

import itertools
import math
import random

NAN = float("nan")


def _mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else NAN


def accuracy(records: list[dict]) -> float:
    """Mean correctness over problems x samples (the paper's accuracy); NaN for no samples."""
    return _mean(bool(a) for r in records for a in r["acc_list"])


def finished_rate(records: list[dict]) -> float:
    return _mean(bool(f) for r in records for f in r.get("finished", []))


def boxed_rate(records: list[dict]) -> float:
    return _mean(p is not None for r in records for p in r["pred_answers"])


def summary_row(records: list[dict], **keys) -> dict:
    n = [len(r["acc_list"]) for r in records]
    return {**keys, "n_problems": len(records), "n_samples": max(n) if n else 0,
            "accuracy": accuracy(records), "boxed": boxed_rate(records),
            "finished": finished_rate(records)}


def self_verification(scores, correct, threshold: float = 0.5, *, no_pairs: float = NAN) -> dict:
    """The paper's self-verification metrics, as the official code computes them
    (``calculate_self_rewarding_scores.py``): true_acc = share of correct solutions judged
    correct (score > threshold), false_acc = share of incorrect ones judged incorrect,
    F1 = their harmonic mean (0 when both are 0), acc = overall agreement.

    A class with no members counts 0.0 for its rate (official), so F1 is 0 whenever all
    solutions are correct or all incorrect, and that 0 enters averages. With no pairs at all
    every value is `no_pairs` (NaN by default: nothing was judged)."""
    pairs = list(zip(scores, correct))
    if not pairs:
        return dict.fromkeys(("true_acc", "false_acc", "f1", "acc"), no_pairs)
    pos = [s > threshold for s, c in pairs if c]
    neg = [s <= threshold for s, c in pairs if not c]
    true_acc = sum(pos) / len(pos) if pos else 0.0
    false_acc = sum(neg) / len(neg) if neg else 0.0
    f1 = 2 * true_acc * false_acc / (true_acc + false_acc) if true_acc + false_acc else 0.0
    return {"true_acc": true_acc, "false_acc": false_acc, "f1": f1, "acc": (sum(pos) + sum(neg)) / len(pairs)}


def flat(records: list[dict], scores: list[list[float]]):
    """(score, correct, boxed, length) of every response."""
    for rec, sc in zip(records, scores):
        lengths = rec.get("response_lengths") or [len(t) for t in rec["responses"]]
        yield from zip(sc, map(bool, rec["acc_list"]), (p is not None for p in rec["pred_answers"]), lengths)


def boxed_slots(records: list[dict]) -> list[tuple[int, int]]:
    """(record, response) indices of every response with a boxed answer: the ones judges score."""
    return [(i, j) for i, rec in enumerate(records) for j, pred in enumerate(rec["pred_answers"]) if pred is not None]


def place(records: list[dict], slots: list[tuple[int, int]], values: list, fill) -> list[list]:
    """Per-record lists aligned with ``responses``: `values` at `slots`, `fill` elsewhere."""
    out = [[fill] * len(rec["responses"]) for rec in records]
    for (i, j), v in zip(slots, values):
        out[i][j] = v
    return out


def unflatten(values: list, records: list[dict]) -> list[list]:
    """Values of every (record, response) pair, in order, regrouped per record."""
    out, i = [], 0
    for rec in records:
        n = len(rec["responses"])
        out.append(values[i:i + n])
        i += n
    return out


def verification_row(records: list[dict], scores: list[list[float]], threshold: float = 0.5) -> dict:
    """true_acc / false_acc / judgement accuracy (filtered) and F1 filtered and all.

    Official definition throughout (see `self_verification`). Only a benchmark without any
    response gives NaN (its accuracy is NaN too); one whose responses have no boxed answer
    gets 0.0 for the filtered values, as in the official code."""
    rows = list(flat(records, scores))
    empty = NAN if not rows else 0.0
    filt = self_verification([s for s, _, b, _ in rows if b], [c for _, c, b, _ in rows if b], threshold,
                             no_pairs=empty)
    every = self_verification([s for s, *_ in rows], [c for _, c, *_ in rows], threshold)
    return {"true_acc": filt["true_acc"], "false_acc": filt["false_acc"], "f1_filtered": filt["f1"],
            "f1_all": every["f1"], "judgement_acc": filt["acc"]}


def ece(probs, correct, n_bins: int = 10) -> float:
    """Expected calibration error of probabilities in [0, 1]: equal-width bins (the last one
    closed), sum over bins of |accuracy - mean probability| weighted by the bin's share."""
    pairs = list(zip(probs, correct))
    if not pairs:
        return NAN
    bins: dict[int, list] = {}
    for p, c in pairs:
        bins.setdefault(min(int(p * n_bins), n_bins - 1), []).append((p, bool(c)))
    return sum(len(b) / len(pairs) * abs(_mean(c for _, c in b) - _mean(p for p, _ in b)) for b in bins.values())


def reliability_bins(probs, correct, n_bins: int = 10) -> list[dict]:
    """Per bin: centre, count, mean probability, accuracy (the reliability diagram)."""
    bins = [[] for _ in range(n_bins)]
    for p, c in zip(probs, correct):
        bins[min(int(p * n_bins), n_bins - 1)].append((p, bool(c)))
    return [{"bin_lo": i / n_bins, "bin_hi": (i + 1) / n_bins, "count": len(b),
             "mean_prob": _mean(p for p, _ in b), "accuracy": _mean(c for _, c in b)} for i, b in enumerate(bins)]


def auroc(scores, correct) -> float:
    """Area under the ROC curve of `scores` separating correct from incorrect (ties count half)."""
    from scipy.stats import rankdata

    scores, correct = list(scores), list(map(bool, correct))
    n_pos = sum(correct)
    n_neg = len(correct) - n_pos
    if not n_pos or not n_neg:
        return NAN
    ranks = rankdata(scores)
    return (sum(r for r, c in zip(ranks, correct) if c) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def spearman(x, y) -> float:
    from scipy.stats import spearmanr

    x, y = list(x), list(y)
    if len(x) < 2 or len(set(x)) < 2 or len(set(y)) < 2:
        return NAN
    return float(spearmanr(x, y).statistic)


def auroc_within(records: list[dict], scores: list[list[float]]) -> float:
    """AUROC over pairs (correct, incorrect) of boxed solutions *of the same problem*: whether the
    score ranks solutions of one problem (what voting needs), not problem difficulty."""
    pairs = wins = 0.0
    for rec, sc in zip(records, scores):
        rows = [(s, c) for s, c, b, _ in flat([rec], [sc]) if b]
        for x, _ in (r for r in rows if r[1]):
            for y, _ in (r for r in rows if not r[1]):
                pairs += 1
                wins += 1.0 if x > y else 0.5 if x == y else 0.0
    return wins / pairs if pairs else NAN


def calibration_row(records: list[dict], scores: list[list[float]], n_bins: int = 10) -> dict:
    """ECE of clip(score, 0, 1), AUROC (pooled and within problems), Spearman(score, length)
    over the scored (boxed) responses."""
    rows = [(s, c, n) for s, c, b, n in flat(records, scores) if b]
    probs = [min(max(s, 0.0), 1.0) for s, _, _ in rows]
    correct = [c for _, c, _ in rows]
    return {"n_scored": len(rows), "ece": ece(probs, correct, n_bins), "auroc": auroc([s for s, *_ in rows], correct),
            "auroc_within": auroc_within(records, scores),
            "spearman_length": spearman([s for s, *_ in rows], [n for *_, n in rows]),
            "mean_score_correct": _mean(s for s, c, _ in rows if c),
            "mean_score_incorrect": _mean(s for s, c, _ in rows if not c)}


# ---------------------------------------------------------------- inference-time scaling

def answer_clusters(preds: list[str | None]) -> list[int | None]:
    """Cluster id of every prediction, grouping math-verify-equivalent answers (None: no answer)."""
    from .grading import answers_equivalent

    reps: list[str] = []
    ids: list[int | None] = []
    for p in preds:
        if p is None:
            ids.append(None)
            continue
        for k, rep in enumerate(reps):
            if answers_equivalent(rep, p):
                ids.append(k)
                break
        else:
            reps.append(p)
            ids.append(len(reps) - 1)
    return ids


def vote(clusters: list[int | None], correct: list[bool], weights: list[float] | None = None) -> float:
    """Correctness of the voted answer: each answered solution votes for its cluster with its weight
    (1 for plain majority voting). Ties in weight are broken by the number of votes; remaining
    ties give the mean correctness of the tied answers (the expected score of a fair coin).
    A cluster is as correct as its first member. No answer at all: 0."""
    total: dict[int, list[float]] = {}
    first: dict[int, bool] = {}
    for i, (k, c) in enumerate(zip(clusters, correct)):
        if k is None:
            continue
        w = 1.0 if weights is None else weights[i]
        t = total.setdefault(k, [0.0, 0])
        t[0] += w
        t[1] += 1
        first.setdefault(k, bool(c))
    if not total:
        return 0.0
    best = max((w, n) for w, n in total.values())
    winners = [k for k, (w, n) in total.items() if math.isclose(w, best[0], abs_tol=1e-12) and n == best[1]]
    return _mean(first[k] for k in winners)


def best_of(scores: list[float], correct: list[bool], answered: list[bool]) -> float:
    """Correctness of the answered solution with the highest score (ties: mean); none answered: 0."""
    cand = [(s, c) for s, c, a in zip(scores, correct, answered) if a]
    if not cand:
        return 0.0
    top = max(s for s, _ in cand)
    return _mean(bool(c) for s, c in cand if s == top)


def scaling_ks(n: int) -> list[int]:
    """1, 2, 4, ... below n, then n."""
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    return ks + [n] if n else []


def scaling_curve(records: list[dict], scores: list[list[float]], *, n_subsets: int, seed: int) -> list[dict]:
    """Majority voting, score-weighted majority voting (weights clip(score, 0, 1)) and best-of-k by
    score, for k = 1, 2, 4, ... n: mean over problems of the mean over subsets of size k
    (all subsets when there are at most `n_subsets` of them, else `n_subsets` random ones)."""
    if not records:
        return []
    n = min(len(r["acc_list"]) for r in records)
    rng = random.Random(seed)
    prepared = [(answer_clusters(r["pred_answers"][:n]), list(map(bool, r["acc_list"][:n])),
                 list(sc[:n]), [p is not None for p in r["pred_answers"][:n]],
                 [min(max(x, 0.0), 1.0) for x in sc[:n]]) for r, sc in zip(records, scores)]
    out = []
    for k in scaling_ks(n):
        per = {"majority": [], "weighted": [], "best_of_k": []}
        n_sub = math.comb(n, k)
        for clusters, correct, sc, answered, weights in prepared:
            subsets = (list(itertools.combinations(range(n), k)) if n_sub <= n_subsets
                       else [sorted(rng.sample(range(n), k)) for _ in range(n_subsets)])
            m, w, b = [], [], []
            for s in subsets:
                cl, co, scs, an, ws = ([xs[i] for i in s] for xs in (clusters, correct, sc, answered, weights))
                m.append(vote(cl, co))
                w.append(vote(cl, co, ws))
                b.append(best_of(scs, co, an))
            per["majority"].append(_mean(m))
            per["weighted"].append(_mean(w))
            per["best_of_k"].append(_mean(b))
        out.append({"k": k, "n_subsets": min(n_sub, n_subsets), **{key: _mean(v) for key, v in per.items()}})
    return out
