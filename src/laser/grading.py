"""Answer checking as the paper's evaluation (docs/paper.md, Evaluation protocol), in two extractions
(config key ``grading.extraction``):

- ``official``: as the official code (RUCBM/LaSeR ``src/eval_math.py`` and the verl training
  reward ``math_verify.compute_score``): the last ``\\boxed`` (else the last ``\\fbox``), cut at the
  first brace that closes; only a ``\\boxed{...}`` span is an answer, so ``\\fbox{7}`` and
  ``\\boxed 7`` are none; the evaluation first keeps a response up to its first ``</answer>``
  (Open-Reasoner-Zero's format). Equivalence: math-verify of ``\\boxed{gt}`` vs ``\\boxed{pred}``.
- ``lenient`` (the embedded default's): also ``\\fbox{...}`` and ``\\boxed 7``, no
  ``</answer>`` cut, and identical strings are equal without math-verify.

No answer means incorrect, and at test time not self-scored.
"""

from __future__ import annotations

import threading
from functools import lru_cache


def _timeout(seconds: int) -> int | None:
    # math-verify's timeouts use SIGALRM, which only works in the main thread.
    return seconds if threading.current_thread() is threading.main_thread() else None


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}`` when there is no boxed), or None."""
    for command in ("\\boxed", "\\fbox"):
        start = text.rfind(command)
        if start < 0:
            continue
        i = start + len(command)
        if text.startswith(" ", i):  # "\boxed 5" form
            rest = text[i + 1:]
            end = len(rest)
            for j, ch in enumerate(rest):
                if ch in "$ \n":
                    end = j
                    break
            return rest[:end] or None
        if not text.startswith("{", i):
            continue
        j = _closing_brace(text, i)
        return None if j is None else text[i + 1:j]  # unbalanced braces: no usable answer
    return None


def _closing_brace(text: str, start: int) -> int | None:
    """Index of the `}` that brings the brace count, counted from `start`, back to 0."""
    depth = 0
    for j in range(start, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return None


@lru_cache(maxsize=65536)
def _parse(boxed: str):
    from math_verify import parse

    return parse("\\boxed{" + boxed + "}", parsing_timeout=_timeout(5))


def official_boxed(text: str) -> str | None:
    """The official extraction (``remove_boxed(last_boxed_only_string(text))``): the span from
    the last ``\\boxed`` (else the last ``\\fbox``) to the first ``}`` that brings the brace
    count back to 0, an answer only when that span is ``\\boxed{...}``."""
    start = text.rfind("\\boxed")
    if start < 0:
        start = text.rfind("\\fbox")
        if start < 0:
            return None
    j = _closing_brace(text, start)
    if j is None:
        return None
    span = text[start:j + 1]
    return span[len("\\boxed{"):-1] if span.startswith("\\boxed{") else None


EXTRACTIONS = ("lenient", "official")


def _check_extraction(extraction: str) -> None:
    if extraction not in EXTRACTIONS:
        raise ValueError(f"grading.extraction must be one of {EXTRACTIONS}, not {extraction!r}")


@lru_cache(maxsize=65536)
def _verify(gold: str, pred: str) -> bool:
    from math_verify import verify

    try:
        return bool(verify(_parse(gold), _parse(pred), timeout_seconds=_timeout(5)))
    except Exception:  # math-verify raises on exotic inputs; unverifiable counts as wrong
        return False


def answers_equivalent(gold: str, pred: str) -> bool:
    """math-verify equivalence of two answer strings (the contents of a box); identical strings
    are equal without it."""
    return pred.strip() == gold.strip() or _verify(gold, pred)


def grade(response: str, gold, *, format_gate: bool = False,
          extraction: str = "lenient") -> tuple[str | None, bool]:
    """Return (predicted answer or None, correct?) of a training completion, or of any text as
    it is (evaluation responses: `grade_response`). `gold` may be a number (AIME25's JSON answers).

    With ``format_gate`` (the paper's training reward) a response must contain exactly one
    ``\\boxed{`` to earn any reward.
    """
    _check_extraction(extraction)
    official = extraction == "official"
    pred = official_boxed(response) if official else last_boxed(response)
    if pred is None:
        return None, False
    if format_gate and response.count("\\boxed{") != 1:
        return pred, False
    gold = str(gold)
    return pred, _verify(gold, pred) if official else answers_equivalent(gold, pred)


def evaluation_text(response: str, extraction: str = "lenient") -> str:
    """The part of a generated solution the evaluation grades: with the official extraction, up
    to and including its first ``</answer>`` (``src/eval_math.py`` cuts Open-Reasoner-Zero-style
    outputs that go on after their answer), else all of it."""
    _check_extraction(extraction)
    if extraction == "official" and "</answer>" in response:
        return response.split("</answer>", 1)[0] + "</answer>"
    return response


def grade_response(response: str, gold, extraction: str = "lenient") -> tuple[str | None, bool]:
    """`grade` of a sampled evaluation solution (no format gate at test time), as the official
    evaluation grades it under the official extraction."""
    return grade(evaluation_text(response, extraction), gold, extraction=extraction)
