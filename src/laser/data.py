"""Problem sets normalised to one schema, whatever their source.

Each record: ``id``, ``problem``, ``answer`` (str), ``source``, plus every extra field of the
input (kept so generations stay in the official LaSeR record format), and ``messages`` (the chat
prompt) only where the dataset brings its own (``messages_key``). Otherwise the prepared files
hold the bare problem, and each job builds the prompt it reads (`laser.prompts.with_prompt`, with
the job's resolved prompt, `laser.jobs`): the training jobs with the model's ``train_suffix``,
the generation jobs with the checkpoint's ``eval_suffix`` or ``base_eval_suffix``.
Sources: the synthetic task (embedded default), local JSONL in the official format, or any
dataset `datasets.load_dataset` can open (a hub name, or "json"/"parquet" with data_files).
Field keys may be dotted paths into nested fields (verl parquet: ``reward_model.ground_truth``).
"""

from __future__ import annotations

from pathlib import Path

from . import tasks
from .io import InputError, read_jsonl
from .prompts import build_messages

NORMALISED = ("id", "problem", "answer", "messages", "source")
# The checkout this package runs from: the shipped data (data/benchmarks/) lives there.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def local_path(path: str) -> Path:
    """A `jsonl` dataset's file: an absolute path as it is; a relative one from the working
    directory if it is there, else from the project folder, so the shipped configs' paths
    (``data/benchmarks/...``) also work under ``snakemake --directory <elsewhere>``."""
    p = Path(path)
    if p.is_absolute() or p.exists() or not (PROJECT_ROOT / p).exists():
        return p
    return PROJECT_ROOT / p


def get_field(rec: dict, key: str, default=None):
    """``rec[key]``, or for a dotted key absent as such the nested field (``a.b`` -> rec["a"]["b"])."""
    if key in rec:
        return rec[key]
    cur = rec
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return default
        cur = cur[part]
    return cur


def _top(key: str, columns) -> str:
    """The top-level column a (possibly dotted) key lives in."""
    return key if key in columns else key.split(".", 1)[0]


def _check_messages(messages, where: str) -> list[dict]:
    """A dataset's chat prompt: a non-empty list of {role, content} string messages."""
    ok = isinstance(messages, list) and messages and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in messages)
    if not ok:
        raise InputError(f"{where}: must be a non-empty list of chat messages {{role, content}}, got {messages!r:.200}")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _last_user(messages: list[dict]) -> str:
    users = [m["content"] for m in messages if m["role"] == "user"]
    return users[-1] if users else messages[-1]["content"]


def _from_hub(spec: dict, where: str) -> list[dict]:
    import datasets

    try:
        ds = datasets.load_dataset(spec["name"], split=spec.get("split", "train"),
                                   data_files=spec.get("data_files"), revision=spec.get("revision"))
    except Exception as e:  # network, missing split, bad files: say which config entry
        raise InputError(f"{where}: cannot load dataset {spec['name']!r}: {e}") from e
    missing = [k for k in _required_keys(spec) if _top(k, ds.column_names) not in ds.column_names]
    if missing:
        raise InputError(f"{where}: dataset {spec['name']!r} has no column(s) {missing}; "
                         f"columns are {ds.column_names} (set problem_key / answer_key / messages_key)")
    return [dict(r) for r in ds]


def _required_keys(spec: dict) -> list[str]:
    """Keys every record must have: the answer, and the problem unless the dataset's own chat
    prompt (`messages_key`) stands in for it."""
    mk = spec.get("messages_key")
    return [k for k in (None if mk else spec.get("problem_key", "problem"), spec.get("answer_key", "answer"), mk) if k]


def load_records(spec: dict, *, seed: int, where: str, exclude: set[str] = frozenset()) -> list[dict]:
    """Raw records (with `problem`/`answer` under their configured keys) for a dataset spec."""
    source = spec["source"]
    if source == "synthetic":
        return tasks.generate(spec["tiers"], spec["n_problems"], seed, exclude=exclude)
    if source == "jsonl":
        return read_jsonl(local_path(spec["path"]), required=tuple(k.split(".", 1)[0] for k in _required_keys(spec)))
    if source == "hub":
        return _from_hub(spec, where)
    raise InputError(f"{where}: unknown source {source!r}")


def normalise(raw: list[dict], spec: dict, *, name: str, suffix: str | None = None,
              seed: int = 0) -> list[dict]:
    """Map records to the project's schema; `limit` keeps a seeded random subset (order kept).

    ``messages``: the record's own chat prompt when `spec` has a `messages_key` (used as it is;
    ``problem`` is then the `problem_key` field if present, else the last user message), else
    ``problem + suffix`` as one user message, or none when `suffix` is None (benchmarks)."""
    import random

    pk, ak, mk = spec.get("problem_key", "problem"), spec.get("answer_key", "answer"), spec.get("messages_key")
    out = []
    for i, rec in enumerate(raw):
        messages = _check_messages(get_field(rec, mk), f"{name}: record {i + 1}: field {mk!r}") if mk else None
        problem, answer = get_field(rec, pk), get_field(rec, ak)
        if messages is not None and problem is None:
            problem = _last_user(messages)
        if isinstance(answer, list) and len(answer) == 1:  # e.g. OlympiadBench's final_answer
            answer = answer[0]
        if not isinstance(problem, str) or not problem.strip():
            raise InputError(f"{name}: record {i + 1}: field {pk!r} must be a non-empty string")
        if answer is None or str(answer).strip() == "":
            raise InputError(f"{name}: record {i + 1}: field {ak!r} is empty")
        extra = {k: v for k, v in rec.items() if k not in (pk, ak, mk, *NORMALISED)}
        if messages is None and suffix is not None:
            messages = build_messages(problem, suffix)
        out.append({**extra, "id": str(rec.get("id", rec.get("unique_id", f"{name}-{i}"))),
                    "problem": problem, "answer": str(answer), "source": name,
                    **({"messages": messages} if messages is not None else {})})
    if spec.get("limit") and spec["limit"] < len(out):
        keep = sorted(random.Random(seed).sample(range(len(out)), spec["limit"]))
        out = [out[i] for i in keep]
    ids = [r["id"] for r in out]
    if len(set(ids)) != len(ids):  # ids key the generations; make them unique if the source isn't
        out = [{**r, "id": f"{name}-{i}"} for i, r in enumerate(out)]
    return out


def prepare(spec: dict, *, name: str, seed: int, suffix: str | None = None,
            exclude: set[str] = frozenset()) -> list[dict]:
    """Load and normalise one dataset; `suffix` builds ``messages`` (see `normalise`)."""
    raw = load_records(spec, seed=seed, where=name, exclude=exclude)
    return normalise(raw, spec, name=name, suffix=suffix, seed=seed)


def benchmark_seed(seed: int, name: str) -> int:
    """A per-benchmark seed, stable across runs and Python processes."""
    import zlib

    return seed * 1_000_003 + zlib.crc32(name.encode())


def prepare_all(job: dict) -> tuple[list[dict], dict[str, list[dict]]]:
    """Training set (bare problems, or the dataset's own chat prompts; none without `train_data`)
    and every benchmark (bare problems), from the prepare_data job's settings (`laser.jobs`; the
    config itself has the same keys): each later job builds the prompt it reads
    (`laser.prompts.with_prompt`), so a prompt edit reruns those jobs and not this one. Synthetic
    training problems never repeat a test problem."""
    benches = {name: prepare(spec, name=name, seed=benchmark_seed(job["seed"], name))
               for name, spec in job["benchmarks"].items()}
    if job.get("train_data") is None:  # an evaluation-only config
        return [], benches
    held_out = {r["problem"] for recs in benches.values() for r in recs}
    train = prepare(job["train_data"], name="train", seed=job["seed"], exclude=held_out)
    return train, benches


def check_sources(config: dict) -> None:
    """Fail before any job starts when a local input file is missing."""
    specs = {**({"train_data": config["train_data"]} if "train_data" in config else {}),
             **{f"benchmarks.{k}": v for k, v in config["benchmarks"].items()}}
    for key, spec in specs.items():
        if spec["source"] == "jsonl" and not local_path(spec["path"]).is_file():
            where = "" if Path(spec["path"]).is_absolute() else f" (looked in {Path.cwd()} and {PROJECT_ROOT})"
            raise InputError(f"config key '{key}.path': file not found: {spec['path']}{where}")
