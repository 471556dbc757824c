"""Metrics recomputed by hand on small fixtures, edge cases included."""

import math

import pytest

from laser import metrics


def rec(preds, acc, scores=None, lengths=None):
    r = {"pred_answers": preds, "acc_list": acc, "responses": ["x"] * len(acc)}
    if lengths is not None:
        r["response_lengths"] = lengths
    return r, scores


def test_self_verification_by_hand():
    sv = metrics.self_verification([0.9, 0.2, 0.7, 0.1], [True, True, False, False])
    assert sv == {"true_acc": 0.5, "false_acc": 0.5, "f1": 0.5, "acc": 0.5}
    sv = metrics.self_verification([0.9, 0.6, 0.5], [True, True, False])  # 0.5 is not above 0.5
    assert sv["true_acc"] == 1.0 and sv["false_acc"] == 1.0 and sv["f1"] == 1.0


def test_f1_filtered_and_all_by_hand():
    r, s = rec(["1", "2", None], [True, False, False], [0.8, 0.6, 0.0])
    row = metrics.verification_row([r], [s])
    # filtered: correct judged correct (1/1), incorrect boxed judged correct (0/1) -> F1 0
    assert row["true_acc"] == 1.0 and row["false_acc"] == 0.0 and row["f1_filtered"] == 0.0
    # all: the unboxed one (score 0) is a correctly rejected incorrect solution: false_acc 1/2
    assert row["f1_all"] == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert row["judgement_acc"] == 0.5


def test_empty_class_counts_zero_as_officially():
    """calculate_self_rewarding_scores.py: true_acc (false_acc) is 0.0 without correct (incorrect)
    solutions, so F1 = 0 even when every solution present is judged right."""
    assert metrics.self_verification([0.9, 0.8], [True, True]) == {"true_acc": 1.0, "false_acc": 0.0, "f1": 0.0,
                                                                   "acc": 1.0}
    assert metrics.self_verification([0.1, 0.2], [False, False]) == {"true_acc": 0.0, "false_acc": 1.0, "f1": 0.0,
                                                                     "acc": 1.0}
    nothing = metrics.self_verification([], [])  # no pairs at all: nothing was judged
    assert all(math.isnan(v) for v in nothing.values())
    assert metrics.self_verification([], [], no_pairs=0.0) == dict.fromkeys(("true_acc", "false_acc", "f1", "acc"), 0.0)


@pytest.mark.parametrize("acc,preds,expect", [
    # all correct, both judged: the empty incorrect class gives false_acc 0 -> F1 0 (filtered and all)
    ([True, True], ["1", "1"], {"true_acc": 0.5, "false_acc": 0.0, "f1_filtered": 0.0, "f1_all": 0.0,
                                "judgement_acc": 0.5}),
    # all incorrect: true_acc 0 -> F1 0
    ([False, False], ["1", "2"], {"true_acc": 0.0, "false_acc": 0.5, "f1_filtered": 0.0, "f1_all": 0.0,
                                  "judgement_acc": 0.5}),
    # responses but none boxed: the filtered values are the official 0.0, not NaN
    ([False, False], [None, None], {"true_acc": 0.0, "false_acc": 0.0, "f1_filtered": 0.0, "f1_all": 0.0,
                                    "judgement_acc": 0.0}),
], ids=["all_correct", "all_incorrect", "none_boxed"])
def test_f1_edge_cases_are_zero_not_nan(acc, preds, expect):
    r, s = rec(preds, acc, [0.9, 0.1])
    assert metrics.verification_row([r], [s]) == expect


def test_empty_benchmark():
    assert math.isnan(metrics.accuracy([]))
    assert all(math.isnan(v) for v in metrics.verification_row([], []).values())
    assert metrics.scaling_curve([], [], n_subsets=4, seed=0) == []
    assert math.isnan(metrics.calibration_row([], [])["ece"])


def test_accuracy_over_problems_times_samples():
    a, _ = rec(["1"] * 4, [True, True, True, False])
    b, _ = rec(["1"] * 2, [False, False])
    assert metrics.accuracy([a, b]) == pytest.approx(3 / 6)


def test_ece_by_hand():
    probs, correct = [0.05, 0.15, 0.95, 0.95], [False, False, True, False]
    # bins: [0, .1): |0 - .05| * 1/4; [.1, .2): |0 - .15| * 1/4; [.9, 1]: |.5 - .95| * 2/4
    assert metrics.ece(probs, correct) == pytest.approx(0.05 / 4 + 0.15 / 4 + 0.45 / 2)
    assert metrics.ece([1.0, 0.0], [True, False]) == 0.0  # 1.0 falls in the last bin
    bins = metrics.reliability_bins(probs, correct, 10)
    assert [b["count"] for b in bins] == [1, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert bins[9]["accuracy"] == 0.5 and bins[9]["mean_prob"] == pytest.approx(0.95)


def test_auroc_and_spearman_by_hand():
    # pairs (pos, neg): (.9,.8) (.9,.1) (.3,.8) (.3,.1) -> 3 of 4 ordered right
    assert metrics.auroc([0.9, 0.8, 0.3, 0.1], [True, False, True, False]) == 0.75
    assert metrics.auroc([0.5, 0.5], [True, False]) == 0.5
    assert math.isnan(metrics.auroc([0.5, 0.7], [True, True]))
    assert metrics.spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    assert math.isnan(metrics.spearman([1, 1, 1], [1, 2, 3]))


def test_calibration_row_uses_boxed_responses_only():
    r, s = rec(["1", "2", None], [True, False, False], [1.4, -0.2, 0.0], lengths=[10, 30, 50])
    row = metrics.calibration_row([r], [s])
    assert row["n_scored"] == 2
    assert row["ece"] == pytest.approx(0.0)  # clipped to 1.0 (correct) and 0.0 (incorrect)
    assert row["auroc"] == 1.0 and row["spearman_length"] == pytest.approx(-1.0)
    assert row["mean_score_correct"] == 1.4 and row["mean_score_incorrect"] == -0.2


def test_answer_clusters_use_math_verify_equivalence():
    assert metrics.answer_clusters(["1/2", "0.5", "3", None, "\\frac{1}{2}"]) == [0, 0, 1, None, 0]


def test_votes_by_hand_including_ties():
    cl = metrics.answer_clusters(["1", "2", "2"])
    assert metrics.vote(cl, [True, False, False]) == 0.0  # "2" has two votes
    assert metrics.vote(cl, [True, False, False], [0.9, 0.2, 0.3]) == 1.0  # 0.9 > 0.5
    tie = metrics.answer_clusters(["1", "2"])
    assert metrics.vote(tie, [True, False]) == 0.5  # a fair coin between the two
    assert metrics.vote(tie, [True, False], [0.9, 0.2]) == 1.0
    assert metrics.vote(tie, [True, False], [0.0, 0.0]) == 0.5  # weight tie, count tie
    assert metrics.vote(metrics.answer_clusters(["1", "2", "2"]), [True, False, False], [0.0] * 3) == 0.0  # count breaks it
    assert metrics.vote([None, None], [False, False]) == 0.0  # no boxed answer anywhere


def test_best_of():
    assert metrics.best_of([0.2, 0.9, 0.5], [False, True, False], [True, True, True]) == 1.0
    assert metrics.best_of([0.2, 0.9, 0.5], [False, True, False], [True, False, True]) == 0.0
    assert metrics.best_of([0.4, 0.4], [True, False], [True, True]) == 0.5
    assert metrics.best_of([0.4], [True], [False]) == 0.0


def test_scaling_curve_by_hand():
    r, s = rec(["1", "1", "2", "3"], [True, True, False, False], [0.9, 0.8, 0.1, 0.2])
    curve = {p["k"]: p for p in metrics.scaling_curve([r], [s], n_subsets=64, seed=0)}
    assert list(curve) == [1, 2, 4]
    assert curve[1]["majority"] == curve[1]["weighted"] == curve[1]["best_of_k"] == 0.5
    # the 6 pairs: {0,1} all right; 4 mixed pairs tie for majority (0.5 each) but weighted and
    # best-of-2 pick the correct one; {2,3} both wrong
    assert curve[2]["n_subsets"] == 6
    assert curve[2]["majority"] == pytest.approx(3 / 6)
    assert curve[2]["weighted"] == pytest.approx(5 / 6) and curve[2]["best_of_k"] == pytest.approx(5 / 6)
    assert curve[4] == {"k": 4, "n_subsets": 1, "majority": 1.0, "weighted": 1.0, "best_of_k": 1.0}


def test_scaling_random_subsets_are_seeded():
    r, s = rec([str(i % 3) for i in range(16)], [i % 3 == 0 for i in range(16)], [i / 16 for i in range(16)])
    a = metrics.scaling_curve([r], [s], n_subsets=5, seed=1)
    assert a == metrics.scaling_curve([r], [s], n_subsets=5, seed=1)
    assert [p["k"] for p in a] == [1, 2, 4, 8, 16] and a[2]["n_subsets"] == 5
    assert metrics.scaling_ks(6) == [1, 2, 4, 6] and metrics.scaling_ks(1) == [1]


def test_auroc_within_problems_ignores_difficulty():
    # problem a: every solution scores high, problem b low; within each, the correct one is lower
    a, sa = rec(["1", "2"], [True, False], [0.80, 0.90])
    b, sb = rec(["1", "2"], [True, False], [0.10, 0.20])
    assert metrics.auroc_within([a, b], [sa, sb]) == 0.0
    assert metrics.auroc([0.8, 0.9, 0.1, 0.2], [True, False, True, False]) == 0.25  # pooled: 1 of 4 pairs
    c, sc = rec(["1", "2", None], [True, False, False], [0.5, 0.5, 0.9])  # tie; unboxed ignored
    assert metrics.auroc_within([c], [sc]) == 0.5
    d, sd = rec(["1", "1"], [True, True], [0.3, 0.6])  # no incorrect solution: no pair
    assert math.isnan(metrics.auroc_within([d], [sd]))
