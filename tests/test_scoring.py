"""Self-reward scoring: r_s from zc log-probs, every route equal to a plain transformers forward,
and the laser-score command on files in the official format."""

import json
import math

import pytest
import yaml

from conftest import ROOT
from laser import data, tiny
from laser.config import run_settings
from laser.generation import generate, load_model, load_tokenizer
from laser.io import InputError
from laser.prompts import render_prompts
from laser.scoring import add_self_rewarding_scores, main, score_kind, token_ids_of, zc_logprobs_transformers

ZC = "<|reserved_special_token_0|>"
CFG = {"backend": "transformers", "temperature": 1.0, "top_p": 1.0, "max_tokens": 40, "seed": 42,
       "dtype": "float32", "tensor_parallel_size": 1, "batch_size": 8, "vllm_kv_cache_gib": 0.25}


def test_scores_from_logprobs_by_hand():
    recs = [{"zc_logprobs": [-10.0, -12.0, -9.0], "pred_answers": ["1", None, "2"]}]
    add_self_rewarding_scores(recs, beta_v=0.1, c_ref=-11.0)
    assert recs[0]["self_rewarding_scores"] == pytest.approx([0.1, 0.0, 0.2])  # unboxed: 0.0
    add_self_rewarding_scores(recs, beta_v=0.5, c_ref=None, ref_logprobs=[[-10.5, -1.0, -10.0]])
    assert recs[0]["self_rewarding_scores"] == pytest.approx([0.25, 0.0, 0.5])
    with pytest.raises(ValueError):
        add_self_rewarding_scores(recs, beta_v=0.1, c_ref=None)


def test_p_zc_scores_for_the_sft_ablation():
    """loss: sft is scored by p(z_c) = exp(log p(z_c)) (official: correct iff p > 0.5), no beta_v/c_ref."""
    recs = [{"zc_logprobs": [math.log(0.7), -12.0, math.log(0.2)], "pred_answers": ["1", None, "2"]}]
    add_self_rewarding_scores(recs, score="p_zc")
    assert recs[0]["self_rewarding_scores"] == pytest.approx([0.7, 0.0, 0.2])  # unboxed: 0.0
    add_self_rewarding_scores(recs, beta_v=0.1, c_ref=-11.0, score="p_zc")  # beta_v, c_ref unused
    assert recs[0]["self_rewarding_scores"] == pytest.approx([0.7, 0.0, 0.2])
    with pytest.raises(ValueError, match="unknown score"):
        add_self_rewarding_scores(recs, beta_v=0.1, c_ref=-11.0, score="bce")
    with pytest.raises(ValueError, match="beta_v"):
        add_self_rewarding_scores(recs, c_ref=-11.0)


def test_generate_settings_pick_p_zc_for_loss_sft():
    """The generate job (laser.evaluate) scores with score_kind of its run settings (laser.jobs)."""
    import laser.jobs
    from laser.config import load

    config = load(ROOT / "config" / "ablations.yaml")
    kinds = {method: score_kind(laser.jobs.generate(config, "tiny", method)["run"])
             for method in ["base", *config["methods"]]}
    assert kinds == {"base": "r_s", "grpo": "r_s", "laser": "r_s", "laser_no_swa": "r_s",
                     "laser_ref_forward": "r_s", "laser_sft": "p_zc"}
    paper = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    assert {score_kind(run_settings(paper, m, "laser_sft")) for m in paper["models"]} == {"p_zc"}
    assert {score_kind(run_settings(paper, m, "laser")) for m in paper["models"]} == {"r_s"}


def test_laser_score_command_p_zc_needs_no_c_ref(tmp_path, monkeypatch, capsys, tiny_checkpoint):
    import laser.scoring as scoring

    def fake_scores(records, model_dir, **kw):  # stands in for the model forward
        for rec in records:
            rec["zc_logprobs"] = [math.log(0.9), math.log(0.3), -20.0]
        return records

    monkeypatch.setattr(scoring, "score_file_records", fake_scores)
    src, dst = tmp_path / "gens.jsonl", tmp_path / "scored.jsonl"
    src.write_text(json.dumps({"problem": "p", "answer": "1", "responses": ["a", "b", "c"],
                               "pred_answers": ["1", "2", None], "acc_list": [True, False, False]}) + "\n")
    args = ["--model", str(tiny_checkpoint), "--input", str(src), "--output", str(dst), "--z-c", ZC]
    with pytest.raises(SystemExit):  # r_s (the default) needs a c_ref
        main(args)
    assert main([*args, "--score", "p_zc"]) == 0
    assert json.loads(dst.read_text())["self_rewarding_scores"] == pytest.approx([0.9, 0.3, 0.0])
    assert "filtered F1 of p_zc > 0.5 1.0000" in capsys.readouterr().out


def test_laser_score_grades_ungraded_records_with_the_chosen_extraction(tmp_path, monkeypatch, tiny_checkpoint):
    import laser.scoring as scoring

    def fake_scores(records, model_dir, **kw):
        for rec in records:
            rec["zc_logprobs"] = [-1.0] * len(rec["responses"])
        return records

    monkeypatch.setattr(scoring, "score_file_records", fake_scores)
    src, dst = tmp_path / "gens.jsonl", tmp_path / "scored.jsonl"
    src.write_text(json.dumps({"problem": "p", "answer": 70, "responses": ["\\fbox{70}", "\\boxed{70}"]}) + "\n")
    args = ["--model", str(tiny_checkpoint), "--input", str(src), "--output", str(dst), "--z-c", ZC, "--score", "p_zc"]
    got = {}
    for extraction in ("lenient", "official"):
        assert main([*args, "--extraction", extraction]) == 0
        rec = json.loads(dst.read_text())
        got[extraction] = rec["pred_answers"], rec["acc_list"], rec["self_rewarding_scores"]
    assert got["lenient"] == (["70", "70"], [True, True], pytest.approx([math.exp(-1)] * 2))
    assert got["official"] == ([None, "70"], [False, True], pytest.approx([0.0, math.exp(-1)]))  # no answer: not scored


@pytest.fixture(scope="module")
def problems():
    return data.prepare({"source": "synthetic", "tiers": ["easy"], "n_problems": 6}, name="b", seed=3,
                        suffix=" Put the answer in \\boxed{}.")


def _flat(out, key):
    return [x for r in out for x in r[key]]


@pytest.mark.slow
def test_every_route_equals_a_transformers_forward(warm_checkpoint, problems):
    """transformers one-token (KV cache step), vLLM one-token restricted to z_c (raw log-prob),
    vLLM re-prefill with prompt_logprobs: all equal log pi(z_c | x, y, EOS) of a plain forward."""
    from laser.generation import close_engine, vllm_engine, vllm_sample, vllm_zc_logprobs

    path = str(warm_checkpoint)
    tok = load_tokenizer(path)
    zc = tok.convert_tokens_to_ids(ZC)
    out = generate(path, {"b": (problems, 3)}, CFG, zc_id=zc, route="onetoken")["b"]
    finished = _flat(out, "finished")
    assert any(finished) and not all(finished)  # both the early-stop and the truncated path
    _, pids = render_prompts(tok, problems)
    prompts = [p for p, r in zip(pids, out) for _ in r["responses"]]
    responses = _flat(out, "response_token_ids")
    model = load_model(path)
    reference = zc_logprobs_transformers(model, prompts, responses, zc_id=zc, eos_id=tok.eos_token_id,
                                         pad_id=tok.pad_token_id)
    assert _flat(out, "zc_logprobs") == pytest.approx(reference, abs=1e-4)
    again = generate(path, {"b": (problems, 3)}, CFG, zc_id=zc, route="reprefill")["b"]
    assert _flat(again, "zc_logprobs") == pytest.approx(reference, abs=1e-4)

    llm = vllm_engine(path, {**CFG, "backend": "vllm"}, 256)
    try:
        onetoken = vllm_zc_logprobs(llm, prompts, responses, eos_id=tok.eos_token_id, zc_id=zc)
        reprefill = vllm_zc_logprobs(llm, prompts, responses, eos_id=tok.eos_token_id, zc_id=zc,
                                     route="reprefill")
        sampled = vllm_sample(llm, tok, pids[:2], [2, 2], {**CFG, "max_tokens": 16})
    finally:
        close_engine(llm)
    # restricted sampling did not renormalise: the raw log-prob is returned, not 0.0
    assert max(onetoken) < -0.5
    assert onetoken == pytest.approx(reference, abs=1e-3)
    assert reprefill == pytest.approx(reference, abs=1e-3)
    assert all(len(s.token_ids) <= 16 for g in sampled for s in g)


def test_token_ids_prefer_recorded_ids_that_decode_to_the_text(tiny_checkpoint):
    tok = load_tokenizer(str(tiny_checkpoint))
    enc = lambda s: tok(s, add_special_tokens=False).input_ids  # noqa: E731
    good = enc("7 + 5 = \\boxed{12}")
    # ids the text would not give, that decode to it: a special token (dropped by the decode
    # generation uses), and "<|user|>" spelt out byte by byte
    odd = enc("7 + 5") + [tok.convert_tokens_to_ids(tiny.USER)] + enc(" = \\boxed{12}")
    spelt = [tok.convert_tokens_to_ids(c) for c in "<|user|>q"] + enc("<|assistant|>")
    assert odd != good and spelt != enc("<|user|>q<|assistant|>")
    recs = [{"prompt": "<|user|>q<|assistant|>", "responses": ["7 + 5 = \\boxed{12}", "abc", "7 + 5 = \\boxed{12}"],
             "response_token_ids": [good, [1, 2, 3], odd]},  # the second does not decode to "abc"
            {"problem": "2+2?", "responses": ["4"]},
            {"prompt": "<|user|>q<|assistant|>", "prompt_token_ids": spelt, "responses": ["4"]},
            {"prompt": "<|user|>q<|assistant|>", "prompt_token_ids": enc("<|user|>x<|assistant|>"), "responses": ["4"]},
            {"prompt": "<|user|>q<|assistant|>", "prompt_token_ids": [len(tok) + 5], "responses": ["4"]}]
    prompts, responses = token_ids_of(recs, tok, suffix=" Box it.")
    assert responses[0] == good and responses[1] == enc("abc") and responses[2] == odd
    assert prompts[0] == enc("<|user|>q<|assistant|>")
    assert tok.decode(prompts[3]) == "<|user|>2+2? Box it.<|assistant|>"
    assert prompts[4] == spelt  # recorded prompt ids that decode to the prompt are kept
    assert prompts[5] == prompts[6] == prompts[0]  # ids of another text, or of another tokenizer: the text's


def test_score_file_records_scores_ids_through_an_engine(tiny_checkpoint, monkeypatch):
    """laser-score's scoring: token_ids_of's ids (a record's own where they are this tokenizer's),
    scored by Engine.zc_logprobs, equal to a plain forward of those ids."""
    from laser.generation import Engine
    from laser.scoring import score_file_records

    path = str(tiny_checkpoint)
    tok = load_tokenizer(path)
    enc = lambda s: tok(s, add_special_tokens=False).input_ids  # noqa: E731
    odd = enc("1") + [tok.convert_tokens_to_ids(tiny.USER)] + enc("+1 = \\boxed{2}")
    recs = [{"problem": "1+1?", "responses": ["1+1 = \\boxed{2}", "3"], "response_token_ids": [odd, enc("3")]},
            {"prompt": "<|user|>2+2?<|assistant|>", "responses": ["\\boxed{4}"]}]
    calls = []
    real = Engine.zc_logprobs

    def spy(self, prompt_ids, response_ids, **kw):
        calls.append((self.cfg["backend"], self.cfg["dtype"], kw["route"]))
        return real(self, prompt_ids, response_ids, **kw)

    monkeypatch.setattr(Engine, "zc_logprobs", spy)
    score_file_records(recs, path, z_c=ZC, backend="transformers", suffix=" Box it.")
    assert calls == [("transformers", "float32", "onetoken")]  # dtype auto: float32 on transformers
    prompts, responses = token_ids_of(recs, tok, " Box it.")
    assert responses[0] == odd
    ref = zc_logprobs_transformers(load_model(path), prompts, responses, zc_id=tok.convert_tokens_to_ids(ZC),
                                   eos_id=tok.eos_token_id, pad_id=tok.pad_token_id)
    assert [x for r in recs for x in r["zc_logprobs"]] == ref
    with pytest.raises(InputError, match="config key '--z-c'"):
        score_file_records(recs, path, z_c="<|nope|>", backend="transformers")


def test_reference_logprobs_score_the_recorded_ids(tiny_checkpoint):
    """Reference-forward mode: the reference scores the prompt ids given and each record's
    response_token_ids as they are, whatever the record's text would tokenize to."""
    from laser.generation import ROUTES
    from laser.scoring import reference_logprobs

    path = str(tiny_checkpoint)
    tok = load_tokenizer(path)
    enc = lambda s: tok(s, add_special_tokens=False).input_ids  # noqa: E731
    _, pids = render_prompts(tok, [{"messages": [{"role": "user", "content": q}]} for q in ("1+1?", "2+2?")])
    odd = enc("2") + [tok.convert_tokens_to_ids(tiny.USER)]  # decodes to "2", which tokenizes to enc("2")
    records = [{"id": "a", "prompt": "<|user|>something else<|assistant|>", "responses": ["2", "\\boxed{2}"],
                "response_token_ids": [odd, enc("\\boxed{2}")]},
               {"id": "b", "prompt": "<|user|>2+2?<|assistant|>", "responses": ["four"],
                "response_token_ids": [enc("\\boxed{4}")]}]  # text and ids disagree: the ids count
    before = json.loads(json.dumps(records))
    zc = tok.convert_tokens_to_ids(ZC)
    want = zc_logprobs_transformers(load_model(path), [pids[0], pids[0], pids[1]],
                                    [odd, enc("\\boxed{2}"), enc("\\boxed{4}")], zc_id=zc,
                                    eos_id=tok.eos_token_id, pad_id=tok.pad_token_id)
    for route in ROUTES:
        got = reference_logprobs(path, records, pids, z_c=ZC, gen_cfg={"dtype": "float32"}, backend="transformers",
                                 route=route)
        assert got == [want[:2], want[2:]]
    # vLLM (laser-score's default backend), re-prefill without prefix caching
    got = reference_logprobs(path, records, pids, z_c=ZC, gen_cfg={**CFG, "backend": "vllm"}, route="reprefill")
    assert [x for g in got for x in g] == pytest.approx(want, abs=1e-3)
    assert records == before  # the records are not changed
    # what the text would have given differs (the test tells the ids from the text)
    prompts, responses = token_ids_of(records, tok)
    assert (prompts[0], responses[0]) != (pids[0], odd) and responses[2] != enc("\\boxed{4}")
    text_based = zc_logprobs_transformers(load_model(path), prompts, responses, zc_id=zc, eos_id=tok.eos_token_id,
                                          pad_id=tok.pad_token_id)
    assert all(abs(a - b) > 1e-4 for a, b in zip(text_based, want))
    with pytest.raises(ValueError, match="1 prompts for 2 records"):
        reference_logprobs(path, records, pids[:1], z_c=ZC, backend="transformers")


@pytest.mark.slow
def test_laser_score_command_on_official_format(warm_checkpoint, benchmarks_dir, tmp_path, capsys):
    """Score MATH500 records (official fields, no `prompt`) whose responses are the reference
    solutions plus a wrong answer, with the transformers backend; compare with a plain forward."""
    rows = [json.loads(line) for line in (benchmarks_dir / "math500" / "test.jsonl").open()][:3]
    for r in rows:
        r["responses"] = [r["solution"], "I think it is \\boxed{-1234}.", "no idea"]
    src = tmp_path / "gens.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    dst = tmp_path / "scored.jsonl"
    rc = main(["--model", str(warm_checkpoint), "--input", str(src), "--output", str(dst), "--z-c", ZC,
               "--c-ref", "-9.0", "--beta-v", "0.1", "--backend", "transformers", "--dtype", "float32",
               "--prompt-suffix", " Put the answer in \\boxed{}."])
    assert rc == 0
    assert "filtered F1" in capsys.readouterr().out
    scored = [json.loads(line) for line in dst.open()]
    assert [r["pred_answers"][2] for r in scored] == [None] * 3
    assert all(r["acc_list"][0] and not r["acc_list"][1] for r in scored)  # solutions verify, -1234 not
    tok = load_tokenizer(str(warm_checkpoint))
    prompts, responses = token_ids_of(rows, tok, " Put the answer in \\boxed{}.")
    ref = zc_logprobs_transformers(load_model(str(warm_checkpoint)), prompts, responses,
                                   zc_id=tok.convert_tokens_to_ids(ZC), eos_id=tok.eos_token_id,
                                   pad_id=tok.pad_token_id)
    got = [x for r in scored for x in r["zc_logprobs"]]
    assert got == pytest.approx(ref, abs=1e-5)
    expect = [0.1 * (lp + 9.0) if k % 3 != 2 else 0.0 for k, lp in enumerate(ref)]
    assert [x for r in scored for x in r["self_rewarding_scores"]] == pytest.approx(expect, abs=1e-5)


def test_laser_score_bad_input_names_file_and_line(tmp_path, capsys, tiny_checkpoint):
    src = tmp_path / "bad.jsonl"
    src.write_text('{"problem": "p", "responses": ["a"]}\n{"problem": "q"}\n')
    rc = main(["--model", str(tiny_checkpoint), "--input", str(src), "--output", str(tmp_path / "o.jsonl"),
               "--z-c", ZC, "--c-ref", "-9", "--backend", "transformers"])
    assert rc == 2
    assert f"{src}:2: missing field(s) ['responses']" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()
    src.write_text('{"problem": "p", "responses": ["a"]}\n')
    rc = main(["--model", str(tiny_checkpoint), "--input", str(src), "--output", str(tmp_path / "o.jsonl"),
               "--z-c", "<|not_a_token|>", "--c-ref", "-9", "--backend", "transformers"])
    assert rc == 2
    assert "not a token of the tokenizer" in capsys.readouterr().err
    rc = main(["--model", str(tmp_path / "no_model"), "--input", str(src), "--output", str(tmp_path / "o.jsonl"),
               "--z-c", ZC, "--c-ref", "-9", "--backend", "transformers"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith(f"laser-score: error: --model '{tmp_path / 'no_model'}' is not a model")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_laser_score_takes_c_ref_from_a_calibration_file_for_its_z_c(tmp_path, capsys, tiny_checkpoint):
    src = tmp_path / "g.jsonl"
    src.write_text('{"problem": "p", "answer": "2", "responses": ["\\\\boxed{2}"]}\n')
    cal = tmp_path / "cal.json"
    args = ["--model", str(tiny_checkpoint), "--input", str(src), "--z-c", ZC, "--backend", "transformers",
            "--dtype", "float32"]
    cal.write_text(json.dumps({"token": "<|other|>", "c_ref_mean": -9.0}))
    assert main([*args, "--output", str(tmp_path / "o.jsonl"), "--calibration", str(cal)]) == 2
    assert f"{cal}: calibrated for z_c '<|other|>', not --z-c '{ZC}'" in capsys.readouterr().err
    cal.write_text(json.dumps({"token": ZC, "token_id": 3, "c_ref_mean": -9.0, "c_ref_std": 1.0}))
    assert main([*args, "--output", str(tmp_path / "a.jsonl"), "--calibration", str(cal)]) == 0
    assert main([*args, "--output", str(tmp_path / "b.jsonl"), "--c-ref", "-9.0"]) == 0
    a, b = (json.loads((tmp_path / f"{x}.jsonl").read_text()) for x in "ab")
    assert a["self_rewarding_scores"] == b["self_rewarding_scores"] != [0.0]


def test_within_problem_signal_benchmark_reads_mean_token_logprobs(tiny_checkpoint):
    """benchmarks/within_problem_signal.py: its confidence is the mean log-prob of the response's
    tokens under the model (checked against one unbatched forward per response)."""
    import importlib.util

    import torch

    from laser.generation import load_model, load_tokenizer
    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("wps", ROOT / "benchmarks" / "within_problem_signal.py")
    wps = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wps)
    model, tok = load_model(str(tiny_checkpoint)).eval(), load_tokenizer(str(tiny_checkpoint))
    records = [{"prompt": p, "responses": [tok.decode(ids) for ids in rs], "response_token_ids": rs}
               for p, rs in [("<|user|>1+1<|assistant|>", [[20, 21, 22], [23]]), ("<|user|>2<|assistant|>", [[24, 25]])]]
    got = wps.mean_logprobs(model, tok, records, batch_size=2)
    for rec, scores in zip(records, got):
        prompt = tok(rec["prompt"], add_special_tokens=False).input_ids
        for ids, score in zip(rec["response_token_ids"], scores):
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([prompt + ids])).logits[0].float(), -1)
            want = torch.stack([logp[len(prompt) - 1 + t, x] for t, x in enumerate(ids)]).mean().item()
            assert score == pytest.approx(want, abs=1e-5)
