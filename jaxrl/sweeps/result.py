"""What a sweep returns and writes: the tidy results (one row per configuration x seed x logged
step), the per-configuration summary (mean, IQM and 95% bootstrap interval of the final return),
the best configuration, plots and the run directory's files."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import jax
import numpy as np
import pandas as pd

from jaxrl.analysis import stats
from jaxrl.sweeps.plan import Group, SweepPlan, display, label


def tidy(p: SweepPlan, group: Group, metrics: dict[str, np.ndarray], steps: np.ndarray) -> pd.DataFrame:
    """One row per (configuration, seed, logged step) of one group."""
    num_runs, num_logs = metrics["episode_return"].shape
    config_ids = np.repeat(np.asarray(group.config_ids), p.seeds)
    frame: dict[str, Any] = {"config_id": np.repeat(config_ids, num_logs)}
    for name in p.names:
        column = [display(p.values[c][name]) for c in config_ids]
        numeric = name not in p.structural and not isinstance(column[0], str)  # arrays show as labels
        frame[name] = np.repeat(np.asarray(column, dtype=np.float64 if numeric else object), num_logs)
    frame["seed"] = np.repeat(np.tile(np.arange(p.seeds), len(group.config_ids)), num_logs)
    frame["step"] = np.tile(steps, num_runs)
    order = ["episode_return", "episode_length"] + sorted(k for k in metrics if k not in ("episode_return", "episode_length"))
    for name in order:
        # A metric named like a swept setting (PPO logs the annealed ``lr``) keeps a suffix, so the
        # setting's column holds the swept value.
        frame[f"{name}_logged" if name in frame else name] = metrics[name].reshape(-1)
    out = pd.DataFrame(frame)
    for name in p.structural:
        out[name] = pd.Series(out[name].tolist(), dtype=_column_dtype(out[name].tolist()))
    return out


def _column_dtype(values: list[Any]) -> Any:
    if all(isinstance(v, (bool, np.bool_)) for v in values):
        return bool
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        return np.int64
    if all(isinstance(v, (int, float, np.number)) for v in values):
        return np.float64
    return object


def summarize(names: Sequence[str], values: Sequence[Mapping[str, Any]], final_returns: np.ndarray) -> pd.DataFrame:
    """One row per configuration: its swept values, then mean, IQM and the 95% bootstrap interval
    of the mean of the final return over seeds (``jaxrl.analysis.stats``), and how many seeds finished an
    episode."""
    rows = []
    for config_id, (settings, finals) in enumerate(zip(values, final_returns)):
        row = {"config_id": config_id, **{n: display(settings[n]) for n in names}}
        row.update(stats.summarize(finals) if np.isfinite(finals).any() else
                   {"mean": np.nan, "iqm": np.nan, "ci_low": np.nan, "ci_high": np.nan, "num_finite": 0})
        row["num_seeds"] = int(final_returns.shape[1])
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class SweepResult:
    """What a sweep returns. ``results`` is tidy (one row per configuration x seed x logged step:
    config_id, one column per swept setting, seed, step, episode_return, losses...); ``summary``
    has one row per configuration (mean, iqm, ci_low, ci_high of the final return over seeds)."""

    algorithm: str
    env_name: str
    kind: str
    names: list[str]
    structural: list[str]
    configs: list[dict[str, Any]]
    seeds: int
    seed: int
    results: pd.DataFrame
    summary: pd.DataFrame
    final_returns: np.ndarray  # [configs, seeds]
    num_compilations: int  # programs compiled for this sweep (one per new structural group)
    num_traces: int  # runner.compile_count() delta: an init and a chunk trace per compilation
    num_devices: int
    wall_time: float
    compile_time: float
    base: dict[str, Any] = field(default_factory=dict)  # config and hparams the sweep starts from
    overrides: dict[str, Any] = field(default_factory=dict)
    env_overrides: dict[str, Any] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def best_config_id(self) -> int | None:
        """The configuration with the highest IQM of final returns over seeds (robust to one
        diverging seed; equal to the mean with fewer than four seeds). None if no run finished
        an episode."""
        scores = self.summary["iqm"].to_numpy(np.float64)
        if not np.isfinite(scores).any():
            return None
        return int(np.nanargmax(scores))

    @property
    def best(self) -> dict[str, Any] | None:
        """The best configuration's swept values (pass them as ``overrides`` to ``jaxrl.train``)."""
        best = self.best_config_id
        return None if best is None else dict(self.configs[best])

    def summary_line(self) -> str:
        best = self.best_config_id
        if best is None:
            return f"{len(self.configs)} configurations x {self.seeds} seeds: no episode finished"
        row = self.summary.iloc[best]
        return (
            f"best of {len(self.configs)} configurations x {self.seeds} seeds: {label(self.configs[best])} "
            f"(config {best}): final return {row['mean']:.1f} [95% CI {row['ci_low']:.1f}, {row['ci_high']:.1f}], "
            f"IQM {row['iqm']:.1f}"
        )

    def plot_curves(self, path: str | Path | None = None, **kwargs: Any):
        """Learning curves, one per configuration (the best few when there are many), mean over
        seeds with a 95% bootstrap band."""
        from jaxrl.sweeps import plots

        return plots.curves(self.results, self.summary, self.names, path, title=self._title(), **kwargs)

    def plot_heatmap(self, path: str | Path | None = None, **kwargs: Any):
        """Mean final return over a 2-D grid (rows: the first swept setting)."""
        from jaxrl.sweeps import plots

        if len(self.names) != 2:
            raise ValueError(f"a heatmap needs exactly two swept settings, this sweep has {len(self.names)}")
        return plots.heatmap(self.summary, self.names[0], self.names[1], path, title=self._title(), **kwargs)

    def plot_sensitivity(self, path: str | Path | None = None, **kwargs: Any):
        """Final return against each swept setting's value, with 95% intervals."""
        from jaxrl.sweeps import plots

        return plots.sensitivity(self.summary, self.names, path, title=self._title(), connect=self.kind == "grid", **kwargs)

    def _title(self) -> str:
        return f"{self.algorithm} on {self.env_name}: {len(self.configs)} configs x {self.seeds} seeds"

    def metadata(self) -> dict[str, Any]:
        """JSON-ready description of the sweep (config.json)."""
        from jaxrl.driver.spec import versions

        def plain(value: Any) -> Any:
            if isinstance(value, tuple):
                return list(value)
            if isinstance(value, (np.floating, float)):
                return None if value != value else float(value)
            if isinstance(value, np.integer):
                return int(value)
            return display(value)

        best = self.best_config_id
        return {
            "kind": "sweep",
            "algorithm": self.algorithm,
            "env": self.env_name,
            "env_overrides": self.env_overrides,
            "overrides": {k: plain(v) for k, v in self.overrides.items()},
            "search": self.kind,
            "spec": self.spec,
            "swept": self.names,
            "structural": self.structural,
            "seed": self.seed,
            "seeds": self.seeds,
            "configs": [{k: plain(v) for k, v in c.items()} for c in self.configs],
            "best_config_id": best,
            "best": None if best is None else {k: plain(v) for k, v in self.configs[best].items()},
            "base": self.base,
            "num_runs": len(self.configs) * self.seeds,
            "num_compilations": self.num_compilations,
            "num_devices": self.num_devices,
            "wall_time_s": round(self.wall_time, 3),
            "compile_time_s": round(self.compile_time, 3),
            "versions": versions(),
            "backend": jax.default_backend(),
        }

    def write(self, path: str | Path) -> list[Path]:
        """Writes config.json, results.csv, summary.csv, curves.png and heatmap.png (2-D grid) or
        sensitivity.png (otherwise) into the directory ``path``; returns the files written. On
        several hosts only process 0 writes."""
        from jaxrl.driver.rundir import _atomic_write

        path = Path(path)
        if jax.process_index() != 0:
            return []
        path.mkdir(parents=True, exist_ok=True)
        written = [path / "config.json", path / "results.csv", path / "summary.csv", path / "curves.png"]
        text = json.dumps(self.metadata(), indent=2, default=_json_default) + "\n"
        _atomic_write(written[0], lambda f: f.write_text(text))
        _atomic_write(written[1], lambda f: self.results.to_csv(f, index=False))
        _atomic_write(written[2], lambda f: self.summary.to_csv(f, index=False))
        _atomic_write(written[3], lambda f: self.plot_curves(f))
        if self.kind == "grid" and len(self.names) == 2:
            written.append(path / "heatmap.png")
            _atomic_write(written[-1], lambda f: self.plot_heatmap(f))
        else:
            written.append(path / "sensitivity.png")
            _atomic_write(written[-1], lambda f: self.plot_sensitivity(f))
        return written


def _json_default(value: Any) -> Any:
    """numpy scalars and tuples in specs and settings, as JSON numbers and lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    return str(value)
