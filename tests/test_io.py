import pytest

from laser.io import atomic_path, write_json, write_text


def test_failed_write_keeps_previous_file(tmp_path):
    target = tmp_path / "out.txt"
    write_text(target, "old result")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("job killed")
    assert target.read_text() == "old result"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temp debris


def test_failed_directory_write_keeps_previous_dir(tmp_path):
    target = tmp_path / "model"
    with atomic_path(target, is_dir=True) as tmp:
        (tmp / "weights").write_text("v1")
    with pytest.raises(RuntimeError):
        with atomic_path(target, is_dir=True) as tmp:
            (tmp / "weights").write_text("v2-partial")
            raise RuntimeError("killed")
    assert (target / "weights").read_text() == "v1"
    with atomic_path(target, is_dir=True) as tmp:
        (tmp / "weights").write_text("v2")
    assert (target / "weights").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_write_json_sorted(tmp_path):
    write_json(tmp_path / "a.json", {"b": 1, "a": 2})
    assert (tmp_path / "a.json").read_text().index('"a"') < (tmp_path / "a.json").read_text().index('"b"')


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_results_get_the_mode_of_the_users_umask(tmp_path, umask):
    """Results are shared like any file the user writes: the umask decides, not tempfile's 0600."""
    import os
    import stat

    old = os.umask(umask)
    try:
        write_text(tmp_path / "table.csv", "a,b\n")
        with atomic_path(tmp_path / "model", is_dir=True) as tmp:
            (tmp / "weights").write_text("w")
        with open(tmp_path / "plain.txt", "w") as f:  # what a plain open() gives
            f.write("x")
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(tmp_path / "table.csv") == mode(tmp_path / "plain.txt") == 0o666 & ~umask
    assert mode(tmp_path / "model") == 0o777 & ~umask
