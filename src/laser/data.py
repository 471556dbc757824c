"""Problem sets normalised to one schema, whatever their source.

Each record: ``id``, ``problem``, ``answer`` (str), ``messages`` (the prompt as one user chat
message: problem + instruction suffix), ``source``, plus every extra field of the input (kept so
generations stay in the official LaSeR record format).
Sources: the synthetic task (embedded default), local JSONL in the official format, or any
dataset `datasets.load_dataset` can open (a hub name, or "json"/"parquet" with data_files).
"""

from __future__ import annotations

from pathlib import Path

from . import tasks
from .io import InputError, read_jsonl

NORMALISED = ("id", "problem", "answer", "messages", "source")


def build_messages(problem: str, instruction_suffix: str) -> list[dict]:
    return [{"role": "user", "content": problem + instruction_suffix}]


def _from_hub(spec: dict, where: str) -> list[dict]:
    import datasets

    try:
        ds = datasets.load_dataset(spec["name"], split=spec.get("split", "train"),
                                   data_files=spec.get("data_files"), revision=spec.get("revision"))
    except Exception as e:  # network, missing split, bad files: say which config entry
        raise InputError(f"{where}: cannot load dataset {spec['name']!r}: {e}") from e
    pk, ak = spec.get("problem_key", "problem"), spec.get("answer_key", "answer")
    missing = [k for k in (pk, ak) if k not in ds.column_names]
    if missing:
        raise InputError(f"{where}: dataset {spec['name']!r} has no column(s) {missing}; "
                         f"columns are {ds.column_names} (set problem_key / answer_key)")
    return [dict(r) for r in ds]


def load_records(spec: dict, *, seed: int, where: str, exclude: set[str] = frozenset()) -> list[dict]:
    """Raw records (with `problem`/`answer` under their configured keys) for a dataset spec."""
    source = spec["source"]
    if source == "synthetic":
        return tasks.generate(spec["tiers"], spec["n_problems"], seed, exclude=exclude)
    if source == "jsonl":
        return read_jsonl(spec["path"], required=(spec.get("problem_key", "problem"),
                                                  spec.get("answer_key", "answer")))
    if source == "hub":
        return _from_hub(spec, where)
    raise InputError(f"{where}: unknown source {source!r}")


def normalise(raw: list[dict], spec: dict, *, name: str, instruction_suffix: str,
              seed: int = 0) -> list[dict]:
    """Map records to the project's schema; `limit` keeps a seeded random subset (order kept)."""
    import random

    pk, ak = spec.get("problem_key", "problem"), spec.get("answer_key", "answer")
    out = []
    for i, rec in enumerate(raw):
        problem, answer = rec.get(pk), rec.get(ak)
        if isinstance(answer, list) and len(answer) == 1:  # e.g. OlympiadBench's final_answer
            answer = answer[0]
        if not isinstance(problem, str) or not problem.strip():
            raise InputError(f"{name}: record {i + 1}: field {pk!r} must be a non-empty string")
        if answer is None or str(answer).strip() == "":
            raise InputError(f"{name}: record {i + 1}: field {ak!r} is empty")
        extra = {k: v for k, v in rec.items() if k not in (pk, ak, *NORMALISED)}
        out.append({**extra, "id": str(rec.get("id", rec.get("unique_id", f"{name}-{i}"))),
                    "problem": problem, "answer": str(answer),
                    "messages": build_messages(problem, instruction_suffix), "source": name})
    if spec.get("limit") and spec["limit"] < len(out):
        keep = sorted(random.Random(seed).sample(range(len(out)), spec["limit"]))
        out = [out[i] for i in keep]
    ids = [r["id"] for r in out]
    if len(set(ids)) != len(ids):  # ids key the generations; make them unique if the source isn't
        out = [{**r, "id": f"{name}-{i}"} for i, r in enumerate(out)]
    return out


def prepare(spec: dict, *, name: str, seed: int, instruction_suffix: str,
            exclude: set[str] = frozenset()) -> list[dict]:
    raw = load_records(spec, seed=seed, where=name, exclude=exclude)
    return normalise(raw, spec, name=name, instruction_suffix=instruction_suffix, seed=seed)


def benchmark_seed(seed: int, name: str) -> int:
    """A per-benchmark seed, stable across runs and Python processes."""
    import zlib

    return seed * 1_000_003 + zlib.crc32(name.encode())


def prepare_all(config: dict) -> tuple[list[dict], dict[str, list[dict]]]:
    """Training set and every benchmark; synthetic training problems never repeat a test problem."""
    suffix = config["prompt"]["instruction_suffix"]
    benches = {name: prepare(spec, name=name, seed=benchmark_seed(config["seed"], name),
                             instruction_suffix=suffix)
               for name, spec in config["benchmarks"].items()}
    held_out = {r["problem"] for recs in benches.values() for r in recs}
    train = prepare(config["train_data"], name="train", seed=config["seed"],
                    instruction_suffix=suffix, exclude=held_out)
    return train, benches


def check_sources(config: dict) -> None:
    """Fail before any job starts when a local input file is missing."""
    specs = {"train_data": config["train_data"],
             **{f"benchmarks.{k}": v for k, v in config["benchmarks"].items()}}
    for key, spec in specs.items():
        if spec["source"] == "jsonl" and not Path(spec["path"]).is_file():
            raise InputError(f"config key '{key}.path': file not found: {spec['path']}")
