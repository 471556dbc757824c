"""The memory plan (laser.memory): the model shapes it reads, its activation estimate against the
tensors autograd really saves, and the parse-time refusal of a config that cannot fit its GPUs."""

import copy

import pytest
import torch
import yaml

from conftest import ROOT
from laser import memory
from laser.checks import preflight
from laser.config import ConfigError
from laser.config import validate as _validate


def validate(config, source="config"):
    """As the Snakefile: validate, then the preflight checks (the memory plan among them)."""
    preflight(_validate(config, source), source)
    return config


def _qwen2(shape: memory.Shape):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(hidden_size=shape.hidden, num_hidden_layers=shape.layers, num_attention_heads=shape.heads,
                      num_key_value_heads=shape.kv_heads, intermediate_size=shape.intermediate,
                      vocab_size=shape.vocab, tie_word_embeddings=shape.tied, max_position_embeddings=512,
                      attn_implementation="sdpa")
    torch.manual_seed(0)
    return Qwen2ForCausalLM(cfg), cfg


@pytest.mark.parametrize("tied", [False, True])
def test_shape_counts_the_parameters_of_a_real_model(tied):
    shape = memory.Shape(hidden=128, layers=3, heads=4, kv_heads=2, intermediate=320, vocab=1000, tied=tied)
    model, cfg = _qwen2(shape)
    assert shape.params == model.num_parameters() - sum(  # Qwen2's q/k/v biases are not counted: 0.1%
        m.bias.numel() for m in model.modules() if isinstance(m, torch.nn.Linear) and m.bias is not None)
    assert memory.Shape.from_config(cfg.to_dict()) == shape


def test_known_shapes_have_the_published_parameter_counts():
    """The table the plan reads for hub models (no hub at parse time): its numbers, typed by hand
    from the models' config.json, give the parameter counts the model cards publish."""
    published = {"Qwen/Qwen2.5-7B": 7.61e9, "OctoThinker/OctoThinker-3B-Short-Base": 3.21e9,
                 "Qwen/Qwen2.5-1.5B": 1.54e9}
    for path, n in published.items():
        assert memory.KNOWN_SHAPES[path].params == pytest.approx(n, rel=0.005), path


def _saved_bytes(model, ids, *, autocast: bool) -> int:
    """Bytes of the distinct storages autograd saves in one forward (not the weights)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        if t.untyped_storage().data_ptr() not in params:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            model.model(input_ids=ids)
    return sum(seen.values())


@pytest.mark.parametrize("precision", ["float32", "autocast", "bf16"])
@pytest.mark.parametrize("checkpointing", [False, True], ids=["keep", "checkpointing"])
def test_activation_estimate_matches_what_autograd_saves(precision, checkpointing):
    """On a layer shape the coefficients were not fitted on (other head size, one K/V head, other
    MLP ratio). With checkpointing the forward keeps only the layer inputs; the one layer
    recomputed in the backward is the `keep` case's per-layer share, checked there."""
    shape = memory.Shape(hidden=320, layers=3, heads=5, kv_heads=1, intermediate=1152, vocab=512, tied=False)
    model, _ = _qwen2(shape)
    model.train()
    if precision == "bf16":
        model = model.to(torch.bfloat16)
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    ids = torch.randint(0, shape.vocab, (2, 320))
    measured = _saved_bytes(model, ids, autocast=precision == "autocast")
    estimate = memory.activation_bytes(shape, ids.numel(), precision=precision, checkpointing=checkpointing)
    if checkpointing:  # less the recomputed layer, which the forward does not keep
        estimate -= 2 * memory.activation_bytes(shape, ids.numel(), precision=precision, checkpointing=False) / 3
    assert estimate == pytest.approx(measured, rel=0.1), (estimate, measured)
    if not checkpointing:  # and it is most of what a micro-batch costs: a wrong coefficient shows
        assert measured > 3 * shape.layers * ids.numel() * shape.hidden


def _paper():
    return yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())


def test_the_paper_configs_fit_their_gpus():
    for name in ("paper.yaml", "gpu-small.yaml", "released.yaml"):
        config = validate(yaml.safe_load((ROOT / "config" / name).read_text()), name)
        jobs = memory.plan(config)
        assert jobs and all(j.problem is None and j.total <= 79 * memory.GIB for j in jobs), name
        assert {j.job for j in jobs} >= {"generate"}


@pytest.mark.parametrize("mutate, keys", [
    (lambda c: c["training"].update(gradient_checkpointing=False), "'training.gradient_checkpointing'"),
    (lambda c: c["training"].update(gradient_accumulation_steps=8), "'training.gradient_accumulation_steps'"),
    (lambda c: c["training"].update(vllm_enable_sleep_mode=False), "'training.vllm_enable_sleep_mode'"),
    (lambda c: c["training"].update(vllm_gpu_memory_utilization=0.05), "'training.vllm_gpu_memory_utilization'"),
    (lambda c: c["generation"].update(gpu_memory_utilization=0.15), "'generation.gpu_memory_utilization'"),
    (lambda c: c.update(gpu_memory_gib=40), "'gpu_memory_gib'"),
], ids=["no-checkpointing", "16-per-micro-batch", "vllm-awake", "vllm-share-too-small", "generate-share", "40GB"])
def test_a_config_that_cannot_fit_is_refused_at_parse_time(mutate, keys):
    config = _paper()
    mutate(config)
    with pytest.raises(ConfigError, match="memory plan") as err:
        validate(config, "paper.yaml")
    first = str(err.value).splitlines()[0]
    assert first.startswith("paper.yaml: memory plan: the ") and keys in first, first


def test_without_gpu_memory_the_plan_is_printed_not_enforced():
    config = _paper()
    del config["gpu_memory_gib"]
    config["training"]["gradient_checkpointing"] = False
    config = validate(config, "paper.yaml")
    text = memory.format_plan(memory.plan(config), None)
    assert "not enforced" in text and "checkpointing off" in text


def test_sharding_follows_the_accelerate_config():
    config = validate(_paper(), "paper.yaml")
    assert memory.sharding(config) == memory.Sharding("FSDP over 8", 8, 8, 8)
    zero3 = copy.deepcopy(config)
    zero3["training"]["launcher"]["accelerate_config"] = "config/accelerate/deepspeed_zero3.yaml"
    assert memory.sharding(zero3) == memory.Sharding("ZeRO-3 over 8", 8, 8, 8)
    ddp = copy.deepcopy(config)
    ddp["training"]["launcher"]["accelerate_config"] = None
    assert memory.sharding(ddp) == memory.Sharding("DDP", 1, 1, 1)
    # DDP holds everything on every GPU: the 7B paper run cannot fit then
    with pytest.raises(ConfigError, match="'training.launcher.accelerate_config'"):
        validate(ddp, "paper.yaml")
