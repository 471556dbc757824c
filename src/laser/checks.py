"""Whether each configured model can do what the config asks of it: every request (prompt plus the
tokens it may generate) within the model's context, z_c inside its vocabulary, its attention heads
split over `generation.tensor_parallel_size` GPUs.

Each check runs as soon as its facts are known (config/README.md, "Checks before the first job"):
- when Snakemake parses the workflow (`laser.config.validate`): for a model the workflow builds
  (its tokenizer and architecture follow from the config) or a local model directory (its
  config.json), and on the synthetic task's problems, which the seed determines;
- at the start of every job that loads a model (base_model, calibrate, train, generate): the
  rest, i.e. a hub model's config and tokenizer, and the prepared benchmark files once they
  exist (prepare_data writes them all at once, so every job downstream of the training file
  finds them; the pretrained model's base_model job may run before them and checks none).
Every failure is one line that names the config keys to change. Evaluation drops no problem: a
benchmark prompt that cannot take `generation.max_tokens` more tokens is an error. Training drops
(and counts) prompts over `training.max_prompt_length`, as verl does (`laser.train`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from .config import ConfigError, calibrated_models, eval_suffix, prompt_settings, run_settings
from .prompts import ENGINE_EXTRA

BENCHMARK_FILE = "results/data/benchmarks/{}.jsonl"  # workflow/rules/data.smk
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

def check_model(config: dict, model: str, facts: ModelFacts, *, zc_id: int | None = None, prefix: str = "") -> None:
    """The checks of one model that need its numbers but no data: tensor parallelism, z_c (and, for
    the SFT ablation, z_c + 1) inside the vocabulary, and the training and generation lengths
    against the context. `prefix`: "config: " at parse time, as the other config errors."""
    g, t = config["generation"], config["training"]
    tp = g["tensor_parallel_size"]
    if g["backend"] == "vllm" and facts.heads and facts.heads % tp:
        raise _error(prefix, f"config key 'generation.tensor_parallel_size': {tp} does not divide the "
                             f"{facts.heads} attention heads of model {model} (vLLM splits the heads over the GPUs)")
    if facts.vocab and zc_id is not None:
        if zc_id >= facts.vocab:
            raise _error(prefix, f"config key 'models.{model}.z_c': token id {zc_id} is outside the vocabulary of "
                                 f"model {model} (size {facts.vocab})")
        sft = [m for m in config["methods"] if run_settings(config, model, m)["laser"]
               and run_settings(config, model, m)["loss"] == "sft"]
        if sft and zc_id + 1 >= facts.vocab:
            raise _error(prefix, f"config key 'methods.{sft[0]}.loss': the SFT ablation trains token id z_c + 1 = "
                                 f"{zc_id + 1}, outside the vocabulary of model {model} (size {facts.vocab})")
    context = facts.context
    if not context:
        return
    where = f"model {model}'s context of {context} tokens (max_position_embeddings)"
    if config["methods"]:
        need = t["max_prompt_length"] + t["max_completion_length"] + ENGINE_EXTRA
        if need > context:
            raise _error(prefix, f"config keys 'training.max_prompt_length' ({t['max_prompt_length']}) + "
                                 f"'training.max_completion_length' ({t['max_completion_length']}) + {ENGINE_EXTRA} "
                                 f"(EOS, z_c, scored token) = {need} tokens exceed {where}; lower them")
    elif model in calibrated_models(config) and t["max_completion_length"] + ENGINE_EXTRA + 1 > context:
        raise _error(prefix, f"config key 'training.max_completion_length': calibration samples "
                             f"{t['max_completion_length']} tokens after each prompt, + {ENGINE_EXTRA} (EOS, z_c, "
                             f"scored token) leave no room for a prompt in {where}; lower it")
    if g["max_tokens"] + ENGINE_EXTRA + 1 > context:
        raise _error(prefix, f"config key 'generation.max_tokens': {g['max_tokens']} tokens + {ENGINE_EXTRA} (EOS, "
                             f"z_c, scored token) leave no room for a prompt in {where}; lower it")


# ---------------------------------------------------------------- what the data decides

def _lengths(tokenizer, records: list[dict]) -> list[int]:
    """Prompt tokens of each record's `messages`, as the generation engine receives them."""
    from .prompts import render_prompts

    return [len(ids) for ids in render_prompts(tokenizer, records)[1]]


def check_prompts(config: dict, model: str, tokenizer, context: int, benchmarks: dict[str, list[dict]], *,
                  prefix: str = "") -> None:
    """Every evaluation prompt of `model` (each run's: `base` and every method) on the prepared
    (bare) records `benchmarks` (name -> records, any subset of the benchmarks), plus
    `generation.max_tokens`, fits `context`; with the prompted judge, so does every judge prompt
    plus a solution of `generation.max_tokens` tokens plus `judge.max_tokens`."""
    from .data import eval_records
    from .prompts import judge_prompt

    g, j = config["generation"], config["judge"]
    where = f"model {model}'s context of {context} tokens (max_position_embeddings)"
    for name, records in benchmarks.items():
        if not records:
            continue
        seen = set()
        for run in ["base", *config["methods"]]:
            suffix = None if config["benchmarks"][name]["messages_key"] else eval_suffix(config, model, run)
            if suffix in seen:
                continue
            seen.add(suffix)
            lengths = _lengths(tokenizer, eval_records(config, model, run, name, records))
            longest, over = max(lengths), sum(n + g["max_tokens"] + ENGINE_EXTRA > context for n in lengths)
            if over:
                room = context - longest - ENGINE_EXTRA
                fix = (f"lower generation.max_tokens to {room} or less, " if room > 0 else "") + \
                    f"leave those problems out of benchmarks.{name} (evaluation drops no problem), or use a " \
                    f"model with a longer context"
                raise _error(prefix, f"config key 'generation.max_tokens': {over} of {len(lengths)} prompts of "
                                     f"benchmark {name} ({run} prompt) do not fit {where} with it: the longest "
                                     f"has {longest} tokens, + generation.max_tokens ({g['max_tokens']}) + "
                                     f"{ENGINE_EXTRA} = {longest + g['max_tokens'] + ENGINE_EXTRA}; {fix}")
        if j["generative"]:
            prompts = [{"messages": [{"role": "user", "content": judge_prompt(j["template"], r["problem"], "")}]}
                       for r in records]
            longest = max(_lengths(tokenizer, prompts))
            need = longest + g["max_tokens"] + j["max_tokens"] + ENGINE_EXTRA
            if need > context:
                raise _error(prefix, f"config key 'judge.max_tokens': the prompted judge's prompts on benchmark {name} "
                                     f"do not fit {where}: the longest has {longest} tokens without the solution, + a "
                                     f"solution of generation.max_tokens ({g['max_tokens']}) + judge.max_tokens "
                                     f"({j['max_tokens']}) + {ENGINE_EXTRA} = {need}; lower judge.max_tokens or "
                                     f"generation.max_tokens, or set judge.generative: false")


def check_training_prompts(config: dict, model: str, tokenizer, train: list[dict] | None,
                           validation: list[dict] | None, *, prefix: str = "") -> None:
    """Some training (and validation) prompt of `model` is within `training.max_prompt_length`;
    the longer ones are dropped and counted when training starts (`laser.train`). Made at parse
    time with the built tokenizer (one token per byte), so the prompts with the fewest bytes have
    the fewest tokens: only those are tokenized."""
    from .prompts import with_prompt

    limit = config["training"]["max_prompt_length"]
    suffix = prompt_settings(config, model)["train_suffix"]
    val = config["training"]["validation"]
    for what, records, spec in (("training", train, config.get("train_data")),
                                ("validation", validation, config["benchmarks"].get(val["benchmark"]))):
        if not records:
            continue
        if what == "validation":
            records = records[:val["n_problems"]]
        records = sorted(records, key=lambda r: len(r["problem"].encode()))[:64]
        shortest = min(_lengths(tokenizer, with_prompt(records, spec, suffix)))
        if shortest > limit:
            raise _error(prefix, f"config key 'training.max_prompt_length': every {what} prompt is longer than "
                                 f"{limit} tokens (model {model}; the shortest has {shortest})")


# ---------------------------------------------------------------- at parse time

def _synthetic_data(config: dict, prefix: str) -> tuple[dict[str, list[dict]], list[dict] | None]:
    """The synthetic benchmarks and training problems, as prepare_data makes them (the training
    problems leave out the synthetic benchmarks' problems; another benchmark's, read only by the
    job, would change a few), or nothing when there are too many to generate quickly."""
    from .data import benchmark_seed, prepare

    benches = {n: s for n, s in config["benchmarks"].items() if s["source"] == "synthetic"}
    train = config.get("train_data")
    train = train if train and train["source"] == "synthetic" else None
    total = sum(s["n_problems"] for s in benches.values()) + (train["n_problems"] if train else 0)
    if total > SYNTHETIC_AT_PARSE_TIME:
        return {}, None
    out = {}
    for name, spec in benches.items():
        try:
            out[name] = prepare(spec, name=name, seed=benchmark_seed(config["seed"], name))
        except ValueError as e:
            raise _error(prefix, f"config key 'benchmarks.{name}.n_problems': {e}") from None
    if train is None:
        return out, None
    held_out = {r["problem"] for recs in out.values() for r in recs}
    try:
        records = prepare(train, name="train", seed=config["seed"], suffix=config["prompt"]["train_suffix"],
                          exclude=held_out)
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
    benchmarks, train = _synthetic_data(config, prefix)
    tok = ParseTimeTokenizer() if built else None
    for name, spec in config["models"].items():
        if spec["source"] == "pretrained":
            local = _local_model(spec["path"], f"models.{name}.path", prefix)
            if local is not None:  # a hub model's config and tokenizer are read by its jobs
                check_model(config, name, facts_from_dict(local), prefix=prefix)
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

def check_job(config: dict, model: str, model_dir: str | None = None, *, revision: str | None = None,
              tokenizer=None, benchmark_files: dict[str, str] | None = None) -> int:
    """Every check of `model` at the start of a job that loads it (`model_dir`; None: the model the
    workflow builds, from the config); returns z_c's token id. `benchmark_files` (name -> prepared
    file; default: every benchmark's, under results/data/benchmarks/) are checked when all exist;
    {} checks none."""
    from .io import read_jsonl
    from .model import check_z_c

    spec = config["models"][model]
    if model_dir is None:
        from .tiny import build_tokenizer

        tok = tokenizer or build_tokenizer()
        facts = built_facts(spec["architecture"], tok)
    else:
        from transformers import AutoTokenizer

        from .model import resolve_base

        tok = tokenizer or AutoTokenizer.from_pretrained(resolve_base(model_dir), revision=revision)
        facts = loaded_facts(model_dir, revision)
    zc_id = check_z_c(tok, spec["z_c"], f"models.{model}.z_c")
    check_model(config, model, facts, zc_id=zc_id)
    if benchmark_files is None:
        benchmark_files = {name: BENCHMARK_FILE.format(name) for name in config["benchmarks"]}
    if facts.context and benchmark_files and all(Path(p).is_file() for p in benchmark_files.values()):
        check_prompts(config, model, tok, facts.context, {n: read_jsonl(p) for n, p in benchmark_files.items()})
    return zc_id
