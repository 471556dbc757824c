"""Answer checking exactly as the paper's evaluation (PAPER.md section 3).

The last ``\\boxed{...}`` (brace-matched, ``\\fbox`` fallback) is the prediction; no box means
incorrect; equivalence is decided by math-verify on ``\\boxed{gt}`` vs ``\\boxed{pred}``.
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
        depth = 0
        for j in range(i, len(text)):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    return text[i + 1:j]
        return None  # unbalanced braces: no usable answer
    return None


@lru_cache(maxsize=65536)
def _parse(boxed: str):
    from math_verify import parse

    return parse("\\boxed{" + boxed + "}", parsing_timeout=_timeout(5))


@lru_cache(maxsize=65536)
def answers_equivalent(gold: str, pred: str) -> bool:
    """math-verify equivalence of two answer strings (the contents of a box)."""
    from math_verify import verify

    if pred.strip() == gold.strip():
        return True
    try:
        return bool(verify(_parse(gold), _parse(pred), timeout_seconds=_timeout(5)))
    except Exception:  # math-verify raises on exotic inputs; unverifiable counts as wrong
        return False


def grade(response: str, gold: str, *, format_gate: bool = False) -> tuple[str | None, bool]:
    """Return (predicted answer or None, correct?).

    With ``format_gate`` (the paper's training reward) a response must contain exactly one
    ``\\boxed{`` to earn any reward.
    """
    pred = last_boxed(response)
    if pred is None:
        return None, False
    if format_gate and response.count("\\boxed{") != 1:
        return pred, False
    return pred, answers_equivalent(str(gold), pred)
