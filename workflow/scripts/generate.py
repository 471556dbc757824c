# vLLM starts worker processes that re-import this file: everything stays under the guard.
if __name__ == "__main__":
    import copy
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(snakemake.scriptdir)))
    from _bootstrap import setup

    config = setup(snakemake)
    from laser.calibrate import resolve_c_ref
    from collections import Counter

    from laser.checks import check_job, loaded_facts
    from laser.generation import Engine, generate, load_tokenizer, metadata
    from laser.prompts import render_prompts, request_length
    from laser.judge import VERDICTS, judge, judge_context
    from laser.io import read_jsonl, write_json, write_jsonl
    from laser.config import eval_suffix, run_settings, train_suffix
    from laser.data import eval_records
    from laser.scoring import add_self_rewarding_scores, score_file_records, score_kind

    model, method = snakemake.wildcards.model, snakemake.wildcards.method
    base_dir = f"results/models/{model}/base"
    tok = load_tokenizer(snakemake.input.model)
    z_c = config["models"][model]["z_c"]
    # z_c, and every prompt + generation.max_tokens (and judge request) within the model's context:
    # one line naming the keys, before the engine starts (evaluation drops no problem)
    zc_id = check_job(config, model, snakemake.input.model, tokenizer=tok,
                      benchmark_files=dict(zip(config["benchmarks"], snakemake.input.benchmarks)))
    settings = run_settings(config, model, method)
    score = score_kind(settings)  # r_s, or p(z_c) for a model trained with the SFT ablation
    c_ref = resolve_c_ref(settings["c_ref"], snakemake.input.calibration or None, model_dir=base_dir,
                          zc_id=zc_id, where=f"method {method}")

    names = list(config["benchmarks"])
    # the benchmark files hold bare problems; the prompt depends on the checkpoint (prompt.eval_suffix)
    jobs = {name: (eval_records(config, model, method, name, read_jsonl(path)), config["benchmarks"][name]["n_samples"])
            for name, path in zip(names, snakemake.input.benchmarks)}
    route = config["scoring"]["route"]
    gen_cfg, judge_cfg = config["generation"], config["judge"]
    # one engine for sampling, z_c scoring and the prompted judge: the checkpoint is loaded once
    longest = max(len(p) for p in render_prompts(tok, [r for recs, _ in jobs.values() for r in recs])[1])
    need = request_length(longest, gen_cfg["max_tokens"])
    if judge_cfg["generative"]:
        problems = [r["problem"] for recs, _ in jobs.values() for r in recs]
        need = max(need, judge_context(tok, problems, judge_cfg["template"], gen_cfg["max_tokens"], judge_cfg["max_tokens"]))
    context = loaded_facts(snakemake.input.model).context
    with Engine(snakemake.input.model, gen_cfg, min(need, context or need), tokenizer=tok) as engine:
        outs = generate(snakemake.input.model, jobs, gen_cfg, zc_id=zc_id, route=route, engine=engine,
                        extraction=config["grading"]["extraction"])
        if judge_cfg["generative"]:
            flat = [rec for name in names for rec in outs[name]]
            judged = iter(judge(snakemake.input.model, flat, gen_cfg, judge_cfg, engine=engine))
            for name, path in zip(names, snakemake.output.judge):
                part = [next(judged) for _ in outs[name]]
                write_jsonl(path, part)
                counts = Counter(v for j in part for v in j["judge_verdicts"])
                print(f"{path}: " + ", ".join(f"{k} {counts[k]}" for k in VERDICTS))
    for name, records in outs.items():
        ref = None
        if score == "r_s" and c_ref is None:  # reference-forward mode: log pi_ref(z_c | x, y, EOS)
            scored = score_file_records(copy.deepcopy(records), snakemake.input.reference, z_c=z_c,
                                        backend="transformers", gen_cfg={"dtype": "float32"})
            ref = [r["zc_logprobs"] for r in scored]
        add_self_rewarding_scores(records, beta_v=settings["beta_v"], c_ref=c_ref, ref_logprobs=ref, score=score)
    for name, path in zip(names, snakemake.output.generations):
        write_jsonl(path, outs[name])
    write_json(snakemake.output.metadata, {
        **metadata(snakemake.input.model, config["generation"], tokenizer=tok),
        "n_samples": {name: n for name, (_, n) in jobs.items()},
        "prompt": {"eval_suffix": eval_suffix(config, model, method),
                   # benchmarks whose chat prompts are the dataset's own (messages_key): no suffix
                   "dataset_prompts": [n for n in names if config["benchmarks"][n]["messages_key"]],
                   # null: the training data brought its own chat prompts (train_data.messages_key),
                   # or there is none (an evaluation-only config)
                   "train_suffix": train_suffix(config, model)
                   if "train_data" in config and not config["train_data"]["messages_key"] else None,
                   "example": next((recs[0]["prompt"] for recs in outs.values() if recs), None)},
        "grading": {"extraction": config["grading"]["extraction"]},
        "scoring": {"score": score, "route": route, "z_c": z_c, "z_c_id": zc_id, **({
            "beta_v": settings["beta_v"], "c_ref": c_ref if c_ref is not None else "reference model forward",
            "c_ref_source": settings["c_ref"]["source"]} if score == "r_s" else {})}})
