"""The embedded default's synthetic math task: arithmetic word/symbol problems with short
step-by-step solutions ending in ``\\boxed{answer}``, deterministic in a seed.

Solutions work column by column from the right, so a tiny model can learn them. Difficulty
tiers play the role of the paper's benchmarks: ``easy`` (2-digit sums, differences and
products with a digit), ``medium`` (mostly 3-digit sums and differences) and ``hard`` (3-digit
sums, differences and products, linear equations).
"""

from __future__ import annotations

import random

TIERS = ("easy", "medium", "hard")


def _digits(rng: random.Random, n: int) -> int:
    return rng.randint(10 ** (n - 1), 10 ** n - 1)


def _columns(a: int, b: int, op: str, slip=None) -> tuple[str, int]:
    """Column arithmetic from the right, one short step per digit (easy for a tiny model):
    '7+8+0=15, 4+3+1=8' for 47+38, '14-8-0=6, 4-3-1=0' for 54-38 (borrow written as +10).
    `slip` (column, wrong result): that column's step writes a wrong result, carried through."""
    da, db = str(a)[::-1], str(b)[::-1]
    steps, carry, digits = [], 0, []
    for i in range(len(da)):
        x, y = int(da[i]), int(db[i]) if i < len(db) else 0
        if op == "+":
            r = x + y + carry if slip is None or slip[0] != i else slip[1]
            steps.append(f"{x}+{y}+{carry}={r}")
            digits.append(r % 10)
            carry = r // 10
        else:
            borrow = x - y - carry < 0
            r = x + 10 * borrow - y - carry if slip is None or slip[0] != i else slip[1]
            steps.append(f"{x + 10 * borrow}-{y}-{carry}={r}")
            digits.append(r)
            carry = int(borrow)
    if op == "+" and carry:
        digits.append(carry)
    result = int("".join(map(str, digits[::-1])))
    return ", ".join(steps), result


def _add(rng, n):
    a, b = _digits(rng, n), _digits(rng, n)
    q = rng.choice([f"Compute {a} + {b}.", f"What is {a} plus {b}?", f"Find the sum of {a} and {b}."])
    steps, r = _columns(a, b, "+")
    return q, f"{steps}.", r


def _sub(rng, n):
    a, b = sorted((_digits(rng, n), _digits(rng, n)), reverse=True)
    q = rng.choice([f"Compute {a} - {b}.", f"What is {a} minus {b}?", f"Subtract {b} from {a}."])
    steps, r = _columns(a, b, "-")
    return q, f"{steps}.", r


def _mul(rng, n):
    a, d = _digits(rng, n), rng.randint(2, 9)
    q = rng.choice([f"Compute {a} * {d}.", f"What is {a} times {d}?", f"Multiply {a} by {d}."])
    steps, r = _times(a, d)
    return q, f"{steps}.", r


def _times(a: int, d: int, slip=None) -> tuple[str, int]:
    """'8*6+0=48, 3*6+4=22' for 38*6; `slip` as in `_columns`."""
    steps, carry, digits = [], 0, []
    for i, c in enumerate(str(a)[::-1]):
        r = int(c) * d + carry if slip is None or slip[0] != i else slip[1]
        steps.append(f"{c}*{d}+{carry}={r}")
        digits.append(r % 10)
        carry = r // 10
    if carry:
        digits.extend(int(c) for c in str(carry)[::-1])
    return ", ".join(steps), int("".join(map(str, digits[::-1])))


def _linear(rng, _n):
    x, a, b = rng.randint(1, 20), rng.randint(2, 9), rng.randint(1, 50)
    c = a * x + b
    q = rng.choice([f"Solve for x: {a}x + {b} = {c}.", f"If {a}x + {b} = {c}, what is x?"])
    return q, _linear_steps(a, b, c), x


def _linear_steps(a: int, b: int, c: int, slip=None) -> str:
    """'3x = 20 - 5 = 15, so x = 15 / 3 = 5.'; `slip` (0, wrong difference) or (1, wrong quotient)."""
    diff = slip[1] if slip and slip[0] == 0 else c - b
    x = slip[1] if slip and slip[0] == 1 else diff // a
    if slip and slip[0] == 0 and x == (c - b) // a:  # a wrong difference gives a wrong quotient
        x += 1 if diff > c - b else -1
    return f"{a}x = {c} - {b} = {diff}, so x = {diff} / {a} = {x}."


_FAMILIES = {
    "easy": [(_add, 2), (_sub, 2), (_mul, 2)],
    "medium": [(_add, 2), (_add, 3), (_sub, 3), (_mul, 2)],
    "hard": [(_add, 3), (_sub, 3), (_mul, 3), (_linear, 0)],
}


def make_problem(rng: random.Random, tier: str) -> dict:
    if tier not in _FAMILIES:
        raise ValueError(f"unknown difficulty tier {tier!r}; choose one of {', '.join(TIERS)}")
    fn, n = rng.choice(_FAMILIES[tier])
    problem, steps, answer = fn(rng, n)
    return {"problem": problem, "solution": f"{steps} \\boxed{{{answer}}}", "answer": str(answer),
            "level": tier}


def generate(tiers: list[str], n: int, seed: int, exclude: set[str] = frozenset()) -> list[dict]:
    """`n` distinct problems drawn evenly from `tiers`, none whose text is in `exclude`."""
    rng = random.Random(seed)
    out, seen = [], set(exclude)
    misses = 0  # consecutive duplicates: many in a row means the problem space is used up
    while len(out) < n:
        rec = make_problem(rng, tiers[len(out) % len(tiers)])
        if rec["problem"] in seen:
            misses += 1
            if misses > 5000:
                raise ValueError(f"cannot draw {n} distinct problems from tiers {tiers}: "
                                 f"space exhausted after {len(out)}")
            continue
        misses = 0
        seen.add(rec["problem"])
        rec["id"] = f"{'-'.join(tiers)}-{seed}-{len(out)}"
        out.append(rec)
    return out


def wrong_answer(answer: str, rng: random.Random) -> str:
    """A plausible wrong integer answer: off by 1 to 9, or one digit changed."""
    value = int(answer)
    if rng.random() < 0.5 or abs(value) < 10:
        delta = rng.choice([d for d in range(-9, 10) if d])
        return str(value + delta)
    digits = list(str(abs(value)))
    i = rng.randrange(len(digits))
    digits[i] = rng.choice([d for d in "0123456789" if d != digits[i] and (i or d != "0")])
    return ("-" if value < 0 else "") + "".join(digits)


_OPERANDS = [  # (pattern of a problem's text, family, operand order of the pattern's groups)
    (r"Compute (\d+) \+ (\d+)\.|What is (\d+) plus (\d+)\?|Find the sum of (\d+) and (\d+)\.", "+", (0, 1)),
    (r"Compute (\d+) - (\d+)\.|What is (\d+) minus (\d+)\?", "-", (0, 1)),
    (r"Subtract (\d+) from (\d+)\.", "-", (1, 0)),
    (r"Compute (\d+) \* (\d+)\.|What is (\d+) times (\d+)\?|Multiply (\d+) by (\d+)\.", "*", (0, 1)),
    (r"Solve for x: (\d+)x \+ (\d+) = (\d+)\.|If (\d+)x \+ (\d+) = (\d+), what is x\?", "x", (0, 1, 2)),
]


def slipped_solution(problem: str, rng: random.Random) -> str:
    """A wrong solution of a synthetic `problem` that looks like the model's own mistakes: one
    step writes a wrong result (off by 1 to 9) and the rest of the solution, its boxed answer
    included, follows from it consistently, so only checking the steps' arithmetic finds it.
    Raises ValueError for a problem this module did not make."""
    import re

    for pattern, family, order in _OPERANDS:
        m = re.fullmatch(pattern, problem)
        if m:
            groups = [int(g) for g in m.groups() if g is not None]
            ops = [groups[i] for i in order]
            break
    else:
        raise ValueError(f"not a synthetic arithmetic problem: {problem!r}")

    def wrong(right: int, low: int = 0, high: int | None = None) -> int:
        choices = [right + d for d in range(-9, 10) if d and right + d >= low and (high is None or right + d <= high)]
        return rng.choice(choices)

    if family == "x":
        a, b, c = ops
        step = rng.randrange(2)
        slip = (0, wrong(c - b, 1)) if step == 0 else (1, wrong((c - b) // a, 1))
        steps = _linear_steps(a, b, c, slip)
        return f"{steps} \\boxed{{{steps.rsplit('= ', 1)[1].rstrip('.')}}}"
    a, b = ops
    column = rng.randrange(len(str(a)))
    if family == "*":
        right = int(_times(a, b, None)[0].split(", ")[column].split("=")[1])
        steps, answer = _times(a, b, (column, wrong(right)))
    else:
        right = int(_columns(a, b, family)[0].split(", ")[column].split("=")[1])
        steps, answer = _columns(a, b, family, (column, wrong(right, 0, 9 if family == "-" else None)))
    return f"{steps}. \\boxed{{{answer}}}"
