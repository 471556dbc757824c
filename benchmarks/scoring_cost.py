"""Cost of self-reward scoring at the cost of one token vs the official full re-prefill, measured
side by side in one vLLM engine on a tiny model (built here, random weights: only cost matters).

For each completion length L, the same N prompts are sampled to exactly L tokens (min_tokens =
max_tokens = L), then log pi(z_c | x, y, EOS) of every completion is read
  - one token: a request restricted to z_c after ``prompt + response + EOS``, prefix cache warm
    (what the generate rule does right after sampling);
  - re-prefill: ``prompt + response + EOS + z_c`` with prompt_logprobs (the official code).

    python benchmarks/scoring_cost.py [--lengths 64 256 1024] [--n 64] [--backend vllm|transformers]

One line per length: `length <L>: onetoken/generation <x> reprefill/onetoken <y>`
(targets: x <= 0.05 at L >= 256, y >= 5 at L = 1024).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def _timed(fn, repeats: int = 1):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", type=int, nargs="+", default=[64, 256, 1024])
    ap.add_argument("--n", type=int, default=64, help="completions per length")
    ap.add_argument("--repeats", type=int, default=3, help="scoring passes per route (median)")
    ap.add_argument("--backend", choices=["vllm", "transformers"], default="vllm")
    args = ap.parse_args()

    import torch

    from laser import data, tiny
    from laser.generation import load_tokenizer
    from laser.prompts import render_prompts

    torch.manual_seed(0)
    problems = data.prepare({"source": "synthetic", "tiers": ["medium"], "n_problems": args.n}, name="bench", seed=0,
                            suffix=" Put the answer in \\boxed{}.")
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "model")
        tok = tiny.build_tokenizer()
        model = tiny.build_model(tok, hidden_size=96, num_layers=3, num_heads=3, intermediate_size=384,
                                 max_position_embeddings=max(args.lengths) + 256, seed=0)
        tiny.save_pretrained(model, tok, path)
        tok = load_tokenizer(path)
        zc = tok.convert_tokens_to_ids(tiny.ZC)
        _, prompt_ids = render_prompts(tok, problems)
        cfg = {"temperature": 1.0, "top_p": 1.0, "seed": 0, "dtype": "float32", "tensor_parallel_size": 1,
               "vllm_kv_cache_gib": 2.0, "batch_size": args.n}
        lines = (_vllm if args.backend == "vllm" else _transformers)(path, tok, prompt_ids, zc, cfg, args)
    print(f"backend {args.backend}, {args.n} completions per length, tiny Qwen2 (hidden 96, 3 layers, float32), "
          f"{torch.get_num_threads()} threads")
    for line in lines:
        print(line)


def _vllm(path, tok, prompt_ids, zc, cfg, args):
    from laser.generation import close_engine, vllm_engine, vllm_sample, vllm_zc_logprobs
    from laser.prompts import request_length

    llm = vllm_engine(path, cfg, request_length(max(map(len, prompt_ids)), max(args.lengths)))
    lines = []
    try:
        vllm_sample(llm, tok, prompt_ids[:4], [1] * 4, {**cfg, "max_tokens": 8})  # warm-up
        for length in args.lengths:
            gen_cfg = {**cfg, "max_tokens": length}
            t_gen, samples = _timed(lambda: vllm_sample(llm, tok, prompt_ids, [1] * len(prompt_ids), gen_cfg,
                                                        min_tokens=length))
            responses = [g[0].token_ids for g in samples]
            assert all(len(r) == length for r in responses)
            kw = dict(eos_id=tok.eos_token_id, zc_id=zc)
            t_one, one = _timed(lambda: vllm_zc_logprobs(llm, prompt_ids, responses, **kw), args.repeats)
            t_pre, pre = _timed(lambda: vllm_zc_logprobs(llm, prompt_ids, responses, route="reprefill", **kw),
                                args.repeats)
            diff = max(abs(a - b) for a, b in zip(one, pre))
            lines.append(f"length {length}: onetoken/generation {t_one / t_gen:.4f} reprefill/onetoken "
                         f"{t_pre / t_one:.2f}   (generation {t_gen:.2f} s, onetoken {t_one:.3f} s, "
                         f"reprefill {t_pre:.3f} s, max |diff| {diff:.1e})")
    finally:
        close_engine(llm)
    return lines


def _transformers(path, tok, prompt_ids, zc, cfg, args):
    """transformers: `generate` then one decoding step on its KV cache vs a full forward."""
    import torch

    from laser.generation import load_model, zc_logprobs_on_cache
    from laser.scoring import zc_logprobs_transformers

    model = load_model(path)
    pad = tok.pad_token_id
    width = max(map(len, prompt_ids))
    input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompt_ids])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompt_ids])
    lines = []
    for length in args.lengths:
        def gen():
            with torch.no_grad():
                return model.generate(input_ids=input_ids, attention_mask=mask, do_sample=True, top_k=0,
                                      min_new_tokens=length, max_new_tokens=length, eos_token_id=tok.eos_token_id,
                                      pad_token_id=pad, return_dict_in_generate=True)
        t_gen, out = _timed(gen)
        responses = out.sequences[:, width:].tolist()
        t_one, one = _timed(lambda: zc_logprobs_on_cache(model, out.sequences, width, mask, out.past_key_values,
                                                         eos_id=tok.eos_token_id, zc_id=zc))
        t_pre, pre = _timed(lambda: zc_logprobs_transformers(model, prompt_ids, responses, zc_id=zc,
                                                             eos_id=tok.eos_token_id, pad_id=pad,
                                                             batch_size=len(prompt_ids)), args.repeats)
        diff = max(abs(a - b) for a, b in zip(one, pre))
        lines.append(f"length {length}: onetoken/generation {t_one / t_gen:.4f} reprefill/onetoken "
                     f"{t_pre / t_one:.2f}   (generation {t_gen:.2f} s, onetoken {t_one:.3f} s, "
                     f"reprefill {t_pre:.3f} s, max |diff| {diff:.1e})")
    return lines


if __name__ == "__main__":
    main()
