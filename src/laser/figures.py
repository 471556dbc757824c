"""The paper's figures from results (PNG and SVG, byte-for-byte reproducible)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .io import atomic_path  # noqa: E402

plt.rcParams.update({"svg.hashsalt": "laser", "figure.dpi": 100, "font.size": 9})
COLORS = {"majority": "tab:gray", "weighted": "tab:blue", "best_of_k": "tab:orange",
          "correct": "tab:green", "incorrect": "tab:red"}


def save(fig, stem: str | Path) -> list[Path]:
    """Write `stem`.png and `stem`.svg atomically, without timestamps."""
    paths = []
    for ext, meta in (("png", {"Software": None}), ("svg", {"Date": None, "Creator": None})):
        path = Path(f"{stem}.{ext}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, metadata=meta)
        paths.append(path)
    plt.close(fig)
    return paths


def _grid(n_rows: int, n_cols: int, w: float = 3.2, h: float = 2.6):
    fig, axes = plt.subplots(max(n_rows, 1), max(n_cols, 1), figsize=(w * max(n_cols, 1), h * max(n_rows, 1)),
                             squeeze=False, layout="constrained")
    return fig, axes


def _empty(ax, text="no data"):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def scaling_figure(scaling: pd.DataFrame, stem, judge: str = "last_token"):
    """Accuracy vs number of samples k: majority vs weighted voting vs best-of-k, per run."""
    df = scaling[scaling["judge"] == judge]
    runs = list(dict.fromkeys(zip(df["model"], df["method"])))
    benches = list(dict.fromkeys(df["benchmark"]))
    fig, axes = _grid(len(runs), len(benches))
    if df.empty:
        _empty(axes[0][0])
    for i, (model, method) in enumerate(runs):
        for j, bench in enumerate(benches):
            ax = axes[i][j]
            sub = df[(df["model"] == model) & (df["method"] == method) & (df["benchmark"] == bench)]
            for col, label in (("majority", "majority vote"), ("weighted", "r_s-weighted vote"),
                               ("best_of_k", "best-of-k by r_s")):
                ax.plot(sub["k"], sub[col], marker="o", ms=3, color=COLORS[col], label=label)
            ax.set_xscale("log", base=2)
            ax.set_title(f"{model}/{method} · {bench}")
            ax.set_xlabel("k samples")
            ax.set_ylabel("accuracy")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    return save(fig, stem)


def histogram_figure(runs, stem, judge: str = "last_token", bins: int = 30):
    """r_s (p(z_c) for the SFT ablation) of correct vs incorrect (boxed) solutions, per (model,
    method), benchmarks pooled."""
    from .tables import pooled_scores

    pooled = pooled_scores(runs, judge)
    kinds = {(run.model, run.method): run.score_of(judge) for run in runs}
    labels = {"r_s": "self-reward score r_s", "p_zc": "p(z_c | x, y, EOS)"}
    fig, axes = _grid(1, len(pooled))
    if not pooled:
        _empty(axes[0][0])
    for ax, ((model, method), rows) in zip(axes[0], pooled.items()):
        for cls, label in ((True, "correct"), (False, "incorrect")):
            xs = [s for s, c in rows if c == cls]
            if xs:
                ax.hist(xs, bins=bins, alpha=0.55, color=COLORS[label], label=f"{label} (n={len(xs)})")
        ax.axvline(0.5, color="k", lw=0.8, ls="--")
        ax.set_title(f"{model}/{method}")
        ax.set_xlabel(labels.get(kinds[(model, method)], kinds[(model, method)]))
        ax.set_ylabel("solutions")
        ax.legend(fontsize=7)
    return save(fig, stem)


def reliability_figure(reliability: pd.DataFrame, stem):
    """Accuracy vs mean clip(r_s, 0, 1) per bin; the diagonal is perfect calibration."""
    runs = list(dict.fromkeys(zip(reliability["model"], reliability["method"])))
    fig, axes = _grid(1, len(runs))
    if not runs:
        _empty(axes[0][0])
    for ax, (model, method) in zip(axes[0], runs):
        sub = reliability[(reliability["model"] == model) & (reliability["method"] == method) & (reliability["count"] > 0)]
        ax.plot([0, 1], [0, 1], color="k", lw=0.8, ls="--")
        ax.bar(sub["bin_lo"], sub["accuracy"], width=sub["bin_hi"] - sub["bin_lo"], align="edge", alpha=0.5,
               edgecolor="tab:blue", label="accuracy")
        ax.plot(sub["mean_prob"], sub["accuracy"], "o", color="tab:blue", ms=3)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="clip(r_s, 0, 1)", ylabel="fraction correct", title=f"{model}/{method}")
    return save(fig, stem)


def training_figure(curves: dict[tuple[str, str], pd.DataFrame], stem):
    """Reward, self-rewarding MSE and training-time F1 per step, GRPO vs LaSeR (per model)."""
    models = list(dict.fromkeys(m for m, _ in curves))
    panels = [("reward_mean", "verifier reward"), ("sr_mse", "self-rewarding MSE"), ("sv_f1", "training F1 (r_s > 0.5)")]
    if any("val_reward_mean" in df and df["val_reward_mean"].notna().any() for df in curves.values()):
        panels += [("val_reward_mean", "validation accuracy"), ("val_sv_f1", "validation F1")]
    fig, axes = _grid(len(models), len(panels))
    if not curves:
        _empty(axes[0][0])
    for i, model in enumerate(models):
        for j, (col, title) in enumerate(panels):
            ax = axes[i][j]
            for (m, method), df in curves.items():
                if m == model and col in df and df[col].notna().any():
                    d = df[df[col].notna()]  # validation rows are every few steps only
                    ax.plot(d["step"], d[col], label=method, lw=1.2, marker="o" if col.startswith("val_") else None)
            ax.set(title=f"{model} · {title}", xlabel="step")
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
    return save(fig, stem)


def all_figures(runs, scaling: pd.DataFrame, reliability: pd.DataFrame, curves: dict, out_dir) -> list[Path]:
    """Every figure under results/figures/ (PNG and SVG)."""
    out_dir = Path(out_dir)
    return [*scaling_figure(scaling, out_dir / "scaling"), *histogram_figure(runs, out_dir / "rs_histograms"),
            *reliability_figure(reliability, out_dir / "reliability"),
            *training_figure(curves, out_dir / "training_curves")]
