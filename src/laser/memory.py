"""The memory plan: peak memory per GPU of the `train` and `generate` jobs, estimated from the
config alone, before any job starts (config/README.md, "The memory plan").

The estimate adds what the job holds at its peak, in bytes, for the model's shape:
- weights, gradients and AdamW state under the launcher's sharding (float32 master weights:
  4 + 4 + 8 bytes per parameter, divided over the GPUs by FSDP / ZeRO-3, or held whole by DDP),
  plus the 16-bit copies of the weights bf16 compute makes (autocast caches them for the backward;
  FSDP / ZeRO-3 gather about two layers at a time);
- activations of one micro-batch (`per_device_batch` sequences of max_prompt_length +
  max_completion_length tokens): every layer's saved tensors without gradient checkpointing,
  each layer's input plus one recomputed layer with it;
- TRL's fused LM head over the completion tokens (log-probs in tiles; the logits never exist
  whole): the hidden states it keeps, their gradient, the output embedding's float32 gradient;
- vLLM in colocate mode: `training.vllm_gpu_memory_utilization` of the GPU while it rolls out,
  about 1 GiB while it sleeps (`training.vllm_enable_sleep_mode`), beside the training state;
- the generate job: vLLM's `generation.gpu_memory_utilization` of the GPU, which must hold the
  16-bit weights and the KV cache of at least one full-length request.
Checked against measured peaks in docs/benchmarks.md ("Memory plan vs measured"); the error is
stated there. `python -m laser.memory --configfile config/paper.yaml` prints the plan, and so
does every `snakemake` run of a config that declares `gpu_memory_gib` (which it then enforces).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from .config import ConfigError, compute_bf16, load, per_device_batch, run_settings
from .prompts import request_length

GIB = 2**30
CUDA_CONTEXT = 1.0 * GIB  # CUDA context, cuBLAS workspaces, allocator slack of one process
VLLM_SLEEPING = 1.0 * GIB  # what a sleeping vLLM engine keeps (CUDA graphs, its context)
VLLM_ACTIVATIONS = 1.0 * GIB  # vLLM's profiled activation peak beside weights and KV cache


@dataclass(frozen=True)
class Shape:
    """What memory depends on of a decoder-only transformer (a config.json's numbers)."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tied: bool

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def layer_params(self) -> int:
        h, kv = self.hidden, self.kv_heads * self.head_dim
        return 2 * h * h + 2 * h * kv + 3 * h * self.intermediate + 2 * h

    @property
    def params(self) -> int:
        return self.layers * self.layer_params + self.vocab * self.hidden * (1 if self.tied else 2) + self.hidden

    def kv_bytes_per_token(self, dtype_bytes: int = 2, tp: int = 1) -> float:
        """K and V of every layer for one token, on one of `tp` GPUs (KV heads split, or copied
        when there are fewer than `tp`)."""
        return 2 * self.layers * max(self.kv_heads / tp, 1) * self.head_dim * dtype_bytes

    @classmethod
    def from_config(cls, cfg: dict) -> Shape:
        for key in ("text_config", "language_config", "llm_config"):
            if isinstance(cfg.get(key), dict):
                cfg = cfg[key]
                break
        return cls(cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"],
                   cfg.get("num_key_value_heads") or cfg["num_attention_heads"], cfg["intermediate_size"],
                   cfg["vocab_size"], bool(cfg.get("tie_word_embeddings", False)))


# The shipped configs' hub models, from their config.json on the hub (no hub at parse time): the
# plan must not need a download. A hub model not listed here is planned once it is in the local
# Hugging Face cache (any job or `hf download` puts it there), or a local directory's config.json.
_QWEN25_7B = Shape(3584, 28, 28, 4, 18944, 152064, False)
_LLAMA32_3B = Shape(3072, 28, 24, 8, 8192, 128256, True)
KNOWN_SHAPES = {
    "Qwen/Qwen2.5-7B": _QWEN25_7B,
    "Open-Reasoner-Zero/Open-Reasoner-Zero-7B": _QWEN25_7B,
    "Keven16/Qwen2.5-7B-LaSeR": _QWEN25_7B,
    "Keven16/ORZ-7B-LaSeR": _QWEN25_7B,
    "OctoThinker/OctoThinker-3B-Short-Base": _LLAMA32_3B,
    "Keven16/OctoThinker-3B-Short-LaSeR": _LLAMA32_3B,
    "Qwen/Qwen2.5-1.5B": Shape(1536, 28, 12, 2, 8960, 151936, True),
}


def model_shape(spec: dict) -> Shape | None:
    """The shape of a configured model, or None where it cannot be known without a download."""
    if spec["source"] == "build":
        from .tiny import SPECIAL_TOKENS

        a = spec["architecture"]
        vocab = 256 + len(SPECIAL_TOKENS)
        return Shape(a["hidden_size"], a["num_layers"], a["num_heads"], a["num_heads"], a["intermediate_size"],
                     vocab + (-vocab) % 64, False)
    path = Path(spec["path"])
    if (path / "config.json").is_file():
        found = json.loads((path / "config.json").read_text())
    elif spec["path"] in KNOWN_SHAPES:  # before the cache: no huggingface_hub import at parse time
        return KNOWN_SHAPES[spec["path"]]
    else:
        found = cached_config(spec["path"], spec.get("revision"))
    try:
        return Shape.from_config(found) if found is not None else None
    except (KeyError, TypeError):  # not a decoder config the plan knows: planned as unknown
        return None


def cached_config(repo: str, revision: str | None) -> dict | None:
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo, "config.json", revision=revision)
    except Exception:  # not a valid repo id, no huggingface_hub: not in the cache
        return None
    return json.loads(Path(found).read_text()) if isinstance(found, str) else None


# ---------------------------------------------------------------- sharding (training.launcher)

@dataclass(frozen=True)
class Sharding:
    """Over how many GPUs weights, gradients and optimizer state are divided (0: on the CPU)."""

    name: str
    weights: int
    grads: int
    optimizer: int


def sharding(config: dict) -> Sharding:
    """From the launcher's accelerate config: FSDP (full shard) and ZeRO-3 divide everything over
    the processes, ZeRO-1/2 the optimizer state (and gradients), DDP nothing; offloading moves it."""
    la = config["training"]["launcher"]
    world = la["num_processes"] * la["num_machines"]
    path = la["accelerate_config"]
    acc = _yaml(path) if path else {}
    kind = acc.get("distributed_type", "DDP" if world > 1 else "single")
    if kind == "FSDP":
        f = acc.get("fsdp_config", {})
        where = 0 if str(f.get("fsdp_offload_params", False)).lower() == "true" else world
        return Sharding(f"FSDP over {world}", where, where, where)
    if kind == "DEEPSPEED":
        d = acc.get("deepspeed_config", {})
        stage = int(d.get("zero_stage", 0))
        opt = 0 if d.get("offload_optimizer_device", "none") not in ("none", None) else (world if stage >= 1 else 1)
        par = 0 if d.get("offload_param_device", "none") not in ("none", None) else (world if stage >= 3 else 1)
        return Sharding(f"ZeRO-{stage} over {world}", par, world if stage >= 2 else 1, opt)
    return Sharding("DDP" if world > 1 else "one process", 1, 1, 1)


def _yaml(path: str) -> dict:
    import yaml

    p = Path(path)
    if not p.is_file():  # relative to the working directory, else to the repository (shipped configs)
        p = Path(__file__).resolve().parents[2] / p
    try:
        return yaml.safe_load(p.read_text()) or {}
    except OSError:
        return {}  # named by the launch itself; the plan assumes no sharding


def _share(n_bytes: float, over: int) -> float:
    return 0.0 if over == 0 else n_bytes / over


# ---------------------------------------------------------------- the estimates

# Bytes autograd saves per token and layer of an HF Llama / Qwen2 decoder layer (SDPA attention),
# as (per hidden unit, per K/V unit, per MLP unit): measured with torch.autograd.graph's
# saved-tensor hooks over five layer shapes on CPU (exact linear fits; tests/test_memory.py checks
# them on a shape they were not fitted on). "autocast": bf16 compute over float32 weights (one
# process or DDP: the residual stream and the norms stay float32); "bf16": 16-bit weights (FSDP's /
# ZeRO-3's mixed precision); "float32": no mixed precision.
LAYER_BYTES = {"float32": (34.3, 8.1, 16.0), "autocast": (42.7, 0.0, 8.8), "bf16": (21.6, 4.1, 8.0)}


def activation_bytes(shape: Shape, tokens: int, *, precision: str, checkpointing: bool) -> float:
    """Saved activations of one micro-batch of `tokens` tokens through every layer. With gradient
    checkpointing only each layer's input (and the final norm's) is kept, and one layer is
    recomputed at a time in the backward (its activations and their gradients)."""
    a_h, a_kv, a_i = LAYER_BYTES[precision]
    per_layer = tokens * (a_h * shape.hidden + a_kv * shape.kv_heads * shape.head_dim + a_i * shape.intermediate)
    if checkpointing:  # per token: each layer's input, and the final norm's (float32 inside)
        kept = shape.layers * (2 if precision == "bf16" else 4) + (6 if precision == "bf16" else 8)
        return kept * tokens * shape.hidden + 2 * per_layer
    return shape.layers * per_layer


# TRL's fused LM head (trl.kernels.chunked_logprob): log-probs in tiles of 4,096 tokens x 32,768
# vocabulary entries, so the logits never exist whole
LM_HEAD_TOKENS, LM_HEAD_VOCAB = 4096, 32768


# float32 tile-sized buffers alive at once: the Triton kernels (CUDA) fold each tile in place; the
# torch fallback (CPU) holds about nine (exp, log-probs, the gradient, ...; measured on CPU by
# benchmarks/gpu_check.py --cpu --small, docs/benchmarks.md)
LM_HEAD_TILES = {True: 1, False: 9}


def lm_head_bytes(shape: Shape, tokens: int, compute_bytes: int, *, triton: bool = True) -> float:
    """TRL's fused LM head over the `tokens` completion tokens of a micro-batch: the hidden states
    it keeps, and in its backward their float32 gradient, the float32 gradient of the whole
    output embedding, and its tiles."""
    tiles = LM_HEAD_TILES[triton] * min(tokens, LM_HEAD_TOKENS) * min(shape.vocab, LM_HEAD_VOCAB) * 4
    return tokens * shape.hidden * (compute_bytes + 4) + shape.vocab * shape.hidden * 4 + tiles


def train_estimate(shape: Shape, *, micro_batch: int, prompt_len: int, completion_len: int,
                   checkpointing: bool, bf16: bool, shard: Sharding | None = None,
                   reference_model: bool = False, cuda: bool = True) -> dict[str, float]:
    """Bytes per GPU of one training process at its peak (the backward of a micro-batch), by part."""
    shard = shard or Sharding("one process", 1, 1, 1)
    p = shape.params
    compute = 2 if bf16 else 4
    sharded = shard.weights != 1  # FSDP / ZeRO-3 compute with 16-bit copies of the weights
    precision = ("bf16" if sharded else "autocast") if bf16 else "float32"
    parts = {
        "weights": _share(4 * p, shard.weights),
        "gradients": _share(4 * p, shard.grads),
        "optimizer": _share(8 * p, shard.optimizer),
        "bf16 weight copies": (0.0 if not bf16 else 2 * 2 * shape.layer_params if sharded else 2 * p),
        "activations": activation_bytes(shape, micro_batch * (prompt_len + completion_len + 1),
                                        precision=precision, checkpointing=checkpointing),
        "lm head": lm_head_bytes(shape, micro_batch * (completion_len + 1), compute, triton=cuda),
    }
    if reference_model:  # c_ref source reference: a frozen 16-bit copy on every GPU
        parts["reference model"] = compute * p
    return parts


def vllm_fit(shape: Shape, *, share_bytes: float, max_len: int, tp: int, dtype_bytes: int = 2) -> dict[str, float]:
    """What vLLM's share of the GPU holds: weights, activations, and room for KV cache; `fits` the
    number of requests of `max_len` tokens whose KV cache fits at once (vLLM refuses to start
    below 1)."""
    weights = dtype_bytes * shape.params / tp
    kv = share_bytes - weights - VLLM_ACTIVATIONS
    return {"weights": weights, "kv cache": kv,
            "full-length requests": kv / (shape.kv_bytes_per_token(dtype_bytes, tp) * max_len)}


@dataclass
class JobPlan:
    job: str
    model: str
    parts: dict[str, float]
    total: float
    note: str
    keys: tuple[str, ...]  # the config keys that change it
    problem: str | None = None


def _dtype_bytes(name: str) -> int:
    return 4 if name == "float32" else 2


def plan(config: dict) -> list[JobPlan]:
    """One JobPlan per model and job kind (train: the largest of its methods; generate)."""
    out = []
    gpu = config.get("gpu_memory_gib")
    g = config["generation"]
    for name, spec in config["models"].items():
        shape = model_shape(spec)
        if shape is None:
            out.append(JobPlan("train/generate", name, {}, float("nan"),
                               f"shape unknown: {spec['path']} is neither local, in the Hugging Face cache, nor "
                               f"one of laser.memory.KNOWN_SHAPES", ()))
            continue
        if config["methods"]:
            out.append(_train_plan(config, name, shape, gpu))
        gen_share = g["gpu_memory_utilization"] * gpu * GIB if gpu else None
        max_len = request_length(config["training"]["max_prompt_length"], g["max_tokens"])
        if gpu and g["backend"] == "vllm":
            fit = vllm_fit(shape, share_bytes=gen_share, max_len=max_len, tp=g["tensor_parallel_size"],
                           dtype_bytes=_dtype_bytes(g["dtype"]))
            parts = {"weights": fit["weights"], "activations": VLLM_ACTIVATIONS, "kv cache": max(fit["kv cache"], 0)}
            job = JobPlan("generate", name, parts, gen_share + CUDA_CONTEXT,
                          f"vLLM {g['gpu_memory_utilization']:.2f} of {gpu} GiB, TP {g['tensor_parallel_size']}; "
                          f"KV cache for {fit['full-length requests']:.1f} requests of {max_len} tokens",
                          ("generation.gpu_memory_utilization", "generation.tensor_parallel_size"))
            if fit["full-length requests"] < 1:
                job.problem = (f"vLLM's share ({g['gpu_memory_utilization']} x {gpu} GiB) cannot hold the weights "
                               f"({fit['weights'] / GIB:.1f} GiB) and the KV cache of one request of {max_len} tokens")
            out.append(job)
        else:
            w = _dtype_bytes(g["dtype"]) * shape.params / g["tensor_parallel_size"]
            out.append(JobPlan("generate", name, {"weights": w}, w, f"{g['backend']} backend: weights only", ()))
    for job in out:
        if gpu and job.problem is None and job.total > gpu * GIB:
            job.problem = f"needs {job.total / GIB:.1f} GiB per GPU, more than gpu_memory_gib = {gpu}"
    return out


def _train_plan(config, name, shape, gpu) -> JobPlan:
    t = config["training"]
    shard = sharding(config)
    bf16 = compute_bf16(config, cuda=bool(gpu))
    reference = any(run_settings(config, name, m).get("c_ref", {}).get("source") == "reference"
                    for m in config["methods"])
    parts = train_estimate(shape, micro_batch=per_device_batch(config), prompt_len=t["max_prompt_length"],
                           completion_len=t["max_completion_length"], checkpointing=t["gradient_checkpointing"],
                           bf16=bf16, shard=shard, reference_model=reference, cuda=bool(gpu))
    parts["CUDA context"] = CUDA_CONTEXT if gpu else 0.0
    train_peak = sum(parts.values())
    keys = ("training.gradient_accumulation_steps", "training.gradient_checkpointing",
            "training.launcher.accelerate_config")
    note = (f"{shard.name}, {per_device_batch(config)} sequences of {t['max_prompt_length']} + "
            f"{t['max_completion_length']} tokens per micro-batch, checkpointing "
            f"{'on' if t['gradient_checkpointing'] else 'off'}")
    job = JobPlan("train", name, parts, train_peak, note, keys)
    if t["use_vllm"] and t["vllm_mode"] == "colocate":
        share = t["vllm_gpu_memory_utilization"] * (gpu or 0) * GIB
        resident = parts["weights"] + parts["optimizer"] + parts.get("reference model", 0.0) + parts["CUDA context"]
        awake = resident + share  # rolling out: the training state stays, gradients are freed
        asleep = train_peak + (VLLM_SLEEPING if t["vllm_enable_sleep_mode"] else share)
        parts["vLLM (colocate)"] = VLLM_SLEEPING if t["vllm_enable_sleep_mode"] else share
        job.total = max(awake, asleep)
        job.keys = keys + ("training.vllm_gpu_memory_utilization", "training.vllm_enable_sleep_mode")
        job.note += (f"; vLLM {t['vllm_gpu_memory_utilization']:.2f} of the GPU, "
                     f"{'asleep' if t['vllm_enable_sleep_mode'] else 'awake'} during the update "
                     f"(peak rolling out {awake / GIB:.1f} GiB, updating {asleep / GIB:.1f} GiB)")
        if gpu:
            max_len = request_length(t["max_prompt_length"], t["max_completion_length"])
            fit = vllm_fit(shape, share_bytes=share, max_len=max_len, tp=t["vllm_tensor_parallel_size"])
            if fit["full-length requests"] < 1:
                job.problem = (f"vLLM's share (training.vllm_gpu_memory_utilization {t['vllm_gpu_memory_utilization']}"
                               f" x {gpu} GiB) cannot hold the weights ({fit['weights'] / GIB:.1f} GiB) and the KV "
                               f"cache of one rollout of {max_len} tokens")
    return job


def format_plan(jobs: list[JobPlan], gpu: float | None) -> str:
    head = (f"memory plan per GPU (gpu_memory_gib: {gpu})" if gpu
            else "memory plan per process (no gpu_memory_gib declared: not enforced)")
    lines = [head]
    for j in jobs:
        if not j.parts:
            lines.append(f"  {j.job:8} {j.model}: {j.note}")
            continue
        parts = ", ".join(f"{k} {v / GIB:.1f}" for k, v in j.parts.items() if v)
        flag = "  TOO LARGE" if j.problem else ""
        lines.append(f"  {j.job:8} {j.model}: {j.total / GIB:.1f} GiB{flag} = {parts} ({j.note})")
    return "\n".join(lines)


def check(config: dict, source: str = "config") -> list[JobPlan]:
    """Refuse (ConfigError naming the keys) a config whose estimate exceeds its GPUs' memory."""
    jobs = plan(config)
    bad = [j for j in jobs if j.problem]
    if bad:
        j = bad[0]
        keys = ", ".join(f"'{k}'" for k in (("gpu_memory_gib",) + j.keys))
        raise ConfigError(f"{source}: memory plan: the {j.job} job of model {j.model} {j.problem} ({j.note}); "
                          f"change config keys {keys}\n{format_plan(jobs, config.get('gpu_memory_gib'))}")
    return jobs


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m laser.memory", description=__doc__.split("\n\n")[0])
    ap.add_argument("--configfile", default="config/config.yaml")
    args = ap.parse_args(argv)
    try:
        config = load(args.configfile)
    except ConfigError as e:
        raise SystemExit(str(e)) from None
    print(format_plan(plan(config), config.get("gpu_memory_gib")))


if __name__ == "__main__":
    main()
