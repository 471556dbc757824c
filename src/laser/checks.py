"""Whether each configured model can do what the config asks of it: every request (prompt plus the
tokens it may generate) within the model's context, z_c inside its vocabulary, its attention heads
split over `generation.tensor_parallel_size` GPUs.

Each check runs as soon as its facts are known (config/README.md, "Checks before the first job"):
- when Snakemake parses the workflow (`preflight`, once: the jobs do not repeat it), every check of
  every job of the config: for a model the workflow builds (its tokenizer and architecture follow
  from the config), a local model directory or a hub model already in the Hugging Face cache
  (their config.json and tokenizer), on the problems known then (the synthetic task's, which the
  seed determines, and local JSONL files);
- at the start of a job that loads a model (calibrate, train, generate), what only it can know:
  a hub model downloaded by the base_model job, and datasets loaded by prepare_data; each job
  checks the requests it makes (`check_job`, on its settings from `laser.jobs`).
Every failure is one line that names the config keys to change. Evaluation drops no problem: a
benchmark prompt that cannot take `generation.max_tokens` more tokens is an error. Training drops
(and counts) prompts over `training.max_prompt_length`, as verl does (`laser.train`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from .config import ConfigError, calibrated_models, run_settings
from .prompts import ENGINE_EXTRA

# Synthetic problems generated at parse time at most (6,000 take about 50 ms); beyond, the jobs check.
SYNTHETIC_AT_PARSE_TIME = 20_000
_HUB_ID = re.compile(r"[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)?")


@dataclass
class ModelFacts:
    """What the checks read of a model: its context (`max_position_embeddings`), attention heads
    and vocabulary size; None where the model's config does not say."""

    context: int | None
    heads: int | None
    vocab: int | None


def facts_from_dict(cfg: dict) -> ModelFacts:
    """From a config.json (the text model's part of a multimodal one)."""
    for key in ("text_config", "language_config", "llm_config"):
        if isinstance(cfg.get(key), dict):
            cfg = cfg[key]
            break
    return ModelFacts(cfg.get("max_position_embeddings"), cfg.get("num_attention_heads"), cfg.get("vocab_size"))


def built_facts(architecture: dict, tokenizer) -> ModelFacts:
    """Of the model the workflow builds (`laser.tiny.build_model`)."""
    from .tiny import vocab_size

    return ModelFacts(architecture["max_position_embeddings"], architecture["num_heads"], vocab_size(tokenizer))


def loaded_facts(model_dir: str, revision: str | None = None) -> ModelFacts:
    """Of a checkpoint (a directory, a pretrained model's base/ or a hub id), through transformers' AutoConfig."""
    from transformers import AutoConfig

    from .model import resolve_base

    cfg = AutoConfig.from_pretrained(resolve_base(model_dir), revision=revision).get_text_config()
    keys = ("max_position_embeddings", "num_attention_heads", "vocab_size")
    return ModelFacts(*(getattr(cfg, k, None) for k in keys))


def _error(prefix: str, text: str) -> ConfigError:
    return ConfigError(f"{prefix}{text}")


# ---------------------------------------------------------------- what the model's numbers decide

def _where(model: str, context: int) -> str:
    return f"model {model}'s context of {context} tokens (max_position_embeddings)"


def _tensor_parallel(model: str, facts: ModelFacts, g: dict, prefix: str) -> None:
    tp = g["tensor_parallel_size"]
    if g["backend"] == "vllm" and facts.heads and facts.heads % tp:
        raise _error(prefix, f"config key 'generation.tensor_parallel_size': {tp} does not divide the "
                             f"{facts.heads} attention heads of model {model} (vLLM splits the heads over the GPUs)")


def _vocabulary(model: str, facts: ModelFacts, zc_id: int | None, sft_method: str | None, prefix: str) -> None:
    """z_c (and, for the SFT ablation `sft_method`, z_c + 1) inside the vocabulary."""
    if not facts.vocab or zc_id is None:
        return
    if zc_id >= facts.vocab:
        raise _error(prefix, f"config key 'models.{model}.z_c': token id {zc_id} is outside the vocabulary of "
                             f"model {model} (size {facts.vocab})")
    if sft_method and zc_id + 1 >= facts.vocab:
        raise _error(prefix, f"config key 'methods.{sft_method}.loss': the SFT ablation trains token id z_c + 1 = "
                             f"{zc_id + 1}, outside the vocabulary of model {model} (size {facts.vocab})")


def _training_context(model: str, facts: ModelFacts, t: dict, prefix: str) -> None:
    need = t["max_prompt_length"] + t["max_completion_length"] + ENGINE_EXTRA
    if facts.context and need > facts.context:
        raise _error(prefix, f"config keys 'training.max_prompt_length' ({t['max_prompt_length']}) + "
                             f"'training.max_completion_length' ({t['max_completion_length']}) + {ENGINE_EXTRA} "
                             f"(EOS, z_c, scored token) = {need} tokens exceed {_where(model, facts.context)}; "
                             f"lower them")


def _calibration_context(model: str, facts: ModelFacts, max_completion: int, prefix: str) -> None:
    if facts.context and max_completion + ENGINE_EXTRA + 1 > facts.context:
        raise _error(prefix, f"config key 'training.max_completion_length': calibration samples {max_completion} "
                             f"tokens after each prompt, + {ENGINE_EXTRA} (EOS, z_c, scored token) leave no room "
                             f"for a prompt in {_where(model, facts.context)}; lower it")


def _generation_context(model: str, facts: ModelFacts, g: dict, prefix: str) -> None:
    if facts.context and g["max_tokens"] + ENGINE_EXTRA + 1 > facts.context:
        raise _error(prefix, f"config key 'generation.max_tokens': {g['max_tokens']} tokens + {ENGINE_EXTRA} (EOS, "
                             f"z_c, scored token) leave no room for a prompt in {_where(model, facts.context)}; "
                             f"lower it")


def _sft_method(config: dict, model: str) -> str | None:
    """A method of `model` that trains with the SFT ablation's loss (it needs z_c + 1), if any."""
    runs = ((m, run_settings(config, model, m)) for m in config["methods"])
    return next((m for m, run in runs if run["laser"] and run["loss"] == "sft"), None)


def check_model(config: dict, model: str, facts: ModelFacts, *, zc_id: int | None = None, prefix: str = "") -> None:
    """The checks of one model that need its numbers but no data, over every job of the config:
    tensor parallelism, z_c (and, for the SFT ablation, z_c + 1) inside the vocabulary, and the
    training and generation lengths against the context. `prefix`: "config: " at parse time."""
    g, t = config["generation"], config["training"]
    _tensor_parallel(model, facts, g, prefix)
    _vocabulary(model, facts, zc_id, _sft_method(config, model), prefix)
    if config["methods"]:
        _training_context(model, facts, t, prefix)
    elif model in calibrated_models(config):
        _calibration_context(model, facts, t["max_completion_length"], prefix)
    _generation_context(model, facts, g, prefix)


# ---------------------------------------------------------------- what the data decides

def _lengths(tokenizer, records: list[dict]) -> list[int]:
    """Prompt tokens of each record's `messages`, as the generation engine receives them."""
    from .prompts import render_prompts

    return [len(ids) for ids in render_prompts(tokenizer, records)[1]]


def _eval_prompts(model: str, tokenizer, context: int, name: str, run: str, records: list[dict], max_tokens: int,
                  prefix: str) -> None:
    """Every evaluation prompt (`records`, with their prompt) plus `max_tokens` fits `context`."""
    lengths = _lengths(tokenizer, records)
    longest, over = max(lengths), sum(n + max_tokens + ENGINE_EXTRA > context for n in lengths)
    if over:
        room = context - longest - ENGINE_EXTRA
        fix = (f"lower generation.max_tokens to {room} or less, " if room > 0 else "") + \
            f"leave those problems out of benchmarks.{name} (evaluation drops no problem), or use a " \
            f"model with a longer context"
        raise _error(prefix, f"config key 'generation.max_tokens': {over} of {len(lengths)} prompts of "
                             f"benchmark {name} ({run} prompt) do not fit {_where(model, context)} with it: the "
                             f"longest has {longest} tokens, + generation.max_tokens ({max_tokens}) + "
                             f"{ENGINE_EXTRA} = {longest + max_tokens + ENGINE_EXTRA}; {fix}")


def _judge_prompts(model: str, tokenizer, context: int, name: str, records: list[dict], judge: dict,
                   max_tokens: int, prefix: str) -> None:
    """Every judge prompt plus a solution of `max_tokens` tokens plus `judge.max_tokens` fits `context`."""
    from .prompts import judge_prompt

    prompts = [{"messages": [{"role": "user", "content": judge_prompt(judge["template"], r["problem"], "")}]}
               for r in records]
    longest = max(_lengths(tokenizer, prompts))
    need = longest + max_tokens + judge["max_tokens"] + ENGINE_EXTRA
    if need > context:
        raise _error(prefix, f"config key 'judge.max_tokens': the prompted judge's prompts on benchmark {name} "
                             f"do not fit {_where(model, context)}: the longest has {longest} tokens without the "
                             f"solution, + a solution of generation.max_tokens ({max_tokens}) + judge.max_tokens "
                             f"({judge['max_tokens']}) + {ENGINE_EXTRA} = {need}; lower judge.max_tokens or "
                             f"generation.max_tokens, or set judge.generative: false")


def check_prompts(config: dict, model: str, tokenizer, context: int, benchmarks: dict[str, list[dict]], *,
                  prefix: str = "") -> None:
    """Every evaluation prompt of `model` (each run's: `base` and every method) on the prepared
    (bare) records `benchmarks` (name -> records, any subset of the benchmarks), plus
    `generation.max_tokens`, fits `context`; with the prompted judge, so does every judge prompt
    plus a solution of `generation.max_tokens` tokens plus `judge.max_tokens`."""
    from .jobs import eval_prompt
    from .prompts import with_prompt

    for name, records in benchmarks.items():
        if not records:
            continue
        seen = []
        for run in ["base", *config["methods"]]:
            prompt = eval_prompt(config, model, run, name)
            if prompt not in seen:
                seen.append(prompt)
                _eval_prompts(model, tokenizer, context, name, run, with_prompt(records, prompt),
                              config["generation"]["max_tokens"], prefix)
        if config["judge"]["generative"]:
            _judge_prompts(model, tokenizer, context, name, records, config["judge"],
                           config["generation"]["max_tokens"], prefix)


def check_training_prompts(config: dict, model: str, tokenizer, train: list[dict] | None,
                           validation: list[dict] | None, *, prefix: str = "") -> None:
    """Some training (and validation) prompt of `model` is within `training.max_prompt_length`;
    the longer ones are dropped and counted when training starts (`laser.train`). Made at parse
    time with the built tokenizer (one token per byte), so the prompts with the fewest bytes have
    the fewest tokens: only those are tokenized."""
    from .jobs import train as train_job
    from .prompts import with_prompt

    job = train_job(config, model, next(iter(config["methods"])))
    limit, val = config["training"]["max_prompt_length"], config["training"]["validation"]
    for what, records, prompt in (("training", train, job["prompt"]), ("validation", validation, job["validation_prompt"])):
        if not records:
            continue
        if what == "validation":
            records = records[:val["n_problems"]]
        records = sorted(records, key=lambda r: len(r["problem"].encode()))[:64]
        shortest = min(_lengths(tokenizer, with_prompt(records, prompt)))
        if shortest > limit:
            raise _error(prefix, f"config key 'training.max_prompt_length': every {what} prompt is longer than "
                                 f"{limit} tokens (model {model}; the shortest has {shortest})")


# ---------------------------------------------------------------- at parse time

def _parse_time_data(config: dict, prefix: str) -> tuple[dict[str, list[dict]], list[dict] | None]:
    """The benchmarks and training problems that are known when the workflow is parsed (the
    synthetic task's and local JSONL files), as prepare_data makes them (the training problems
    leave out these benchmarks' problems; another benchmark's, read only by the job, would change
    a few), or no synthetic ones when there are too many to generate quickly."""
    from .data import benchmark_seed, prepare
    from .io import InputError

    local = ("synthetic", "jsonl")
    benches = {n: s for n, s in config["benchmarks"].items() if s["source"] in local}
    train = config.get("train_data")
    train = train if train and train["source"] in local else None
    total = sum(s["n_problems"] or 0 for s in [*benches.values(), *([train] if train else [])]
                if s["source"] == "synthetic")
    if total > SYNTHETIC_AT_PARSE_TIME:
        benches = {n: s for n, s in benches.items() if s["source"] != "synthetic"}
        train = train if train and train["source"] != "synthetic" else None
    out = {}
    for name, spec in benches.items():
        try:
            out[name] = prepare(spec, name=name, seed=benchmark_seed(config["seed"], name))
        except InputError as e:  # a file's line, named by the message
            raise _error(prefix, str(e)) from None
        except ValueError as e:
            raise _error(prefix, f"config key 'benchmarks.{name}.n_problems': {e}") from None
    if train is None:
        return out, None
    held_out = {r["problem"] for recs in out.values() for r in recs}
    try:
        records = prepare(train, name="train", seed=config["seed"], exclude=held_out)
    except InputError as e:
        raise _error(prefix, str(e)) from None
    except ValueError as e:
        raise _error(prefix, f"config key 'train_data.n_problems': {e} (training problems are distinct from the "
                             f"benchmarks')") from None
    return out, records


def _local_model(path: str, key: str, prefix: str) -> dict | None:
    """The config.json of a local model directory; None for a hub id; an error for a path that
    is neither (from_pretrained takes a name that is not a directory for a hub id)."""
    p = Path(path)
    if p.is_dir():
        cfg = p / "config.json"
        if not cfg.is_file():
            raise _error(prefix, f"config key '{key}': {path} has no config.json: not a Hugging Face model directory")
        try:
            return json.loads(cfg.read_text())
        except (OSError, ValueError) as e:
            raise _error(prefix, f"config key '{key}': cannot read {cfg}: {e}") from None
    if not _HUB_ID.fullmatch(path) or ".." in path or "--" in path:
        raise _error(prefix, f"config key '{key}': {path!r} is not a directory, nor a hub id such as "
                             f"Qwen/Qwen2.5-7B")
    return None


def _check_pretrained(config: dict, name: str, spec: dict, benchmarks: dict[str, list[dict]], prefix: str) -> None:
    """A pretrained model whose files are here (a local directory, or a hub model in the Hugging Face
    cache) is checked now as a built one is, with its own tokenizer; a hub model not yet downloaded
    is checked by each job for the requests it makes (`check_job`)."""
    from .io import InputError
    from .memory import cached_config
    from .model import check_z_c

    local = _local_model(spec["path"], f"models.{name}.path", prefix)
    if local is None:
        local = cached_config(spec["path"], spec.get("revision"))
    if local is None:
        return
    facts = facts_from_dict(local)
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(spec["path"], revision=spec.get("revision"), local_files_only=True)
    except Exception:  # config.json without its tokenizer in the cache: the numbers only
        check_model(config, name, facts, prefix=prefix)
        return
    try:
        zc_id = check_z_c(tok, spec["z_c"], f"models.{name}.z_c")
    except InputError as e:
        raise _error(prefix, str(e)) from None
    check_model(config, name, facts, zc_id=zc_id, prefix=prefix)
    if facts.context:
        check_prompts(config, name, tok, facts.context, benchmarks, prefix=prefix)


def preflight(config: dict, source: str = "config"):
    """Everything the validated config decides beyond its own keys, once, when Snakemake parses the
    workflow (jobs do not repeat it): the local input files, the models' and the synthetic data's
    checks (`parse_time`) and the memory plan against `gpu_memory_gib`. Returns the memory plan."""
    from .data import check_sources
    from .io import InputError
    from .memory import check as check_memory

    try:
        check_sources(config)
    except InputError as e:
        raise ConfigError(str(e)) from None
    parse_time(config, source)
    return check_memory(config, source)


def parse_time(config: dict, source: str) -> None:
    """Every check the config (and the workflow's own tokenizer) decides, for `laser.config.validate`."""
    from .io import InputError
    from .model import check_z_c
    from .tiny import ParseTimeTokenizer

    prefix = f"{source}: "
    g = config["generation"]
    if g["tensor_parallel_size"] > 1 and g["backend"] != "vllm":
        raise _error(prefix, f"config key 'generation.tensor_parallel_size': {g['tensor_parallel_size']} needs "
                             f"backend vllm (the transformers backend generates on one device)")
    datasets = {**({"train_data": config["train_data"]} if "train_data" in config else {}),
                **{f"benchmarks.{n}": s for n, s in config["benchmarks"].items()}}
    for key, spec in datasets.items():
        if spec["source"] != "synthetic":
            continue
        for field, default in (("problem_key", "problem"), ("answer_key", "answer"), ("messages_key", None)):
            if spec[field] != default:
                raise _error(prefix, f"config key '{key}.{field}': the synthetic task's records have 'problem' and "
                                     f"'answer' and no chat prompts; remove it (got {spec[field]!r})")
    for name, spec in config["verifiers"].items():
        _local_model(spec["path"], f"verifiers.{name}.path", prefix)
    built = [m for m, s in config["models"].items() if s["source"] == "build"]
    benchmarks, train = _parse_time_data(config, prefix)
    tok = ParseTimeTokenizer() if built else None
    for name, spec in config["models"].items():
        if spec["source"] == "pretrained":
            _check_pretrained(config, name, spec, benchmarks, prefix)
            continue
        try:
            zc_id = check_z_c(tok, spec["z_c"], f"models.{name}.z_c")
        except InputError as e:
            raise _error(prefix, str(e)) from None
        facts = built_facts(spec["architecture"], tok)
        check_model(config, name, facts, zc_id=zc_id, prefix=prefix)
        check_prompts(config, name, tok, facts.context, benchmarks, prefix=prefix)
        if config["methods"]:
            validation = benchmarks.get(config["training"]["validation"]["benchmark"])
            check_training_prompts(config, name, tok, train, validation, prefix=prefix)


# ---------------------------------------------------------------- in the jobs

def check_job(job: dict, model_dir: str, *, tokenizer=None, benchmarks: dict[str, list[dict]] | None = None) -> int:
    """The checks of one job (its settings, `laser.jobs`) on the model it loads from `model_dir`,
    for what only the job knows: a hub model's tokenizer and config, and the prepared benchmark
    files (`benchmarks`: name -> bare records, for the generate job). Each job checks the requests
    it makes: calibration and training their lengths, generation its prompts (and the judge's).
    Returns z_c's token id."""
    from transformers import AutoTokenizer

    from .model import check_z_c, resolve_base

    model = job["model"]["name"]
    tok = tokenizer or AutoTokenizer.from_pretrained(resolve_base(model_dir))
    facts = loaded_facts(model_dir)
    zc_id = check_z_c(tok, job["model"]["z_c"], f"models.{model}.z_c")
    run = job.get("run", {})
    sft = job.get("method") if run.get("laser") and run.get("loss") == "sft" else None
    _vocabulary(model, facts, zc_id, sft if "training" in job else None, "")
    if "training" in job:
        _training_context(model, facts, job["training"], "")
    if "n_problems" in job:  # calibration
        _calibration_context(model, facts, job["max_tokens"], "")
    if "benchmarks" in job:  # generation
        from .prompts import with_prompt

        _tensor_parallel(model, facts, job["generation"], "")
        _generation_context(model, facts, job["generation"], "")
        for name, records in (benchmarks or {}).items():
            if records and facts.context:
                _eval_prompts(model, tok, facts.context, name, job["method"],
                              with_prompt(records, job["benchmarks"][name]["prompt"]),
                              job["generation"]["max_tokens"], "")
                if job["judge"]["generative"]:
                    _judge_prompts(model, tok, facts.context, name, records, job["judge"],
                                   job["generation"]["max_tokens"], "")
    return zc_id
