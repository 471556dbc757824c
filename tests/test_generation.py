"""Both generation backends on a tiny saved checkpoint: same record schema, graded, seeded."""

import pytest

from laser import data
from laser.generation import generate
from laser.prompts import render_prompts

CFG = {"backend": "transformers", "temperature": 1.0, "top_p": 1.0, "max_tokens": 12, "seed": 42,
       "dtype": "float32", "tensor_parallel_size": 1, "batch_size": 8, "vllm_kv_cache_gib": 0.25}


@pytest.fixture(scope="module")
def problems():
    return {
        "a": (data.prepare({"source": "synthetic", "tiers": ["easy"], "n_problems": 3}, name="a", seed=0,
                           suffix=" Box it."), 2),
        "b": (data.prepare({"source": "synthetic", "tiers": ["hard"], "n_problems": 2}, name="b", seed=1,
                           suffix=" Box it."), 3),
    }


def _check_records(out, problems, tok):
    assert set(out) == set(problems)
    for name, (recs, n) in problems.items():
        assert [r["id"] for r in out[name]] == [r["id"] for r in recs]
        for rec in out[name]:
            for key in ("responses", "pred_answers", "acc_list", "response_token_ids",
                        "response_lengths", "finished"):
                assert len(rec[key]) == n, key
            assert rec["prompt"] == tok.apply_chat_template(rec["messages"], tokenize=False,
                                                            add_generation_prompt=True)
            for ids, length, fin, text in zip(rec["response_token_ids"], rec["response_lengths"],
                                              rec["finished"], rec["responses"]):
                assert len(ids) == length <= CFG["max_tokens"]
                assert tok.eos_token_id not in ids
                assert fin or length == CFG["max_tokens"]
                assert text == tok.decode(ids, skip_special_tokens=True)
            assert all(a is False for a, p in zip(rec["acc_list"], rec["pred_answers"]) if p is None)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["transformers", "vllm"])
def test_backend_records_and_determinism(tiny_checkpoint, problems, backend):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    cfg = {**CFG, "backend": backend}
    out = generate(str(tiny_checkpoint), problems, cfg)
    _check_records(out, problems, tok)
    if backend == "transformers":  # vLLM start-up is slow: its determinism is checked in CI's rerun
        again = generate(str(tiny_checkpoint), problems, cfg)
        assert again == out
        other = generate(str(tiny_checkpoint), problems, {**cfg, "seed": 7})
        assert other != out
    else:  # per-request seeds: a benchmark's samples do not depend on the other benchmarks
        alone = generate(str(tiny_checkpoint), {"b": problems["b"]}, cfg)
        assert alone["b"] == out["b"]


def test_request_seeds_follow_benchmark_and_problem_id(tiny_checkpoint, monkeypatch, problems):
    """Each request's seed is keyed by (config seed, benchmark, id), not by its position."""
    from laser import generation
    from laser.generation import Sample, request_seed

    seen = {}

    def fake(model_dir, tok, prompt_ids, ns, cfg, zc_id, route, seeds):
        seen["seeds"] = seeds
        return [[Sample([1], "x", True)] * n for n in ns]

    monkeypatch.setattr(generation, "_transformers", fake)
    generation.generate(str(tiny_checkpoint), problems, CFG)
    both = seen["seeds"]
    generation.generate(str(tiny_checkpoint), {"b": problems["b"]}, CFG)
    assert seen["seeds"] == both[len(problems["a"][0]):]
    assert len(set(both)) == len(both) and all(0 <= x < 2 ** 31 for x in both)
    assert both[0] == request_seed(42, "a", problems["a"][0][0]["id"]) != request_seed(7, "a", problems["a"][0][0]["id"])


def test_grading_of_records_uses_gold_answer(tiny_checkpoint, monkeypatch, problems):
    """Record assembly grades each response against the record's answer (fake backend)."""
    from laser import generation
    from laser.generation import Sample

    def fake(model_dir, tok, prompt_ids, ns, cfg, zc_id, route, seeds):
        return [[Sample([1], f"\\boxed{{{k}}}", True) for k in range(n)] for n in ns]

    monkeypatch.setitem(CFG, "backend", "transformers")
    monkeypatch.setattr(generation, "_transformers", fake)
    recs = [{"id": "x", "problem": "p", "answer": "1", "messages": [{"role": "user", "content": "p"}]}]
    out = generation.generate(str(tiny_checkpoint), {"t": (recs, 3)}, CFG)["t"][0]
    assert out["pred_answers"] == ["0", "1", "2"]
    assert out["acc_list"] == [False, True, False]


def test_records_are_graded_with_the_configured_extraction(tiny_checkpoint, monkeypatch):
    """grading.extraction reaches the generation records; responses keep the whole text."""
    from laser import generation
    from laser.generation import Sample

    texts = ["\\fbox{1}", "<answer>\\boxed{1}</answer> or \\boxed{2}", "\\boxed 1$"]

    def fake(model_dir, tok, prompt_ids, ns, cfg, zc_id, route, seeds):
        return [[Sample([1], t, True) for t in texts] for _ in ns]

    monkeypatch.setitem(CFG, "backend", "transformers")
    monkeypatch.setattr(generation, "_transformers", fake)
    recs = [{"id": "x", "problem": "p", "answer": "1", "messages": [{"role": "user", "content": "p"}]}]
    out = {e: generation.generate(str(tiny_checkpoint), {"t": (recs, 3)}, CFG, extraction=e)["t"][0]
           for e in ("lenient", "official")}
    assert (out["lenient"]["pred_answers"], out["lenient"]["acc_list"]) == (["1", "2", "1"], [True, False, True])
    assert (out["official"]["pred_answers"], out["official"]["acc_list"]) == ([None, "1", None], [False, True, False])
    assert out["official"]["responses"] == out["lenient"]["responses"] == texts


def test_empty_benchmark_generates_nothing(tiny_checkpoint):
    assert generate(str(tiny_checkpoint), {"empty": ([], 4)}, CFG) == {"empty": []}


def test_unknown_scoring_route_is_an_error(tiny_checkpoint, problems):
    with pytest.raises(ValueError, match="unknown scoring route 'fast'"):
        generate(str(tiny_checkpoint), problems, CFG, zc_id=5, route="fast")


def test_render_prompts_token_ids(tiny_checkpoint):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    texts, ids = render_prompts(tok, [{"messages": [{"role": "user", "content": "2+2?"}]}])
    assert texts == ["<|user|>2+2?<|assistant|>"]
    assert tok.decode(ids[0]) == texts[0] and ids[0][0] == tok.convert_tokens_to_ids("<|user|>")


def test_greedy_gives_n_identical_scored_samples_on_both_backends(tiny_checkpoint, problems):
    """temperature 0 with n > 1 (transformers samples several sequences only when sampling):
    n copies of the greedy solution, each scored by one token, alike on both backends."""
    outs = {b: generate(str(tiny_checkpoint), {"b": problems["b"]}, {**CFG, "backend": b, "temperature": 0.0},
                        zc_id=3)["b"] for b in ("transformers", "vllm")}
    for out in outs.values():
        for rec in out:
            assert len(rec["responses"]) == 3 and len(set(map(tuple, rec["response_token_ids"]))) == 1
            assert max(rec["zc_logprobs"]) - min(rec["zc_logprobs"]) < 1e-5
    for a, b in zip(*outs.values()):
        assert a["response_token_ids"] == b["response_token_ids"]
        assert a["zc_logprobs"] == pytest.approx(b["zc_logprobs"], abs=1e-4)


def test_engine_scores_given_ids_like_the_backend_functions(tiny_checkpoint):
    """Engine.zc_logprobs, the one scoring entry of an engine: the given ids, both routes, both
    backends, equal to a plain transformers forward of prompt + response + EOS + z_c; a pair
    longer than max_model_len (as prompts.request_length counts it) is refused."""
    from laser import tiny
    from laser.generation import ROUTES, Engine, load_model, load_tokenizer, zc_logprobs_transformers
    from laser.prompts import request_length

    path = str(tiny_checkpoint)
    tok = load_tokenizer(path)
    zc, user = tok.convert_tokens_to_ids(tiny.ZC), tok.convert_tokens_to_ids(tiny.USER)
    _, pids = render_prompts(tok, [{"messages": [{"role": "user", "content": q}]} for q in ("1+1?", "What is 12*3?")])
    enc = lambda s: tok(s, add_special_tokens=False).input_ids  # noqa: E731
    prompts = [pids[0], pids[0], pids[1]]
    responses = [enc("\\boxed{2}"), [], enc("36") + [user] + enc(" so \\boxed{36}")]  # ids text would not give
    reference = zc_logprobs_transformers(load_model(path), prompts, responses, zc_id=zc, eos_id=tok.eos_token_id,
                                         pad_id=tok.pad_token_id)
    need = max(request_length(len(p), len(r)) for p, r in zip(prompts, responses))
    got = {}
    for backend in ("transformers", "vllm"):
        with Engine(path, {**CFG, "backend": backend}, need, tokenizer=tok) as engine:
            for route in ROUTES:
                got[backend, route] = engine.zc_logprobs(prompts, responses, zc_id=zc, route=route)
            assert engine.zc_logprobs([], [], zc_id=zc) == []
            with pytest.raises(ValueError, match=rf"1 scored sequences need up to {need + 1} tokens, over this "
                                                 rf"engine's max_model_len {need}"):
                engine.zc_logprobs([pids[1] + [user]], responses[2:], zc_id=zc)
            with pytest.raises(ValueError, match="unknown scoring route 'fast'"):
                engine.zc_logprobs(prompts, responses, zc_id=zc, route="fast")
    assert got["transformers", "onetoken"] == got["transformers", "reprefill"] == reference
    assert got["vllm", "onetoken"] == pytest.approx(reference, abs=1e-3)
    assert got["vllm", "reprefill"] == pytest.approx(reference, abs=1e-3)
    assert len(set(reference)) == 3


def test_engine_sample_scores_through_zc_logprobs(tiny_checkpoint, monkeypatch, problems):
    """Sampling with a z_c id scores its samples' ids by Engine.zc_logprobs on every route but
    transformers' one-token (one more step on generate's KV cache)."""
    from laser.generation import Engine

    calls = []
    real = Engine.zc_logprobs

    def spy(self, prompt_ids, response_ids, **kw):
        calls.append((len(prompt_ids), kw["route"]))
        return real(self, prompt_ids, response_ids, **kw)

    monkeypatch.setattr(Engine, "zc_logprobs", spy)
    recs, n = problems["b"]
    onetoken = generate(str(tiny_checkpoint), {"b": (recs, n)}, CFG, zc_id=3)["b"]
    assert calls == []
    reprefill = generate(str(tiny_checkpoint), {"b": (recs, n)}, CFG, zc_id=3, route="reprefill")["b"]
    assert calls == [(len(recs) * n, "reprefill")]
    for a, b in zip(onetoken, reprefill):
        assert a["response_token_ids"] == b["response_token_ids"]
        assert a["zc_logprobs"] == pytest.approx(b["zc_logprobs"], abs=1e-4)
