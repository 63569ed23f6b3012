"""Plots a researcher would rather look at than read. No backend is forced: matplotlib picks Agg
on a machine without a display, and notebooks keep their inline figures."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd


def return_curves(frame: pd.DataFrame) -> pd.DataFrame:
    """Episode return per logged step (rows) and seed (columns), from a frame with columns step,
    seed, episode_return. A log window in which no episode ended is NaN in the metrics; here it
    carries the seed's last finished return forward, so that environments whose episodes outlast
    a window (Pendulum: 200 steps, brax: 1000) draw lines rather than scattered points. Steps
    before a seed's first finished episode stay NaN."""
    return frame.pivot_table(index="step", columns="seed", values="episode_return", dropna=False).ffill()


def learning_curve(frame: pd.DataFrame, path: str | Path | None = None, *, title: str = "", ax=None):
    """Episode return against env steps: each seed faint, the mean over seeds bold, and a band of
    one standard deviation across seeds. ``frame`` has columns step, seed, episode_return."""
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    curves = return_curves(frame)
    for seed in curves.columns:
        ax.plot(curves.index, curves[seed], color="tab:blue", alpha=0.25, linewidth=0.8)
    mean, std = curves.mean(axis=1), curves.std(axis=1).fillna(0.0)
    ax.plot(curves.index, mean, color="tab:blue", linewidth=2, label=f"mean of {curves.shape[1]} seeds")
    ax.fill_between(curves.index, mean - std, mean + std, color="tab:blue", alpha=0.2, label="± 1 std")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    if own:
        fig.tight_layout()
        if path is not None:
            fig.savefig(path)
            plt.close(fig)
    return ax
