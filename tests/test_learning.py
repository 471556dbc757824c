"""LaSeR learns to self-verify, GRPO does not: from the same warm checkpoint, seed and data, a short
LaSeR run widens the gap between r_s of solutions its reward calls correct and incorrect on
held-out problems, and a GRPO run leaves it where it was. Nothing else in the suite would notice
if L_sr stopped reaching the weights (a detached r_s, alpha lost on the way, z_c read at the
wrong position).

The reward is a stub the tiny model can perceive at the EOS position ("correct" = the solution
contains the digit 3), so both classes occur without a model that can do arithmetic; the held-out
solutions are sampled once from the warm checkpoint and scored by plain forwards of each
trained model (not by the trainer's own code).
"""

import copy

import pytest
import torch

from conftest import ROOT
from laser import data, tiny
from laser.config import load
from laser.metrics import auroc

STEPS = 16
MARK = "3"


def _reward(completions, completion_ids, **_):
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return [float(MARK in t) for t in texts]


@pytest.fixture(autouse=True)
def _no_report(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")


@pytest.fixture(scope="module")
def setting(warm_checkpoint):
    config = load(ROOT / "config" / "config.yaml")
    config["training"].update(max_steps=STEPS, prompts_per_step=4, num_generations=8, max_completion_length=48,
                              learning_rate=2e-3, save_steps=10**6)
    config["laser"].update(warmup_reasoning_steps=0, warmup_sr_steps=STEPS - 1, alpha=1.0, beta_v=0.25,
                           c_ref={"source": "constant", "value": -8.0})
    train = data.prepare({"source": "synthetic", "tiers": ["easy", "medium"], "n_problems": 200}, name="train",
                         seed=1, suffix=" Put the answer in \\boxed{}.")
    held_out = data.prepare({"source": "synthetic", "tiers": ["easy", "medium"], "n_problems": 24}, name="held",
                            seed=2, suffix=" Put the answer in \\boxed{}.")
    return config, train, held_out


@pytest.fixture(scope="module")
def held_out_solutions(warm_checkpoint, setting):
    """(prompt ids, response ids, label) of 4 finished samples per held-out problem from the warm model."""
    from laser.generation import generate, load_tokenizer
    from laser.prompts import render_prompts

    _, _, held_out = setting
    cfg = {"backend": "transformers", "temperature": 1.0, "top_p": 1.0, "max_tokens": 48, "seed": 0,
           "dtype": "float32", "batch_size": 32, "tensor_parallel_size": 1}
    tok = load_tokenizer(str(warm_checkpoint))
    out = generate(str(warm_checkpoint), {"held": (held_out, 4)}, cfg, tokenizer=tok)["held"]
    _, prompt_ids = render_prompts(tok, out)
    rows = [(p, ids, float(MARK in text)) for rec, p in zip(out, prompt_ids)
            for ids, text, fin in zip(rec["response_token_ids"], rec["responses"], rec["finished"]) if fin]
    labels = [r[2] for r in rows]
    assert 0.2 < sum(labels) / len(labels) < 0.8, "the stub reward must split the held-out solutions"
    return rows


def _train(warm, config, records, method, tmp_path):
    from laser.train import build_trainer

    cfg = copy.deepcopy(config)
    cfg["methods"] = {"grpo": {"laser": False}, "laser": {}}
    trainer = build_trainer(cfg, model="tiny", method=method, base_dir=str(warm), run_dir=str(tmp_path / method),
                            train_records=records, calibration=None)
    trainer.reward_funcs = [_reward]
    trainer.train()
    return trainer.model.eval()


def _gap(model, rows, zc_id, eos_id, beta_v, c_ref):
    """Mean r_s of 'correct' minus 'incorrect' held-out solutions, and AUROC, by plain forwards."""
    scores = []
    with torch.no_grad():
        for prompt, resp, _ in rows:
            seq = torch.tensor([prompt + resp + [eos_id, zc_id]])
            logp = torch.log_softmax(model(input_ids=seq).logits[0, -2].float(), dim=-1)[zc_id].item()
            scores.append(beta_v * (logp - c_ref))
    labels = [r[2] for r in rows]
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    return sum(pos) / len(pos) - sum(neg) / len(neg), auroc(scores, labels)


@pytest.mark.slow
def test_laser_widens_the_r_s_gap_on_held_out_solutions_and_grpo_does_not(warm_checkpoint, setting,
                                                                         held_out_solutions, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config, train, _ = setting
    tok = AutoTokenizer.from_pretrained(warm_checkpoint)
    zc_id, eos_id = tok.convert_tokens_to_ids(tiny.ZC), tok.eos_token_id
    beta_v, c_ref = config["laser"]["beta_v"], config["laser"]["c_ref"]["value"]
    base = AutoModelForCausalLM.from_pretrained(warm_checkpoint).eval()
    gaps = {"base": _gap(base, held_out_solutions, zc_id, eos_id, beta_v, c_ref)}
    for method in ("grpo", "laser"):
        torch.manual_seed(0)
        gaps[method] = _gap(_train(warm_checkpoint, config, train, method, tmp_path), held_out_solutions,
                            zc_id, eos_id, beta_v, c_ref)
    print({k: (round(g, 3), round(a, 3)) for k, (g, a) in gaps.items()})
    (g0, a0), (g_grpo, a_grpo), (g_laser, a_laser) = gaps["base"], gaps["grpo"], gaps["laser"]
    # measured on the 2-core machine: gap -0.050 -> GRPO -0.004, LaSeR +0.070; AUROC 0.42 -> 0.44, 0.61
    assert g_laser - g0 > 0.06 and g_laser - g0 > 2 * abs(g_grpo - g0), gaps
    assert a_laser > a0 + 0.1 and a_grpo < a0 + 0.07 and a_laser > a_grpo + 0.1, gaps
