"""File I/O with two guarantees: bad input fails with file and line, and outputs are
written atomically (a failed job never leaves a half-written or clobbered result)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator


class InputError(ValueError):
    """Bad user input (file, line or config key named in the message)."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path, *, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_dir:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
    # tempfile makes them private (0600 / 0700); results are shared as a plain open() would make them
    tmp.chmod((0o777 if is_dir else 0o666) & ~_umask())
    try:
        yield tmp
        if is_dir and path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink()


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_jsonl(path: str | Path, records: Iterable[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def read_jsonl(path: str | Path, required: Iterable[str] = ()) -> list[dict]:
    """Read a JSONL file; raise InputError naming file and line on any malformed record."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    required = list(required)
    records = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}, line {lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(rec, dict):
                raise InputError(f"{path}, line {lineno}: expected a JSON object, got {type(rec).__name__}")
            missing = [k for k in required if k not in rec or rec[k] is None]
            if missing:
                raise InputError(f"{path}, line {lineno}: missing field(s) {', '.join(map(repr, missing))}")
            records.append(rec)
    if not records:
        raise InputError(f"{path}: empty file, expected at least one JSON record")
    return records


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}, line {e.lineno}: not valid JSON ({e.msg})") from None


def dir_digest(path: str | Path) -> str:
    """sha256 over a directory's file names and contents (a checkpoint)."""
    h = hashlib.sha256()
    root = Path(path)
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(root)).encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 24), b""):
                h.update(chunk)
    return h.hexdigest()
