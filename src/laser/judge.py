"""The prompted (generative) self-verification judge: the model reads the problem and one of
its solutions under a verification prompt and answers ``\\boxed{correct}`` or
``\\boxed{incorrect}``. It gives models never trained on z_c (base, GRPO) a self-verification
F1 (docs/paper.md, The paper's headline numbers), at the cost of a full extra generation per solution.

Parsing is strict: anything but those two boxed words is "unparsable", which counts as
"incorrect" and is counted. Like the last-token judge, solutions without a boxed answer are
not judged ("skipped", score 0).
"""

from __future__ import annotations

from .grading import last_boxed
from .metrics import boxed_slots, place
from .prompts import judge_prompt, request_length

VERDICTS = ("correct", "incorrect", "unparsable", "skipped")


def parse_verdict(text: str) -> str:
    """'correct' / 'incorrect' from the last boxed word of the judge's answer, else 'unparsable'."""
    boxed = last_boxed(text)
    word = boxed.strip().lower() if boxed is not None else None
    return word if word in ("correct", "incorrect") else "unparsable"


def judge_cfg_for(cfg: dict, judge_cfg: dict) -> dict:
    """The generation settings of the judge's requests."""
    return {**cfg, "temperature": judge_cfg["temperature"], "max_tokens": judge_cfg["max_tokens"]}


def judge_context(tokenizer, problems: list[str], template: str, solution_tokens: int, max_tokens: int) -> int:
    """Tokens a judge request can need: the longest judge prompt with a solution of
    `solution_tokens` tokens (counted three times over, as re-tokenizing decoded text can
    lengthen it), plus the verdict."""
    from .prompts import render_prompts

    _, ids = render_prompts(tokenizer, [{"messages": [{"role": "user", "content": judge_prompt(template, p, "")}]}
                                        for p in problems])
    return request_length(max(map(len, ids), default=0) + 3 * solution_tokens, max_tokens)


def judge(model_dir: str, records: list[dict], cfg: dict, judge_cfg: dict, *, tokenizer=None,
          engine=None) -> list[dict]:
    """One judge record per generation record: ``judge_verdicts``, ``judge_scores`` (1.0 for
    'correct', else 0.0) and ``judge_responses`` (null where skipped), aligned with ``responses``.
    `engine`: the generation job's engine (generation.Engine), else one is opened."""
    from .generation import sample

    todo = boxed_slots(records)
    prompts = [{"messages": [{"role": "user", "content": judge_prompt(
        judge_cfg["template"], records[i]["problem"], records[i]["responses"][j])}]} for i, j in todo]
    _, samples = sample(model_dir, prompts, [1] * len(prompts), judge_cfg_for(cfg, judge_cfg), tokenizer=tokenizer,
                        engine=engine)
    texts = [group[0].text for group in samples]
    verdicts = [parse_verdict(t) for t in texts]
    return [{"id": rec.get("id"), "judge_verdicts": v, "judge_scores": s, "judge_responses": t}
            for rec, v, s, t in zip(records, place(records, todo, verdicts, "skipped"),
                                    place(records, todo, [float(v == "correct") for v in verdicts], 0.0),
                                    place(records, todo, texts, None))]
