"""How LaserTrainer wires LaSeR into TRL's GRPOTrainer, checked against computations made here
independently of the code under test (plain transformers forwards of ``prompt + completion + z_c``,
the paper's formulas written out):

- stage 2: the loss and gradient the trainer backpropagates = TRL's own policy loss + alpha * the
  class-balanced L_sr;
- the step gradient does not depend on how gradient accumulation splits the step, on the
  "extra forward" path and on the "reused forward" path (z_c read from TRL's old-log-prob forward);
- stage 3: the advantages TRL trains on = (1 - tau) A_v + tau A_s with the std fallback;
- c_ref calibration averages finished solutions only;
- the SFT ablation trains the class-weighted cross-entropy of z_c / z_c + 1;
- benchmarks/gpu_smoke.py's one-token vs re-prefill check.

Trainers are built by `laser.train.build_trainer` from the warm tiny checkpoint; only the reward
function is replaced by a deterministic one (even completion length = correct), so both classes
occur and the test knows r_v without the grader.
"""

import copy
import importlib.util
import math
import statistics
from dataclasses import dataclass

import pytest
import torch

from conftest import ROOT
from laser.jobs import train as train_job
from laser import data, tiny
from laser.config import load

TEMPERATURE = 0.7  # not 1: the z_c log-prob must carry the same temperature as TRL's log-probs
ROWS = 8  # 2 prompts x 4 generations


@pytest.fixture(autouse=True)
def _no_report(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")


@pytest.fixture(scope="module")
def base_config():
    config = load(ROOT / "config" / "config.yaml")
    config["training"].update(max_steps=3, prompts_per_step=2, num_generations=4, max_completion_length=32,
                              learning_rate=1e-3, save_steps=1, temperature=TEMPERATURE)
    # stage 2 at the first step (stage 3 tests set warmup_sr_steps=0)
    config["laser"].update(warmup_reasoning_steps=0, warmup_sr_steps=1, alpha=1.0, beta_v=0.1,
                           c_ref={"source": "constant", "value": -5.0})
    return config


@pytest.fixture(scope="module")
def records():
    return data.prepare({"source": "synthetic", "tiers": ["easy"], "n_problems": 16}, name="train", seed=0,
                        suffix=" Put the answer in \\boxed{}.")


def _parity_reward(completions, completion_ids, **_):
    """r_v = 1 for completions (EOS included) of even length: deterministic, both classes occur."""
    return [float(len(ids) % 2 == 0) for ids in completion_ids]


def _build(warm, config, records, tmp_path, *, training=None, laser=None, method=None):
    """A LaserTrainer exactly as laser.train builds it, with the parity reward. `method`: keys of
    an ablation method (None: the `laser` method)."""
    from laser.train import build_trainer

    cfg = copy.deepcopy(config)
    cfg["training"].update(training or {})
    cfg["laser"].update(laser or {})
    name = "laser"
    if method is not None:
        cfg["methods"]["ablation"], name = method, "ablation"
    trainer = build_trainer(train_job(cfg, "tiny", name), base_dir=str(warm), run_dir=str(tmp_path / "run"),
                            train_records=records, calibration=None)
    trainer.reward_funcs = [_parity_reward]
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = trainer.args.gradient_accumulation_steps  # set by Trainer's loop
    return trainer


def _raw_batch(records, trainer):
    """The generation batch as TRL's RepeatSampler yields it: each prompt num_generations times in a row."""
    g = trainer.num_generations
    n = trainer.args.per_device_train_batch_size * trainer.args.steps_per_generation // g
    return [{"prompt": r["messages"], "answer": r["answer"]} for r in records[:n] for _ in range(g)]


def _generate(trainer, records, seed):
    torch.manual_seed(seed)
    return trainer._generate_and_score_completions(_raw_batch(records, trainer))


@dataclass
class Row:
    prompt: torch.Tensor  # unpadded prompt ids
    completion: torch.Tensor  # unpadded completion ids, EOS included when finished
    finished: bool
    r_v: float


def _rows(out, eos_id):
    """Each row unpadded, read from the masks alone (not from the code under test)."""
    rows = []
    for i in range(out["prompt_ids"].size(0)):
        prompt = out["prompt_ids"][i][out["prompt_mask"][i].bool()]
        n = int(out["completion_mask"][i].sum())
        completion = out["completion_ids"][i, :n]
        rows.append(Row(prompt, completion, n > 0 and int(completion[-1]) == eos_id, float(n % 2 == 0)))
    return rows


def _plain_logp(model, row, token):
    """log pi(token | x, y, EOS) by a plain forward of the unpadded ``prompt + completion + token``,
    with the sampling temperature (keeps the autograd graph)."""
    seq = torch.cat([row.prompt, row.completion, torch.tensor([token])]).unsqueeze(0)
    logits = model(input_ids=seq).logits[0, -2].float() / TEMPERATURE
    return torch.log_softmax(logits, dim=-1)[token]


def _class_balanced(per_sample, r_v):
    """(1 / (N_c + N_i)) sum w * loss, w_c = N / (2 N_c), w_i = N / (2 N_i), over finished solutions."""
    n, n_c = len(r_v), sum(r_v)
    n_i = n - n_c
    w = [n / (2 * n_c) if r else n / (2 * n_i) for r in r_v]
    return sum(wk * lk for wk, lk in zip(w, per_sample)) / n


def _grads(model):
    return {k: p.grad.detach().clone() for k, p in model.named_parameters() if p.grad is not None}


def _assert_grads_close(actual, expected, what, rtol=1e-4):
    """Per tensor: |a - e| <= rtol * |e| + rtol * max|e over all tensors| (float32 sums in another order)."""
    assert actual.keys() == expected.keys(), what
    scale = max(g.abs().max().item() for g in expected.values())
    for k in expected:
        assert torch.allclose(actual[k], expected[k], rtol=rtol, atol=rtol * scale), (
            f"{what}: {k} differs by {(actual[k] - expected[k]).abs().max().item():.3g} (grad scale {scale:.3g})")


def _grad_distance(a, b):
    return math.sqrt(sum(((a[k] - b[k]) ** 2).sum().item() for k in a))


def _eos_zc(warm):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(warm)
    return tok.eos_token_id, tok.convert_tokens_to_ids(tiny.ZC)


@pytest.fixture(scope="module")
def probe(warm_checkpoint, base_config, records, tmp_path_factory):
    """A sampling seed whose 8-row batch holds truncated, finished-correct and finished-incorrect
    solutions, in unequal numbers (else the class-balanced weights are all 1), and a c_ref that
    puts r_s of the finished ones around 0.5 (so SWA has signal)."""
    trainer = _build(warm_checkpoint, base_config, records, tmp_path_factory.mktemp("probe"))
    eos, zc = _eos_zc(warm_checkpoint)
    for seed in range(20):
        rows = _rows(_generate(trainer, records, seed), eos)
        fin = [r for r in rows if r.finished]
        n_c = sum(r.r_v for r in fin)
        if 3 <= len(fin) < len(rows) and 0 < n_c < len(fin) and 2 * n_c != len(fin):
            break
    else:
        pytest.fail("no seed in 0..19 gives truncated and unequal numbers of correct and incorrect finished solutions")
    with torch.no_grad():
        logps = [_plain_logp(trainer.model, r, zc).item() for r in fin]
    beta_v = base_config["laser"]["beta_v"]
    return {"seed": seed, "c_ref": statistics.mean(logps) - 0.5 / beta_v}


# ---------------------------------------------------------------- 1. stage-2 loss

@pytest.mark.slow
def test_stage2_loss_is_trl_policy_loss_plus_alpha_class_balanced_lsr(warm_checkpoint, base_config, records,
                                                                      probe, tmp_path):
    """compute_loss = GRPOTrainer._compute_loss (LaSeR off) + alpha * L_sr, L_sr from plain forwards
    of prompt + completion(EOS) + z_c: the value and its gradient (a detached z_c log-prob would
    give the right value and no L_sr gradient)."""
    from trl import GRPOTrainer

    alpha, beta_v, c_ref = 0.5, 0.1, probe["c_ref"]
    trainer = _build(warm_checkpoint, base_config, records, tmp_path,
                     laser={"alpha": alpha, "beta_v": beta_v, "c_ref": {"source": "constant", "value": c_ref}})
    assert trainer._stage() == 2
    eos, zc = _eos_zc(warm_checkpoint)
    out = _generate(trainer, records, probe["seed"])
    rows = _rows(out, eos)
    fin = [r for r in rows if r.finished]
    n_c = sum(r.r_v for r in fin)
    assert any(not r.finished for r in rows) and 0 < n_c < len(fin) and 2 * n_c != len(fin)
    assert out["sr_norm"].item() == len(fin)
    model = trainer.model

    model.zero_grad(set_to_none=True)
    GRPOTrainer._compute_loss(trainer, model, out).backward()
    g_policy = _grads(model)

    model.zero_grad(set_to_none=True)
    loss = trainer.compute_loss(model, out)
    loss.backward()
    g_laser = _grads(model)

    model.zero_grad(set_to_none=True)
    policy = GRPOTrainer._compute_loss(trainer, model, out)
    r_s = [beta_v * (_plain_logp(model, r, zc) - c_ref) for r in fin]
    l_sr = _class_balanced([(s - r.r_v) ** 2 for s, r in zip(r_s, fin)], [r.r_v for r in fin])
    expected = policy + alpha * l_sr
    expected.backward()
    g_expected = _grads(model)

    assert alpha * l_sr.item() > 1e-2 * abs(policy.item()) + 1e-3, "L_sr too small to be checked"
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-7)
    _assert_grads_close(g_laser, g_expected, "stage-2 gradient")
    # the L_sr part of the gradient is far above the tolerance: the comparison can fail
    assert _grad_distance(g_laser, g_policy) > 100 * 1e-4 * math.sqrt(sum(g.pow(2).sum() for g in g_policy.values()))


# ---------------------------------------------------------------- 2. gradient accumulation

def _step_gradient(trainer, records, seed, ga):
    """One optimizer step's gradient, accumulated as Trainer's loop does: `training_step` per
    micro-batch on the same generation batch (TRL generates on the first, then serves slices),
    backward of each (TRL's loss is already scaled for accumulation), grads summed in .grad."""
    model = trainer.model
    model.zero_grad(set_to_none=True)
    trainer.current_gradient_accumulation_steps = ga
    raw = _raw_batch(records, trainer)
    torch.manual_seed(seed)
    for _ in range(ga):
        trainer.training_step(model, raw, None)
    rows = torch.cat([b["completion_ids"] for b in trainer._buffered_inputs])
    return _grads(model), rows


@pytest.mark.slow
def test_step_gradient_does_not_depend_on_accumulation_split(warm_checkpoint, base_config, records, probe,
                                                             tmp_path):
    """The same 8 rows as 1, 2 or 4 micro-batches give the same step gradient (rtol 1e-4), in
    stage 3 (policy loss + L_sr + SWA advantages), on both ways r_s reaches SWA:
    - extra forward: steps_per_generation == GA, one no-grad `_zc_forward` at generation;
    - reused forward: num_iterations = 2 makes TRL compute old log-probs (GA % (spg * iters) != 0),
      and z_c is read from that forward.
    Both paths must also give the same gradient (the first iteration's old log-probs equal the
    current ones), so they read the same r_s."""
    laser = {"warmup_sr_steps": 0, "c_ref": {"source": "constant", "value": probe["c_ref"]}}
    grads, batches = {}, {}
    for path in ("extra_forward", "reused_forward"):
        for ga in (1, 2, 4):
            trainer = _build(warm_checkpoint, base_config, records, tmp_path,
                             training={"gradient_accumulation_steps": ga}, laser=laser)
            assert trainer._stage() == 3 and trainer.args.per_device_train_batch_size * ga == ROWS
            if path == "reused_forward":
                trainer.num_iterations = trainer.args.num_iterations = 2
            calls = []
            forward = trainer._zc_forward
            trainer._zc_forward = lambda *a, **k: calls.append(1) or forward(*a, **k)
            grads[path, ga], batches[path, ga] = _step_gradient(trainer, records, probe["seed"], ga)
            reused = "old_per_token_logps" in trainer._buffered_inputs[0]
            assert (reused, len(calls)) == ((True, 0) if path == "reused_forward" else (False, 1)), (path, ga)
            m = trainer._metrics["train"]
            assert len(m["sr_loss"]) == ga and sum(m["sr_loss"]) > 0
            assert m["swa_fallback_frac"][-1] < 1.0, "SWA fell back everywhere: choose another c_ref"
    reference = grads["extra_forward", 1]
    for key, g in grads.items():
        assert torch.equal(batches[key], batches["extra_forward", 1]), f"{key}: other completions sampled"
        _assert_grads_close(g, reference, f"{key} vs extra_forward GA=1")

    # the L_sr + SWA part is far above the tolerance: without LaSeR the same step differs
    trainer = _build(warm_checkpoint, base_config, records, tmp_path, method={"laser": False})
    plain, _ = _step_gradient(trainer, records, probe["seed"], 1)
    scale = math.sqrt(sum(g.pow(2).sum() for g in reference.values()))
    assert _grad_distance(reference, plain) > 100 * 1e-4 * scale


# ---------------------------------------------------------------- 3. SWA advantages

@pytest.mark.slow
def test_stage3_advantages_mix_verifier_and_self_rewarding(warm_checkpoint, base_config, records, probe, tmp_path):
    """out["advantages"] = (1 - tau) A_v + tau A_s, recomputed here: A_v = TRL's group-normalised
    verifier advantages (sample std, + 1e-4), A_s = group-normalised clamp(r_s, 0, 1) with
    truncated solutions at 0, r_s from plain forwards; groups with std(clamped r_s) <= T use A_v.
    T is put between two groups' stds, so both branches occur."""
    eos, zc = _eos_zc(warm_checkpoint)
    tau, beta_v, c_ref = 0.3, 0.1, probe["c_ref"]  # tau != 1/2: tau and 1 - tau not interchangeable
    training = {"prompts_per_step": 4}  # 16 rows, 4 groups
    laser = {"warmup_sr_steps": 0, "tau": tau, "beta_v": beta_v, "c_ref": {"source": "constant", "value": c_ref}}
    trainer = _build(warm_checkpoint, base_config, records, tmp_path, training=training, laser=laser)
    rows = _rows(_generate(trainer, records, probe["seed"]), eos)
    with torch.no_grad():
        r_s = torch.tensor([beta_v * (_plain_logp(trainer.model, r, zc).item() - c_ref) if r.finished else 0.0
                            for r in rows])
    g = trainer.num_generations
    clamped = (r_s.clamp(0, 1) * torch.tensor([r.finished for r in rows])).view(-1, g)
    std = clamped.std(dim=1)
    gaps = sorted(std.tolist())
    i = max(range(len(gaps) - 1), key=lambda k: gaps[k + 1] - gaps[k])
    assert gaps[i + 1] - gaps[i] > 1e-3, f"group stds too close to separate: {gaps}"
    threshold = (gaps[i] + gaps[i + 1]) / 2

    trainer = _build(warm_checkpoint, base_config, records, tmp_path, training=training,
                     laser={**laser, "swa_std_threshold": threshold})
    assert trainer._stage() == 3
    out = _generate(trainer, records, probe["seed"])
    assert [r.completion.tolist() for r in _rows(out, eos)] == [r.completion.tolist() for r in rows]

    r_v = torch.tensor([r.r_v for r in rows]).view(-1, g)
    a_v = ((r_v - r_v.mean(1, keepdim=True)) / (r_v.std(1, keepdim=True) + 1e-4)).view(-1)
    a_s = ((clamped - clamped.mean(1, keepdim=True)) / clamped.std(1, keepdim=True)).view(-1)
    fallback = (std <= threshold).repeat_interleave(g)
    assert fallback.any() and not fallback.all()
    expected = (1 - tau) * a_v + tau * torch.where(fallback, a_v, a_s)
    assert torch.allclose(out["advantages"], expected, atol=1e-4), (out["advantages"], expected)
    assert (expected - a_v).abs().max() > 0.1, "SWA changes nothing here: the check could not fail"


# ---------------------------------------------------------------- 4. c_ref calibration

def test_calibrate_averages_finished_solutions_only(monkeypatch):
    """c_ref_mean / c_ref_std over finished solutions only; the std is the sample std (n - 1),
    what the code computes (the docstring says only 'its std')."""
    import laser.generation as generation
    from laser.calibrate import calibrate

    tok = tiny.build_tokenizer()
    zc = tok.convert_tokens_to_ids(tiny.ZC)
    samples = [(-20.0, True), (-3.0, False), (-22.5, True), (-21.0, True), (-90.0, False), (-26.5, True)]
    seen = {}

    def fake_generate(model_dir, jobs, cfg, *, zc_id, route, tokenizer):
        problems, n = jobs["calibration"]
        seen.update(zc_id=zc_id, route=route, n=n, max_tokens=cfg["max_tokens"], problems=len(problems))
        return {"calibration": [{"zc_logprobs": [lp], "finished": [f]} for (lp, f), _ in zip(samples, problems)]}

    monkeypatch.setattr(generation, "load_tokenizer", lambda _: tok)
    monkeypatch.setattr(generation, "generate", fake_generate)
    train = [{"id": i} for i in range(10)]
    cal = calibrate("m", train, n=6, z_c=tiny.ZC, gen_cfg={"max_tokens": 999}, seed=0, max_tokens=40)
    assert seen == {"zc_id": zc, "route": "onetoken", "n": 1, "max_tokens": 40, "problems": 6}
    finished = [lp for lp, f in samples if f]
    assert cal["n"] == 4 and cal["n_sampled"] == 6 and cal["token_id"] == zc
    assert cal["c_ref_mean"] == pytest.approx(statistics.mean(finished), abs=1e-12)
    assert cal["c_ref_std"] == pytest.approx(statistics.stdev(finished), abs=1e-12)
    assert (cal["min"], cal["max"]) == (min(finished), max(finished))

    samples[:] = [(-5.0, False)] * 6
    with pytest.raises(RuntimeError, match="none of 6 sampled solutions finished"):
        calibrate("m", train, n=6, z_c=tiny.ZC, gen_cfg={}, seed=0, max_tokens=40)


@pytest.mark.slow
def test_calibrate_on_a_model_matches_plain_forwards(warm_checkpoint, base_config, records, monkeypatch):
    """A real calibration (transformers backend, z_c read on the KV cache): the mean and sample std
    of log pi_ref(z_c | x, y, EOS) by plain forwards over the solutions that stopped before
    max_tokens; the truncated ones (length == max_tokens) are left out."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import laser.generation as generation
    from laser.calibrate import calibrate

    captured = {}
    real_generate = generation.generate

    def spy(*args, **kwargs):
        captured.update(real_generate(*args, **kwargs))
        return captured

    monkeypatch.setattr(generation, "generate", spy)
    max_tokens = 24
    gen_cfg = {**base_config["generation"], "backend": "transformers", "dtype": "float32", "temperature": 1.0}
    cal = calibrate(str(warm_checkpoint), records, n=10, z_c=tiny.ZC, gen_cfg=gen_cfg, seed=0,
                    max_tokens=max_tokens)
    tok = AutoTokenizer.from_pretrained(warm_checkpoint)
    model = AutoModelForCausalLM.from_pretrained(warm_checkpoint).eval()
    eos, zc = tok.eos_token_id, tok.convert_tokens_to_ids(tiny.ZC)
    logps, truncated = [], 0
    for rec in captured["calibration"]:
        response = rec["response_token_ids"][0]
        if len(response) >= max_tokens:
            truncated += 1
            continue
        seq = tok(rec["prompt"], add_special_tokens=False).input_ids + response + [eos, zc]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([seq])).logits[0, -2]
        logps.append(torch.log_softmax(logits.float(), -1)[zc].item())
    assert truncated >= 1 and len(logps) >= 2, (truncated, len(logps))
    assert cal["n"] == len(logps) and cal["n_sampled"] == 10
    assert cal["c_ref_mean"] == pytest.approx(statistics.mean(logps), abs=1e-4)
    assert cal["c_ref_std"] == pytest.approx(statistics.stdev(logps), abs=1e-4)


# ---------------------------------------------------------------- 5. SFT ablation

@pytest.mark.slow
def test_sft_ablation_trains_class_weighted_cross_entropy(warm_checkpoint, base_config, records, probe, tmp_path):
    """loss: sft -> L_sr = class-weighted cross-entropy of z_c after correct and z_c + 1 after
    incorrect finished solutions (plain forwards): value and gradient; and on the same batch its
    gradient differs from the MSE method's."""
    from trl import GRPOTrainer

    alpha = 0.5
    laser = {"alpha": alpha, "c_ref": {"source": "constant", "value": probe["c_ref"]}}
    eos, zc = _eos_zc(warm_checkpoint)
    sft = _build(warm_checkpoint, base_config, records, tmp_path, laser=laser, method={"loss": "sft"})
    assert sft.args.sr_loss_type == "sft" and sft._stage() == 2
    out = _generate(sft, records, probe["seed"])
    fin = [r for r in _rows(out, eos) if r.finished]
    n_c = sum(r.r_v for r in fin)
    assert 0 < n_c < len(fin) and 2 * n_c != len(fin)  # unequal classes: the weights are not all 1
    model = sft.model

    model.zero_grad(set_to_none=True)
    loss = sft.compute_loss(model, out)
    loss.backward()
    g_sft = _grads(model)

    model.zero_grad(set_to_none=True)
    policy = GRPOTrainer._compute_loss(sft, model, out)
    ce = [-_plain_logp(model, r, zc if r.r_v == 1.0 else zc + 1) for r in fin]
    expected = policy + alpha * _class_balanced(ce, [r.r_v for r in fin])
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-7)
    _assert_grads_close(g_sft, _grads(model), "SFT gradient")

    mse = _build(warm_checkpoint, base_config, records, tmp_path, laser=laser)
    assert mse.args.sr_loss_type == "mse"
    mse.model.zero_grad(set_to_none=True)
    mse.compute_loss(mse.model, out).backward()
    g_mse = _grads(mse.model)
    scale = math.sqrt(sum(g.pow(2).sum() for g in g_mse.values()))
    assert _grad_distance(g_sft, g_mse) > 0.05 * scale


@pytest.mark.slow
def test_paper_sft_ablation_settings_reach_the_loss(warm_checkpoint, base_config, records, probe, tmp_path):
    """config/paper.yaml's laser_sft overrides the coefficient and the class balance (the official
    code's SFT-loss settings); the loss is then TRL's policy loss + that alpha * the plain mean
    cross-entropy over finished solutions, not the class-balanced one the `laser` section asks for."""
    from trl import GRPOTrainer

    from laser.config import run_settings

    paper = load(ROOT / "config" / "paper.yaml")
    overrides = {k: paper["methods"]["laser_sft"][k] for k in ("loss", "alpha", "class_balanced")}
    alpha = run_settings(paper, "qwen2.5-7b", "laser_sft")["alpha"]
    laser = {"alpha": 0.3, "class_balanced": True, "c_ref": {"source": "constant", "value": probe["c_ref"]}}
    sft = _build(warm_checkpoint, base_config, records, tmp_path, laser=laser, method=overrides)
    assert (sft.args.sr_loss_type, sft.args.sr_coef, sft.args.class_balanced) == ("sft", alpha, False)
    eos, zc = _eos_zc(warm_checkpoint)
    out = _generate(sft, records, probe["seed"])
    fin = [r for r in _rows(out, eos) if r.finished]
    with torch.no_grad():
        loss = sft.compute_loss(sft.model, out).item()
        policy = GRPOTrainer._compute_loss(sft, sft.model, out).item()
        ce = [-_plain_logp(sft.model, r, zc if r.r_v == 1.0 else zc + 1).item() for r in fin]
    plain, balanced = statistics.mean(ce), _class_balanced(ce, [r.r_v for r in fin])
    assert abs(plain - balanced) > 1e-3 * abs(plain)  # unequal classes: the two weightings differ
    assert loss == pytest.approx(policy + alpha * plain, rel=1e-5, abs=1e-7)


def test_grading_settings_reach_the_training_reward(tiny_checkpoint, base_config, records, tmp_path):
    """grading.extraction and grading.format_gate are what the trainer's verifier reward applies."""
    from laser.train import build_trainer

    completions = ["so \\boxed{5}", "so \\fbox{5}", "\\boxed 5$", "\\boxed{5}, again \\boxed{5}"]
    got = {}
    for extraction, gate in (("lenient", False), ("official", False), ("official", True)):
        cfg = copy.deepcopy(base_config)
        cfg["grading"].update(extraction=extraction, format_gate=gate)
        trainer = build_trainer(train_job(cfg, "tiny", "laser"), base_dir=str(tiny_checkpoint),
                                run_dir=str(tmp_path / f"{extraction}-{gate}"), train_records=records, calibration=None)
        got[extraction, gate] = trainer.reward_funcs[0](completions=completions, answer=["5"] * 4)
    assert got == {("lenient", False): [1.0, 1.0, 1.0, 1.0], ("official", False): [1.0, 0.0, 0.0, 1.0],
                   ("official", True): [1.0, 0.0, 0.0, 0.0]}  # the gate: exactly one \boxed{


# ---------------------------------------------------------------- 6. gpu_smoke's route check

def _gpu_smoke():
    spec = importlib.util.spec_from_file_location("gpu_smoke", ROOT / "benchmarks" / "gpu_smoke.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_smoke_route_tolerance_is_a_few_ulps():
    smoke = _gpu_smoke()
    # bf16: 7 mantissa bits, ulp at |log p| in [16, 32) = 2^4 * 2^-7 = 0.125; 4 ulps
    assert smoke.route_tolerance(-23.0, "bfloat16") == pytest.approx(0.5)
    assert smoke.route_tolerance(-0.1, "bfloat16") == pytest.approx(4 * 2 ** -7)  # |log p| < 1: ulp at 1
    # float32: ulp at [8, 16) = 2^3 * 2^-23; 64 ulps
    assert smoke.route_tolerance(-9.0, "float32") == pytest.approx(64 * 2 ** -20)
    assert smoke.route_tolerance(-23.0, "auto") == smoke.route_tolerance(-23.0, "bfloat16")


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_gpu_smoke_route_check_on_cpu(warm_checkpoint, base_config, dtype):
    """The one-token and re-prefill routes agree within gpu_smoke's tolerance on CPU, and a
    difference of twice the tolerance is caught."""
    from laser.generation import generate

    smoke = _gpu_smoke()
    problems = data.prepare({"source": "synthetic", "tiers": ["easy"], "n_problems": 6}, name="b", seed=3,
                            suffix=" Put the answer in \\boxed{}.")
    cfg = {**base_config["generation"], "backend": "transformers", "dtype": dtype, "max_tokens": 24}
    zc = _eos_zc(warm_checkpoint)[1]
    runs = {route: generate(str(warm_checkpoint), {"b": (problems, 2)}, cfg, zc_id=zc, route=route)
            for route in ("onetoken", "reprefill")}
    result = smoke.compare_routes(runs["onetoken"], runs["reprefill"], dtype)
    assert result["compared"] == 12 and result["n_over_tolerance"] == 0, result
    bad = copy.deepcopy(runs["reprefill"])
    bad["b"][0]["zc_logprobs"][0] += 2 * smoke.route_tolerance(bad["b"][0]["zc_logprobs"][0], dtype)
    assert smoke.compare_routes(runs["onetoken"], bad, dtype)["n_over_tolerance"] == 1
