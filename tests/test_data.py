import json
from pathlib import Path

import pytest

from laser import data, jobs, prompts
from laser.io import InputError, read_jsonl

SUFFIX = " Please reason step by step, and put your final answer within \\boxed{}."


def _spec(**kw):
    return {"problem_key": "problem", "answer_key": "answer", "limit": None, **kw}


@pytest.mark.parametrize("bench, n, extra", [("math500", 500, "unique_id"), ("amc23", 40, "id"),
                                             ("aime24", 30, "id"), ("aime25", 30, "id"),
                                             ("olympiadbench", 675, "id")])
def test_real_benchmarks_normalise(benchmarks_dir, bench, n, extra):
    spec = _spec(source="jsonl", path=str(benchmarks_dir / bench / "test.jsonl"))
    recs = data.prepare(spec, name=bench, seed=0, suffix=SUFFIX)
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


@pytest.mark.parametrize("extraction", ["lenient", "official"])
def test_shipped_benchmarks_answers_grade_correct_against_themselves(extraction):
    """Every shipped config's benchmark loads through the data loader (from another working
    directory: the relative path falls back to the project folder), and each reference answer,
    boxed, is graded correct against the file's own answer (AIME25's are JSON numbers)."""
    import os

    import yaml

    from conftest import ROOT
    from laser.grading import grade_response

    specs = {}
    for cfg in ("paper", "released", "gpu-small"):
        for name, spec in yaml.safe_load((ROOT / "config" / f"{cfg}.yaml").read_text())["benchmarks"].items():
            assert spec["source"] == "jsonl" and not Path(spec["path"]).is_absolute(), (cfg, name)
            specs.setdefault(spec["path"], spec)
    assert len(specs) == 5
    cwd = os.getcwd()
    os.chdir("/")
    try:
        data.check_sources({"benchmarks": specs})
        for path, spec in specs.items():
            raw = data.load_records(spec, seed=0, where=path)
            recs = data.normalise(raw, _spec(**spec), name=path)
            assert len(recs) == len(raw) > 0
            for r, rec in zip(raw, recs):
                assert rec["answer"] == str(r["answer"])
                assert grade_response(f"So the answer is $\\boxed{{{rec['answer']}}}$.", r["answer"],
                                      extraction) == (rec["answer"], True), (path, r["answer"])
    finally:
        os.chdir(cwd)
    aime25 = read_jsonl(data.PROJECT_ROOT / "data" / "benchmarks" / "aime25" / "test.jsonl")
    assert all(isinstance(r["answer"], int) for r in aime25)


def test_relative_jsonl_path_is_read_from_the_working_directory_first(tmp_path, monkeypatch):
    (tmp_path / "data" / "benchmarks" / "aime24").mkdir(parents=True)
    (tmp_path / "data" / "benchmarks" / "aime24" / "test.jsonl").write_text('{"problem": "p", "answer": "1"}\n')
    monkeypatch.chdir(tmp_path)
    assert data.local_path("data/benchmarks/aime24/test.jsonl") == Path("data/benchmarks/aime24/test.jsonl")
    spec = _spec(source="jsonl", path="data/benchmarks/aime24/test.jsonl")
    assert [r["answer"] for r in data.prepare(spec, name="aime24", seed=0)] == ["1"]
    with pytest.raises(InputError, match=r"config key 'benchmarks.x.path': file not found: nope.jsonl "
                                         r"\(looked in .* and .*\)"):
        data.check_sources({"benchmarks": {"x": {"source": "jsonl", "path": "nope.jsonl"}}})


def test_limit_is_seeded_subset(benchmarks_dir):
    spec = _spec(source="jsonl", path=str(benchmarks_dir / "math500" / "test.jsonl"), limit=20)
    a = data.prepare(spec, name="m", seed=1, suffix="")
    assert len(a) == 20
    assert a == data.prepare(spec, name="m", seed=1, suffix="")
    assert a != data.prepare(spec, name="m", seed=2, suffix="")


def test_hub_code_path_with_local_files(tmp_path, benchmarks_dir):
    """`source: hub` goes through datasets.load_dataset; local json/parquet use the same call."""
    import datasets

    rows = [{"question": f"What is {i}+1?", "final_answer": str(i + 1), "difficulty": 1.0}
            for i in range(7)]
    pq = tmp_path / "train.parquet"
    datasets.Dataset.from_list(rows).to_parquet(str(pq))
    spec = _spec(source="hub", name="parquet", data_files=str(pq), split="train",
                 problem_key="question", answer_key="final_answer")
    recs = data.prepare(spec, name="deepmath", seed=0, suffix=SUFFIX)
    assert [r["answer"] for r in recs] == [str(i + 1) for i in range(7)]
    assert recs[0]["difficulty"] == 1.0 and recs[0]["problem"] == "What is 0+1?"

    spec = _spec(source="hub", name="json", split="train",
                 data_files=str(benchmarks_dir / "aime24" / "test.jsonl"))
    assert len(data.prepare(spec, name="aime24", seed=0, suffix="")) == 30


def test_hub_missing_column_names_it(tmp_path):
    import datasets

    pq = tmp_path / "x.parquet"
    datasets.Dataset.from_list([{"q": "a", "a": "1"}]).to_parquet(str(pq))
    spec = _spec(source="hub", name="parquet", data_files=str(pq), split="train")
    with pytest.raises(InputError, match="no column.*'problem'.*problem_key"):
        data.prepare(spec, name="x", seed=0, suffix="")


def test_hub_unreachable_names_dataset(monkeypatch):
    import datasets
    import huggingface_hub

    # this machine has no hub access either way; offline mode fails fast instead of retrying
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    spec = _spec(source="hub", name="definitely-not/a-dataset-xyz", split="train")
    with pytest.raises(InputError, match="cannot load dataset 'definitely-not/a-dataset-xyz'"):
        data.prepare(spec, name="train", seed=0, suffix="")


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
        data.prepare(spec, name="bad", seed=0, suffix="")
    assert str(path) in str(err.value)


def test_empty_answer_rejected(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text(json.dumps({"problem": "p", "answer": ""}) + "\n")
    with pytest.raises(InputError, match="record 1: field 'answer' is empty"):
        data.prepare(_spec(source="jsonl", path=str(path)), name="b", seed=0, suffix="")


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


# ---------------------------------------------------------------- prompts and the authors' verl data

TRAIN_SUFFIX = " Please reason step by step, and put your final answer within \\boxed{}."


def _verl_rows(n):
    """Rows as the official preprocessing writes them (process_math_dataset.py): the chat prompt
    is built already, the answer is nested under reward_model."""
    return [{"data_source": "DeepMath-103K",
             "prompt": [{"role": "user", "content": f"What is {i}+1?" + TRAIN_SUFFIX}],
             "ability": "math", "reward_model": {"style": "rule", "ground_truth": str(i + 1)},
             "extra_info": {"split": "train", "index": i}} for i in range(n)]


@pytest.mark.parametrize("fmt", ["parquet", "json"])
def test_dataset_prompts_and_nested_answer_through_load_dataset(tmp_path, fmt):
    """messages_key: the rows' own chat prompts are used as they are; answer_key reaches into
    reward_model.ground_truth; same datasets.load_dataset call as a hub name."""
    import datasets

    path = tmp_path / f"train.{fmt}"
    ds = datasets.Dataset.from_list(_verl_rows(5))
    ds.to_parquet(str(path)) if fmt == "parquet" else ds.to_json(str(path))
    spec = _spec(source="hub", name=fmt, data_files=str(path), split="train", messages_key="prompt",
                 answer_key="reward_model.ground_truth")
    for suffix in (None, " ignored"):  # the dataset's prompts win over any suffix
        recs = data.prepare(spec, name="train", seed=0, suffix=suffix)
        assert [r["answer"] for r in recs] == ["1", "2", "3", "4", "5"]
        assert [r["messages"] for r in recs] == [row["prompt"] for row in _verl_rows(5)]
    # no `problem` column: the problem is the user message; the prompt column became `messages`
    assert recs[0]["problem"] == "What is 0+1?" + TRAIN_SUFFIX
    assert "prompt" not in recs[0] and recs[0]["data_source"] == "DeepMath-103K"
    assert recs[0]["reward_model"]["ground_truth"] == "1"  # other fields are kept
    # with_prompt keeps them too (and says so when they are missing)
    prompt = {"suffix": " X", "messages_key": spec["messages_key"]}
    assert prompts.with_prompt(recs, prompt) == recs
    with pytest.raises(InputError, match="no 'messages'.*messages_key"):
        prompts.with_prompt([{k: v for k, v in recs[0].items() if k != "messages"}], prompt)


def test_dataset_prompts_from_jsonl_and_a_problem_column(tmp_path):
    rows = [{**r, "problem": f"What is {i}+1?"} for i, r in enumerate(_verl_rows(3))]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = _spec(source="jsonl", path=str(path), messages_key="prompt", answer_key="reward_model.ground_truth")
    recs = data.prepare(spec, name="t", seed=0)
    assert [r["problem"] for r in recs] == [f"What is {i}+1?" for i in range(3)]
    assert recs[2]["messages"][0]["content"].endswith(TRAIN_SUFFIX) and recs[2]["answer"] == "3"


@pytest.mark.parametrize("bad, message", [
    ("just text", "field 'prompt': must be a non-empty list of chat messages"),
    ([], "field 'prompt': must be a non-empty list"),
    ([{"role": "user"}], "field 'prompt': must be a non-empty list"),
])
def test_bad_dataset_prompt_names_record(tmp_path, bad, message):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"prompt": [{"role": "user", "content": "a"}], "answer": "1"}) + "\n"
                    + json.dumps({"prompt": bad, "answer": "2"}) + "\n")
    with pytest.raises(InputError, match=f"t: record 2: {message}"):
        data.prepare(_spec(source="jsonl", path=str(path), messages_key="prompt"), name="t", seed=0)


def test_missing_nested_column_names_it(tmp_path):
    import datasets

    pq = tmp_path / "x.parquet"
    datasets.Dataset.from_list([{"prompt": [{"role": "user", "content": "a"}], "answer": "1"}]).to_parquet(str(pq))
    spec = _spec(source="hub", name="parquet", data_files=str(pq), split="train", messages_key="prompt",
                 answer_key="reward_model.ground_truth")
    with pytest.raises(InputError, match=r"no column\(s\) \['reward_model.ground_truth'\]"):
        data.prepare(spec, name="x", seed=0)


def test_get_field_nested_and_dotted_names():
    rec = {"a": {"b": {"c": 1}}, "x.y": 2}
    assert data.get_field(rec, "a.b.c") == 1 and data.get_field(rec, "x.y") == 2
    assert data.get_field(rec, "a.z") is None and data.get_field(rec, "a.b.c.d") is None


def test_benchmarks_are_bare_and_prompts_follow_model_and_method():
    """Benchmark files hold the bare problem; each checkpoint's prompt comes from its suffix."""
    from laser.config import load

    from conftest import ROOT

    config = load(ROOT / "config" / "config.yaml")
    config["train_data"]["n_problems"] = 50
    config["prompt"].update(train_suffix=" T", eval_suffix=" E", base_eval_suffix=None)
    config["models"]["tiny"]["prompt"] = {"base_eval_suffix": "\nB"}
    train, benches = data.prepare_all(config)
    assert all("messages" not in r for recs in benches.values() for r in recs)
    assert all("messages" not in r for r in train)  # bare problems: each job builds its own prompt
    assert all(r["messages"] == [{"role": "user", "content": r["problem"] + " T"}]
               for r in prompts.with_prompt(train, jobs.train_prompt(config, "tiny")))
    bench = prompts.with_prompt(benches["arith_easy"], jobs.eval_prompt(config, "tiny", "laser", "arith_easy"))
    base = prompts.with_prompt(benches["arith_easy"], jobs.eval_prompt(config, "tiny", "base", "arith_easy"))
    assert bench[0]["messages"][0]["content"] == benches["arith_easy"][0]["problem"] + " E"
    assert base[0]["messages"][0]["content"] == benches["arith_easy"][0]["problem"] + "\nB"
    assert "messages" not in benches["arith_easy"][0]  # copies: the prepared records are untouched
    config["models"]["tiny"]["prompt"]["train_suffix"] = " T2"
    assert prompts.with_prompt(train, jobs.train_prompt(config, "tiny"))[0]["messages"][0]["content"] == \
        train[0]["problem"] + " T2"


def test_filter_overlong_counts_tokens_as_trl_does():
    """Prompt length = TRL GRPOTrainer's tokenization (`_tokenize_prompts`: apply_chat_template with
    the generation prompt, tokenize=True); prompts longer than max_len are dropped, as verl's
    filter_overlong_prompts (<= max_len kept)."""
    from laser import tiny

    tok = tiny.build_tokenizer()
    recs = [{"id": str(i), "messages": [{"role": "user", "content": "7" * (3 * i + 1) + TRAIN_SUFFIX}]}
            for i in range(6)]
    trl_ids = tok.apply_chat_template(conversation=[r["messages"] for r in recs], add_generation_prompt=True,
                                      tokenize=True, return_dict=True)["input_ids"]
    lengths = [len(ids) for ids in trl_ids]
    assert [prompts.prompt_length(tok, r["messages"]) for r in recs] == lengths
    assert lengths == sorted(lengths) and len(set(lengths)) == 6
    kept, dropped = prompts.filter_overlong(recs, tok, lengths[3])
    assert [r["id"] for r in kept] == ["0", "1", "2", "3"] and dropped == 2  # the boundary is kept
    assert prompts.filter_overlong(recs, tok, lengths[0] - 1) == ([], 6)
    assert prompts.filter_overlong(recs, tok, 10_000) == (recs, 0)
