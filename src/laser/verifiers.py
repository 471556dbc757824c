"""External verifiers: reward models that judge the policy's solutions (docs/paper.md, Evaluation protocol,
the comparison of LaSeR's self-reward with Qwen2.5-Math-RM-72B, Qwen2.5-Math-PRM-7B, ...).

Two kinds, each turned into a probability of "correct" so that the same threshold, F1, ECE
and voting apply as for r_s:
- ``outcome`` (ORM, e.g. Qwen2.5-Math-RM-72B): one score per solution, read at the last token;
  a single logit goes through a sigmoid, two logits through a softmax (class 1 = correct).
- ``prm`` (e.g. Qwen2.5-Math-PRM-7B): the solution is cut into steps at ``step_separator``, a
  ``step_token`` follows every step, and the softmax of the two logits at each step token gives
  step probabilities, aggregated by ``min`` (default), ``last`` or ``prod``.
The input is the chat template of [system, problem, solution], as the Qwen model cards show.
Models with their own code (``trust_remote_code``) load through ``AutoModel``; plain ones through
``AutoModelForSequenceClassification`` / ``AutoModelForTokenClassification``. Like the other
judges, solutions without a boxed answer are not scored (0.0).
"""

from __future__ import annotations

import math
from pathlib import Path

from .metrics import boxed_slots, place
from .provenance import COMMIT


def _dtype(name: str):
    import torch

    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return getattr(torch, name)


def load_verifier(cfg: dict):
    """(model, tokenizer) of one verifier, on the GPU when there is one (several: device_map auto)."""
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoModelForTokenClassification, \
        AutoTokenizer

    remote = cfg["trust_remote_code"]
    cls = AutoModel if remote else (AutoModelForSequenceClassification if cfg["kind"] == "outcome"
                                    else AutoModelForTokenClassification)
    revision = cfg.get("revision")
    if remote and revision and not COMMIT.fullmatch(revision) and not Path(cfg["path"]).is_dir():
        print(f"warning: {cfg['path']} runs its own code at revision {revision!r}, which can move; pin a commit "
              f"hash (results/provenance.json records the commit found in the local cache)", flush=True)
    kwargs = dict(dtype=_dtype(cfg["dtype"]), trust_remote_code=remote, revision=revision)
    if torch.cuda.device_count() > 1:
        kwargs["device_map"] = "auto"  # a 72B RM spreads over the job's GPUs
    model = cls.from_pretrained(cfg["path"], **kwargs)
    if "device_map" not in kwargs:
        model = model.to("cuda" if torch.cuda.is_available() else "cpu")
    tok = AutoTokenizer.from_pretrained(cfg["path"], trust_remote_code=remote, revision=revision)
    return model.eval(), tok


def render(tok, cfg: dict, problem: str, response: str) -> list[int]:
    """Token ids of [system, problem, solution] under the verifier's chat template; PRMs get
    ``step_token`` after every step."""
    if cfg["kind"] == "prm":
        steps = [s.strip() for s in response.split(cfg["step_separator"]) if s.strip()] or [response.strip()]
        response = cfg["step_token"].join(steps) + cfg["step_token"]
    messages = ([{"role": "system", "content": cfg["system"]}] if cfg["system"] else []) + [
        {"role": "user", "content": problem}, {"role": "assistant", "content": response}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    return tok(text, add_special_tokens=False).input_ids


def _probability(logits):
    """P(correct) from the last dimension: 1 logit -> sigmoid, 2 -> softmax class 1."""
    if logits.shape[-1] == 1:
        return logits[..., 0].sigmoid()
    if logits.shape[-1] == 2:
        return logits.softmax(-1)[..., 1]
    raise ValueError(f"verifier head has {logits.shape[-1]} outputs; expected 1 (score) or 2 (classes)")


def aggregate(step_probs: list[float], how: str) -> float:
    if not step_probs:
        return 0.0
    if how == "min":
        return min(step_probs)
    if how == "last":
        return step_probs[-1]
    return math.prod(step_probs)


def score_ids(model, seqs: list[list[int]], cfg: dict, *, pad_id: int, step_id: int | None,
              progress: bool = False) -> list[float]:
    """P(correct) of each token sequence; batched by length, right-padded."""
    import torch
    from tqdm.auto import tqdm

    from .generation import padded_batches

    device = next(model.parameters()).device
    out = [0.0] * len(seqs)
    bs = cfg["batch_size"]
    for idx, ids, mask in tqdm(padded_batches(seqs, bs, pad_id, device), desc=f"verifier {cfg['path']}",
                               total=-(-len(seqs) // bs), disable=not progress):
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask)[0].float()
        for row, i in enumerate(idx):
            n = len(seqs[i])
            if cfg["kind"] == "prm":
                at = [p for p in range(n) if seqs[i][p] == step_id]
                out[i] = aggregate(_probability(logits[row, at]).tolist(), cfg["aggregate"])
            else:  # per-sequence head ([B, L]) or per-token head ([B, T, L], read at the last token)
                out[i] = float(_probability(logits[row] if logits.dim() == 2 else logits[row, n - 1]))
    return out


def verify(records: list[dict], cfg: dict, *, model=None, tok=None, progress: bool = True) -> list[dict]:
    """One record per generation record: ``verifier_scores`` (P(correct); 0.0 where the solution
    has no boxed answer), aligned with ``responses``."""
    if model is None:
        model, tok = load_verifier(cfg)
    step_id = None
    if cfg["kind"] == "prm":
        step_id = tok.convert_tokens_to_ids(cfg["step_token"])
        if step_id is None or step_id == tok.unk_token_id:
            raise ValueError(f"verifier {cfg['path']}: step_token {cfg['step_token']!r} is not one token "
                             f"of its tokenizer")
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    todo = boxed_slots(records)
    seqs = [render(tok, cfg, records[i]["problem"], records[i]["responses"][j]) for i, j in todo]
    probs = score_ids(model, seqs, cfg, pad_id=pad_id, step_id=step_id, progress=progress)
    return [{"id": rec.get("id"), "verifier_scores": scores}
            for rec, scores in zip(records, place(records, todo, probs, 0.0))]
