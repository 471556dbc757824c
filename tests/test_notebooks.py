"""Notebooks read only results/: they are executed here so they cannot rot."""

import json

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _fake_results(root):
    """Per-step metrics in the contract's format for two runs."""
    for method, f1 in (("grpo", 0.0), ("laser", 0.7)):
        run = root / "train" / "tiny" / method
        run.mkdir(parents=True)
        pd.DataFrame({"step": [1, 2, 3], "reward_mean": [0.3, 0.4, 0.5],
                      "sr_mse": [float("nan")] * 3 if method == "grpo" else [0.5, 0.3, 0.2],
                      "sv_f1": [0.0, f1 / 2, f1]}).to_csv(run / "metrics.csv", index=False)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes_on_results(path, tmp_path, monkeypatch):
    _fake_results(tmp_path / "results")
    monkeypatch.setenv("LASER_RESULTS", str(tmp_path / "results"))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = json.dumps([o.get("data", {}).get("text/plain", "") for o in outputs])
    assert "laser" in text and "grpo" in text


def test_notebook_fails_without_results(tmp_path, monkeypatch):
    monkeypatch.setenv("LASER_RESULTS", str(tmp_path / "nothing"))
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    with pytest.raises(Exception, match="no training metrics"):
        NotebookClient(nb, timeout=300, kernel_name="python3").execute()
