"""The prompted (generative) judge: strict parsing, skipped/unparsable accounting, alignment."""

import pytest

from laser import generation
from laser.generation import Sample
from laser.judge import judge, parse_verdict
from laser.prompts import judge_prompt

JUDGE = {"template": "P: {problem}\nS: {solution}\nVerdict?", "max_tokens": 8, "temperature": 0.0}
CFG = {"backend": "transformers", "temperature": 1.0, "top_p": 1.0, "max_tokens": 12, "seed": 42,
       "dtype": "float32", "tensor_parallel_size": 1, "batch_size": 8, "vllm_kv_cache_gib": 0.25}


@pytest.mark.parametrize("text,verdict", [
    ("The steps check out. \\boxed{correct}", "correct"),
    ("\\boxed{ Incorrect }", "incorrect"),
    ("\\boxed{correct} ... wait, \\boxed{incorrect}", "incorrect"),  # the last box counts
    ("correct", "unparsable"),                                    # no box
    ("\\boxed{yes}", "unparsable"),
    ("\\boxed{12}", "unparsable"),
    ("", "unparsable"),
])
def test_parse_verdict_is_strict(text, verdict):
    assert parse_verdict(text) == verdict


def test_prompt_fills_both_fields_literally():
    assert judge_prompt("A {problem} B {solution}", "x{y}", "\\boxed{2}") == "A x{y} B \\boxed{2}"


def test_judge_records_align_and_count(monkeypatch, tiny_checkpoint):
    seen = []

    def fake(model_dir, tok, prompt_ids, ns, cfg, zc_id, route, seeds):
        seen.append((cfg["temperature"], cfg["max_tokens"], [tok.decode(p) for p in prompt_ids]))
        answers = ["\\boxed{correct}", "\\boxed{incorrect}", "hmm"]
        return [[Sample([1], answers[i % 3], True)] for i in range(len(prompt_ids))]

    monkeypatch.setattr(generation, "_transformers", fake)
    records = [{"id": "a", "problem": "1+1", "responses": ["\\boxed{2}", "none", "\\boxed{3}"],
                "pred_answers": ["2", None, "3"]},
               {"id": "b", "problem": "2+2", "responses": ["\\boxed{4}"], "pred_answers": ["4"]}]
    out = judge(str(tiny_checkpoint), records, CFG, JUDGE)
    assert out[0]["judge_verdicts"] == ["correct", "skipped", "incorrect"]
    assert out[0]["judge_scores"] == [1.0, 0.0, 0.0]
    assert out[1] == {"id": "b", "judge_verdicts": ["unparsable"], "judge_scores": [0.0], "judge_responses": ["hmm"]}
    temperature, max_tokens, prompts = seen[0]
    assert (temperature, max_tokens) == (0.0, 8) and len(prompts) == 3  # unboxed one not judged
    assert prompts[1] == "<|user|>P: 1+1\nS: \\boxed{3}\nVerdict?<|assistant|>"


@pytest.mark.slow
def test_judge_runs_the_model(tiny_checkpoint):
    records = [{"id": "a", "problem": "1+1", "responses": ["\\boxed{2}", "\\boxed{3}"], "pred_answers": ["2", "3"]}]
    out = judge(str(tiny_checkpoint), records, CFG, JUDGE)
    assert len(out[0]["judge_responses"]) == 2 and all(isinstance(t, str) for t in out[0]["judge_responses"])
    assert set(out[0]["judge_verdicts"]) <= {"correct", "incorrect", "unparsable"}
