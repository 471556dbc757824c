"""LaSeR learns to self-verify, GRPO does not: from the same warm checkpoint, seed and data, a short
LaSeR run makes r_s rank held-out solutions its reward calls correct above incorrect ones (AUROC
up), and a GRPO run neither raises that AUROC nor widens the r_s gap between the two classes.
Nothing else in the suite would notice if L_sr stopped reaching the weights (a detached r_s,
alpha lost on the way, z_c read at the wrong position).

The reward is a stub the tiny model can perceive at the EOS position ("correct" = the solution
contains the digit 3), so both classes occur without a model that can do arithmetic; the held-out
solutions are sampled once from the warm checkpoint and scored by plain forwards of each
trained model (not by the trainer's own code).

The same experiment over several seeds: benchmarks/learning_margins.py (it imports `experiment`).
"""

import copy
from pathlib import Path

import pytest
import torch

from conftest import ROOT
from laser import data, tiny
from laser.config import load
from laser.metrics import auroc

MARK = "3"
SUFFIX = " Put the answer in \\boxed{}."
# The experiment's knobs (benchmarks/learning_margins.py overrides them with --set key=value).
# c_ref -10.5 puts the warm model's r_s near 0.5, between the targets, so L_sr's first steps
# need no large shift of log pi(z_c) (at -8 that shift, with alpha 10, left the policy unable to
# stop); alpha 10 lets L_sr outweigh the policy loss at lr 1e-3; 48 x 8 held-out samples
# (about 320 finished) keep the AUROC's standard error near 0.04 (issue #18).
SETTING = {"steps": 32, "prompts_per_step": 4, "num_generations": 8, "max_completion_length": 48,
           "learning_rate": 1e-3, "alpha": 10.0, "beta_v": 0.25, "c_ref": -10.5,
           "train_problems": 200, "held_problems": 48, "held_samples": 8}


def _reward(completions, completion_ids, **_):
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return [float(MARK in t) for t in texts]


@pytest.fixture(autouse=True)
def _no_report(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")


def make_setting(seed: int = 0, **overrides):
    """(config, training records, held-out records, setting); seed 0: training data seed 1,
    held-out seed 2, trainer seed 0."""
    s = {**SETTING, **overrides}
    config = load(ROOT / "config" / "config.yaml")
    config["seed"] = seed  # the trainer's seed (TRL's set_seed, sampling, data order)
    config["training"].update(max_steps=s["steps"], prompts_per_step=s["prompts_per_step"],
                              num_generations=s["num_generations"], max_completion_length=s["max_completion_length"],
                              learning_rate=s["learning_rate"], save_steps=10**6)
    config["laser"].update(warmup_reasoning_steps=0, warmup_sr_steps=s["steps"] - 1, alpha=s["alpha"],
                           beta_v=s["beta_v"], c_ref={"source": "constant", "value": s["c_ref"]})
    tiers = ["easy", "medium"]
    train = data.prepare({"source": "synthetic", "tiers": tiers, "n_problems": s["train_problems"]}, name="train",
                         seed=2 * seed + 1, suffix=SUFFIX)
    held_out = data.prepare({"source": "synthetic", "tiers": tiers, "n_problems": s["held_problems"]}, name="held",
                            seed=2 * seed + 2, suffix=SUFFIX)
    return config, train, held_out, s


def sample_held_out(warm, held_out, n: int, seed: int = 0):
    """(prompt ids, response ids, label) of the finished ones of n samples per held-out problem
    from the warm model."""
    from laser.generation import generate, load_tokenizer
    from laser.prompts import render_prompts

    cfg = {"backend": "transformers", "temperature": 1.0, "top_p": 1.0, "max_tokens": 48, "seed": seed,
           "dtype": "float32", "batch_size": 32, "tensor_parallel_size": 1}
    tok = load_tokenizer(str(warm))
    out = generate(str(warm), {"held": (held_out, n)}, cfg, tokenizer=tok)["held"]
    _, prompt_ids = render_prompts(tok, out)
    return [(p, ids, float(MARK in text)) for rec, p in zip(out, prompt_ids)
            for ids, text, fin in zip(rec["response_token_ids"], rec["responses"], rec["finished"]) if fin]


def _train(warm, config, records, method, run_dir):
    """The one place that calls the trainer: a trained model of `method` ('grpo' or 'laser')."""
    from laser.jobs import train as train_job
    from laser.train import build_trainer

    cfg = copy.deepcopy(config)
    cfg["methods"] = {"grpo": {"laser": False}, "laser": {}}
    trainer = build_trainer(train_job(cfg, "tiny", method), base_dir=str(warm), run_dir=str(Path(run_dir) / method),
                            train_records=records, calibration=None)
    trainer.reward_funcs = [_reward]
    trainer.train()
    return trainer.model.eval()


def _scores(model, rows, zc_id, eos_id, beta_v, c_ref):
    """r_s of each held-out solution, by plain forwards."""
    scores = []
    with torch.no_grad():
        for prompt, resp, _ in rows:
            seq = torch.tensor([prompt + resp + [eos_id, zc_id]])
            logp = torch.log_softmax(model(input_ids=seq).logits[0, -2].float(), dim=-1)[zc_id].item()
            scores.append(beta_v * (logp - c_ref))
    return scores


def _gap(scores, labels):
    """Mean r_s of 'correct' minus 'incorrect' solutions, and AUROC."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    return sum(pos) / len(pos) - sum(neg) / len(neg), float(auroc(scores, labels))


def experiment(warm, run_dir, seed: int = 0, **overrides):
    """{'base' | 'grpo' | 'laser': (r_s gap, AUROC)} on the held-out solutions, and their labels."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config, train, held_out, s = make_setting(seed, **overrides)
    rows = sample_held_out(warm, held_out, s["held_samples"], seed=seed)
    labels = [r[2] for r in rows]
    assert 0.2 < sum(labels) / len(labels) < 0.8, "the stub reward must split the held-out solutions"
    tok = AutoTokenizer.from_pretrained(warm)
    zc_id, eos_id = tok.convert_tokens_to_ids(tiny.ZC), tok.eos_token_id
    models = {"base": lambda: AutoModelForCausalLM.from_pretrained(warm).eval()}
    for method in ("grpo", "laser"):
        models[method] = lambda method=method: _train(warm, config, train, method, run_dir)
    gaps = {}
    for name, build in models.items():
        torch.manual_seed(seed)
        gaps[name] = _gap(_scores(build(), rows, zc_id, eos_id, s["beta_v"], s["c_ref"]), labels)
    return gaps, labels


@pytest.mark.slow
def test_laser_raises_the_r_s_auroc_on_held_out_solutions_and_grpo_does_not(warm_checkpoint, tmp_path):
    gaps, labels = experiment(warm_checkpoint, tmp_path, seed=0)
    print(len(labels), {k: (round(g, 3), round(a, 3)) for k, (g, a) in gaps.items()})
    (g0, a0), (g_grpo, a_grpo), (_, a_laser) = gaps["base"], gaps["grpo"], gaps["laser"]
    # benchmarks/learning_margins.py, seeds 0-7 (each its own warm checkpoint, data, sampling and
    # trainer seed) on the 2-core machine, mean [min, max]; about 320 rows, AUROC SE ~0.04:
    #   AUROC  base 0.561 [0.492, 0.676]  GRPO 0.444 [0.358, 0.539]  LaSeR 0.753 [0.701, 0.819]
    #   LaSeR - base +0.192 [+0.093, +0.233] (2.4-5.7 SE)   GRPO - base -0.117 [-0.251, -0.006]
    #   LaSeR - GRPO +0.309 [+0.214, +0.384]
    #   gap change GRPO -0.024 [-0.069, +0.003]   LaSeR +0.131 [+0.006, +0.241]
    # (seed 0, this test: AUROC 0.540 -> GRPO 0.405, LaSeR 0.728; gap 0.015 -> -0.004, 0.230).
    # LaSeR's gap (a difference of means) grew by as little as 0.006 on one seed while its AUROC
    # rose by 0.23, so the gap is not asserted for LaSeR; GRPO's is: it never widened.
    assert a_laser > a0 + 0.05 and a_laser > 0.65, gaps
    assert a_laser > a_grpo + 0.15, gaps
    assert a_grpo < a0 + 0.05 and g_grpo < g0 + 0.03, gaps
