"""External verifiers (reward models): scores equal a hand-made forward of each model kind,
batching does not change them, the tables carry them, and bad config fails by key."""

import math
import re

import pytest
import torch

from laser import tables as analysis_tables
from laser.config import ConfigError, load_schema, validate
from laser.verifiers import _probability, aggregate, render, verify
from tiny_verifiers import STEP, save_verifier

RECORDS = [
    {"id": "a", "problem": "Compute 12 + 30.", "responses": ["2+0+0=2, 1+3+0=4. \\boxed{42}", "no box",
                                                               "2+0+0=2, 1+3+0=5. \\boxed{52}"],
     "pred_answers": ["42", None, "52"], "acc_list": [True, False, False]},
    {"id": "b", "problem": "What is 7 times 3?", "responses": ["7*3+0=21. \\boxed{21}"],
     "pred_answers": ["21"], "acc_list": [True]},
]


def _cfg(kind, path, **kw):
    spec = {"path": str(path), "kind": kind, **kw}
    config = validate(_minimal({"v": spec}))
    return config["verifiers"]["v"]


def _minimal(verifiers):
    import yaml

    from conftest import ROOT

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["verifiers"] = verifiers
    return config


@pytest.fixture(scope="module")
def orm(tmp_path_factory):
    path = tmp_path_factory.mktemp("orm")
    return path, *save_verifier(path, "outcome")


@pytest.fixture(scope="module")
def prm(tmp_path_factory):
    path = tmp_path_factory.mktemp("prm")
    return path, *save_verifier(path, "prm")


def test_outcome_scores_equal_a_single_forward_and_skip_unboxed(orm):
    path, model, tok = orm
    cfg = _cfg("outcome", path, batch_size=3)
    out = verify(RECORDS, cfg, progress=False)  # loads the model from disk itself
    assert [o["id"] for o in out] == ["a", "b"]
    assert out[0]["verifier_scores"][1] == 0.0  # no boxed answer: not scored
    for rec, o in zip(RECORDS, out):
        for resp, pred, got in zip(rec["responses"], rec["pred_answers"], o["verifier_scores"]):
            if pred is None:
                continue
            ids = torch.tensor([render(tok, cfg, rec["problem"], resp)])
            with torch.no_grad():
                want = torch.sigmoid(model(input_ids=ids).logits[0, 0]).item()
            assert got == pytest.approx(want, abs=1e-5)
            assert 0.0 < got < 1.0
    one = verify(RECORDS, {**cfg, "batch_size": 1}, model=model, tok=tok, progress=False)
    for x, y in zip(one, out):  # batch of one, no padding: same scores
        assert x["verifier_scores"] == pytest.approx(y["verifier_scores"], abs=1e-5)


def test_prm_reads_every_step_token_and_aggregates(prm):
    path, model, tok = prm
    cfg = _cfg("prm", path, step_separator=", ", step_token=STEP, system="")
    ids = render(tok, cfg, RECORDS[0]["problem"], RECORDS[0]["responses"][0])
    step_id = tok.convert_tokens_to_ids(STEP)
    assert ids.count(step_id) == 2  # "2+0+0=2" | "1+3+0=4. \boxed{42}"
    with torch.no_grad():
        probs = model(input_ids=torch.tensor([ids])).logits[0].softmax(-1)[:, 1]
    steps = [probs[i].item() for i, t in enumerate(ids) if t == step_id]
    for how, want in (("min", min(steps)), ("last", steps[-1]), ("prod", math.prod(steps))):
        got = verify(RECORDS, {**cfg, "aggregate": how}, model=model, tok=tok, progress=False)
        assert got[0]["verifier_scores"][0] == pytest.approx(want, abs=1e-5), how
        assert got[0]["verifier_scores"][1] == 0.0


def test_prm_step_token_must_be_one_token(prm):
    path, model, tok = prm
    with pytest.raises(ValueError, match="step_token '<nope>' is not one token"):
        verify(RECORDS, _cfg("prm", path, step_token="<nope>"), model=model, tok=tok, progress=False)


REMOTE = '''
from transformers import Qwen2ForSequenceClassification


class RewardModel(Qwen2ForSequenceClassification):
    """Stands in for a hub RM with its own code; returns a tuple like Qwen2ForRewardModel."""

    def forward(self, input_ids=None, attention_mask=None, **kw):
        return (super().forward(input_ids=input_ids, attention_mask=attention_mask).logits * 2.0,)
'''


def test_remote_code_outcome_model_loads_through_automodel(tmp_path, orm):
    model, tok = save_verifier(tmp_path, "outcome", remote_code=REMOTE)
    cfg = _cfg("outcome", tmp_path, trust_remote_code=True)
    got = verify(RECORDS, cfg, progress=False)[1]["verifier_scores"][0]
    ids = torch.tensor([render(tok, cfg, RECORDS[1]["problem"], RECORDS[1]["responses"][0])])
    with torch.no_grad():
        want = torch.sigmoid(2.0 * model(input_ids=ids).logits[0, 0]).item()
    assert got == pytest.approx(want, abs=1e-5)


def test_probability_heads():
    assert _probability(torch.tensor([[0.0]])).item() == pytest.approx(0.5)
    assert _probability(torch.tensor([[0.0, math.log(3.0)]])).item() == pytest.approx(0.75)
    with pytest.raises(ValueError, match="3 outputs"):
        _probability(torch.zeros(1, 3))
    assert aggregate([], "min") == 0.0


@pytest.mark.parametrize("verifiers, message", [
    ({"rm": {"path": "x", "kind": "orm"}}, "'verifiers.rm.kind'"),
    ({"generative": {"path": "x", "kind": "outcome"}},
     "config key 'verifiers.generative': a verifier name must not be a built-in judge's ('last_token' or 'generative')"),
    ({"last_token": {"path": "x", "kind": "outcome"}}, "config key 'verifiers.last_token'"),
    ({"my rm": {"path": "x", "kind": "outcome"}}, "a verifier name is letters, digits"),
    ({"rm": {"path": "x", "kind": "outcome", "methods": ["lasr"]}},
     "config key 'verifiers.rm.methods': unknown method(s) 'lasr'"),
])
def test_bad_verifier_config_names_the_key(verifiers, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate(_minimal(verifiers))


def test_schema_defaults_are_the_qwen_conventions():
    spec = load_schema()["properties"]["verifiers"]["additionalProperties"]["properties"]
    assert spec["step_token"]["default"] == "<extra_0>" and spec["step_separator"]["default"] == "\n\n"
    assert spec["system"]["default"] == "Please reason step by step, and put your final answer within \\boxed{}."


def test_tables_carry_the_verifiers(tmp_path):
    from fake_results import records

    from laser.io import write_jsonl

    recs, _ = records("easy", "laser", seed=0)
    gen = tmp_path / "generations" / "tiny" / "laser" / "easy.jsonl"
    write_jsonl(gen, recs)
    # an oracle verifier (P(correct) = 0.9 / 0.1) and one that calls everything correct
    oracle = [{"id": r["id"], "verifier_scores": [(0.9 if a else 0.1) if p is not None else 0.0
                                                  for a, p in zip(r["acc_list"], r["pred_answers"])]} for r in recs]
    yes = [{"id": r["id"], "verifier_scores": [1.0 if p is not None else 0.0 for p in r["pred_answers"]]}
           for r in recs]
    paths = {}
    for name, rows in (("oracle", oracle), ("yes", yes)):
        paths[name] = tmp_path / "verifiers" / name / "tiny" / "laser" / "easy.jsonl"
        write_jsonl(paths[name], rows)
    run = analysis_tables.load_run(gen, verifier_paths=paths)
    assert list(run.judges) == ["last_token", "oracle", "yes"]
    tables = analysis_tables.all_tables([run], [])
    v = tables["verifiers"].set_index(["benchmark", "judge"])
    assert v.loc[("easy", "oracle"), "f1_filtered"] == 1.0
    assert v.loc[("easy", "yes"), "false_acc"] == 0.0 and v.loc[("easy", "yes"), "f1_filtered"] == 0.0
    assert v.loc[("average", "oracle"), "f1_filtered"] == 1.0
    assert ("easy", "last_token") in v.index and v.loc[("easy", "oracle"), "ece"] == pytest.approx(0.1)
    assert set(tables["main"]["judge"]) == {"last_token", "oracle", "yes"}

    bad = tmp_path / "bad.jsonl"
    write_jsonl(bad, [{**o, "verifier_scores": o["verifier_scores"][:-1]} for o in oracle])
    with pytest.raises(analysis_tables.InputError, match=r"bad.jsonl, line 1: \d+ verifier_scores for \d+ responses"):
        analysis_tables.load_run(gen, verifier_paths={"oracle": bad})


def test_no_verifier_gives_an_empty_table_with_its_columns(tmp_path):
    from fake_results import records

    from laser.io import write_jsonl

    gen = tmp_path / "generations" / "tiny" / "laser" / "easy.jsonl"
    write_jsonl(gen, records("easy", "laser", seed=0)[0])
    v = analysis_tables.all_tables([analysis_tables.load_run(gen)], [])["verifiers"]
    assert v.empty and "f1_filtered" in v.columns and "judge" in v.columns
