import re

import pytest

from laser.grading import answers_equivalent, grade, last_boxed
from laser.io import read_jsonl


@pytest.mark.parametrize("text, expected", [
    ("so \\boxed{42}.", "42"),
    ("\\boxed{1} then \\boxed{2}", "2"),
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("nested \\boxed{\\sqrt{\\frac{a}{b}}} end", "\\sqrt{\\frac{a}{b}}"),
    ("\\fbox{7}", "7"),
    ("\\boxed 5$", "5"),
    ("no answer here", None),
    ("\\boxed{unbalanced", None),
])
def test_last_boxed(text, expected):
    assert last_boxed(text) == expected


def test_boxed_preferred_over_fbox():
    assert last_boxed("\\boxed{3} and \\fbox{4}") == "3"


def test_grade_equivalence_and_gate():
    assert grade("thus \\boxed{\\frac12}", "0.5") == ("\\frac12", True)
    assert grade("\\boxed{7}", "8") == ("7", False)
    assert grade("nothing boxed", "8") == (None, False)
    # the training reward's format gate: exactly one \boxed{
    assert grade("\\boxed{1} \\boxed{2}", "2")[1] is True
    assert grade("\\boxed{1} \\boxed{2}", "2", format_gate=True) == ("2", False)
    assert grade("\\boxed{2}", "2", format_gate=True) == ("2", True)


def _perturb(answer: str) -> str | None:
    """Change the first number of an answer (e.g. 12 -> 13); None if it has no digit."""
    m = re.search(r"\d+", answer)
    if not m:
        return None
    return answer[:m.start()] + str(int(m.group()) + 1) + answer[m.end():]


def test_math500_reference_solutions_agree_with_answers(benchmarks_dir):
    recs = read_jsonl(benchmarks_dir / "math500" / "test.jsonl", required=("problem", "answer"))
    assert len(recs) == 500
    agree = sum(grade(r["solution"], r["answer"])[1] for r in recs)
    assert agree / len(recs) >= 0.98, f"only {agree}/500 reference solutions verified"


def test_math500_perturbed_answers_rejected(benchmarks_dir):
    recs = read_jsonl(benchmarks_dir / "math500" / "test.jsonl")
    checked = rejected = 0
    for r in recs:
        wrong = _perturb(r["answer"])
        if wrong is None:
            continue
        checked += 1
        rejected += not answers_equivalent(r["answer"], wrong)
    assert checked > 400
    assert rejected / checked >= 0.98, f"{checked - rejected} perturbed answers accepted"


@pytest.mark.parametrize("bench", ["amc23", "aime24"])
def test_integer_benchmarks_self_consistent(benchmarks_dir, bench):
    recs = read_jsonl(benchmarks_dir / bench / "test.jsonl", required=("problem", "answer"))
    for r in recs:
        assert grade(f"The answer is \\boxed{{{r['answer']}}}.", r["answer"])[1]
        assert not grade(f"\\boxed{{{_perturb(str(r['answer']))}}}", r["answer"])[1]
