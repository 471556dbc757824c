import pytest

from laser import tasks
from laser.grading import grade


def test_solutions_are_correct_and_boxed_once():
    for rec in tasks.generate(list(tasks.TIERS), 600, seed=3):
        pred, ok = grade(rec["solution"], rec["answer"], format_gate=True)
        assert ok, rec
        assert rec["solution"].count("\\boxed{") == 1


def test_deterministic_and_seed_dependent():
    a = tasks.generate(["easy", "hard"], 50, seed=1)
    assert a == tasks.generate(["easy", "hard"], 50, seed=1)
    assert a != tasks.generate(["easy", "hard"], 50, seed=2)


def test_distinct_and_excluding():
    first = tasks.generate(["medium"], 200, seed=0)
    texts = {r["problem"] for r in first}
    assert len(texts) == 200
    second = tasks.generate(["medium"], 200, seed=0, exclude=texts)
    assert not texts & {r["problem"] for r in second}


def test_tiers_differ_in_difficulty():
    # harder tiers have longer solutions (more column steps)
    mean_len = {t: sum(len(r["solution"]) for r in tasks.generate([t], 200, seed=0)) / 200
                for t in tasks.TIERS}
    assert mean_len["easy"] < mean_len["medium"] < mean_len["hard"]


def test_column_arithmetic_examples():
    assert tasks._columns(47, 38, "+") == ("7+8+0=15, 4+3+1=8", 85)
    assert tasks._columns(54, 38, "-") == ("14-8-0=6, 5-3-1=1", 16)
    assert tasks._columns(95, 17, "+")[1] == 112


def test_unknown_tier():
    with pytest.raises(ValueError, match="unknown difficulty tier"):
        tasks.generate(["impossible"], 1, seed=0)


def test_exhausted_space_is_an_error():
    with pytest.raises(ValueError, match="exhausted"):
        tasks.generate(["easy"], 10**6, seed=0)


def test_slipped_solutions_are_wrong_in_one_step_and_consistent_after_it():
    """sft.verification_pairs' incorrect solutions: exactly one step's result differs from the
    reference solution's, the answer is wrong, and each later step follows from the slip (the
    carries and the boxed answer are what the slipped step gives), as in the model's own errors."""
    import random
    import re

    rng = random.Random(0)
    for rec in tasks.generate(list(tasks.TIERS), 400, seed=5):
        slipped = tasks.slipped_solution(rec["problem"], rng)
        pred, ok = grade(slipped, rec["answer"], format_gate=True)
        assert pred is not None and not ok, (rec, slipped)
        right, wrong = (re.split(r", | = |, so ", x.split(" \\boxed")[0]) for x in (rec["solution"], slipped))
        assert len(right) == len(wrong)
        first = next(i for i, (a, b) in enumerate(zip(right, wrong)) if a != b)
        assert right[:first] == wrong[:first]  # the steps before the slip are the reference's
        if "=" in right[first]:  # a column step: the same digits, a wrong result
            assert right[first].split("=")[0] == wrong[first].split("=")[0]
        m = re.fullmatch(r"(?:Compute|What is) (\d+) (?:\+|plus) (\d+)[.?]", rec["problem"])
        if m:  # a sum: the slipped columns recompute to the boxed answer
            steps = [tuple(map(int, re.fullmatch(r"(\d+)\+(\d+)\+(\d+)=(\d+)", s).groups()))
                     for s in slipped.split(". \\boxed")[0].split(", ")]
            carry, digits = 0, []
            for x, y, c, r in steps:
                assert c == carry  # the carry the previous (maybe slipped) step gives
                digits.append(r % 10)
                carry = r // 10
            assert int("".join(map(str, ([carry] if carry else []) + digits[::-1]))) == int(pred)
    with pytest.raises(ValueError, match="not a synthetic arithmetic problem"):
        tasks.slipped_solution("What is 2 + 2?", rng)
