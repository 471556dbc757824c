"""The generate job: one checkpoint on every benchmark. One engine samples n solutions per
problem, scores each by its last token (z_c after EOS) right after generation and, with the
prompted judge on, judges it; the self-reward scores (r_s, or p(z_c) for the SFT ablation) are
added and the generations, judge verdicts and metadata written (docs/outputs.md)."""

from __future__ import annotations

from collections import Counter


def generate_job(job: dict, *, model_dir: str, benchmark_files: list[str], calibration: str | None,
                 reference: str | None, generations: list[str], judge_files: list[str], metadata_file: str,
                 base_dir: str) -> None:
    """The generate job (its settings: `laser.jobs.generate`). `benchmark_files`, `generations` and
    `judge_files` follow the order of `job["benchmarks"]`; `reference`: the base model, scored
    beside the policy in reference-forward mode (c_ref source: reference); `base_dir`: the base
    checkpoint a calibration file must come from."""
    from .calibrate import resolve_c_ref
    from .checks import check_job, loaded_facts
    from .generation import Engine, generate, load_tokenizer, metadata
    from .io import read_jsonl, write_json, write_jsonl
    from .judge import VERDICTS, judge, judge_context
    from .prompts import render_prompts, request_length, with_prompt
    from .scoring import add_self_rewarding_scores, reference_logprobs, score_kind

    names = list(job["benchmarks"])
    bare = {name: read_jsonl(path) for name, path in zip(names, benchmark_files)}
    tok = load_tokenizer(model_dir)
    # z_c, and every prompt + generation.max_tokens (and judge request) within the model's context:
    # one line naming the keys, before the engine starts (evaluation drops no problem)
    zc_id = check_job(job, model_dir, tokenizer=tok, benchmarks=bare)
    settings, method = job["run"], job["method"]
    score = score_kind(settings)  # r_s, or p(z_c) for a model trained with the SFT ablation
    c_ref = resolve_c_ref(settings["c_ref"], calibration, model_dir=base_dir, zc_id=zc_id, where=f"method {method}")
    gen_cfg, judge_cfg = job["generation"], job["judge"]
    # the benchmark files hold bare problems; the prompt depends on the checkpoint (prompt.eval_suffix)
    jobs = {name: (with_prompt(bare[name], spec["prompt"]), spec["n_samples"]) for name, spec in job["benchmarks"].items()}
    # one engine for sampling, z_c scoring and the prompted judge: the checkpoint is loaded once
    longest = max(len(p) for p in render_prompts(tok, [r for recs, _ in jobs.values() for r in recs])[1])
    need = request_length(longest, gen_cfg["max_tokens"])
    if judge_cfg["generative"]:
        problems = [r["problem"] for recs, _ in jobs.values() for r in recs]
        need = max(need, judge_context(tok, problems, judge_cfg["template"], gen_cfg["max_tokens"],
                                       judge_cfg["max_tokens"]))
    context = loaded_facts(model_dir).context
    with Engine(model_dir, gen_cfg, min(need, context or need), tokenizer=tok) as engine:
        outs = generate(model_dir, jobs, gen_cfg, zc_id=zc_id, route=job["route"], engine=engine,
                        extraction=job["extraction"])
        if judge_cfg["generative"]:
            judged = iter(judge(model_dir, [rec for name in names for rec in outs[name]], gen_cfg, judge_cfg,
                                engine=engine))
            for name, path in zip(names, judge_files):
                part = [next(judged) for _ in outs[name]]
                write_jsonl(path, part)
                counts = Counter(v for j in part for v in j["judge_verdicts"])
                print(f"{path}: " + ", ".join(f"{k} {counts[k]}" for k in VERDICTS))
    refs = {name: None for name in names}
    if score == "r_s" and c_ref is None:  # reference-forward mode: log pi_ref(z_c | x, y, EOS) of the same ids
        flat = [rec for name in names for rec in outs[name]]
        scored = iter(reference_logprobs(reference, flat, render_prompts(tok, flat)[1], z_c=job["model"]["z_c"],
                                         gen_cfg={"dtype": "float32"}, backend="transformers"))
        refs = {name: [next(scored) for _ in outs[name]] for name in names}
    for name, records in outs.items():
        add_self_rewarding_scores(records, beta_v=settings["beta_v"], c_ref=c_ref, ref_logprobs=refs[name], score=score)
    for name, path in zip(names, generations):
        write_jsonl(path, outs[name])
    write_json(metadata_file, {
        **metadata(model_dir, gen_cfg, tokenizer=tok),
        "n_samples": {name: n for name, (_, n) in jobs.items()},
        "prompt": {"eval_suffix": next(iter(job["benchmarks"].values()))["prompt"]["suffix"] if names else None,
                   # benchmarks whose chat prompts are the dataset's own (messages_key): no suffix
                   "dataset_prompts": [n for n in names if job["benchmarks"][n]["prompt"]["messages_key"]],
                   # null: the training data brought its own chat prompts (train_data.messages_key),
                   # the workflow did not train this checkpoint, or there is no training data
                   "train_suffix": job["train_suffix"],
                   "example": next((recs[0]["prompt"] for recs in outs.values() if recs), None)},
        "grading": {"extraction": job["extraction"]},
        "scoring": {"score": score, "route": job["route"], "z_c": job["model"]["z_c"], "z_c_id": zc_id, **({
            "beta_v": settings["beta_v"], "c_ref": c_ref if c_ref is not None else "reference model forward",
            "c_ref_source": settings["c_ref"]["source"]} if score == "r_s" else {})}})
