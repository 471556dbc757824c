"""Every command shown in the repository's documentation works (issue #13, point 2).

Collected from README.md, docs/*.md, config/README.md and the comments of config/**/*.yaml and
profiles/*/config.yaml:

- fenced code blocks tagged ```bash, ```sh, ```shell, ```console (only its `$ ` lines) or untagged
  (```text, ```yaml, ... hold no commands: tag a listing that way);
- Markdown indented code blocks (four spaces, outside lists);
- YAML comment lines indented after the `#` (`#   snakemake ...`), except commented-out YAML
  (`#   key: value`, `#   - item`);
- inline code spans (`...`) of two or more words that start with a program named in PROGRAMS.

In a block, every command must be one this test knows how to check (a new program fails until a
check is added below); inline spans are commands only when they start with a known program.
Nothing is run for real. `snakemake` commands are dry runs (`-n`) in an empty working directory,
once per shipped config for a `config/<name>.yaml` placeholder (the config validates, the profile
and targets resolve, the SLURM profile included); Python scripts, modules and entry points must
exist and answer `--help`, and every flag shown must be one that help lists (with its choices);
shell scripts must exist and pass `bash -n`; pytest paths must exist; hub ids must be ones a
shipped config uses. `<placeholders>` stand for any value and `...` elides arguments (then only
the program and the flags shown are checked).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

BIN = Path(sys.executable).parent
SHELL_LANGS = {"", "bash", "sh", "shell", "console", "zsh"}
SLURM_TOOLS = {"srun", "sbatch", "scontrol", "sacct", "squeue", "sinfo"}
PROGRAMS = {"snakemake", "python", "python3", "pytest", "bash", "sh", "laser-score", "accelerate",
            "hf", "pip", "source", "export", *SLURM_TOOLS}
# Environment variables a shown `export` may set, and what reads them.
KNOWN_ENV = {"HF_HOME": "huggingface_hub", "HF_HUB_OFFLINE": "huggingface_hub",
             "HF_DATASETS_OFFLINE": "datasets", "WANDB_MODE": "wandb",
             "CUDA_VISIBLE_DEVICES": "CUDA"}
# Snakemake flags that act instead of running the workflow: checked to exist, then left out of
# the dry run (`--report` needs finished results; `--unlock` would edit .snakemake), with their
# optional value (which one is theirs and not a target).
SNAKEMAKE_ACTIONS = {"--report": lambda v: v.endswith((".html", ".zip")), "--unlock": None,
                     "--lint": lambda v: v in {"text", "json"},
                     "--conda-create-envs-only": None}  # builds the environments even with -n
SNAKEMAKE_DROP_IN_DRY_RUN = {"--cores", "-c", "--jobs", "-j"}  # with their value


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "config" / "README.md"]


def yaml_files() -> list[Path]:
    return [*sorted((ROOT / "config").rglob("*.yaml")), *sorted((ROOT / "profiles").glob("*/config.yaml"))]


@dataclass
class Shown:
    text: str  # the command as shown (continuation lines joined)
    where: list[str] = field(default_factory=list)  # file:line of every place it is shown
    inline: bool = False  # an inline code span (only known programs are collected)


# --------------------------------------------------------------------------------- collection

def _join_continued(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Join `\\`-continued lines; (line number of the first, text)."""
    out, buf, start = [], "", None
    for no, line in lines:
        if start is None:
            start = no
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        out.append((start, buf + line))
        buf, start = "", None
    if buf:
        out.append((start, buf))
    return out


def _block_commands(lang: str, lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    if lang == "console" or any(l.lstrip().startswith("$ ") for _, l in lines):
        lines = [(n, l.lstrip()[2:]) for n, l in lines if l.lstrip().startswith("$ ")]
    lines = [(n, l) for n, l in lines if l.strip() and not l.lstrip().startswith("#")]
    return [(n, _normalize(l)) for n, l in _join_continued(lines)]


def _normalize(line: str) -> str:
    """The command without its trailing `# comment`, runs of whitespace as one space."""
    out, quote = [], None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            break
        out.append(ch)
    return " ".join("".join(out).split())


def _inline_commands(text: str, first_line: int) -> list[tuple[int, str]]:
    out = []
    for m in re.finditer(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", text, re.S):
        span = " ".join(m.group(2).split())
        words = span.split()
        i = 0
        while i < len(words) and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[i]):
            i += 1
        if i < len(words) and words[i] in PROGRAMS and len(words) >= 2:
            out.append((first_line + text.count("\n", 0, m.start()), span))
    return out


def markdown_commands(path: Path) -> list[tuple[int, str, bool]]:
    """(line, command, inline) for one Markdown file."""
    lines = path.read_text().split("\n")
    found: list[tuple[int, str, bool]] = []
    prose: list[tuple[int, str]] = []  # text outside code blocks, for inline spans
    i, prev_blank, list_context = 0, True, False
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"\s*(`{3,}|~{3,})\s*([\w+-]*)", line)
        if fence:
            marker, lang = fence.group(1), fence.group(2).lower()
            body = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(marker):
                body.append((i + 1, lines[i]))
                i += 1
            i += 1
            if lang in SHELL_LANGS:
                found += [(n, c, False) for n, c in _block_commands(lang, body)]
            prev_blank = False
            continue
        if line.startswith("    ") and line.strip() and prev_blank and not list_context:
            body = []
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                body.append((i + 1, lines[i][4:]))
                i += 1
            found += [(n, c, False) for n, c in _block_commands("", body)]
            prev_blank = False
            continue
        if line.strip():
            if re.match(r"\s*([-*+]|\d+[.)])\s", line):
                list_context = True
            elif not line.startswith((" ", "\t")) and prev_blank:
                list_context = False
        prose.append((i + 1, line))
        prev_blank = not line.strip()
        i += 1
    # inline spans, paragraph by paragraph (a span may wrap onto the next line)
    para: list[tuple[int, str]] = []
    for no, line in prose + [(len(lines) + 1, "")]:
        if line.strip():
            para.append((no, line))
            continue
        if para:
            found += [(n, c, True) for n, c in _inline_commands("\n".join(l for _, l in para), para[0][0])]
        para = []
    return found


def yaml_commands(path: Path) -> list[tuple[int, str, bool]]:
    """(line, command, inline) from one YAML file's comments."""
    found: list[tuple[int, str, bool]] = []
    indented: list[tuple[int, str]] = []
    for no, line in enumerate(path.read_text().split("\n"), 1):
        m = re.match(r"\s*#(.*)", line)
        if not m:
            continue
        text = m.group(1)
        found += [(n, c, True) for n, c in _inline_commands(text, no)]
        continuing = bool(indented) and indented[-1][1].rstrip().endswith("\\")
        if continuing or (re.match(r"\s{2,}\S", text)
                          and not re.match(r"\s*([\w.-]+:(\s|$)|- )", text)):
            indented.append((no, text))
    found += [(n, _normalize(c), False) for n, c in _join_continued(indented)]
    return found


def collect() -> list[Shown]:
    shown: dict[str, Shown] = {}
    sources = [(p, markdown_commands) for p in doc_files()] + [(p, yaml_commands) for p in yaml_files()]
    for path, reader in sources:
        for no, text, inline in reader(path):
            s = shown.setdefault(text, Shown(text, inline=inline))
            s.where.append(f"{path.relative_to(ROOT)}:{no}")
            s.inline = s.inline and inline
    return list(shown.values())


COMMANDS = collect()


# ------------------------------------------------------------------------------------ parsing

PLACEHOLDER = re.compile(r"<([A-Za-z][\w.-]*)>")
CONFIG_PLACEHOLDER = re.compile(r"config/<[A-Za-z][\w.-]*>\.yaml")


def shipped_configs() -> list[str]:
    return [str(p.relative_to(ROOT)) for p in sorted((ROOT / "config").glob("*.yaml"))]


def expansions(text: str) -> list[str]:
    """The command with `config/<name>.yaml` as each shipped config and other `<x>` as `x`."""
    texts = [CONFIG_PLACEHOLDER.sub(c, text) for c in shipped_configs()] if CONFIG_PLACEHOLDER.search(text) else [text]
    return [PLACEHOLDER.sub(lambda m: m.group(1), t) for t in texts]


def split_pipeline(text: str) -> list[list[str]]:
    """Simple commands of a shell line (split at &&, ||, ;, |), as argv lists."""
    lex = shlex.shlex(text, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    lex.commenters = "#"
    out, cur = [], []
    for tok in lex:
        if tok in {"&&", "||", ";", "|", "&"}:
            out.append(cur)
            cur = []
        elif set(tok) <= set("<>()"):
            raise AssertionError(f"shell redirection or subshell {tok!r} in a shown command")
        else:
            cur.append(tok)
    out.append(cur)
    assert all(out), f"empty command in {text!r}"
    return out


@functools.cache
def help_text(*argv: str) -> str:
    proc = subprocess.run([*argv, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"`{' '.join(argv)} --help` failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    return proc.stdout + proc.stderr


def check_flags(args: list[str], helptext: str, what: str) -> None:
    """Every --flag / -x shown appears in the help; a value given to a flag with {choices} is one."""
    for i, arg in enumerate(args):
        if not arg.startswith("-") or re.fullmatch(r"-\d[\d.e+-]*", arg):
            continue
        flag = arg.split("=", 1)[0]
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", helptext), \
            f"{what}: no flag {flag!r} in its --help"
        choices = re.search(rf"{re.escape(flag)}[ =]\{{([^}}]+)\}}", helptext)
        if choices and i + 1 < len(args) and "=" not in arg:
            value = args[i + 1]
            assert value in choices.group(1).split(","), f"{what}: {flag} {value!r} not in {{{choices.group(1)}}}"


def hub_ids() -> set[str]:
    ids = set()

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in {"path", "name"} and isinstance(v, str) and re.fullmatch(r"[\w.-]+/[\w.-]+", v):
                    ids.add(v)
                walk(v)

    for cfg in shipped_configs():
        walk(yaml.safe_load((ROOT / cfg).read_text()))
    return ids


def check_model_arg(value: str, what: str) -> None:
    """A model shown as `org/name` is a local path or a hub id that a shipped config uses."""
    if "/" in value and not (ROOT / value).exists():
        assert value in hub_ids(), f"{what}: {value!r} is neither a local path nor a hub id of config/*.yaml"


# ------------------------------------------------------------------------------------- checks

def check_snakemake(argv: list[str], elided: bool) -> None:
    helptext = help_text(str(BIN / "snakemake"))
    check_flags(argv, helptext, "snakemake")
    if elided:
        return
    run, i = [], 0
    while i < len(argv):
        arg = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if arg in SNAKEMAKE_ACTIONS:
            takes_value = SNAKEMAKE_ACTIONS[arg]
            i += 2 if takes_value and nxt is not None and takes_value(nxt) else 1
            continue
        if arg in SNAKEMAKE_DROP_IN_DRY_RUN:
            i += 2
            continue
        run.append(arg)
        i += 1
    for flag in ("--configfile", "--workflow-profile", "--profile"):
        if flag in run:
            value = run[run.index(flag) + 1]
            assert (ROOT / value).exists(), f"snakemake {flag} {value}: no such path"
    if not {"-n", "--dry-run", "--dryrun"} & set(run):
        run.append("-n")
    out = dry_run(tuple(run))
    assert "Job stats:" in out or "Nothing to be done" in out, out[-3000:]


@functools.cache
def dry_run(argv: tuple[str, ...]) -> str:
    env = None
    if "--use-conda" in argv:  # no conda here: tests/fake_conda answers what a dry run asks of it
        env = {**os.environ, "PATH": os.pathsep.join([str(ROOT / "tests" / "fake_conda" / "bin"), str(BIN),
                                                      os.environ["PATH"]])}
    with tempfile.TemporaryDirectory() as wd:  # a clean working directory: the full DAG is planned
        proc = subprocess.run([str(BIN / "snakemake"), *argv, "-d", wd], cwd=ROOT,
                              capture_output=True, text=True, timeout=300, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"snakemake {' '.join(argv)} (dry run) failed:\n{out[-3000:]}"
    return out


def check_python(argv: list[str]) -> None:
    """python SCRIPT args / python -m MODULE args / python -c CODE."""
    assert argv, "python without a script"
    if argv[0] == "-c":
        compile(argv[1], "<shown>", "exec")
        return
    if argv[0] == "-m":
        check_module(argv[1], argv[2:])
        return
    script = ROOT / argv[0]
    assert script.is_file(), f"python {argv[0]}: no such script"
    check_flags(argv[1:], help_text(sys.executable, str(script)), f"python {argv[0]}")


def check_module(module: str, args: list[str]) -> None:
    if module == "pytest":
        check_pytest(args)
        return
    assert importlib.util.find_spec(module) is not None, f"python -m {module}: no such module"
    check_flags(args, help_text(sys.executable, "-m", module), f"python -m {module}")


def check_pytest(args: list[str]) -> None:
    check_flags(args, help_text(sys.executable, "-m", "pytest"), "pytest")
    paths = [a.split("::")[0] for i, a in enumerate(args)
             if not a.startswith("-") and not (i and args[i - 1] in {"-k", "-m", "-p", "-o"})]
    for p in paths or tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["testpaths"]:
        assert (ROOT / p).exists(), f"pytest {p}: no such path"


def check_script(argv: list[str], env: dict[str, str]) -> None:
    """bash SCRIPT [args] with VAR=value prefixes the script reads."""
    script = ROOT / argv[0]
    assert script.is_file(), f"bash {argv[0]}: no such script"
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, f"bash -n {argv[0]}: {proc.stderr}"
    text = script.read_text()
    if argv[1:]:
        assert '"$@"' in text or "$1" in text, f"{argv[0]} takes no arguments, shown with {argv[1:]}"
    for var, value in env.items():
        assert re.search(rf"\b{var}\b", text), f"{argv[0]} does not read {var}"
        assert re.search(rf"\b{re.escape(value)}\b", text), f"{argv[0]}: {var}={value} is not a value it knows"


def check_entry_point(name: str, argv: list[str]) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert name in scripts, f"{name}: not an entry point in pyproject.toml"
    exe = BIN / name
    assert exe.exists(), f"{name}: not installed in {BIN} (run install.sh)"
    check_flags(argv, help_text(str(exe)), name)
    if "--model" in argv:
        check_model_arg(argv[argv.index("--model") + 1], name)


def check_hf(argv: list[str]) -> None:
    assert argv and argv[0] == "download", f"hf {argv[:1]}: only `hf download` is checked"
    check_flags(argv[1:], help_text(str(BIN / "hf"), "download"), "hf download")
    positional = [a for i, a in enumerate(argv[1:], 1) if not a.startswith("-") and not argv[i - 1].startswith("--")]
    assert positional, "hf download without a repository"
    check_model_arg(positional[0], "hf download")


def check_accelerate(argv: list[str]) -> None:
    assert argv and argv[0] == "launch", f"accelerate {argv[:1]}: only `accelerate launch` is checked"
    args = [a for a in argv[1:] if a != "..."]
    for flag in ("-m", "--module"):
        if flag in args:
            i = args.index(flag)
            check_flags(args[: i + 1], help_text(str(BIN / "accelerate"), "launch"), "accelerate launch")
            check_module(args[i + 1], args[i + 2:])
            return
    check_flags(args, help_text(str(BIN / "accelerate"), "launch"), "accelerate launch")


def check_pip(argv: list[str]) -> None:
    from packaging.requirements import Requirement

    assert argv and argv[0] == "install", f"pip {argv[:1]}: only `pip install NAME` is checked"
    names = [a for a in argv[1:] if not a.startswith("-")]
    assert names, "pip install without a package"
    for name in names:
        Requirement(name)  # a valid requirement; nothing is installed


def check_slurm(tool: str, argv: list[str]) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed here (.ci/run installs the SLURM client tools)")
    helptext = slurm_help(tool)
    check_flags(argv, helptext, tool)
    if tool == "scontrol" and argv:
        assert re.search(rf"^\s+{argv[0]}\b", helptext, re.M), f"scontrol: no subcommand {argv[0]!r}"
        if argv[0] == "show" and len(argv) > 1:
            assert argv[1] in helptext, f"scontrol show: no entity {argv[1]!r}"


@functools.cache
def slurm_help(tool: str) -> str:
    """`tool --help`; SLURM's clients want a slurm.conf even for that, so a minimal one is given."""
    with tempfile.TemporaryDirectory() as d:
        conf = Path(d) / "slurm.conf"
        conf.write_text("ClusterName=docs\nSlurmctldHost=localhost\n")
        proc = subprocess.run([tool, "--help"], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "SLURM_CONF": str(conf)})
    assert proc.returncode == 0, f"`{tool} --help` failed:\n{proc.stderr[-2000:]}"
    return proc.stdout + proc.stderr


def check_export(argv: list[str]) -> None:
    for assignment in argv:
        var, _, _ = assignment.partition("=")
        assert var in KNOWN_ENV, f"export {var}: not a variable this test knows a reader of (KNOWN_ENV)"
        if KNOWN_ENV[var] == "huggingface_hub":
            import huggingface_hub.constants

            assert var in Path(huggingface_hub.constants.__file__).read_text(), f"huggingface_hub reads no {var}"


def check_source(argv: list[str]) -> None:
    assert argv == [".venv/bin/activate"], f"source {argv}: only the project's .venv is known"
    assert ".venv" in (ROOT / "install.sh").read_text(), "install.sh does not create .venv"


def check_simple(argv: list[str], elided: bool) -> None:
    env = {}
    while argv and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", argv[0]):
        var, _, value = argv.pop(0).partition("=")
        env[var] = value
    prog, args = argv[0], argv[1:]
    if prog != "bash":
        assert not env, f"{prog}: environment prefixes are only checked for bash scripts"
    if prog == "snakemake":
        check_snakemake(args, elided)
    elif prog in {"python", "python3"}:
        check_python(args)
    elif prog == "pytest":
        check_pytest(args)
    elif prog in {"bash", "sh"}:
        check_script(args, env)
    elif prog == "laser-score":
        check_entry_point(prog, args)
    elif prog == "hf":
        check_hf(args)
    elif prog == "accelerate":
        check_accelerate(args)
    elif prog == "pip":
        check_pip(args)
    elif prog in SLURM_TOOLS:
        check_slurm(prog, args)
    elif prog == "export":
        check_export(args)
    elif prog == "source":
        check_source(args)
    else:
        raise AssertionError(f"no check for program {prog!r}: add one to tests/test_commands.py")


def check_command(text: str) -> None:
    for expanded in expansions(text):
        for argv in split_pipeline(expanded):
            elided = "..." in argv
            usage = [a for a in argv if a.startswith("[") or (a.endswith("]") and "[" not in a)]
            assert not usage, f"usage notation {usage} (optional [args]): show a command that runs"
            check_simple([a for a in argv if a != "..."], elided)


# -------------------------------------------------------------------------------------- tests

@pytest.mark.parametrize("shown", COMMANDS, ids=[c.text[:70] for c in COMMANDS])
def test_shown_command_works(shown: Shown):
    try:
        check_command(shown.text)
    except AssertionError as e:
        raise AssertionError(f"{shown.text!r} shown at {', '.join(shown.where)}: {e}") from None


def test_collection_finds_the_documented_commands():
    """The collector sees the README's commands, the cluster command, the configs' and profiles'."""
    texts = {c.text for c in COMMANDS}
    assert "bash install.sh" in texts
    assert "source .venv/bin/activate && snakemake --cores all" in texts
    assert "source .venv/bin/activate && pytest" in texts
    assert any(t.startswith("source .venv/bin/activate && snakemake --workflow-profile profiles/slurm")
               for t in texts)
    where = {w.split(":")[0] for c in COMMANDS for w in c.where}
    assert {"README.md", "config/README.md", "docs/cluster.md", "config/paper.yaml",
            "profiles/slurm/config.yaml", "profiles/default/config.yaml"} <= where
    assert "source: hub" not in texts  # commented-out YAML is not a command


def test_ci_runs_the_readme_install_and_test_commands():
    """.ci/run installs and tests exactly as the README's Quick start says."""
    ci = (ROOT / ".ci" / "run").read_text().split("\n")
    readme = [t for t, _ in _readme_block_commands()]
    assert "bash install.sh" in ci and "bash install.sh" in readme
    assert "pytest" in ci and any(t.split("&&")[-1].strip() == "pytest" for t in readme)


def _readme_block_commands():
    return [(c, n) for n, c, inline in markdown_commands(ROOT / "README.md") if not inline]


def test_readme_quick_start_and_cluster_are_two_commands():
    """Install, then run: the README's Quick start and cluster blocks each show two commands."""
    text = (ROOT / "README.md").read_text()
    for heading in ("## Quick start", "## Running on a cluster"):
        section = text.split(heading, 1)[1].split("\n## ", 1)[0]
        block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
        commands = _block_commands("bash", [(i, l) for i, l in enumerate(block.split("\n"))])
        assert len(commands) == 2 and "install.sh" in commands[0][1], commands


@pytest.mark.parametrize("bad", [
    # config/README.md's laser-score line before this test: a model id no config uses (the released
    # checkpoint is Keven16/...), and usage-style [optional] flags with `a|b` alternatives
    "laser-score --model Qwen/Qwen2.5-7B-LaSeR --input g.jsonl --output s.jsonl --z-c x",
    "laser-score --model Keven16/Qwen2.5-7B-LaSeR --input g.jsonl --output s.jsonl --z-c x [--beta-v 0.1]",
    "laser-score --model Keven16/Qwen2.5-7B-LaSeR --input g.jsonl --output s.jsonl --z-c x --score r_s|p_zc",
    "laser-score --model Keven16/Qwen2.5-7B-LaSeR --input g.jsonl --output s.jsonl --z-c x --backend hf",
    "snakemake --cores all --configfile config/nonexistent.yaml",
    "snakemake --workflow-profile profiles/nonexistent",
    "snakemake --cores all --no-such-flag",
    "snakemake --cores all no_such_rule",
    "python benchmarks/nonexistent.py",
    "make all",
    "FLAVOUR=rocm bash install.sh",
])
def test_checks_reject_broken_commands(bad):
    with pytest.raises(AssertionError):
        check_command(bad)


def test_collector_reads_blocks_indented_code_and_yaml_comments(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("Text `snakemake --cores all\n--configfile c.yaml` and `pytest`.\n\n"
                   "```bash\nmake all   # a comment\n```\n\n```text\nresults/x.csv\n```\n\n"
                   "```console\n$ pytest -q\n3 passed\n```\n\n    bash install.sh\n\n"
                   "- a list item\n\n    a list continuation, not code\n")
    assert [(c, inline) for _, c, inline in markdown_commands(doc)] == [
        ("make all", False), ("pytest -q", False), ("bash install.sh", False),
        ("snakemake --cores all --configfile c.yaml", True)]
    cfg = tmp_path / "c.yaml"
    cfg.write_text("# Run:\n#   snakemake --cores all \\\n#       --configfile c.yaml\n"
                   "# commented out:\n#   source: hub\n#   - item\n# needs `pip install x`\nkey: 1\n")
    assert [(n, c) for n, c, _ in yaml_commands(cfg)] == [
        (7, "pip install x"), (2, "snakemake --cores all --configfile c.yaml")]
