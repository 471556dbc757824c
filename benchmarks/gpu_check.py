"""GPU check: the project's trainer (`laser.trainer.LaserTrainer`, TRL's GRPOTrainer) at a paper
model's shape and the paper's lengths, on one GPU with no network, in one short run.

A randomly initialised model with OctoThinker-3B's shape (Llama-3.2-3B: hidden 3072, 28 layers, 24
heads, 8 KV heads, MLP 8192, vocabulary 128256, tied embeddings) is built from a config dict, in
float32 (master weights) with bf16 autocast compute, as `laser.train` trains. Rollouts are
synthetic: TRL's `rollout_func` hook returns fixed random token ids (prompt of max_prompt_length,
completions of max_completion_length ending in EOS, half of them rewarded), so no vLLM is needed;
everything after generation is the production step: the z_c forward, rewards, advantages, SWA,
the per-token log-probs with z_c in place, the loss with L_sr, backward, clipping and AdamW. The
optimisation settings come from `--config` (config/paper.yaml); warm-ups are 0 so that LaSeR runs
its most expensive stage (L_sr + SWA) from the first step.

For each gradient checkpointing setting x micro-batch size (sequences per micro-batch) x method
(LaSeR, GRPO), one optimizer step trains `--sequences` completions (one prompt group) and reports:
peak memory (torch.cuda.max_memory_allocated / max_memory_reserved; on CPU the peak of bytes
allocated during training, from torch.profiler's memory events), median seconds per optimizer step
(step 1 is a warm-up and not counted), tokens/s (prompt + completion tokens trained per second) and
model FLOPs utilisation:

    MFU      = 6 * N * tokens / step_seconds / peak_bf16_flops
    MFU+attn = (6 * N + 12 * L * H * d_head * S) * tokens / step_seconds / peak_bf16_flops

N = parameters that multiply each token (all but the input embedding table; a tied table counts
once, as the LM head), L layers, H heads, S the sequence length (the PaLM paper's count, appendix
B). Neither counts recomputation (gradient checkpointing) nor LaSeR's extra no-grad z_c forward:
those show up as a lower MFU. Out of memory at a size is a row, not a crash. Also: the LaSeR / GRPO
step-time ratio at each size; log pi(z_c) by the training route (TRL's fused log-prob forward with
z_c inserted, bf16 autocast) and by the generation routes (one decoding step on the KV cache vs a
full re-prefill, bf16 weights), each pair within `gpu_smoke.route_tolerance`; and the share of
weights one AdamW step at the configured learning rate (1e-6) moves.

    bash benchmarks/gpu_check.sh                               # GPU: results/gpu_check/
    python benchmarks/gpu_check.py --cpu --tiny --out DIR      # CPU check of this script

Output: a markdown table on stdout and in OUT/gpu_check.md, everything in OUT/gpu_check.json
(rewritten after every row, so a run cut short keeps its rows).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

from transformers import TrainerCallback

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import laser.jobs  # noqa: E402

# Llama-3.2-3B's config.json, which OctoThinker-3B-*-Base keeps (mid-trained from it)
OCTOTHINKER_3B = dict(
    hidden_size=3072, intermediate_size=8192, num_hidden_layers=28, num_attention_heads=24, num_key_value_heads=8,
    head_dim=128, vocab_size=128256, tie_word_embeddings=True, rms_norm_eps=1e-5, max_position_embeddings=131072,
    rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0, "low_freq_factor": 1.0,
                     "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
)
# The CPU check's shape. initializer_range 0.1 (not 0.02) makes its logits spread enough for the
# route check's wrong-position contrast to exceed the bf16 tolerance (at 3072 wide, 0.02 does).
TINY = dict(
    hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
    head_dim=32, vocab_size=512, tie_word_embeddings=True, rms_norm_eps=1e-5, max_position_embeddings=1024,
    rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, initializer_range=0.1,
)
# The CPU memory-plan check's shape (`--cpu --small`): a real vocabulary, so that the LM head's
# share of the peak is measured too
SMALL = dict(
    hidden_size=256, intermediate_size=704, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
    head_dim=64, vocab_size=32000, tie_word_embeddings=False, rms_norm_eps=1e-5, max_position_embeddings=2048,
    rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
)
# Dense bf16 peak FLOP/s by device name (first match; `--peak-tflops` overrides)
PEAK_BF16_TFLOPS = (("H200", 989.0), ("GH200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("A100", 312.0))
GIB = 2**30


# ---------------------------------------------------------------- memory plan hook

def estimate(shape: dict, *, micro_batch: int, prompt_len: int, completion_len: int, checkpointing: bool,
             bf16: bool, cuda: bool = True) -> float | None:
    """HOOK for the memory plan (`laser.memory`): its estimate of this row's peak training memory per
    GPU in GiB, printed beside the measured peak; None (printed "n/a") when `laser.memory` is absent
    or its interface differs from the call below (said once on stderr). Wire changes here."""
    try:
        from laser import memory
    except ImportError:
        return None
    try:
        parts = memory.train_estimate(memory.Shape.from_config(shape), micro_batch=micro_batch,
                                      prompt_len=prompt_len, completion_len=completion_len,
                                      checkpointing=checkpointing, bf16=bf16, cuda=cuda)
        return (sum(parts.values()) + (memory.CUDA_CONTEXT if cuda else 0)) / GIB
    except (AttributeError, TypeError, KeyError) as e:
        if not getattr(estimate, "warned", False):
            print(f"estimate: laser.memory's interface differs ({type(e).__name__}: {e}); printing n/a",
                  file=sys.stderr)
            estimate.warned = True
        return None


# ---------------------------------------------------------------- helpers

def peak_tflops(device_name: str, override: float | None) -> float | None:
    if override:
        return override
    return next((v for k, v in PEAK_BF16_TFLOPS if k in device_name), None)


def build_model(shape: dict, device, seed: int, tokenizer=None):
    """A randomly initialised Llama causal LM of `shape`, float32, built on `device` (no download),
    with the tokenizer's EOS / pad ids."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    ids = {} if tokenizer is None else dict(bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                                            pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    with torch.device(device):
        model = LlamaForCausalLM(LlamaConfig(**shape, **ids, attn_implementation="sdpa"))
    model.generation_config.update(**ids)
    return model


def matmul_params(model) -> int:
    """N of 6N: parameters that multiply every token (the input embedding table is a lookup; tied,
    it is the LM head and counts once, as named_parameters lists it once)."""
    n = sum(p.numel() for p in model.parameters())
    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    return n if emb is head else n - emb.numel()


def synthetic_rollouts(*, prompt_len: int, completion_len: int, group: int, eos_id: int, seed: int):
    """TRL's `rollout_func`: each call returns, for its prompts (`group` consecutive copies per
    prompt), one random prompt per group of which row i keeps the last `prompt_len - i % 3` tokens,
    and completions of `completion_len - i % 4` tokens ending in EOS, so that batches carry left and
    right padding as real rollouts of several prompts do. Token ids come from the tokenizer's byte
    range (never EOS); a completion's first token is even for rows 0, 2, ... of a group, which
    `parity_reward` rewards."""
    import torch

    calls = [0]

    def rollout(prompts, trainer):
        g = torch.Generator().manual_seed(seed * 100_003 + calls[0])
        calls[0] += 1
        prompt_ids, completion_ids = [], []
        for i in range(len(prompts)):
            if i % group == 0:
                prompt = torch.randint(0, 256, (prompt_len,), generator=g).tolist()
            body = torch.randint(0, 256, (completion_len - 1 - (i % 4),), generator=g).tolist()
            body[0] = (body[0] & ~1) | (i % 2)  # parity = row in group: half the group is "correct"
            prompt_ids.append(prompt[i % 3:])
            completion_ids.append(body + [eos_id])
        return {"prompt_ids": prompt_ids, "completion_ids": completion_ids, "logprobs": None}

    return rollout


def parity_reward(completion_ids, **_):
    return [float(ids[0] % 2 == 0) for ids in completion_ids]


class StepClock(TrainerCallback):
    """Wall seconds of each optimizer step, from on_step_begin to on_step_end (generation, forward,
    backward, clipping and AdamW), with the device synchronised at both ends."""

    def __init__(self, sync):
        self.sync, self.times, self._t0 = sync, [], None

    def on_step_begin(self, args, state, control, **kw):
        self.sync()
        self._t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        self.sync()
        self.times.append(time.perf_counter() - self._t0)


class FirstStepMoved(TrainerCallback):
    """Share of parameter elements whose float32 value the first optimizer step changed (snapshot
    on the host before training, compared after step 1, after StepClock has stopped), and the share
    whose bf16 rounding changed (what 16-bit weights would show after that step)."""

    def __init__(self, model):
        self.before = {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters()}
        self.result = None

    def on_step_end(self, args, state, control, model=None, **kw):
        if self.before is None:
            return
        moved = moved16 = total = 0
        for n, p in model.named_parameters():
            new, old = p.detach().to("cpu"), self.before.pop(n)
            moved += int((new != old).sum())
            moved16 += int((new.bfloat16() != old.bfloat16()).sum())
            total += new.numel()
        self.before = None
        self.result = {"learning_rate": args.learning_rate, "elements": total, "moved_fraction": moved / total,
                       "bf16_rounding_changed_fraction": moved16 / total}


# ---------------------------------------------------------------- one trainer

def laser_args(config: dict, model_name: str, method: str, *, out_dir: str, micro_batch: int, sequences: int,
               completion_len: int, max_steps: int, checkpointing: bool, zc_id: int, c_ref: float, cuda: bool):
    """LaserConfig as the train job fills it (`laser.train.laser_config`), for this check's batch
    layout: one prompt group of `sequences` completions per optimizer step, in micro-batches of
    `micro_batch`; warm-ups 0 (stage 3 from step 1), no checkpoints, no logging integrations, no vLLM."""
    from laser.train import laser_config

    job = laser.jobs.train(config, model_name, method)
    warmups = dict(warmup_reasoning_steps=0, warmup_sr_steps=0) if job["run"]["laser"] else {}
    return laser_config(job, zc_id=zc_id, c_ref=c_ref, cuda=cuda, output_dir=out_dir, max_steps=max_steps,
                        per_device_train_batch_size=micro_batch, gradient_accumulation_steps=sequences // micro_batch,
                        num_generations=sequences, max_completion_length=completion_len, use_vllm=False,
                        save_strategy="no", report_to=[], gradient_checkpointing=checkpointing, disable_tqdm=True,
                        c_ref_mode="constant", **warmups)


def make_trainer(args, model, tokenizer, rollout, callbacks):
    from datasets import Dataset

    from laser.trainer import LaserTrainer

    from transformers.trainer_callback import PrinterCallback

    prompts = Dataset.from_list([{"prompt": f"problem {i}"} for i in range(64)])  # text is unused: rollout_func
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is TRL's documented (experimental) hook
    trainer = LaserTrainer(model=model, args=args, train_dataset=prompts, processing_class=tokenizer,
                           reward_funcs=[parity_reward], rollout_func=rollout, callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)  # the table says it; no log dict per step on stdout
    return trainer


@contextlib.contextmanager
def cpu_peak():
    """Peak bytes allocated on the CPU inside the block, above the level at its start: the running
    sum of torch.profiler's memory events (allocations +, frees -) in time order."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    result = {}
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        yield result
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU)
    live = peak = 0
    for _, n in events:
        live += n
        peak = max(peak, live)
    result["peak_bytes"] = peak


class Context:
    """What every row shares: device, shape, tokenizer, lengths, config."""

    def __init__(self, a, config: dict):
        import torch

        from laser import tiny
        from laser.config import compute_bf16

        self.cuda = torch.cuda.is_available() and not a.cpu
        self.device = torch.device("cuda" if self.cuda else "cpu")
        self.shape = TINY if a.tiny else SMALL if a.small else OCTOTHINKER_3B
        self.config, self.model_name, self.seed = config, a.model, a.seed
        t = config["training"]
        self.prompt_len = a.prompt_length or (64 if a.tiny else 256 if a.small else t["max_prompt_length"])
        self.completion_len = a.completion_length or (192 if a.tiny else 768 if a.small else t["max_completion_length"])
        self.steps, self.sequences = a.steps, a.sequences
        self.tok = tiny.build_tokenizer()  # token ids only: rollouts are random ids of its byte range
        self.eos_id = self.tok.eos_token_id
        self.zc_id = self.tok.convert_tokens_to_ids(tiny.ZC)
        self.c_ref = -math.log(self.shape["vocab_size"])  # a random model's log pi(z_c) is near uniform
        self.sync = torch.cuda.synchronize if self.cuda else (lambda: None)
        self.bf16 = compute_bf16(config, self.cuda)  # as laser.train: autocast compute, float32 weights

    def tokens_per_step(self) -> int:
        return sum(self.prompt_len - i % 3 + self.completion_len - i % 4 for i in range(self.sequences))


def is_oom(e: BaseException) -> bool:
    """The caching allocator's OutOfMemoryError, or a library that failed to allocate its workspace
    (cuBLAS, cuDNN) in the memory the allocator left."""
    import torch

    return isinstance(e, torch.OutOfMemoryError) or (
        isinstance(e, RuntimeError) and any(k in str(e) for k in ("out of memory", "ALLOC_FAILED")))


def free_memory():
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_row(ctx: Context, method: str, checkpointing: bool, micro_batch: int, measure_moved: bool) -> dict:
    import torch

    row = {"method": method, "gradient_checkpointing": checkpointing, "micro_batch": micro_batch,
           "sequences_per_step": ctx.sequences, "tokens_per_step": ctx.tokens_per_step(),
           "estimate_gib": estimate(ctx.shape, micro_batch=micro_batch, prompt_len=ctx.prompt_len,
                                    completion_len=ctx.completion_len, checkpointing=checkpointing,
                                    bf16=ctx.bf16, cuda=ctx.cuda)}
    t0 = time.time()
    try:
        model = build_model(ctx.shape, ctx.device, ctx.seed, ctx.tok)
        clock = StepClock(ctx.sync)
        moved = FirstStepMoved(model) if measure_moved else None
        rollout = synthetic_rollouts(prompt_len=ctx.prompt_len, completion_len=ctx.completion_len,
                                     group=ctx.sequences, eos_id=ctx.eos_id, seed=ctx.seed)
        with tempfile.TemporaryDirectory() as tmp:
            args = laser_args(ctx.config, ctx.model_name, method, out_dir=tmp, micro_batch=micro_batch,
                              sequences=ctx.sequences, completion_len=ctx.completion_len,
                              max_steps=1 + ctx.steps, checkpointing=checkpointing, zc_id=ctx.zc_id,
                              c_ref=ctx.c_ref, cuda=ctx.cuda)
            trainer = make_trainer(args, model, ctx.tok, rollout, [clock] + ([moved] if moved else []))
            if ctx.cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                row["allocated_before_gib"] = torch.cuda.memory_allocated() / GIB
                try:
                    trainer.train()
                finally:
                    row["peak_allocated_gib"] = torch.cuda.max_memory_allocated() / GIB
                    row["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / GIB
            else:
                # the weights were allocated before the profiler started: counted in, as on CUDA
                before = sum(p.numel() * p.element_size() for p in model.parameters())
                row["allocated_before_gib"] = before / GIB
                with cpu_peak() as peak:
                    trainer.train()
                row["peak_allocated_gib"] = (before + peak["peak_bytes"]) / GIB
            logged = [h for h in trainer.state.log_history if "loss" in h]
        timed = clock.times[1:] or clock.times  # step 1 warms up (kernels, allocator, optimizer state)
        row.update(status="ok", step_times=clock.times, step_seconds=statistics.median(timed),
                   logged={k: logged[-1][k] for k in ("loss", "grad_norm", "sr_loss", "stage", "step_time",
                                                      "sr_weight_total") if logged and k in logged[-1]})
        row["tokens_per_second"] = row["tokens_per_step"] / row["step_seconds"]
        if moved is not None:
            row["moved"] = moved.result
    except Exception as e:  # one failing size must not cost the other rows of a scarce GPU run
        if is_oom(e):
            row.update(status="oom", error=str(e).splitlines()[0][:300])
        else:
            row.update(status="error", error=f"{type(e).__name__}: {e}"[:500], traceback=traceback.format_exc())
    row["wall_seconds"] = time.time() - t0
    return row


def add_flops(row: dict, ctx: Context, n_matmul: int, peak: float | None) -> None:
    """MFU and MFU+attn (module docstring) of an ok row; None without a known device peak."""
    if row.get("status") != "ok":
        return
    s = ctx.shape
    seq = ctx.prompt_len + ctx.completion_len
    per_token = 6 * n_matmul
    attn = 12 * s["num_hidden_layers"] * s["num_attention_heads"] * s["head_dim"] * seq
    rate = row["tokens_per_second"]
    row["mfu"] = per_token * rate / (peak * 1e12) if peak else None
    row["mfu_with_attention"] = (per_token + attn) * rate / (peak * 1e12) if peak else None


# ---------------------------------------------------------------- z_c routes

def route_check(ctx: Context) -> dict:
    """log pi(z_c | x, y, EOS) of two full-length responses (one shorter, so both paddings occur):
    - training route: `LaserTrainer._zc_forward` (TRL's fused log-prob forward with z_c inserted
      after EOS by token id; float32 weights, bf16 autocast) vs a plain re-prefill of
      prompt + response + EOS + z_c in the same precision;
    - generation routes, bf16 weights: one decoding step on the KV cache (`zc_logprobs_on_cache`,
      after a prefill laid out as `generate` leaves it) vs the re-prefill (`zc_logprobs_transformers`).
    Each pair must agree within `gpu_smoke.route_tolerance` (bfloat16). The contrast (the re-prefill
    read one position early: z_c in place of EOS) shows the tolerance can tell a wrong position."""
    import torch

    from gpu_smoke import route_tolerance
    from laser.generation import padded_batches, zc_logprobs_on_cache, zc_logprobs_transformers
    from laser.selfreward import zc_logprobs

    P, C, pad, eos, zc = ctx.prompt_len, ctx.completion_len, ctx.tok.pad_token_id, ctx.eos_id, ctx.zc_id
    g = torch.Generator().manual_seed(ctx.seed + 1)

    def rand(n):
        return torch.randint(0, 256, (n,), generator=g).tolist()

    prompts, responses = [rand(P), rand(P - 5)], [rand(C - 1), rand(C - 1 - C // 4)]
    pw, cw = P, C
    dev = ctx.device
    prompt_ids = torch.tensor([[pad] * (pw - len(p)) + p for p in prompts], device=dev)
    prompt_mask = torch.tensor([[0] * (pw - len(p)) + [1] * len(p) for p in prompts], device=dev)
    comp = [r + [eos] for r in responses]
    completion_ids = torch.tensor([c + [pad] * (cw - len(c)) for c in comp], device=dev)
    completion_mask = torch.tensor([[1] * len(c) + [0] * (cw - len(c)) for c in comp], device=dev)
    inputs = {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "completion_ids": completion_ids,
              "completion_mask": completion_mask}

    model = build_model(ctx.shape, dev, ctx.seed, ctx.tok).eval()
    with tempfile.TemporaryDirectory() as tmp:
        args = laser_args(ctx.config, ctx.model_name, "laser", out_dir=tmp, micro_batch=1, sequences=2,
                          completion_len=C, max_steps=2, checkpointing=False, zc_id=zc, c_ref=ctx.c_ref,
                          cuda=ctx.cuda)
        trainer = make_trainer(args, model, ctx.tok, None, [])
        assert trainer.args.bf16, "the route check expects bf16 compute (training.mixed_precision)"
        train_lp, finished = trainer._zc_forward(trainer.model, inputs)
        kw = dict(zc_id=zc, eos_id=eos, pad_id=pad, batch_size=1)
        with torch.no_grad(), trainer.accelerator.autocast():
            reprefill_amp = zc_logprobs_transformers(model, prompts, responses, **kw)
            early = [0.0] * len(prompts)
            for idx, ids, mask in padded_batches([p + r + [zc] for p, r in zip(prompts, responses)], 1, pad, dev):
                slots = mask.sum(dim=1) - 1
                for i, v in zip(idx, zc_logprobs(model, ids, mask, slots).tolist()):
                    early[i] = v
        del trainer
    model.to(torch.bfloat16)
    seq = torch.cat([prompt_ids, completion_ids], dim=1)
    full_mask = torch.cat([prompt_mask, torch.ones_like(completion_ids)], dim=1)  # as `generate` extends it
    positions = (full_mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        out = model(input_ids=seq[:, :-1], attention_mask=full_mask[:, :-1], position_ids=positions[:, :-1],
                    use_cache=True, logits_to_keep=1)
    onetoken = zc_logprobs_on_cache(model, seq, pw, prompt_mask, out.past_key_values, eos_id=eos, zc_id=zc)
    del out
    reprefill = zc_logprobs_transformers(model, prompts, responses, **kw)
    del model

    def compare(a, b):
        diffs = [abs(x - y) for x, y in zip(a, b)]
        ratios = [d / route_tolerance(y, "bfloat16") for d, y in zip(diffs, b)]
        return {"max_abs_diff": max(diffs), "max_ratio_to_tolerance": max(ratios), "ok": max(ratios) <= 1.0}

    result = {
        "lengths": [[len(p), len(r) + 1] for p, r in zip(prompts, responses)],
        "train": train_lp.float().tolist(), "reprefill_autocast": reprefill_amp, "onetoken_bf16": onetoken,
        "reprefill_bf16": reprefill, "wrong_position": early, "finished": finished.tolist(),
        "tolerance_nats": [route_tolerance(y, "bfloat16") for y in reprefill_amp],
        "train_vs_reprefill": compare(train_lp.float().tolist(), reprefill_amp),
        "onetoken_vs_reprefill": compare(onetoken, reprefill),
        "wrong_position_contrast": min(abs(x - y) for x, y in zip(reprefill_amp, early)),
    }
    result["contrast_exceeds_tolerance"] = result["wrong_position_contrast"] > max(result["tolerance_nats"])
    result["ok"] = bool(result["train_vs_reprefill"]["ok"] and result["onetoken_vs_reprefill"]["ok"]
                        and all(result["finished"]))
    return result


# ---------------------------------------------------------------- report

def fmt(v, spec=".2f"):
    return "n/a" if v is None else format(v, spec)


def markdown(report: dict) -> str:
    lines = [f"GPU check on {report['device']} (torch {report['versions']['torch']}, transformers "
             f"{report['versions']['transformers']}, trl {report['versions']['trl']}): {report['shape_name']} "
             f"shape, N = {report['n_matmul_params']:.4g} multiplying parameters "
             f"({report['n_params']:.4g} in all), prompt {report['prompt_len']} + completion "
             f"{report['completion_len']} tokens, {report['sequences_per_step']} sequences per optimizer step, "
             f"float32 master weights, {'bf16 autocast' if report['bf16'] else 'float32 compute'}; "
             f"device peak {fmt(report['peak_tflops'], '.0f')} TFLOP/s, memory "
             f"{fmt(report['device_memory_gib'], '.1f')} GiB.", "",
             "| method | grad ckpt | micro-batch | status | s/step | tokens/s | MFU | MFU+attn "
             "| peak alloc GiB | peak reserved GiB | plan estimate GiB |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        pct = (lambda v: "n/a" if v is None else f"{100 * v:.1f}%")
        lines.append(
            f"| {r['method']} | {'on' if r['gradient_checkpointing'] else 'off'} | {r['micro_batch']} | {r['status']} "
            f"| {fmt(r.get('step_seconds'))} | {fmt(r.get('tokens_per_second'), '.0f')} | {pct(r.get('mfu'))} "
            f"| {pct(r.get('mfu_with_attention'))} | {fmt(r.get('peak_allocated_gib'), '.3f')} "
            f"| {fmt(r.get('peak_reserved_gib'), '.3f')} | {fmt(r.get('estimate_gib'), '.1f')} |")
    lines.append("")
    for k, v in report["laser_grpo_step_time_ratio"].items():
        lines.append(f"- LaSeR / GRPO step time, {k}: {v:.3f}")
    rc = report.get("route_check") or {}
    if "error" in rc:
        lines.append(f"- z_c routes: error {rc['error']}")
    elif rc:
        lines.append(
            f"- z_c routes (bf16, tolerance {max(rc['tolerance_nats']):.3g} nats at |log p| "
            f"{abs(rc['reprefill_bf16'][0]):.2f}): training vs re-prefill max |diff| "
            f"{rc['train_vs_reprefill']['max_abs_diff']:.3g} ({rc['train_vs_reprefill']['max_ratio_to_tolerance']:.2f}"
            f"x tolerance), one-token vs re-prefill {rc['onetoken_vs_reprefill']['max_abs_diff']:.3g} "
            f"({rc['onetoken_vs_reprefill']['max_ratio_to_tolerance']:.2f}x); wrong-position contrast "
            f"{rc['wrong_position_contrast']:.3g} nats")
    mv = report.get("moved")
    if mv:
        lines.append(f"- one AdamW step at lr {mv['learning_rate']:g} moved {100 * mv['moved_fraction']:.2f}% of "
                     f"the float32 weights ({100 * mv['bf16_rounding_changed_fraction']:.2f}% changed their bf16 "
                     f"rounding)")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.environ.get("OUT", "results/gpu_check"))
    ap.add_argument("--cpu", action="store_true", help="run on the CPU (to check this script without a GPU)")
    ap.add_argument("--tiny", action="store_true", help="tiny model shape and short lengths (with --cpu)")
    ap.add_argument("--small", action="store_true",
                    help="a small shape with a 32k vocabulary, 256 + 768 tokens (with --cpu: the memory plan's check)")
    ap.add_argument("--config", default=str(ROOT / "config" / "paper.yaml"),
                    help="training and laser settings (lengths, optimizer, loss)")
    ap.add_argument("--model", default="octothinker-3b", help="the --config model whose laser settings are used")
    ap.add_argument("--micro-batches", default="1,2,4", help="sequences per micro-batch, comma-separated")
    ap.add_argument("--checkpointing", default="on,off", help="gradient checkpointing settings, in order")
    ap.add_argument("--methods", default="laser,grpo")
    ap.add_argument("--steps", type=int, default=2, help="timed optimizer steps per row (after one warm-up step)")
    ap.add_argument("--sequences", type=int, default=None,
                    help="completions per optimizer step (one prompt group); default the largest micro-batch")
    ap.add_argument("--prompt-length", type=int, default=None, help="default training.max_prompt_length")
    ap.add_argument("--completion-length", type=int, default=None, help="default training.max_completion_length")
    ap.add_argument("--budget-s", type=float, default=360.0,
                    help="rows not started within this many seconds are reported as skipped")
    ap.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak of the device")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    start = time.time()

    import torch
    import transformers
    import trl

    from laser.config import load
    from laser.io import write_json, write_text

    if not torch.cuda.is_available() and not a.cpu:
        sys.exit("gpu_check: no CUDA device (use --cpu --tiny to check the script on a CPU)")
    micro_batches = [int(x) for x in a.micro_batches.split(",")]
    checkpointing = [{"on": True, "off": False}[x] for x in a.checkpointing.split(",")]
    methods = a.methods.split(",")
    a.sequences = a.sequences or max(micro_batches)
    if a.sequences < 2:
        sys.exit("gpu_check: --sequences (default: the largest micro-batch) must be at least 2: GRPO's "
                 "advantages need 2 completions of a prompt")
    bad = [m for m in micro_batches if a.sequences % m]
    if bad:
        sys.exit(f"gpu_check: --sequences {a.sequences} is not a multiple of micro-batch(es) {bad}")
    config = load(a.config)
    if a.model not in config["models"]:
        sys.exit(f"gpu_check: --model {a.model!r} is not a model of {a.config} ({', '.join(config['models'])})")
    ctx = Context(a, config)
    device_name = torch.cuda.get_device_name(0) if ctx.cuda else "cpu"
    peak = peak_tflops(device_name, a.peak_tflops) if ctx.cuda else a.peak_tflops
    probe = build_model(ctx.shape, "meta", a.seed)
    out = Path(a.out)
    report = {
        "device": device_name, "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                                            "trl": trl.__version__},
        "shape_name": "tiny" if a.tiny else "OctoThinker-3B (Llama-3.2-3B)", "shape": ctx.shape,
        "n_params": sum(p.numel() for p in probe.parameters()), "n_matmul_params": matmul_params(probe),
        "prompt_len": ctx.prompt_len, "completion_len": ctx.completion_len, "sequences_per_step": a.sequences,
        "peak_tflops": peak, "config": a.config, "bf16": ctx.bf16,
        "device_memory_gib": torch.cuda.get_device_properties(0).total_memory / GIB if ctx.cuda else None,
        "rows": [], "laser_grpo_step_time_ratio": {},
        "formula": "MFU = 6*N*tokens/s / peak; MFU+attn adds 12*L*H*d_head*S per token (S = sequence length)",
    }
    del probe

    def save():
        report["total_seconds"] = time.time() - start
        write_json(out / "gpu_check.json", report)
        write_text(out / "gpu_check.md", markdown(report))

    t = time.time()
    try:
        report["route_check"] = route_check(ctx)
    except Exception as e:
        report["route_check"] = {"error": f"{type(e).__name__}: {e}"[:500], "traceback": traceback.format_exc(),
                                 "ok": False}
    report["route_check"]["seconds"] = time.time() - t
    free_memory()
    save()

    moved_done = False
    for ckpt in checkpointing:
        for mb in micro_batches:
            for method in methods:
                smaller_oom = any(r["status"] == "oom" and r["method"] == method and r["gradient_checkpointing"] == ckpt
                                  and r["micro_batch"] < mb for r in report["rows"])
                if smaller_oom or time.time() - start > a.budget_s:
                    why = "out of memory at a smaller micro-batch" if smaller_oom else f"time budget {a.budget_s:.0f} s"
                    report["rows"].append({"method": method, "gradient_checkpointing": ckpt, "micro_batch": mb,
                                           "status": f"skipped ({why})"})
                    continue
                measure = method == "laser" and not moved_done
                row = run_row(ctx, method, ckpt, mb, measure)
                free_memory()
                add_flops(row, ctx, report["n_matmul_params"], peak)
                if row.get("moved"):
                    report["moved"], moved_done = row["moved"], True
                report["rows"].append(row)
                print(f"[{time.time() - start:.0f} s] {method} ckpt={'on' if ckpt else 'off'} mb={mb}: "
                      f"{row['status']} {fmt(row.get('step_seconds'))} s/step", flush=True)
                save()
    for ckpt in checkpointing:
        for mb in micro_batches:
            by = {r["method"]: r for r in report["rows"] if r["gradient_checkpointing"] == ckpt
                  and r["micro_batch"] == mb and r["status"] == "ok"}
            if "laser" in by and "grpo" in by:
                key = f"grad ckpt {'on' if ckpt else 'off'}, micro-batch {mb}"
                report["laser_grpo_step_time_ratio"][key] = by["laser"]["step_seconds"] / by["grpo"]["step_seconds"]
    save()
    print(markdown(report))

    # after the report is written, so a failing run keeps its numbers
    problems = [f"{r['method']} ckpt={r['gradient_checkpointing']} mb={r['micro_batch']}: {r['error']}"
                for r in report["rows"] if r["status"] == "error"]
    problems += [f"{r['method']} ckpt={r['gradient_checkpointing']} mb={r['micro_batch']}: non-finite {r['logged']}"
                 for r in report["rows"] if r["status"] == "ok"
                 and not all(math.isfinite(v) for v in r["logged"].values())]
    rc = report["route_check"]
    if not rc.get("ok"):
        detail = rc.get("error") or {k: rc[k] for k in ("train_vs_reprefill", "onetoken_vs_reprefill", "finished")}
        problems.append(f"z_c routes disagree beyond the bf16 tolerance or failed: {detail}")
    if "laser" in methods and not (report.get("moved") or {}).get("moved_fraction"):
        problems.append(f"one AdamW step moved no weight (or no LaSeR row ran): {report.get('moved')}")
    if problems:
        sys.exit("gpu_check failed:\n  " + "\n  ".join(problems))


if __name__ == "__main__":
    main()
