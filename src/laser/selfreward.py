"""LaSeR's self-reward maths (docs/paper.md, Method), on plain tensors so every formula is
unit-tested on CPU and shared by training, calibration and test-time scoring.

    r_s = beta_v * (log pi(z_c | x, y, EOS) - c_ref)
    L_sr = (1 / (N_c + N_i)) * sum_finished w(r_v) * (r_s - r_v)^2,
           w_c = (N_c + N_i) / (2 N_c), w_i = (N_c + N_i) / (2 N_i), an empty class weighs 0
    A = (1 - tau) * A_v + tau * A_s, A_s = group-normalised clamp(r_s, 0, 1) (truncated -> 0),
        groups with std <= T fall back to A_s = A_v
"""

from __future__ import annotations

import torch

SWA_EPS = 1e-6


def self_reward(logp_zc: torch.Tensor, beta_v: float, c_ref: torch.Tensor | float) -> torch.Tensor:
    """r_s from log pi(z_c | x, y, EOS); `c_ref` is the constant or a per-sample reference log-prob."""
    return beta_v * (logp_zc - c_ref)


def class_weights(r_v: torch.Tensor, finished: torch.Tensor, balanced: bool = True):
    """Per-sample weights of L_sr: class-balanced over finished solutions, 0 for truncated ones.

    Returns (weights, n_correct, n_incorrect, w_c, w_i) where weights already hold w_c / w_i.
    """
    finished = finished.bool()
    correct = (r_v > 0.5) & finished
    incorrect = (r_v <= 0.5) & finished
    n_c, n_i = int(correct.sum()), int(incorrect.sum())
    n = n_c + n_i
    if balanced:
        w_c = n / (2 * n_c) if n_c else 0.0
        w_i = n / (2 * n_i) if n_i else 0.0
    else:
        w_c = w_i = 1.0
    weights = torch.zeros_like(r_v, dtype=torch.float32)
    weights[correct] = w_c
    weights[incorrect] = w_i
    return weights, n_c, n_i, w_c, w_i


def score(logp_zc: torch.Tensor, variant: str, beta_v: float, c_ref: torch.Tensor | float) -> torch.Tensor:
    """The self-verification score a method is trained towards and judged by (threshold 0.5):
    r_s for `mse` (the paper), p(z_c | x, y, EOS) for `sft` (the official SFT ablation)."""
    return logp_zc.exp() if variant == "sft" else self_reward(logp_zc, beta_v, c_ref)


def sft_tokens(zc_id: int, r_v: torch.Tensor) -> torch.Tensor:
    """The official SFT ablation's target token after each solution: z_c after correct ones,
    the next token id z_c + 1 after incorrect ones."""
    return zc_id + (r_v <= 0.5).long()


def per_sample_sr_loss(logp_target: torch.Tensor, r_s: torch.Tensor, r_v: torch.Tensor, variant: str) -> torch.Tensor:
    """Unweighted per-sample self-rewarding loss.

    `mse` (the paper): (r_s - r_v)^2, `logp_target` being log pi(z_c | x, y, EOS).
    `sft` (the official BCE/SFT ablation, RUCBM/LaSeR `use_sft_loss`): cross-entropy of the
    target token, `logp_target` being log pi(sft_tokens(z_c, r_v) | x, y, EOS).
    """
    if variant == "mse":
        return (r_s - r_v) ** 2
    if variant == "sft":
        return -logp_target
    raise ValueError(f"unknown self-rewarding loss {variant!r}; choose 'mse' or 'sft'")


def sr_loss(logp_target, r_s, r_v, weights, normalizer: float, variant: str = "mse") -> torch.Tensor:
    """sum_i w_i * loss_i / normalizer (normalizer = N_c + N_i of the whole step, so micro-batches add up)."""
    # no finished solution in the step: every weight is 0, any positive normalizer will do
    return (weights * per_sample_sr_loss(logp_target, r_s, r_v, variant)).sum() / (normalizer if normalizer > 0 else 1.0)


def swa_scores(r_s: torch.Tensor, finished: torch.Tensor, group_size: int, threshold: float):
    """A_s for whole groups and the fallback mask (groups with std(clamped r_s) <= T)."""
    r = r_s.detach().clamp(0.0, 1.0) * finished.float()  # truncated solutions count as 0
    groups = r.view(-1, group_size)
    mean = groups.mean(dim=1, keepdim=True)
    std = groups.std(dim=1, keepdim=True) if group_size > 1 else torch.zeros_like(mean)
    a_s = ((groups - mean) / (std + SWA_EPS)).view(-1)
    fallback = (std <= threshold).expand_as(groups).reshape(-1)
    return a_s, fallback


def mix_advantages(a_v: torch.Tensor, a_s: torch.Tensor, fallback: torch.Tensor, tau: float) -> torch.Tensor:
    """(1 - tau) * A_v + tau * A_s, with A_s = A_v where the group fell back."""
    return (1 - tau) * a_v + tau * torch.where(fallback, a_v, a_s)


def stage(step: int, w_r: int, w_sr: int) -> int:
    """Training stage of 1-based optimizer step `step`: 1 GRPO, 2 + L_sr, 3 + SWA."""
    if step <= w_r:
        return 1
    if step <= w_r + w_sr:
        return 2
    return 3


def insert_zc(input_ids: torch.Tensor, attention_mask: torch.Tensor, logits_to_keep: int, zc_id,
              eos_ids: list[int], pad_id: int):
    """Place z_c right after each finished completion's EOS, by token id.

    The batch is ``[left-padded prompt | right-padded completion]``, the last `logits_to_keep`
    columns being the completion. One column is appended so the longest completion has room.
    Returns (input_ids', attention_mask', slot, finished): `slot` is each row's z_c index in
    completion coordinates (= completion length incl. EOS), so the per-token log-prob at `slot`
    is log pi(z_c | x, y, EOS). Truncated rows (no EOS) get no z_c. `zc_id` may be a tensor of one
    token id per row.
    """
    bsz, width = input_ids.shape
    start = width - logits_to_keep
    comp_len = attention_mask[:, start:].sum(dim=1)
    last = input_ids[:, start:].gather(1, (comp_len - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
    eos = torch.tensor(eos_ids, device=input_ids.device)
    finished = (comp_len > 0) & torch.isin(last, eos)
    ids = torch.cat([input_ids, input_ids.new_full((bsz, 1), pad_id)], dim=1)
    mask = torch.cat([attention_mask, attention_mask.new_zeros((bsz, 1))], dim=1)
    rows = finished.nonzero(as_tuple=True)[0]
    cols = start + comp_len[rows]
    ids[rows, cols] = zc_id[rows] if torch.is_tensor(zc_id) else zc_id  # a token per row: the SFT ablation
    mask[rows, cols] = 1
    return ids, mask, comp_len, finished


def zc_logprobs(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, slot_positions: torch.Tensor,
                temperature: float = 1.0) -> torch.Tensor:
    """log pi(token at slot | prefix) with a plain transformers forward: `slot_positions` index
    absolute positions of z_c in `input_ids` (the logits of the previous position are read). Only
    those positions' final hidden states meet the lm_head: the logits of every position would be
    sequences x length x vocabulary floats (800 GB for one rollout batch of the paper's runs)."""
    hidden = model.get_decoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    rows = torch.arange(input_ids.size(0), device=input_ids.device)
    prev = model.get_output_embeddings()(hidden[rows, slot_positions - 1]).float() / temperature
    return torch.log_softmax(prev, dim=-1)[rows, input_ids[rows, slot_positions]]
