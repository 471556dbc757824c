"""c_ref calibration (docs/paper.md, Method): c_ref = E[log pi_ref(z_c | x, y, EOS)] over solutions
sampled from the reference model on training problems, recorded with its sample std
(n - 1 in the denominator) over the finished solutions only."""

from __future__ import annotations

import math
import random

from .io import InputError, read_json


def calibrate(model_dir: str, train: list[dict], *, n: int, z_c: str, gen_cfg: dict, seed: int,
              max_tokens: int, context: int | None = None) -> dict:
    """c_ref over `n` sampled training problems. `context`: the model's; a sampled prompt that
    cannot take `max_tokens` more tokens in it is left out (counted in the log)."""
    from .generation import generate, load_tokenizer
    from .model import check_z_c

    tok = load_tokenizer(model_dir)
    zc_id = check_z_c(tok, z_c, "z_c")
    problems = random.Random(seed).sample(train, min(n, len(train)))
    if context is not None:
        from .prompts import render_prompts, request_length

        fits = [p for p, ids in zip(problems, render_prompts(tok, problems)[1])
                if request_length(len(ids), max_tokens) <= context]
        if len(fits) < len(problems):
            print(f"calibration: left out {len(problems) - len(fits)} of {len(problems)} sampled prompts that "
                  f"cannot take training.max_completion_length = {max_tokens} tokens in the model's context of "
                  f"{context}", flush=True)
        if not fits:
            raise InputError(f"config key 'training.max_completion_length': no sampled calibration prompt can take "
                             f"{max_tokens} more tokens in the model's context of {context} tokens; lower it")
        problems = fits
    # sampled and scored by one token after EOS in the same engine (generation.py)
    out = generate(model_dir, {"calibration": (problems, 1)}, {**gen_cfg, "max_tokens": max_tokens},
                   zc_id=zc_id, route="onetoken", tokenizer=tok)["calibration"]
    logps = [r["zc_logprobs"][0] for r in out if r["finished"][0]]
    if not logps:
        raise RuntimeError(f"calibration: none of {len(out)} sampled solutions finished within {max_tokens} tokens")
    mean = sum(logps) / len(logps)
    std = math.sqrt(sum((x - mean) ** 2 for x in logps) / max(len(logps) - 1, 1))
    return {"model": str(model_dir), "token": z_c, "token_id": zc_id, "n": len(logps),
            "n_sampled": len(out), "c_ref_mean": mean, "c_ref_std": std,
            "min": min(logps), "max": max(logps)}


def calibrate_job(job: dict, model_dir: str, train_path: str, out: str) -> dict:
    """The calibrate job (its settings: `laser.jobs.calibrate`): the base model samples under the
    training prompt, so that c_ref is the training-time constant; written to `out`."""
    from .checks import check_job, loaded_facts
    from .io import read_jsonl, write_json
    from .prompts import with_prompt

    check_job(job, model_dir)
    result = calibrate(model_dir, with_prompt(read_jsonl(train_path), job["prompt"]), n=job["n_problems"],
                       z_c=job["model"]["z_c"], gen_cfg=job["generation"], seed=job["seed"],
                       max_tokens=job["max_tokens"], context=loaded_facts(model_dir).context)
    write_json(out, result)
    print(f"c_ref({job['model']['name']}) = {result['c_ref_mean']:.3f} +- {result['c_ref_std']:.3f} "
          f"over {result['n']} solutions")
    return result


def resolve_c_ref(c_ref_spec: dict, calibration_path: str | None, *, model_dir: str, zc_id: int,
                  where: str) -> float | None:
    """The constant c_ref for training; None in reference-forward mode.

    A calibration file must come from this model and this token, else it is an error."""
    if c_ref_spec["source"] == "constant":
        return float(c_ref_spec["value"])
    if c_ref_spec["source"] == "reference":
        return None
    cal = read_json(calibration_path)
    for key in ("model", "token_id", "c_ref_mean"):
        if key not in cal:
            raise InputError(f"{calibration_path}: missing key {key!r}")
    if cal["token_id"] != zc_id:
        raise InputError(f"{calibration_path}: calibrated for token id {cal['token_id']}, but {where} uses "
                         f"z_c id {zc_id}; rerun the calibrate rule")
    if str(cal["model"]).rstrip("/") != str(model_dir).rstrip("/"):
        raise InputError(f"{calibration_path}: calibrated on model {cal['model']!r}, not {model_dir!r}")
    return float(cal["c_ref_mean"])
