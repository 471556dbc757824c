"""A small results/ tree in the output contract's layout, written with the package's own
functions (what the tables and figures rules run), for tests that need results on disk."""

import random
from pathlib import Path

import pandas as pd

from laser.tables import all_tables, load_run
from laser.figures import all_figures
from laser.io import read_jsonl, write_json, write_jsonl
from laser.tables import prompts_table, write_table

BENCHES = {"easy": (6, 4), "hard": (5, 8)}  # name: (problems, samples)
METHODS = {"base": 0.0, "grpo": 0.0, "laser": 0.8}  # how well r_s separates correct from incorrect


def records(bench: str, method: str, seed: int) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    n_problems, n = BENCHES[bench]
    recs, judged = [], []
    for i in range(n_problems):
        acc, preds, scores, verdicts = [], [], [], []
        for _ in range(n):
            boxed = rng.random() < 0.85
            correct = boxed and rng.random() < (0.7 if bench == "easy" else 0.3)
            pred = ("42" if correct else str(rng.randint(1, 5))) if boxed else None
            signal = METHODS[method] * (1.0 if correct else -0.6)
            score = round(0.5 + signal * 0.6 + rng.gauss(0, 0.2), 4) if boxed else 0.0
            acc.append(correct), preds.append(pred), scores.append(score)
            verdicts.append(("correct" if rng.random() < 0.6 else "unparsable") if boxed else "skipped")
        lengths = [rng.randint(5, 90) for _ in range(n)]
        recs.append({"id": f"{bench}-{i}", "problem": f"p{i}", "answer": "42", "prompt": f"<|user|>p{i}<|assistant|>",
                     "responses": [f"\\boxed{{{p}}}" if p else "..." for p in preds], "pred_answers": preds,
                     "acc_list": acc, "response_lengths": lengths, "finished": [True] * n,
                     "zc_logprobs": [-10.0 + s for s in scores], "self_rewarding_scores": scores})
        judged.append({"id": f"{bench}-{i}", "judge_verdicts": verdicts,
                       "judge_scores": [1.0 if v == "correct" else 0.0 for v in verdicts],
                       "judge_responses": [None] * n})
    return recs, judged


def write_fake_results(root: Path, model: str = "tiny") -> Path:
    """generations/, judge/, verifiers/, calibration/, train/, tables/, figures/ under `root`."""
    root = Path(root)
    gens, judges = [], []
    for m, method in enumerate(METHODS):
        for b, bench in enumerate(BENCHES):
            recs, judged = records(bench, method, seed=10 * m + b)
            g = root / "generations" / model / method / f"{bench}.jsonl"
            j = root / "judge" / model / method / f"{bench}.jsonl"
            write_jsonl(g, recs)
            write_jsonl(j, judged)
            gens.append(g), judges.append(j)
        # what the generate rule records: the prompt the checkpoint was evaluated with
        suffix = "\nPlease reason step by step." if method == "base" else ""
        write_json(root / "generations" / model / method / "metadata.json",
                   {"model": f"results/models/{model}/{method}", "n_samples": {b: n for b, (_, n) in BENCHES.items()},
                    "prompt": {"eval_suffix": suffix, "dataset_prompts": [], "train_suffix": " Box it.",
                               "example": f"<|user|>p0{suffix}<|assistant|>"}})
    cal = root / "calibration" / f"{model}.json"
    write_json(cal, {"model": "results/models/tiny/base", "token": "<z>", "token_id": 7, "n": 10, "n_sampled": 12,
                     "c_ref_mean": -10.0, "c_ref_std": 1.0, "min": -12.0, "max": -8.0})
    curves = {}
    for method, f1 in (("grpo", 0.0), ("laser", 0.7)):
        df = pd.DataFrame({"step": [1, 2, 3], "reward_mean": [0.3, 0.4, 0.5],
                           "sr_mse": [float("nan")] * 3 if method == "grpo" else [0.5, 0.3, 0.2],
                           "sv_f1": [0.0, f1 / 2, f1]})
        path = root / "train" / model / method / "metrics.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(path, index=False)
        curves[(model, method)] = df
    verifiers = []  # an external verifier that judges LaSeR's solutions, noisily
    for g in gens:
        if g.parts[-2] != "laser":
            verifiers.append(None)
            continue
        rng = random.Random(g.stem)
        rows = [{"id": r["id"], "verifier_scores": [round(min(max((0.7 if a else 0.3) + rng.gauss(0, 0.2), 0), 1), 4)
                                                    if p is not None else 0.0
                                                    for a, p in zip(r["acc_list"], r["pred_answers"])]}
                for r in read_jsonl(g)]
        v = root / "verifiers" / "orm" / model / "laser" / g.name
        write_jsonl(v, rows)
        verifiers.append({"orm": v})
    runs = [load_run(g, j, v) for g, j, v in zip(gens, judges, verifiers)]
    tables = all_tables(runs, [cal], n_subsets=8)
    tables["prompts"] = prompts_table(sorted((root / "generations").glob("*/*/metadata.json")))
    for name, df in tables.items():
        write_table(df, root / "tables" / f"{name}.csv")
    all_figures(runs, tables["scaling"], tables["reliability"], curves, root / "figures")
    return root
