"""benchmarks/gpu_check.py on the CPU at a tiny shape (issue #17, point 3), so that the GPU check
cannot rot before a GPU runs it: the same rows, routes and update check, with an out-of-memory
error injected at micro-batches above 1 (the CPU cannot run out). Peak memory on the CPU is the
profiler's count of bytes allocated during training, which is exact and repeatable. About 15 s."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest

from conftest import ROOT


def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_runs_on_cpu(tmp_path, monkeypatch):
    import torch

    gc = gpu_check()
    real = gc.make_trainer

    def oom_above_one(args, *a, **kw):
        if args.per_device_train_batch_size > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected by the test)")
        return real(args, *a, **kw)

    monkeypatch.setattr(gc, "make_trainer", oom_above_one)
    gc.main(["--cpu", "--tiny", "--micro-batches", "1,2,4", "--steps", "1", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    rows = {(r["method"], r["gradient_checkpointing"], r["micro_batch"]): r for r in report["rows"]}
    assert len(rows) == len(report["rows"]) == 12

    for method in ("laser", "grpo"):
        for ckpt in (True, False):
            ok = rows[(method, ckpt, 1)]
            assert ok["status"] == "ok", ok.get("traceback")
            assert len(ok["step_times"]) == 2 and ok["step_seconds"] > 0  # warm-up + one timed step
            assert ok["tokens_per_second"] == pytest.approx(ok["tokens_per_step"] / ok["step_seconds"])
            assert ok["tokens_per_step"] == sum(64 - i % 3 + 192 - i % 4 for i in range(4))
            assert ok["peak_allocated_gib"] > 0
            assert all(math.isfinite(v) for v in ok["logged"].values()) and ok["logged"]["grad_norm"] > 0
            assert "estimate_gib" in ok  # the memory plan's column (None until laser.memory is wired)
            # an out-of-memory error is a row, and larger micro-batches are not tried
            oom = rows[(method, ckpt, 2)]
            assert oom["status"] == "oom" and "injected by the test" in oom["error"]
            assert rows[(method, ckpt, 4)]["status"] == "skipped (out of memory at a smaller micro-batch)"
        # gradient checkpointing lowers the measured peak (the saved activations of every layer)
        assert rows[(method, True, 1)]["peak_allocated_gib"] < rows[(method, False, 1)]["peak_allocated_gib"]

    # LaSeR trained L_sr with SWA (stage 3) from the first step; GRPO has no L_sr
    for ckpt in (True, False):
        assert rows[("laser", ckpt, 1)]["logged"]["stage"] == 3 and rows[("laser", ckpt, 1)]["logged"]["sr_loss"] > 0
        assert "sr_loss" not in rows[("grpo", ckpt, 1)]["logged"]
    assert set(report["laser_grpo_step_time_ratio"]) == {"grad ckpt on, micro-batch 1", "grad ckpt off, micro-batch 1"}

    # z_c: the training route and the one-token route agree with a re-prefill, and a read one
    # position early would not
    rc = report["route_check"]
    assert rc["ok"] and all(rc["finished"]), rc
    for pair in ("train_vs_reprefill", "onetoken_vs_reprefill"):
        assert rc[pair]["max_abs_diff"] <= min(rc["tolerance_nats"])
    assert rc["wrong_position_contrast"] > max(rc["tolerance_nats"])

    # one AdamW step at lr 1e-6 (config/paper.yaml) on float32 master weights moved weights
    moved = report["moved"]
    assert moved["learning_rate"] == 1e-6 and 0 < moved["moved_fraction"] <= 1

    table = (tmp_path / "gpu_check.md").read_text()
    assert "| method | grad ckpt | micro-batch | status |" in table and "plan estimate GiB" in table
    assert sum(line.startswith(("| laser |", "| grpo |")) for line in table.splitlines()) == 12
