"""log pi(z_c | prompt, response, EOS) for given token ids, with a plain transformers forward.

Sequences are built from token ids (``prompt_ids + response_ids + [EOS, z_c]``), never by string
surgery on a chat template (PAPER.md pitfall 4).
"""

from __future__ import annotations

import torch


def zc_logprobs_transformers(model, prompt_ids: list[list[int]], response_ids: list[list[int]], *,
                             zc_id: int, eos_id: int, pad_id: int, batch_size: int = 32,
                             temperature: float = 1.0, progress: bool = False) -> list[float]:
    from tqdm.auto import tqdm

    from .selfreward import zc_logprobs

    device = next(model.parameters()).device
    seqs = [p + r + [eos_id, zc_id] for p, r in zip(prompt_ids, response_ids)]
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))  # similar lengths batch together
    out = [0.0] * len(seqs)
    batches = range(0, len(order), batch_size)
    for start in tqdm(batches, desc="score z_c (transformers)", disable=not progress):
        idx = order[start:start + batch_size]
        width = max(len(seqs[i]) for i in idx)
        ids = torch.tensor([seqs[i] + [pad_id] * (width - len(seqs[i])) for i in idx], device=device)
        mask = torch.tensor([[1] * len(seqs[i]) + [0] * (width - len(seqs[i])) for i in idx], device=device)
        slots = torch.tensor([len(seqs[i]) - 1 for i in idx], device=device)
        with torch.no_grad():
            lp = zc_logprobs(model, ids, mask, slots, temperature)
        for i, v in zip(idx, lp.tolist()):
            out[i] = v
    return out
