"""Does r_s rank solutions *of the same problem*? Weighted voting needs exactly that. This puts the
within-problem AUROC of r_s side by side with the policy's own confidence in its solution (mean
token log-prob of the response, re-read with a transformers forward), over the same pairs of a
correct and an incorrect solution of one problem (`metrics.auroc_within`).

If the confidence ranks the solutions and r_s does not, the model holds the signal but its last
token was not trained to carry it.

    python benchmarks/within_problem_signal.py [--results results] [--model tiny] [--method laser]

One line per benchmark: `<benchmark>: auroc_within r_s <x> mean_logprob <y> (pairs from <n> problems)`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def mean_logprobs(model, tok, records: list[dict], batch_size: int = 32) -> list[list[float]]:
    """Mean log pi(y_t | x, y_<t) of every response of every record."""
    import torch

    from laser.generation import padded_batches
    from laser.metrics import unflatten

    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    # the recorded ids, as sampled (and as r_s was read), not a re-tokenization of the text
    prompt_ids = [tok(r["prompt"], add_special_tokens=False).input_ids for r in records]
    prompts = [p for p, r in zip(prompt_ids, records) for _ in r["response_token_ids"]]
    seqs = [p + ids for p, r in zip(prompt_ids, records) for ids in r["response_token_ids"]]
    flat = [0.0] * len(seqs)
    for idx, ids, mask in padded_batches(seqs, batch_size, pad, "cpu"):
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)
        for row, i in enumerate(idx):
            start, end = len(prompts[i]), len(seqs[i])
            if end > start:  # an empty response keeps 0.0
                target = torch.tensor(seqs[i][start:])
                flat[i] = logp[row, start - 1:end - 1].gather(1, target[:, None]).mean().item()
    return unflatten(flat, records)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default="results")
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--method", default="laser")
    args = ap.parse_args()

    from laser.generation import load_model, load_tokenizer
    from laser.io import read_jsonl
    from laser.metrics import auroc_within

    ckpt = Path(args.results) / "models" / args.model / args.method
    model, tok = load_model(str(ckpt)).eval(), load_tokenizer(str(ckpt))
    files = sorted((Path(args.results) / "generations" / args.model / args.method).glob("*.jsonl"))
    if not files:
        sys.exit(f"no generations under {Path(args.results) / 'generations' / args.model / args.method}")
    for path in files:
        records = read_jsonl(path)
        mixed = sum(1 for r in records if len({bool(a) for a, p in zip(r["acc_list"], r["pred_answers"])
                                               if p is not None}) == 2)
        rs = auroc_within(records, [r["self_rewarding_scores"] for r in records])
        conf = auroc_within(records, mean_logprobs(model, tok, records))
        print(f"{path.stem}: auroc_within r_s {rs:.3f} mean_logprob {conf:.3f} (pairs from {mixed} problems)")


if __name__ == "__main__":
    main()
