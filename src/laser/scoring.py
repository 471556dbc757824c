"""Self-reward scores of sampled solutions: r_s = beta_v * (log pi(z_c | x, y, EOS) - c_ref), or
p(z_c) = exp(log pi(z_c | x, y, EOS)) for a model trained with the SFT ablation (``laser.loss: sft``).

Sequences are built from token ids (``prompt_ids + response_ids + [EOS, z_c]``), never by string
surgery on a chat template (docs/paper.md, "Where the official code is improved on", item 4). Like the official evaluation, only responses
with a boxed answer are scored; the others get 0.0 (judged incorrect, which they are).
Also the `laser-score` command: score any JSONL in the official format with any HF model.
"""

from __future__ import annotations

import argparse
import math
import sys

from .generation import zc_logprobs_transformers  # noqa: F401  (re-exported)
from .metrics import unflatten
from .prompts import request_length

# The last-token scores: `r_s` (the paper's, for models trained with the MSE loss) and `p_zc`
# (the probability of z_c, for the SFT/BCE ablation: the official code trains it by cross-entropy
# on z_c after correct and z_c + 1 after incorrect solutions and judges "correct" iff p > 0.5).
SCORES = ("r_s", "p_zc")


def score_kind(settings: dict) -> str:
    """The last-token score a run is judged by, from its resolved settings
    (`laser.config.run_settings`): the score it was trained to produce."""
    return "p_zc" if settings.get("loss") == "sft" else "r_s"


def add_self_rewarding_scores(records: list[dict], *, beta_v: float | None = None, c_ref: float | None = None,
                              ref_logprobs: list[list[float]] | None = None, score: str = "r_s") -> list[dict]:
    """Set ``self_rewarding_scores`` from each record's ``zc_logprobs`` (in place; returned).

    `score="r_s"`: beta_v * (log p(z_c) - c_ref) with the constant `c_ref`, or with `c_ref=None`
    the per-response reference log-probs `ref_logprobs` (reference-forward mode) in its place.
    `score="p_zc"`: exp(log p(z_c)), a probability; beta_v, c_ref and ref_logprobs are unused."""
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}; choose one of {', '.join(SCORES)}")
    if score == "p_zc":
        for rec in records:
            rec["self_rewarding_scores"] = [math.exp(lp) if pred is not None else 0.0
                                            for lp, pred in zip(rec["zc_logprobs"], rec["pred_answers"])]
        return records
    if beta_v is None:
        raise ValueError("r_s needs beta_v")
    if c_ref is None and ref_logprobs is None:
        raise ValueError("need a constant c_ref or per-response reference log-probs")
    for i, rec in enumerate(records):
        refs = ref_logprobs[i] if c_ref is None else [c_ref] * len(rec["zc_logprobs"])
        rec["self_rewarding_scores"] = [
            beta_v * (lp - ref) if pred is not None else 0.0
            for lp, ref, pred in zip(rec["zc_logprobs"], refs, rec["pred_answers"])]
    return records


def token_ids_of(records: list[dict], tok, suffix: str = "") -> tuple[list[list[int]], list[list[int]]]:
    """Prompt and response token ids of every (record, response) pair, flattened.

    The prompt is the record's exact ``prompt`` text when present, else the chat template applied
    to ``messages`` or to ``problem + suffix``. Response ids are the recorded
    ``response_token_ids`` when they decode to the response text with this tokenizer, else the
    text is tokenized."""
    prompts, responses = [], []
    for rec in records:
        if "prompt" in rec:
            text = rec["prompt"]
        else:
            messages = rec.get("messages") or [{"role": "user", "content": rec["problem"] + suffix}]
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        p = tok(text, add_special_tokens=False).input_ids
        recorded = rec.get("response_token_ids") or [None] * len(rec["responses"])
        for resp, ids in zip(rec["responses"], recorded):
            if ids is None or max(ids, default=0) >= len(tok) or tok.decode(ids, skip_special_tokens=True) != resp:
                ids = tok(resp, add_special_tokens=False).input_ids
            prompts.append(p)
            responses.append(list(ids))
    return prompts, responses


def score_file_records(records: list[dict], model_dir: str, *, z_c: str, backend: str = "vllm",
                       route: str = "onetoken", gen_cfg: dict | None = None,
                       suffix: str = "") -> list[dict]:
    """``zc_logprobs`` of every response of `records` under the model in `model_dir`."""
    from .generation import (close_engine, load_model, load_tokenizer, vllm_engine,
                             vllm_zc_logprobs)
    from .model import check_z_c

    tok = load_tokenizer(model_dir)
    zc_id = check_z_c(tok, z_c, "--z-c")
    prompts, responses = token_ids_of(records, tok, suffix)
    cfg = {"seed": 0, "dtype": "auto", "tensor_parallel_size": 1, "vllm_kv_cache_gib": 1.0, **(gen_cfg or {})}
    if not prompts:
        logps = []
    elif backend == "vllm":
        llm = vllm_engine(model_dir, cfg, max(request_length(len(p), len(r)) for p, r in zip(prompts, responses)),
                          prefix_caching=route == "onetoken")
        try:
            logps = vllm_zc_logprobs(llm, prompts, responses, eos_id=tok.eos_token_id, zc_id=zc_id, route=route)
        finally:
            close_engine(llm)
    else:  # without a generation's KV cache both routes are one prefill per sequence
        model = load_model(model_dir, cfg["dtype"] if cfg["dtype"] != "auto" else "float32")
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        logps = zc_logprobs_transformers(model, prompts, responses, zc_id=zc_id, eos_id=tok.eos_token_id,
                                         pad_id=pad, progress=True)
    for rec, lps in zip(records, unflatten(logps, records)):
        rec["zc_logprobs"] = lps
    return records


def _calibrated_c_ref(path: str, z_c: str) -> float:
    """c_ref of a calibration file, which must be for this z_c (calibrated on the base model of
    the checkpoint being scored, whose path therefore differs)."""
    from .io import InputError, read_json

    cal = read_json(path)
    for key in ("token", "c_ref_mean"):
        if key not in cal:
            raise InputError(f"{path}: missing key {key!r}")
    if cal["token"] != z_c:
        raise InputError(f"{path}: calibrated for z_c {cal['token']!r}, not --z-c {z_c!r}")
    return float(cal["c_ref_mean"])


def main(argv: list[str] | None = None) -> int:
    """laser-score: add self-rewarding scores to generations in the official LaSeR JSONL format."""
    parser = argparse.ArgumentParser(prog="laser-score", description=main.__doc__)
    parser.add_argument("--model", required=True, help="HF model directory or hub id")
    parser.add_argument("--input", required=True, help="JSONL: problem/answer (or prompt), responses, ...")
    parser.add_argument("--output", required=True, help="JSONL written with zc_logprobs and self_rewarding_scores")
    parser.add_argument("--z-c", required=True, help="the self-rewarding token, e.g. <|vision_start|> (Qwen2.5)")
    parser.add_argument("--score", choices=SCORES, default="r_s",
                        help="r_s = beta_v (log p(z_c) - c_ref) (default; needs --c-ref or --calibration), "
                             "or p_zc = p(z_c) for models trained with the SFT ablation (laser.loss: sft)")
    ref = parser.add_mutually_exclusive_group()
    ref.add_argument("--c-ref", type=float, help="constant c_ref")
    ref.add_argument("--calibration", help="calibration JSON written by the calibrate rule")
    parser.add_argument("--beta-v", type=float, default=0.1)
    parser.add_argument("--backend", choices=["vllm", "transformers"], default="vllm")
    parser.add_argument("--route", choices=["onetoken", "reprefill"], default="onetoken")
    parser.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"], default="auto")
    parser.add_argument("--tensor-parallel-size", type=int, default=1)
    parser.add_argument("--extraction", choices=["lenient", "official"], default="lenient",
                        help="how records without pred_answers/acc_list are graded (config key "
                             "grading.extraction): official = as the official src/eval_math.py")
    parser.add_argument("--prompt-suffix", default="",
                        help="appended to `problem` when a record has neither `prompt` nor `messages`")
    args = parser.parse_args(argv)
    if args.score == "r_s" and args.c_ref is None and args.calibration is None:
        parser.error("--score r_s needs one of the arguments --c-ref --calibration")

    from .grading import grade_response
    from .io import InputError, read_jsonl, write_jsonl
    from .metrics import verification_row

    try:
        records = read_jsonl(args.input)
        for line, rec in enumerate(records, 1):
            missing = [k for k in ("responses",) if k not in rec] + \
                      ([] if {"prompt", "messages", "problem"} & set(rec) else ["problem"])
            if missing:
                raise InputError(f"{args.input}:{line}: missing field(s) {missing}")
            if "pred_answers" not in rec or "acc_list" not in rec:
                graded = [grade_response(r, rec.get("answer", ""), args.extraction) for r in rec["responses"]]
                rec.setdefault("pred_answers", [p for p, _ in graded])
                if "answer" in rec:
                    rec.setdefault("acc_list", [c for _, c in graded])
        c_ref = None
        if args.score == "r_s":
            c_ref = args.c_ref if args.c_ref is not None else _calibrated_c_ref(args.calibration, args.z_c)
        try:
            from transformers import AutoConfig

            from .model import resolve_base

            AutoConfig.from_pretrained(resolve_base(args.model))  # a wrong --model fails here, in one line
        except OSError as e:
            raise InputError(f"--model {args.model!r} is not a model directory or a reachable hub id "
                             f"({str(e).splitlines()[0]})") from None
        score_file_records(records, args.model, z_c=args.z_c, backend=args.backend, route=args.route,
                           gen_cfg={"dtype": args.dtype, "tensor_parallel_size": args.tensor_parallel_size},
                           suffix=args.prompt_suffix)
    except (InputError, KeyError, ValueError) as e:
        print(f"laser-score: error: {e}", file=sys.stderr)
        return 2
    add_self_rewarding_scores(records, beta_v=args.beta_v, c_ref=c_ref, score=args.score)
    write_jsonl(args.output, records)
    if all("acc_list" in r for r in records):
        sv = verification_row(records, [r["self_rewarding_scores"] for r in records])
        print(f"{args.output}: {sum(len(r['responses']) for r in records)} responses; filtered F1 of "
              f"{args.score} > 0.5 {sv['f1_filtered']:.4f} "
              f"(true_acc {sv['true_acc']:.4f}, false_acc {sv['false_acc']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
