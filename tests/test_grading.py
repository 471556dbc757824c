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


# ---------------------------------------------------------------- grading.extraction: official

def _official_oracle(response: str, gold) -> tuple[str | None, bool]:
    """The official evaluation's grading, transcribed from RUCBM/LaSeR src/eval_math.py at
    48996f7 (MIT): strip, cut after the first </answer>, remove_boxed(last_boxed_only_string(.)),
    then math-verify of the boxed strings."""
    from math_verify import parse, verify

    response = response.strip()
    if "</answer>" in response:
        response = response.split("</answer>")[0] + "</answer>"
    idx = response.rfind("\\boxed")
    if idx < 0:
        idx = response.rfind("\\fbox")
    span = None
    if idx >= 0:
        opened = 0
        for i in range(idx, len(response)):
            if response[i] == "{":
                opened += 1
            if response[i] == "}":
                opened -= 1
                if opened == 0:
                    span = response[idx:i + 1]
                    break
    pred = span[len("\\boxed{"):-1] if span and span.startswith("\\boxed{") and span.endswith("}") else None
    if pred is None:
        return None, False
    return pred, bool(verify(parse("\\boxed{" + str(gold) + "}"), parse("\\boxed{" + pred + "}")))


@pytest.mark.parametrize("text, lenient, official", [
    ("so \\boxed{42}.", "42", "42"),
    ("\\fbox{7}", "7", None),  # official remove_boxed accepts only "\boxed{...}"
    ("\\boxed 5$", "5", None),
    ("\\boxed{3} then \\boxed 5$", "5", None),  # the last \boxed decides, brace-less or not
    ("\\boxed 5 and later {x}", "5", None),
    ("\\boxed{3} and \\fbox{4}", "3", "3"),
    ("nested \\boxed{\\sqrt{\\frac{a}{b}}} end", "\\sqrt{\\frac{a}{b}}", "\\sqrt{\\frac{a}{b}}"),
    ("\\boxed{unbalanced", None, None),
    ("empty \\boxed{}", "", ""),
])
def test_extractions(text, lenient, official):
    from laser.grading import official_boxed

    assert last_boxed(text) == lenient
    assert official_boxed(text) == official
    assert _official_oracle(text, "0")[0] == official


def test_official_grading_on_the_forms_only_lenient_accepts():
    from laser.grading import grade_response

    assert grade_response("so \\fbox{7}", "7", "lenient") == ("7", True)
    assert grade_response("so \\fbox{7}", "7", "official") == (None, False)
    assert grade_response("\\boxed 7$", "7", "lenient") == ("7", True)
    assert grade_response("\\boxed 7$", "7", "official") == (None, False)
    # ORZ-style output that goes on after its answer: the official evaluation grades up to </answer>
    orz = "<think>...</think> <answer>\\boxed{4}</answer> Wait, maybe \\boxed{5}"
    assert grade_response(orz, "4", "official") == ("4", True)
    assert grade_response(orz, "4", "lenient") == ("5", False)
    # the training reward (verl's math_verify.compute_score) has no </answer> cut
    assert grade(orz, "5", extraction="official") == ("5", True)
    assert grade(orz, "5", format_gate=True, extraction="official") == ("5", False)  # two \boxed{
    assert grade("\\boxed{70}", 70, extraction="official") == ("70", True)  # AIME25's JSON numbers
    with pytest.raises(ValueError, match="grading.extraction"):
        grade("\\boxed{1}", "1", extraction="strict")


def test_official_extraction_matches_the_official_code_on_random_text():
    """Random strings of boxes, braces, spaces and </answer>: same prediction and verdict as the
    transcribed official code."""
    import random

    from laser.grading import grade_response

    pieces = ["\\boxed", "\\boxed{", "\\boxed{5}", "\\fbox", "\\fbox{5}", "{", "}", " ", "5", "x",
              "\\frac{1}{2}", "</answer>", "$", "\n", "0.5"]
    rng = random.Random(0)
    seen = set()
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        ours, theirs = grade_response(text, "5", "official"), _official_oracle(text, "5")
        assert ours == theirs, text
        seen.add((ours[0] is not None, ours[1]))
    assert seen == {(False, False), (True, False), (True, True)}  # every outcome occurred
