"""Notebooks read only results/: each is executed here so it cannot rot.

On CI the embedded default has just run, so they execute on its real results/; elsewhere on a
results tree written by the package's own table and figure code (tests/fake_results.py)."""

import json

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT
from fake_results import write_fake_results

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REAL = ROOT / "results"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    if (REAL / "tables" / "main.csv").exists() and list(REAL.glob("train/*/*/metrics.csv")):
        return REAL
    return write_fake_results(tmp_path_factory.mktemp("nb") / "results")


def _run(path, results, monkeypatch):
    monkeypatch.setenv("LASER_RESULTS", str(results))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def test_one_notebook_per_paper_section():
    assert {p.stem for p in NOTEBOOKS} >= {"main_results", "self_verification", "inference_scaling",
                                           "training_curves"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes_on_results(path, results, monkeypatch):
    outputs = _run(path, results, monkeypatch)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = json.dumps([o.get("data", {}).get("text/plain", "") for o in outputs])
    assert "laser" in text and "grpo" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)  # each draws its figure


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_fails_clearly_without_results(path, tmp_path, monkeypatch):
    with pytest.raises(Exception, match="no (training metrics|results table|scaling table)"):
        _run(path, tmp_path / "nothing", monkeypatch)
