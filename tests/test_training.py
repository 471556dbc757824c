"""The LaSeR trainer on TRL: z_c read from the same forward as TRL's log-probs, alignment with
TRL's per-token tensors, short GRPO/LaSeR runs, resume, and bad input."""

import laser.jobs
import copy
import json

import pandas as pd
import pytest
import torch
from transformers import TrainerCallback

from conftest import ROOT
from laser import data, prompts, tiny
from laser.config import load
from laser.io import InputError


@pytest.fixture(scope="module")
def small_config():
    config = load(ROOT / "config" / "config.yaml")
    config["training"].update(max_steps=3, prompts_per_step=4, num_generations=4, max_completion_length=16,
                              learning_rate=1e-3, save_steps=1)
    config["laser"].update(warmup_reasoning_steps=1, warmup_sr_steps=1, c_ref={"source": "constant", "value": -5.0})
    return config


@pytest.fixture(scope="module")
def train_records():
    return data.prepare({"source": "synthetic", "tiers": ["easy"], "n_problems": 32}, name="train", seed=0,
                        suffix="")


class StopAfter(TrainerCallback):
    """Kills the run after `steps` optimizer steps (a job killed mid-run)."""

    def __init__(self, steps: int):
        self.steps = steps

    def on_step_end(self, args, state, control, **kw):
        if state.global_step >= self.steps:
            raise KeyboardInterrupt(f"simulated kill after step {state.global_step}")


def _trainer(tiny_checkpoint, config, train_records, tmp_path, method="laser"):
    """A LaserTrainer built exactly as laser.train builds it (no training)."""
    from laser.train import build_trainer

    return build_trainer(laser.jobs.train(config, "tiny", method), base_dir=str(tiny_checkpoint),
                         run_dir=str(tmp_path / "run"), train_records=train_records, calibration=None)


def _batch(tok, device="cpu"):
    """Two prompts (left-padded) and completions (right-padded): one finished, one truncated."""
    eos, pad = tok.eos_token_id, tok.pad_token_id
    p1 = tok("<|user|>What is 2+3?<|assistant|>", add_special_tokens=False).input_ids
    p2 = tok("<|user|>7-4?<|assistant|>", add_special_tokens=False).input_ids
    c1 = tok("2+3+0=5. \\boxed{5}", add_special_tokens=False).input_ids + [eos]
    c2 = tok("7-4-0=3. \\boxed", add_special_tokens=False).input_ids  # no EOS: truncated
    pw, cw = max(len(p1), len(p2)), max(len(c1), len(c2))
    prompt_ids = torch.tensor([[pad] * (pw - len(p)) + p for p in (p1, p2)])
    prompt_mask = torch.tensor([[0] * (pw - len(p)) + [1] * len(p) for p in (p1, p2)])
    completion_ids = torch.tensor([c + [pad] * (cw - len(c)) for c in (c1, c2)])
    completion_mask = torch.tensor([[1] * len(c) + [0] * (cw - len(c)) for c in (c1, c2)])
    return {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "completion_ids": completion_ids,
            "completion_mask": completion_mask}, (p1, c1)


def test_zc_logprob_matches_plain_transformers_forward(tiny_checkpoint, small_config, train_records, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    trainer = _trainer(tiny_checkpoint, small_config, train_records, tmp_path)
    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    inputs, (p1, c1) = _batch(tok)
    logp, finished = trainer._zc_forward(trainer.model, inputs)
    assert finished.tolist() == [True, False]
    zc = tok.convert_tokens_to_ids(tiny.ZC)
    seq = torch.tensor([p1 + c1 + [zc]])  # prompt, completion, EOS, z_c
    plain = AutoModelForCausalLM.from_pretrained(tiny_checkpoint).eval()
    with torch.no_grad():
        ref = torch.log_softmax(plain(input_ids=seq).logits[0, -2].float(), -1)[zc]
    assert abs(logp[0].item() - ref.item()) < 1e-5


def test_zc_insertion_keeps_trl_log_probs_aligned(tiny_checkpoint, small_config, train_records, tmp_path):
    """With z_c in place, TRL's per-token log-probs and entropies are unchanged wherever the
    completion mask is 1 (so old/sampling log-prob ratios for vLLM IS stay aligned), and keep
    their width."""
    from transformers import AutoTokenizer
    from trl import GRPOTrainer

    trainer = _trainer(tiny_checkpoint, small_config, train_records, tmp_path)
    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    inputs, _ = _batch(tok)
    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)
    mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1)
    keep = inputs["completion_ids"].size(1)
    with torch.no_grad():
        plain, plain_ent, _ = GRPOTrainer._get_per_token_logps_and_entropies(
            trainer, trainer.model, ids, mask, keep, compute_entropy=True)
        trainer._zc_active = True
        try:
            with_zc, zc_ent, _ = trainer._get_per_token_logps_and_entropies(
                trainer.model, ids, mask, keep, compute_entropy=True)
        finally:
            trainer._zc_active = False
    cm = inputs["completion_mask"].bool()
    assert with_zc.shape == plain.shape and zc_ent.shape == plain_ent.shape
    assert torch.allclose(with_zc[cm], plain[cm], atol=1e-6)
    assert torch.allclose(zc_ent[cm], plain_ent[cm], atol=1e-5)
    # a (fake) vLLM sampling log-prob tensor of TRL's width stays aligned column by column
    sampling = plain.clone()
    ratio = torch.exp((with_zc - sampling) * cm)
    assert torch.allclose(ratio[cm], torch.ones(int(cm.sum())), atol=1e-5)


@pytest.mark.slow
def test_short_grpo_and_laser_runs(tiny_checkpoint, small_config, train_records, tmp_path):
    from transformers import AutoModelForCausalLM

    from laser.train import train

    config = copy.deepcopy(small_config)
    config["training"]["validation"].update(benchmark="arith_easy", every=2, n_problems=4, n_samples=2)
    val = data.prepare({"source": "synthetic", "tiers": ["easy"], "n_problems": 6}, name="arith_easy", seed=1)
    for method in ("grpo", "laser"):
        run = tmp_path / method
        train(laser.jobs.train(config, "tiny", method), base_dir=str(tiny_checkpoint), out_dir=str(run / "model"),
              run_dir=str(run), train_records=train_records, calibration=None, val_records=val)
        df = pd.read_csv(run / "metrics.csv")
        assert df["step"].tolist() == [1, 2, 3]
        # validation every 2 steps and at the last one: accuracy and self-verification
        assert df["val_reward_mean"].notna().tolist() == [False, True, True]
        assert df["val_finished_frac"].notna().tolist() == [False, True, True] and "val_sv_f1" in df
        for col in ("reward_mean", "sv_f1", "rs_mean_correct", "completion_length", "stage", "c_ref"):
            assert col in df
        assert df["c_ref"].eq(-5.0).all()
        AutoModelForCausalLM.from_pretrained(run / "model")  # a loadable checkpoint
        if method == "grpo":
            assert df["sr_mse"].isna().all() and df["stage"].eq(1).all()
        else:
            assert df["sr_mse"].notna().all()
            assert df["stage"].tolist() == [1, 2, 3]
            assert "sr_loss" in df and df["sr_loss"].notna().sum() == 2  # stages 2 and 3 only
            assert "swa_fallback_frac" in df and df["swa_fallback_frac"].notna().sum() == 1


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [{"c_ref": {"source": "reference"}}, {"loss": "sft"}, {"swa": False}],
                         ids=["reference_forward", "sft", "no_swa"])
def test_ablations_train(tiny_checkpoint, small_config, train_records, tmp_path, overrides):
    from laser.train import train

    config = copy.deepcopy(small_config)
    config["methods"]["ablation"] = overrides
    train(laser.jobs.train(config, "tiny", "ablation"), base_dir=str(tiny_checkpoint), out_dir=str(tmp_path / "m"),
          run_dir=str(tmp_path / "run"), train_records=train_records, calibration=None)
    df = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert df["sr_loss"].notna().sum() == 2
    if "c_ref" in overrides:  # a real reference forward: c_ref is the reference log-prob, not -5
        assert not df["c_ref"].eq(-5.0).any()
        # before the first update policy == reference, so r_s = beta_v * (logp - ref logp) = 0:
        # the reference forward reads z_c at exactly the policy's positions
        first = df.iloc[0][["rs_mean_correct", "rs_mean_incorrect"]].dropna()
        assert len(first) and (first.abs() < 1e-4).all(), first
    if overrides.get("swa") is False:
        assert "swa_fallback_frac" not in df or df["swa_fallback_frac"].isna().all()


def _wandb_ids(run_dir) -> list[str]:
    """Run ids of the offline wandb runs under a run directory, one per attempt.

    Read from each attempt's run-<id>.wandb log: the folder name gets a suffix when two attempts start in the
    same second (offline-run-<time>-<id>-1)."""
    return [f.name[len("run-"):-len(".wandb")]
            for d in sorted((run_dir / "wandb").glob("offline-run-*")) for f in d.glob("run-*.wandb")]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(tiny_checkpoint, small_config, train_records, tmp_path, monkeypatch):
    """... and logs to the same wandb run; a run retrained from step 0 after an edit gets a new one."""
    from safetensors.torch import load_file

    from laser.train import train

    for var in ("WANDB_MODE", "WANDB_DIR", "WANDB_RUN_ID", "WANDB_RESUME"):
        monkeypatch.delenv(var, raising=False)  # the config's wandb section: offline
    job = laser.jobs.train(small_config, "tiny", "laser")
    kw = dict(base_dir=str(tiny_checkpoint), train_records=train_records, calibration=None)
    train(job, out_dir=str(tmp_path / "a"), run_dir=str(tmp_path / "run_a"), **kw)
    with pytest.raises(KeyboardInterrupt):
        train(job, out_dir=str(tmp_path / "b"), run_dir=str(tmp_path / "run_b"), callbacks=[StopAfter(2)], **kw)
    assert not (tmp_path / "b").exists()
    killed = _wandb_ids(tmp_path / "run_b")
    train(job, out_dir=str(tmp_path / "b"), run_dir=str(tmp_path / "run_b"), **kw)
    a = load_file(tmp_path / "a" / "model.safetensors")
    b = load_file(tmp_path / "b" / "model.safetensors")
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert pd.read_csv(tmp_path / "run_b" / "metrics.csv")["step"].tolist() == [1, 2, 3]
    # one wandb run per training run: the resumed attempt continued the killed attempt's run
    ids = _wandb_ids(tmp_path / "run_b")
    assert len(killed) == 1 and len(set(ids)) == 1 and ids[0] == killed[0], ids
    assert (tmp_path / "run_b" / "checkpoints" / "wandb_run_id").read_text().strip() == killed[0]
    assert _wandb_ids(tmp_path / "run_a") != killed  # another run directory, another run
    edited = copy.deepcopy(small_config)
    edited["laser"]["alpha"] = 3.0  # another run: retrained from step 0, under a new wandb run
    train(laser.jobs.train(edited, "tiny", "laser"), out_dir=str(tmp_path / "b"), run_dir=str(tmp_path / "run_b"), **kw)
    assert len(set(_wandb_ids(tmp_path / "run_b")) - set(killed)) == 1


def test_wandb_settings_take_the_standard_variables_first(small_config, monkeypatch, tmp_path):
    """The wandb section reaches the jobs as the WANDB_* variables (the Snakefile sets the unset ones
    from it), so that it is no job's setting; unset, the schema's defaults."""
    from laser.jobs import wandb_environment
    from laser.trainlog import wandb_settings

    for var in ("WANDB_MODE", "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_DIR"):
        monkeypatch.delenv(var, raising=False)
    assert wandb_settings(tmp_path) == {"mode": "offline", "project": "laser", "entity": None, "dir": str(tmp_path)}
    config = copy.deepcopy(small_config)
    assert wandb_environment(config) == {"WANDB_MODE": "offline", "WANDB_PROJECT": "laser"}
    config["wandb"].update(mode="online", project="p", entity="team")
    assert wandb_environment(config) == {"WANDB_MODE": "online", "WANDB_PROJECT": "p", "WANDB_ENTITY": "team"}
    for var, value in wandb_environment(config).items():
        monkeypatch.setenv(var, value)
    assert wandb_settings(tmp_path) == {"mode": "online", "project": "p", "entity": "team", "dir": str(tmp_path)}
    monkeypatch.setenv("WANDB_DIR", "/w")
    assert wandb_settings(tmp_path)["dir"] == "/w"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_settings(tmp_path) is None


def test_wandb_run_id_lives_and_dies_with_the_checkpoints(tmp_path):
    from laser.checkpoints import prepare_checkpoints
    from laser.trainlog import wandb_run_id

    out = tmp_path / "checkpoints"
    prepare_checkpoints(out, {"seed": 0})
    first = wandb_run_id(out)
    prepare_checkpoints(out, {"seed": 0})  # the same run, resumed
    assert wandb_run_id(out) == first
    prepare_checkpoints(out, {"seed": 1})  # another run: checkpoints deleted, from step 0
    assert wandb_run_id(out) != first


def test_a_half_written_checkpoint_is_not_resumed(tmp_path, capsys):
    from laser.checkpoints import prepare_checkpoints

    out = tmp_path / "checkpoints"
    assert prepare_checkpoints(out, {"seed": 0}) is None
    for step, state in ((2, '{"global_step": 2}'), (4, '{"global_st'), (6, None)):
        (out / f"checkpoint-{step}").mkdir()  # 4: killed writing trainer_state.json, 6: before it
        if state:
            (out / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    assert prepare_checkpoints(out, {"seed": 0}) == str(out / "checkpoint-2")
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]
    assert "checkpoint-6: a killed job left it half-written" in capsys.readouterr().out


def test_bad_training_config_fails_before_training(tiny_checkpoint, small_config, train_records, tmp_path):
    """Made when Snakemake parses the workflow (laser.config.validate), before any job."""
    from laser.config import ConfigError, check_training as check_training_config

    bad = copy.deepcopy(small_config)
    bad["laser"].update(warmup_reasoning_steps=2, warmup_sr_steps=5)
    with pytest.raises(ConfigError, match=r"methods.laser': warm-ups w_r \+ w_sr = 7 \(model tiny\) are not shorter"):
        check_training_config(bad, "laser")
    check_training_config(bad, "grpo")  # GRPO has no warm-ups
    bad = copy.deepcopy(small_config)
    bad["training"].update(gradient_accumulation_steps=3)
    with pytest.raises(ConfigError, match=r"= 16 completions per optimizer step do not split evenly into "
                                         r"'training.gradient_accumulation_steps' \(3\) x .* \(1\) micro-batches"):
        check_training_config(bad, "grpo")
    bad["training"].update(gradient_accumulation_steps=4)
    check_training_config(bad, "grpo")
    bad["training"]["launcher"].update(num_processes=2, num_machines=3)
    with pytest.raises(ConfigError, match=r"\(4\) x 'training.launcher.num_processes' x 'training.launcher.num_machines' "
                                         r"\(6\) micro-batches"):
        check_training_config(bad, "grpo")


def test_global_batch_does_not_grow_with_processes(small_config):
    """prompts_per_step is the global batch: TRL's per-device batch x processes x accumulation."""
    from laser.config import per_device_batch

    config = copy.deepcopy(small_config)
    config["training"].update(prompts_per_step=128, num_generations=8, gradient_accumulation_steps=1)
    for procs, machines, ga in [(1, 1, 1), (8, 1, 1), (8, 1, 4), (4, 2, 2)]:
        config["training"]["launcher"].update(num_processes=procs, num_machines=machines)
        config["training"]["gradient_accumulation_steps"] = ga
        assert per_device_batch(config) * procs * machines * ga == 128 * 8


def test_calibration_file_from_another_model_or_token(tmp_path):
    from laser.calibrate import resolve_c_ref

    cal = tmp_path / "tiny.json"
    cal.write_text(json.dumps({"model": "results/models/tiny/base", "token_id": 259, "c_ref_mean": -13.0}))
    spec = {"source": "calibrated"}
    assert resolve_c_ref(spec, str(cal), model_dir="results/models/tiny/base", zc_id=259, where="m") == -13.0
    with pytest.raises(InputError, match="calibrated for token id 259"):
        resolve_c_ref(spec, str(cal), model_dir="results/models/tiny/base", zc_id=258, where="m")
    with pytest.raises(InputError, match="calibrated on model"):
        resolve_c_ref(spec, str(cal), model_dir="results/models/other/base", zc_id=259, where="m")
    assert resolve_c_ref({"source": "constant", "value": -23.0}, None, model_dir="x", zc_id=1, where="m") == -23.0


def test_zc_outside_vocabulary(tiny_checkpoint, small_config, train_records, tmp_path):
    from laser.trainer import LaserConfig, LaserTrainer

    with pytest.raises(ValueError, match="outside the model's vocabulary"):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        args = LaserConfig(output_dir=str(tmp_path), zc_token_id=10**6, c_ref=-5.0, use_cpu=True, report_to=[],
                           per_device_train_batch_size=4, num_generations=4, max_steps=3)
        LaserTrainer(model=AutoModelForCausalLM.from_pretrained(tiny_checkpoint), args=args,
                     processing_class=AutoTokenizer.from_pretrained(tiny_checkpoint),
                     reward_funcs=[lambda completions, **k: [0.0] * len(completions)],
                     train_dataset=__import__("datasets").Dataset.from_list([{"prompt": "a"}] * 4))


def test_launch_command(small_config):
    from laser.launch import launch_command

    config = copy.deepcopy(small_config)
    assert launch_command(laser.jobs.train(config, "tiny", "laser"), "spec.json") is None  # one process: in this process
    config["training"]["launcher"].update(num_processes=2)
    cmd = launch_command(laser.jobs.train(config, "tiny", "laser"), "spec.json")  # plain multi-process: accelerate's multi-GPU launch, on CPU too
    assert cmd[:2] == ["accelerate", "launch"] and "--multi_gpu" in cmd and "--cpu" not in cmd
    config["training"]["launcher"].update(num_processes=8, accelerate_config="config/accelerate/fsdp.yaml")
    cmd = launch_command(laser.jobs.train(config, "tiny", "laser"), "spec.json")
    assert cmd[:2] == ["accelerate", "launch"] and cmd[-4:] == ["-m", "laser.launch", "--spec", "spec.json"]
    assert cmd[cmd.index("--num_processes") + 1] == "8" and "--cpu" not in cmd and "--multi_gpu" not in cmd
    assert cmd[cmd.index("--config_file") + 1] == "config/accelerate/fsdp.yaml"
    config["training"]["launcher"].update(num_machines=2)
    cmd = launch_command(laser.jobs.train(config, "tiny", "laser"), "spec.json")
    assert cmd[:6] == ["srun", "--nodes", "2", "--ntasks-per-node", "1", "bash"]
    inner = cmd[-1]
    assert "--num_processes 16 --num_machines 2" in inner and '--machine_rank "$SLURM_NODEID"' in inner
    assert 'scontrol show hostnames "$SLURM_JOB_NODELIST"' in inner and inner.endswith("--spec spec.json")


@pytest.mark.slow
def test_two_processes_train_the_same_global_batch(warm_checkpoint, small_config, train_records, tmp_path,
                                                   monkeypatch):
    """A real two-process run through the workflow's launcher (`accelerate launch --multi_gpu`,
    MULTI_CPU here, as on GPUs) trains as many prompts and completions per optimizer step as the
    one-process run of the same config, and its L_sr weights add up to the whole step's
    N_c + N_i over processes and micro-batches."""
    from laser.io import write_jsonl
    from laser.launch import run

    for var in ("WANDB_MODE", "WANDB_DIR", "WANDB_RUN_ID"):
        monkeypatch.delenv(var, raising=False)  # the config's wandb section: offline

    write_jsonl(tmp_path / "train.jsonl", train_records)
    config = copy.deepcopy(small_config)
    config["training"].update(max_completion_length=40, gradient_accumulation_steps=2)
    frames = {}
    for procs in (1, 2):
        config["training"]["launcher"].update(num_processes=procs, main_process_port=29517)
        run(laser.jobs.train(config, "tiny", "laser"), base_dir=str(warm_checkpoint), out_dir=str(tmp_path / f"out{procs}"),
            run_dir=str(tmp_path / f"run{procs}"), train_path=str(tmp_path / "train.jsonl"), calibration=None)
        frames[procs] = pd.read_csv(tmp_path / f"run{procs}" / "metrics.csv")
        assert (tmp_path / f"out{procs}" / "model.safetensors").exists()
    assert json.loads((tmp_path / "run2" / "launch_spec.json").read_text())["job"]["method"] == "laser"
    assert len(_wandb_ids(tmp_path / "run2")) == 1  # the main process's wandb run only
    cols = ["step", "step_prompts", "step_completions", "reward_mean", "sr_norm", "w_c", "w_i", "sr_weight_total"]
    for procs, df in frames.items():
        print(f"{procs} process(es):\n{df[[c for c in cols if c in df]].to_string(index=False)}")
    for procs, df in frames.items():
        assert df["step"].tolist() == [1, 2, 3], procs
        assert df["step_completions"].tolist() == [16.0] * 3, procs  # 4 prompts x 4 generations
        assert df["step_prompts"].tolist() == [4.0] * 3, procs
        assert ((df["reward_mean"] * 16).round(6) % 1 == 0).all(), procs  # a mean over 16 rewards
        # N_c + N_i is the step's finished solutions, all processes together
        assert (df["sr_norm"] - df["finished_frac"] * 16).abs().max() < 1e-6, procs
        # total L_sr weight of a step: w_c N_c / N + w_i N_i / N = 1/2 per non-empty class
        sr_steps = df[df["stage"] >= 2]
        expected = 0.5 * (sr_steps["w_c"] > 0) + 0.5 * (sr_steps["w_i"] > 0)
        assert len(sr_steps) == 2 and (sr_steps["sr_weight_total"] - expected).abs().max() < 1e-5, procs
        assert (sr_steps["sr_norm"] > 0).all(), procs


@pytest.mark.slow
def test_two_processes_make_the_same_update_as_one(warm_checkpoint, small_config, train_records, tmp_path,
                                                   monkeypatch):
    """1 and 2 processes train the same global batch, so they make the same update: with rollouts
    made deterministic (top_p near 0 takes the most likely token, so no process's random stream
    matters) and no weight decay, the first step's gradient norm (torch's, over the all-reduced
    gradient: a wrong normalisation by processes or micro-batches scales it) and the weights after
    two optimizer steps of L_sr agree between the runs up to float summation order, and they moved."""
    from safetensors.torch import load_file

    from laser.io import write_jsonl
    from laser.launch import run

    monkeypatch.setenv("WANDB_MODE", "disabled")
    write_jsonl(tmp_path / "train.jsonl", train_records)
    config = copy.deepcopy(small_config)
    config["training"].update(max_steps=2, max_completion_length=40, gradient_accumulation_steps=2, top_p=1e-6,
                              weight_decay=0.0)
    config["training"]["validation"]["benchmark"] = None
    config["laser"].update(warmup_reasoning_steps=0, warmup_sr_steps=1)
    weights, grad_norms = {}, {}
    for procs in (1, 2):
        config["training"]["launcher"].update(num_processes=procs, main_process_port=29519)
        run(laser.jobs.train(config, "tiny", "laser"), base_dir=str(warm_checkpoint), out_dir=str(tmp_path / f"out{procs}"),
            run_dir=str(tmp_path / f"run{procs}"), train_path=str(tmp_path / "train.jsonl"), calibration=None)
        weights[procs] = load_file(tmp_path / f"out{procs}" / "model.safetensors")
        metrics = pd.read_csv(tmp_path / f"run{procs}" / "metrics.csv")
        assert (metrics["sr_mse"] > 0).all(), procs  # L_sr trained at both steps
        grad_norms[procs] = metrics["grad_norm"].iloc[0]
    base = load_file(warm_checkpoint / "model.safetensors")
    moved = max((weights[1][k] - base[k]).abs().max().item() for k in base)
    apart = max((weights[1][k] - weights[2][k]).abs().max().item() for k in base)
    print(f"step-1 gradient norm {grad_norms}; largest update {moved:.3g}, largest difference between 1 and "
          f"2 processes {apart:.3g}")
    assert grad_norms[1] > 0 and grad_norms[2] == pytest.approx(grad_norms[1], rel=1e-4)
    assert moved > 1e-4
    assert apart < 0.01 * moved


@pytest.mark.slow
def test_lr_1e6_updates_survive_bf16_compute(warm_checkpoint, small_config, train_records):
    """The GPU precision path (float32 master weights, bf16 autocast) run on CPU: one AdamW step at
    the paper's lr 1e-6 moves most weights; stored in bf16 the same step moves almost none."""
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from precision_update import one_step_moved_fraction

    config = copy.deepcopy(small_config)
    config["training"].update(max_completion_length=40)
    master = one_step_moved_fraction(config, str(warm_checkpoint), train_records)
    pure = one_step_moved_fraction(config, str(warm_checkpoint), train_records, store_bf16=True)
    print(f"moved by one AdamW step at lr 1e-6: float32 master {master:.4f}, bf16 storage {pure:.4f}")
    assert master > 0.5, master
    assert pure < 0.1, pure


@pytest.mark.slow
def test_rerun_after_a_config_or_base_edit_starts_from_step_0(tiny_checkpoint, small_config, train_records, tmp_path,
                                                             capsys):
    """Checkpoints are tied to the run that wrote them: after an edit of `alpha` or of the base
    checkpoint, the rerun deletes them and trains from step 0, ending exactly where a fresh run of
    the edited config ends; an unchanged rerun resumes."""
    import shutil

    from safetensors.torch import load_file, save_file

    from laser.train import train

    base = tmp_path / "base"
    shutil.copytree(tiny_checkpoint, base)
    kw = dict(train_records=train_records, calibration=None)

    def run(config, name, run_dir="run", base_dir=base):
        train(laser.jobs.train(config, "tiny", "laser"), base_dir=str(base_dir), out_dir=str(tmp_path / name), run_dir=str(tmp_path / run_dir), **kw)
        return load_file(tmp_path / name / "model.safetensors")

    first = run(small_config, "first")
    ckpts = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("checkpoint-*"))
    assert ckpts == ["checkpoint-2", "checkpoint-3"]  # save_total_limit 2
    capsys.readouterr()
    again = run(small_config, "again")  # same run: resumes from checkpoint-3, nothing to train
    assert "resuming from" in capsys.readouterr().out
    assert all(torch.equal(first[k], again[k]) for k in first)

    edited = copy.deepcopy(small_config)
    edited["laser"]["alpha"] = 3.0
    rerun = run(edited, "rerun")
    out = capsys.readouterr().out
    assert "written by another run (differs in: settings)" in out, out[-2000:]
    assert pd.read_csv(tmp_path / "run" / "metrics.csv")["step"].tolist() == [1, 2, 3]
    fresh = run(edited, "fresh", run_dir="run_fresh")
    assert all(torch.equal(rerun[k], fresh[k]) for k in rerun)
    assert any(not torch.equal(rerun[k], first[k]) for k in rerun)

    weights = load_file(base / "model.safetensors")  # a re-warmed base model
    save_file({k: v * 1.01 for k, v in weights.items()}, base / "model.safetensors", metadata={"format": "pt"})
    capsys.readouterr()
    run(edited, "rebased")
    assert "differs in: base_checkpoint" in capsys.readouterr().out


@pytest.mark.slow
def test_a_new_commit_or_edited_local_files_of_a_pretrained_model_restart_training(
        hub, tiny_checkpoint, small_config, train_records, tmp_path, capsys):
    """A pretrained model's base/ only references its files (reference.json): the checkpoints are
    tied to the resolved hub commit or to the local files' digest. base_model rerun at a new commit
    (a `revision` edit), or after local files were edited, restarts training from step 0; edited
    local files under the old reference stop the job instead of mixing two models."""
    import shutil

    from safetensors.torch import load_file, save_file

    from laser.model import make_base
    from laser.checkpoints import FINGERPRINT_FILE
    from laser.train import train

    commit, other = "e" * 40, "f" * 40
    snapshot, _ = hub
    for c, factor in ((commit, 1.0), (other, 1.01)):  # two commits of org/tiny with different weights
        shutil.copytree(tiny_checkpoint, snapshot("org/tiny", c))
        weights = load_file(snapshot("org/tiny", c) / "model.safetensors")
        save_file({k: v * factor for k, v in weights.items()}, snapshot("org/tiny", c) / "model.safetensors",
                  metadata={"format": "pt"})
    base, run = tmp_path / "base", tmp_path / "run"

    def rerun(spec):
        if spec:  # rule base_model, rerun by a changed spec or --forcerun
            make_base({"source": "pretrained", "z_c": tiny.ZC, **spec}, [], base, seed=0, name="tiny")
        capsys.readouterr()
        train(laser.jobs.train(small_config, "tiny", "laser"), base_dir=str(base), out_dir=str(tmp_path / "out"),
              run_dir=str(run), train_records=train_records, calibration=None)
        stamp = json.loads((run / "checkpoints" / FINGERPRINT_FILE).read_text())["base_checkpoint"]
        return capsys.readouterr().out, stamp

    _, stamp = rerun({"path": "org/tiny", "revision": commit})
    assert stamp == f"org/tiny@{commit}"  # the commit, not a digest of a copy
    out, _ = rerun(None)
    assert "resuming from" in out and "deleting" not in out
    out, stamp = rerun({"path": "org/tiny", "revision": other})
    assert "written by another run (differs in: base_checkpoint)" in out and stamp == f"org/tiny@{other}"
    assert pd.read_csv(run / "metrics.csv")["step"].tolist() == [1, 2, 3]

    local = shutil.copytree(tiny_checkpoint, tmp_path / "local")
    _, first = rerun({"path": str(local)})
    weights = load_file(local / "model.safetensors")
    save_file({k: v * 0.99 for k, v in weights.items()}, local / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(InputError, match="the files of .* changed since rule base_model recorded them"):
        rerun(None)
    out, stamp = rerun({"path": str(local)})
    assert "written by another run (differs in: base_checkpoint)" in out
    assert first.startswith("sha256:") and stamp.startswith("sha256:") and stamp != first


def test_paper_policy_loss_settings_reach_trl(tiny_checkpoint, small_config, train_records, tmp_path, capsys):
    """config/paper.yaml's verl-matching loss settings arrive in TRL's arguments, and prompts over
    training.max_prompt_length are dropped (and counted) before training."""
    paper = load(ROOT / "config" / "paper.yaml")["training"]
    config = copy.deepcopy(small_config)
    keys = ("loss_type", "dual_clip", "vllm_importance_sampling_correction", "clip", "kl_coef", "mixed_precision",
            "gradient_checkpointing", "vllm_gpu_memory_utilization", "vllm_enable_sleep_mode",
            "vllm_tensor_parallel_size")
    config["training"].update({k: paper[k] for k in keys})
    assert (paper["loss_type"], paper["dual_clip"], paper["vllm_importance_sampling_correction"]) == ("bnpo", 3.0, False)
    assert (paper["gradient_checkpointing"], paper["vllm_gpu_memory_utilization"], paper["vllm_enable_sleep_mode"],
            paper["vllm_tensor_parallel_size"]) == (True, 0.6, True, 4)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    lengths = sorted(prompts.prompt_length(tok, r["messages"]) for r in prompts.with_prompt(train_records, laser.jobs.train_prompt(config, "tiny")))
    config["training"]["max_prompt_length"] = lengths[len(lengths) // 2]  # about half the prompts fit
    trainer = _trainer(tiny_checkpoint, config, train_records, tmp_path)
    a = trainer.args
    assert (a.loss_type, a.delta, a.vllm_importance_sampling_correction, a.epsilon, a.beta) == ("bnpo", 3.0, False,
                                                                                                0.2, 0.0)
    assert a.bf16 and next(trainer.model.parameters()).dtype == torch.float32  # bf16 compute, fp32 weights
    # the memory keys (laser.memory plans with them)
    assert (a.gradient_checkpointing, a.vllm_gpu_memory_utilization, a.vllm_enable_sleep_mode,
            a.vllm_tensor_parallel_size) == (True, 0.6, True, 4)
    assert trainer.model.is_gradient_checkpointing
    kept = len(trainer.train_dataset)
    assert 0 < kept < len(train_records)
    assert f"training: dropped {len(train_records) - kept} of {len(train_records)} prompts longer than " \
           f"training.max_prompt_length" in capsys.readouterr().out
