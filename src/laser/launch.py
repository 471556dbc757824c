"""How a training job runs: in the Snakemake job's own process, or on several processes or
machines through `accelerate launch` (training.launcher), each of which runs `laser.train.train`
(`python -m laser.launch --spec launch_spec.json`)."""

from __future__ import annotations

import os
from pathlib import Path

from .config import world_size
from .train import train

def launch_command(job: dict, spec_path: str) -> list[str] | None:
    """The `accelerate launch` command that runs this training job on several processes or
    machines (training.launcher), or None to train in this process (one process, no
    accelerate config). Without an accelerate config, several processes are started as
    accelerate's multi-GPU launch (torch.distributed); on a machine without GPUs the same launch
    gives `MULTI_CPU` processes (gloo), because the trainer asks for the CPU. Multi-node jobs are
    started with one `srun` task per node inside the SLURM allocation; each task finds its rank
    and the main node from SLURM's variables."""
    la = job["training"]["launcher"]
    world = world_size(job)
    if world == 1 and not la["accelerate_config"]:
        return None
    cmd = ["accelerate", "launch", "--num_processes", str(world),
           "--num_machines", str(la["num_machines"]), "--main_process_port", str(la["main_process_port"])]
    if la["accelerate_config"]:
        cmd += ["--config_file", la["accelerate_config"]]
    elif world > 1:
        cmd += ["--multi_gpu"]
    tail = ["-m", "laser.launch", "--spec", spec_path]
    if la["num_machines"] == 1:
        return cmd + tail
    import shlex

    inner = " ".join(map(shlex.quote, cmd)) + (
        ' --machine_rank "$SLURM_NODEID"'
        ' --main_process_ip "$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)" '
    ) + " ".join(map(shlex.quote, tail))
    return ["srun", "--nodes", str(la["num_machines"]), "--ntasks-per-node", "1", "bash", "-c", inner]


def run(job: dict, *, base_dir: str, out_dir: str, run_dir: str, train_path: str, calibration: str | None,
        val_path: str | None = None) -> None:
    """The train job (its settings: `laser.jobs.train`): in this process, or through `accelerate
    launch` when the launcher asks for more."""
    import subprocess
    import sys

    from .io import read_jsonl, write_json

    spec = {"job": job, "base_dir": base_dir, "out_dir": out_dir, "run_dir": run_dir, "train_path": train_path,
            "calibration": calibration, "val_path": val_path}
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    spec_path = str(Path(run_dir) / "launch_spec.json")
    cmd = launch_command(job, spec_path)
    if cmd is None:
        train(job, base_dir=base_dir, out_dir=out_dir, run_dir=run_dir, train_records=read_jsonl(train_path),
              calibration=calibration, val_records=read_jsonl(val_path) if val_path else None)
        return
    write_json(spec_path, spec)
    print("launching:", " ".join(cmd), flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                         os.environ.get("PYTHONPATH", "")])}
    subprocess.run(cmd, check=True, env=env, stdout=sys.stdout, stderr=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    """Entry point of each process started by `accelerate launch` (see `run`)."""
    import argparse

    from .io import read_json, read_jsonl

    ap = argparse.ArgumentParser(prog="python -m laser.launch")
    ap.add_argument("--spec", required=True, help="launch_spec.json written by laser.launch.run")
    spec = read_json(ap.parse_args(argv).spec)
    train(spec["job"], base_dir=spec["base_dir"], out_dir=spec["out_dir"], run_dir=spec["run_dir"],
          train_records=read_jsonl(spec["train_path"]),
          calibration=spec["calibration"], val_records=read_jsonl(spec["val_path"]) if spec.get("val_path") else None)


if __name__ == "__main__":
    main()
