"""Tables under results/tables/: one CSV per analysis, also rendered as Markdown and LaTeX."""

from __future__ import annotations

from pathlib import Path

from .io import write_text


def write_table(df, csv_path: str | Path, float_format: str = "%.4f") -> None:
    """Write `df` as CSV plus .md and .tex beside it (atomically)."""
    csv_path = Path(csv_path)
    write_text(csv_path, df.to_csv(index=False, float_format=float_format))
    write_text(csv_path.with_suffix(".md"), df.to_markdown(index=False, floatfmt=".4f") + "\n")
    write_text(csv_path.with_suffix(".tex"),
               df.to_latex(index=False, float_format=lambda x: f"{x:.4f}", escape=True))
