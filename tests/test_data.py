import json

import pytest

from laser import data
from laser.io import InputError, read_jsonl

SUFFIX = " Please reason step by step, and put your final answer within \\boxed{}."


def _spec(**kw):
    return {"problem_key": "problem", "answer_key": "answer", "limit": None, **kw}


@pytest.mark.parametrize("bench, n, extra", [("math500", 500, "unique_id"), ("amc23", 40, "id"),
                                             ("aime24", 30, "id")])
def test_real_benchmarks_normalise(benchmarks_dir, bench, n, extra):
    spec = _spec(source="jsonl", path=str(benchmarks_dir / bench / "test.jsonl"))
    recs = data.prepare(spec, name=bench, seed=0, instruction_suffix=SUFFIX)
    assert len(recs) == n
    ids = [r["id"] for r in recs]
    assert len(set(ids)) == n
    for r in recs:
        assert set(data.NORMALISED) <= set(r)
        assert isinstance(r["answer"], str) and r["answer"]
        assert r["messages"] == [{"role": "user", "content": r["problem"] + SUFFIX}]
        assert r["source"] == bench
    if extra == "unique_id":  # extra fields are kept for the official output format
        assert all("solution" in r and "level" in r for r in recs)


def test_limit_is_seeded_subset(benchmarks_dir):
    spec = _spec(source="jsonl", path=str(benchmarks_dir / "math500" / "test.jsonl"), limit=20)
    a = data.prepare(spec, name="m", seed=1, instruction_suffix="")
    assert len(a) == 20
    assert a == data.prepare(spec, name="m", seed=1, instruction_suffix="")
    assert a != data.prepare(spec, name="m", seed=2, instruction_suffix="")


def test_hub_code_path_with_local_files(tmp_path, benchmarks_dir):
    """`source: hub` goes through datasets.load_dataset; local json/parquet use the same call."""
    import datasets

    rows = [{"question": f"What is {i}+1?", "final_answer": str(i + 1), "difficulty": 1.0}
            for i in range(7)]
    pq = tmp_path / "train.parquet"
    datasets.Dataset.from_list(rows).to_parquet(str(pq))
    spec = _spec(source="hub", name="parquet", data_files=str(pq), split="train",
                 problem_key="question", answer_key="final_answer")
    recs = data.prepare(spec, name="deepmath", seed=0, instruction_suffix=SUFFIX)
    assert [r["answer"] for r in recs] == [str(i + 1) for i in range(7)]
    assert recs[0]["difficulty"] == 1.0 and recs[0]["problem"] == "What is 0+1?"

    spec = _spec(source="hub", name="json", split="train",
                 data_files=str(benchmarks_dir / "aime24" / "test.jsonl"))
    assert len(data.prepare(spec, name="aime24", seed=0, instruction_suffix="")) == 30


def test_hub_missing_column_names_it(tmp_path):
    import datasets

    pq = tmp_path / "x.parquet"
    datasets.Dataset.from_list([{"q": "a", "a": "1"}]).to_parquet(str(pq))
    spec = _spec(source="hub", name="parquet", data_files=str(pq), split="train")
    with pytest.raises(InputError, match="no column.*'problem'.*problem_key"):
        data.prepare(spec, name="x", seed=0, instruction_suffix="")


def test_hub_unreachable_names_dataset(monkeypatch):
    import datasets
    import huggingface_hub

    # this machine has no hub access either way; offline mode fails fast instead of retrying
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    spec = _spec(source="hub", name="definitely-not/a-dataset-xyz", split="train")
    with pytest.raises(InputError, match="cannot load dataset 'definitely-not/a-dataset-xyz'"):
        data.prepare(spec, name="train", seed=0, instruction_suffix="")


@pytest.mark.parametrize("content, message", [
    ('{"problem": "a", "answer": "1"}\n{"problem": "b", "answer": \n', r"line 2: not valid JSON"),
    ('{"problem": "a", "answer": "1"}\n{"problem": "b"}\n', r"line 2: missing field\(s\) 'answer'"),
    ('{"answer": "1"}\n', r"line 1: missing field\(s\) 'problem'"),
    ('[1, 2]\n', r"line 1: expected a JSON object"),
    ('', r"empty file"),
    ('\n\n', r"empty file"),
])
def test_malformed_jsonl_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    spec = _spec(source="jsonl", path=str(path))
    with pytest.raises(InputError, match=message) as err:
        data.prepare(spec, name="bad", seed=0, instruction_suffix="")
    assert str(path) in str(err.value)


def test_empty_answer_rejected(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text(json.dumps({"problem": "p", "answer": ""}) + "\n")
    with pytest.raises(InputError, match="record 1: field 'answer' is empty"):
        data.prepare(_spec(source="jsonl", path=str(path)), name="b", seed=0, instruction_suffix="")


def test_prepare_all_keeps_test_problems_out_of_training():
    from laser.config import load

    from conftest import ROOT

    config = load(ROOT / "config" / "config.yaml")
    config["train_data"]["n_problems"] = 3000
    train, benches = data.prepare_all(config)
    held_out = {r["problem"] for recs in benches.values() for r in recs}
    assert len(train) == 3000 and held_out
    assert not held_out & {r["problem"] for r in train}
    assert set(benches) == set(config["benchmarks"])
    # deterministic in the seed
    assert data.prepare_all(config)[0] == train


def test_check_sources_names_missing_file():
    config = {"train_data": {"source": "synthetic"},
              "benchmarks": {"m": {"source": "jsonl", "path": "/nonexistent/x.jsonl"}}}
    with pytest.raises(InputError, match=r"config key 'benchmarks.m.path': file not found"):
        data.check_sources(config)


def test_read_jsonl_round_trip(tmp_path):
    from laser.io import write_jsonl

    recs = [{"a": 1, "b": "é"}, {"a": 2, "b": None}]
    write_jsonl(tmp_path / "x.jsonl", recs)
    assert read_jsonl(tmp_path / "x.jsonl") == recs
