"""Statistics over seeds for comparing configurations: mean, interquartile mean and percentile
bootstrap confidence intervals.

The interquartile mean (IQM) and stratified bootstrap intervals follow Agarwal et al., 2021,
"Deep Reinforcement Learning at the Edge of the Statistical Precipice": with a handful of seeds a
point estimate alone misleads, and the IQM is robust to one diverging seed while using more data
than the median.

Every function works along ``axis`` so learning curves ([seeds, steps]) get a band per step in one
call. NaN marks a run that never finished an episode; it is left out (each statistic is over the
finite values only).

>>> import numpy as np
>>> float(iqm(np.array([1.0, 2.0, 3.0, 4.0, 100.0, 5.0, 6.0, 7.0])))  # drops 1, 2 and 7, 100
4.5
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np

# Fixed so a summary recomputed from the same results is the same to the last digit.
BOOTSTRAP_SEED = 0
BOOTSTRAP_RESAMPLES = 2000
# Episodes are many and cheap to resample; more resamples steady the tails of the interval.
NESTED_BOOTSTRAP_RESAMPLES = 10_000


def _finite_sorted(values: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Values moved to the last axis and sorted with NaNs last, plus the finite count per slice."""
    moved = np.moveaxis(np.asarray(values, np.float64), axis, -1)
    return np.sort(moved, axis=-1), np.isfinite(moved).sum(axis=-1)


def mean(values: np.ndarray, axis: int = 0) -> np.ndarray | float:
    """Mean over ``axis`` of the finite values (NaN where there are none)."""
    moved = np.moveaxis(np.asarray(values, np.float64), axis, -1)
    finite = np.isfinite(moved)
    count = finite.sum(axis=-1)
    total = np.where(finite, moved, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return out[()] if out.ndim == 0 else out


def iqm(values: np.ndarray, axis: int = 0) -> np.ndarray | float:
    """Interquartile mean over ``axis``: the mean after dropping the lowest and highest
    ``floor(n / 4)`` of the ``n`` finite values (``scipy.stats.trim_mean(x, 0.25)``). With fewer
    than four values nothing is dropped and it equals the mean."""
    ordered, count = _finite_sorted(values, axis)
    positions = np.arange(ordered.shape[-1])
    cut = count // 4
    # Keep positions [cut, count - cut) of each sorted slice; NaNs sort last so they are outside.
    keep = (positions >= cut[..., None]) & (positions < (count - cut)[..., None])
    kept = keep.sum(axis=-1)
    total = np.where(keep, ordered, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(kept > 0, total / np.maximum(kept, 1), np.nan)
    return out[()] if out.ndim == 0 else out


STATISTICS: dict[str, Callable[..., np.ndarray | float]] = {"mean": mean, "iqm": iqm}


def bootstrap_ci(
    values: np.ndarray,
    statistic: str | Callable[..., np.ndarray | float] = "mean",
    *,
    axis: int = 0,
    confidence: float = 0.95,
    num_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Percentile bootstrap interval of ``statistic`` over ``axis`` (the seeds).

    Seeds are resampled with replacement ``num_resamples`` times with a generator seeded by
    ``seed``; the interval is the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles
    of the statistic over the resamples. Every slice along the other axes uses the same resampled
    seed indices (a curve's band moves together over steps). NaN values are dropped inside each
    resample; a slice with no finite value gets a NaN interval.

    >>> lo, hi = bootstrap_ci(np.array([0.0, 1.0]))   # means of resamples: 0, .5, .5, 1
    >>> float(lo), float(hi)
    (0.0, 1.0)
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    function = STATISTICS[statistic] if isinstance(statistic, str) else statistic
    moved = np.moveaxis(np.asarray(values, np.float64), axis, 0)
    num_seeds = moved.shape[0]
    if num_seeds == 0:
        raise ValueError("bootstrap_ci needs at least one value along the axis")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, num_seeds, size=(num_resamples, num_seeds))
    # [resamples, seeds, ...] -> the statistic over the seed axis of each resample.
    resampled = np.asarray(function(moved[picks], axis=1), np.float64)
    alpha = (1.0 - confidence) / 2.0
    with warnings.catch_warnings():
        # A slice whose every resample is NaN (no finite seed) gets NaN; that is the intent.
        warnings.simplefilter("ignore", RuntimeWarning)
        low = np.nanquantile(resampled, alpha, axis=0)
        high = np.nanquantile(resampled, 1.0 - alpha, axis=0)
    low, high = np.asarray(low), np.asarray(high)
    return (low[()] if low.ndim == 0 else low), (high[()] if high.ndim == 0 else high)


def nested_bootstrap_ci(
    returns: np.ndarray, confidence: float = 0.95, resamples: int = NESTED_BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``returns`` ``[seeds, episodes]``, resampling
    seeds and then episodes within each drawn seed (a two-level bootstrap: training seeds are the
    independent units, so the interval includes seed-to-seed variation; with one seed it is the
    ordinary bootstrap over episodes). Deterministic for a given ``seed``."""
    returns = np.asarray(returns, np.float64)
    num_seeds, num_episodes = returns.shape
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    batch = max(1, 2_000_000 // (num_seeds * num_episodes))  # bounds the index arrays' memory
    for start in range(0, resamples, batch):
        size = min(batch, resamples - start)
        seeds = rng.integers(0, num_seeds, size=(size, num_seeds))
        episodes = rng.integers(0, num_episodes, size=(size, num_seeds, num_episodes))
        means[start : start + size] = returns[seeds[..., None], episodes].mean(axis=(1, 2))
    tail = (1.0 - confidence) / 2.0
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


def summarize(values: np.ndarray) -> dict[str, float]:
    """Mean, IQM, 95% bootstrap interval of the mean, and the number of finite values, of the
    1-D array ``values`` (one entry per seed)."""
    values = np.asarray(values, np.float64)
    low, high = bootstrap_ci(values, "mean")
    return {
        "mean": float(mean(values)),
        "iqm": float(iqm(values)),
        "ci_low": float(low),
        "ci_high": float(high),
        "num_finite": int(np.isfinite(values).sum()),
    }
