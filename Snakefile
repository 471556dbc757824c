# LaSeR: Reinforcement Learning with Last-Token Self-Rewarding, as a Snakemake workflow.
# `snakemake --cores all` runs the embedded default (config/config.yaml) on a CPU in minutes.
# The work is done by the importable package in src/laser; rules and scripts stay thin.

from pathlib import Path
import os
import sys

from snakemake.utils import min_version

min_version("9.0")

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
import laser.checks
import laser.config
import laser.jobs
import laser.memory


# The embedded default, unless the user gave --configfile (which would otherwise be merged
# on top of it, leaking the default's benchmarks into every other config). `--config key=value`
# overrides keys of either, as everywhere in Snakemake (`configfile:` re-applies them).
if not workflow.config_settings.configfiles:

    configfile: Path(workflow.basedir) / "config" / "config.yaml"



# Before any job starts, one clear message naming the key: validate the config (and fill its
# defaults), then check what it decides of the models, the data and the GPUs (once, here: the
# jobs only validate). The memory plan, per GPU of the train and generate jobs, is printed.
try:
    laser.config.coerce_overrides(config, workflow.config_settings.config)  # typed nested --config values
    laser.config.validate(config, source="config")
    MEMORY_PLAN = laser.checks.preflight(config, source="config")
except ValueError as e:
    raise WorkflowError(str(e)) from None
print(laser.memory.format_plan(MEMORY_PLAN, config["gpu_memory_gib"]), file=sys.stderr)
# how training runs log (the wandb section) is no job's setting: the standard variables, which the
# user's own (already set) win over; jobs inherit them, so that editing it reruns nothing
for name, value in laser.jobs.wandb_environment(config).items():
    os.environ.setdefault(name, value)

report: "workflow/report/workflow.rst"


MODELS = list(config["models"])
BENCHMARKS = list(config["benchmarks"])
METHODS_TRAINED = list(config["methods"])
METHODS = ["base", *METHODS_TRAINED]
# models some run of which reads a calibrated c_ref; none when every c_ref is a constant
CALIBRATED = laser.config.calibrated_models(config)
LAUNCH = config["training"]["launcher"]
TP = config["generation"]["tensor_parallel_size"]


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/calibrate.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        "results/tables/main.csv",
        "results/figures/scaling.png",
        expand("results/train/{model}/{method}/metrics.csv", model=MODELS, method=METHODS_TRAINED),
        expand("results/calibration/{model}.json", model=CALIBRATED),
        "results/tables/job_times.csv",
        "results/provenance.json",
    default_target: True
