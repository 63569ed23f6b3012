"""Plots of a sweep: learning curves with bootstrap bands, a heatmap over a 2-D grid, and the
sensitivity of the final return to each swept setting. They read the sweep's ``results`` and
``summary`` frames (see ``jaxrl.sweeps``), so a sweep loaded back from its CSV files plots the same.
A plot written to a file is drawn on a bare ``matplotlib.figure.Figure`` (no pyplot, no display,
whatever the backend); without a path it goes through pyplot so a notebook shows it inline."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from jaxrl.analysis import stats
from jaxrl.analysis.plotting import return_curves


def _new_figure(path: str | Path | None, **kwargs: Any):
    if path is not None:
        return Figure(**kwargs)
    import matplotlib.pyplot as plt

    return plt.figure(**kwargs)


def _label(row: pd.Series, names: Sequence[str]) -> str:
    parts = []
    for name in names:
        value = row[name]
        parts.append(f"{name}={value:.3g}" if isinstance(value, (float, np.floating)) else f"{name}={value}")
    return ", ".join(parts)


def _finish(fig, path: str | Path | None) -> None:
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)


def curves(
    results: pd.DataFrame,
    summary: pd.DataFrame,
    names: Sequence[str],
    path: str | Path | None = None,
    *,
    title: str = "",
    max_configs: int = 8,
    ax=None,
):
    """Episode return against env steps, one line per configuration: the mean over seeds with a
    95% bootstrap band (``jaxrl.stats.bootstrap_ci``). With more than ``max_configs``
    configurations only the best ``max_configs`` by IQM are drawn (the title says so), since more
    bands than that hide each other."""
    own = ax is None
    if own:
        fig = _new_figure(path, figsize=(7, 4.5), dpi=110)
        ax = fig.add_subplot()
    ranked = summary.assign(_score=summary["iqm"].fillna(-np.inf)).sort_values("_score", ascending=False, kind="stable")
    shown = ranked.head(max_configs)
    colors = colormaps["tab10" if len(shown) <= 10 else "viridis"]
    for rank, (_, row) in enumerate(shown.iterrows()):
        frame = results[results["config_id"] == row["config_id"]]
        table = return_curves(frame)
        values = table.to_numpy(np.float64).T  # [seeds, steps]
        centre = stats.mean(values, axis=0)
        low, high = stats.bootstrap_ci(values, "mean", axis=0)
        color = colors(rank % 10) if len(shown) <= 10 else colors(rank / max(len(shown) - 1, 1))
        ax.plot(table.index, centre, color=color, linewidth=1.8, label=_label(row, names))
        ax.fill_between(table.index, low, high, color=color, alpha=0.18, linewidth=0)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return (mean over seeds, 95% CI)")
    more = f" (best {len(shown)} of {len(summary)} by IQM)" if len(shown) < len(summary) else ""
    ax.set_title(title + more, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=7)
    if own:
        _finish(fig, path)
    return ax


def heatmap(
    summary: pd.DataFrame,
    rows: str,
    columns: str,
    path: str | Path | None = None,
    *,
    title: str = "",
    ax=None,
):
    """Mean final return of every cell of a 2-D grid, each cell annotated with its mean and 95%
    interval; the best cell (highest IQM) is outlined."""
    own = ax is None
    if own:
        size = (1.6 + 1.5 * summary[columns].nunique(), 1.4 + 0.9 * summary[rows].nunique())
        fig = _new_figure(path, figsize=size, dpi=110)
        ax = fig.add_subplot()
    row_values = list(dict.fromkeys(summary[rows]))
    column_values = list(dict.fromkeys(summary[columns]))
    means = np.full((len(row_values), len(column_values)), np.nan)
    text = np.full(means.shape, "", dtype=object)
    scores = np.full(means.shape, -np.inf)
    for _, record in summary.iterrows():
        i, j = row_values.index(record[rows]), column_values.index(record[columns])
        means[i, j] = record["mean"]
        scores[i, j] = record["iqm"] if np.isfinite(record["iqm"]) else -np.inf
        text[i, j] = f"{record['mean']:.1f}\n[{record['ci_low']:.0f}, {record['ci_high']:.0f}]" if np.isfinite(record["mean"]) else "n/a"
    image = ax.imshow(np.ma.masked_invalid(means), cmap="viridis", aspect="auto")
    finite = means[np.isfinite(means)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for (i, j), cell in np.ndenumerate(text):
        dark = np.isfinite(means[i, j]) and means[i, j] < middle
        ax.text(j, i, cell, ha="center", va="center", fontsize=7, color="white" if dark else "black")
    if np.isfinite(scores).any():
        i, j = np.unravel_index(np.argmax(scores), scores.shape)
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    ax.set_xticks(range(len(column_values)), [_tick(v) for v in column_values])
    ax.set_yticks(range(len(row_values)), [_tick(v) for v in row_values])
    ax.set_xlabel(columns)
    ax.set_ylabel(rows)
    ax.set_title(title, fontsize=10)
    ax.figure.colorbar(image, ax=ax, label="final return (mean over seeds)")
    if own:
        _finish(fig, path)
    return ax


def _tick(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, (float, np.floating)) else str(value)


def _numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def sensitivity(
    summary: pd.DataFrame,
    names: Sequence[str],
    path: str | Path | None = None,
    *,
    title: str = "",
    connect: bool = True,
    axes: Sequence[Any] | None = None,
):
    """Final return against the value of each swept setting (one panel per setting), the mean
    over seeds with its 95% interval. For a 1-D grid (``connect``) the points are joined and the
    interval drawn as a band; otherwise (random search, several settings) every configuration is a
    point with an error bar, so the panel shows a marginal view. Settings spanning more than a
    decade of positive numbers (learning rates) get a log axis."""
    own = axes is None
    if own:
        fig = _new_figure(path, figsize=(4.2 * len(names) + 0.6, 3.8), dpi=110)
        axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        frame = summary.copy()
        numeric = _numeric(frame[name])
        if numeric:
            frame = frame.sort_values(name, kind="stable")
            x = frame[name].to_numpy(np.float64)
        else:
            categories = list(dict.fromkeys(frame[name]))
            x = np.asarray([categories.index(v) for v in frame[name]], np.float64)
            ax.set_xticks(range(len(categories)), [str(c) for c in categories])
        mean, low, high = (frame[c].to_numpy(np.float64) for c in ("mean", "ci_low", "ci_high"))
        if connect and len(names) == 1:
            ax.plot(x, mean, "o-", color="tab:blue", label="mean")
            ax.fill_between(x, low, high, color="tab:blue", alpha=0.2, label="95% CI")
            ax.plot(x, frame["iqm"].to_numpy(np.float64), "s", color="tab:orange", markersize=4, label="IQM")
            ax.legend(loc="best", fontsize=7)
        else:
            errors = np.vstack([mean - low, high - mean])
            ax.errorbar(x, mean, yerr=np.where(np.isfinite(errors), errors, 0.0), fmt="o", markersize=4, alpha=0.8, capsize=2)
        if numeric and (x > 0).all() and x.max() / x.min() > 10:
            ax.set_xscale("log")
        ax.set_xlabel(name)
        ax.set_ylabel("final return (mean, 95% CI)")
        ax.grid(alpha=0.3)
    axes[0].figure.suptitle(title, fontsize=10)
    if own:
        _finish(fig, path)
    return axes
