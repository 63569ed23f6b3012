"""Where a run's logged rows go: kept on the host for checkpoints and ``metrics.csv``, and
optionally shown as a progress bar, written as TensorBoard events or sent to Weights & Biases.

``MetricsLog`` is the runner's ``progress`` callback. The runner hands it each chunk's rows once,
already reduced on the device and copied to the host in one transfer, so logging never adds a
device-to-host copy per update; every sink here is fed from those host rows.
"""

from __future__ import annotations

import importlib.util
import secrets
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from jaxrl.core.values import ConfigError
from jaxrl.driver.checkpoint import decode_rows, encode_rows


class Sink(Protocol):
    def write(self, steps: np.ndarray, rows: Mapping[str, np.ndarray]) -> None:
        """``steps`` [k] env steps at the end of each row; ``rows`` name -> [runs, k]."""

    def close(self) -> None: ...


class MetricsLog:
    """Every row a run (or a sweep program's runs) has logged, in order, with the env steps each
    row ends at (``log_steps``: one entry per logging window of the run, ``Train.log_steps()``).

    Rows arrive per chunk as ``(env_steps_done, rows)`` and are handed on to the sinks. A resumed
    run starts from the rows saved in its checkpoint (``restore``)."""

    def __init__(self, log_steps: np.ndarray, sinks: Sequence[Sink] = ()):
        self.log_steps = np.asarray(log_steps, np.int64)
        self.sinks = list(sinks)
        self.windows_done = 0
        self._chunks: list[dict[str, np.ndarray]] = []

    def restore(self, saved: Mapping[str, Any], windows_done: int) -> None:
        """Takes the rows of ``to_json`` (from a checkpoint taken after ``windows_done`` windows)."""
        steps = [int(s) for s in saved["steps"]]
        rows = decode_rows(saved["rows"])
        if any(values.shape[1] != len(steps) for values in rows.values()):
            raise ConfigError("the checkpoint's metric rows do not match its steps")
        if steps != self.log_steps[:windows_done].tolist():
            raise ConfigError("the checkpoint's metric rows do not end where its state does")
        self._chunks = [rows] if steps else []
        self.windows_done = windows_done

    def __call__(self, env_steps_done: int, rows: Mapping[str, np.ndarray]) -> None:
        count = next(iter(rows.values())).shape[1]
        steps = self.log_steps[self.windows_done : self.windows_done + count]
        if len(steps) != count or int(steps[-1]) != env_steps_done:
            raise RuntimeError(f"{count} rows ending at {env_steps_done} steps do not follow the {self.windows_done} logged")
        self.windows_done += count
        self._chunks.append({name: np.asarray(values) for name, values in rows.items()})
        for sink in self.sinks:
            sink.write(steps, rows)

    @property
    def steps(self) -> np.ndarray:
        return self.log_steps[: self.windows_done]

    def metrics(self) -> dict[str, np.ndarray]:
        """name -> [runs, rows] over everything logged so far."""
        if not self._chunks:
            return {}
        return {name: np.concatenate([chunk[name] for chunk in self._chunks], axis=1) for name in self._chunks[0]}

    def to_json(self) -> dict[str, Any]:
        """Exact JSON of the rows (NaN as null), for a checkpoint's metadata."""
        return {"steps": [int(s) for s in self.steps], "rows": encode_rows(self.metrics())}

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


class ProgressBar:
    """The one progress bar (tqdm), over environment steps: of one run (``jaxrl train``), or of all
    runs of a sweep. It shows the latest mean return, or with ``best=True`` the best mean return
    of any run so far (a cheap "is anything learning" for a sweep). As a ``MetricsLog`` sink it
    advances by the logged rows; ``scale`` env steps of the bar per env step of a row (the runs a
    sweep program trains at once) and ``offset`` (the steps of the programs before) place them."""

    def __init__(self, total_steps: int, description: str, initial_steps: int = 0, *, best: bool = False):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total_steps, initial=initial_steps, desc=description, unit="step", unit_scale=True, dynamic_ncols=True)
        self.best = best
        self.best_return = -np.inf
        self.scale, self.offset = 1, 0

    def show(self, done: int, returns: np.ndarray | None = None) -> None:
        """Moves the bar to ``done`` steps; ``returns`` are the latest rows' episode returns."""
        finite = np.asarray(returns if returns is not None else [], np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size and self.best:
            self.best_return = max(self.best_return, float(finite.max()))
            self.bar.set_postfix(best_ret=f"{self.best_return:.1f}")
        elif finite.size:
            self.bar.set_postfix(ret=f"{finite.mean():.1f}")
        self.bar.update(done - self.bar.n)

    def write(self, steps: np.ndarray, rows: Mapping[str, np.ndarray]) -> None:
        self.show(self.offset + int(steps[-1]) * self.scale, rows.get("episode_return"))

    def close(self) -> None:
        self.bar.close()


def _scalars(rows: Mapping[str, np.ndarray], column: int) -> dict[str, float]:
    """One row as scalars: the mean over runs under the metric's name, and each run's value
    under ``name/run_i`` when there are several. Windows without a value (NaN) are skipped."""
    out = {}
    for name, values in rows.items():
        column_values = np.asarray(values)[:, column]
        finite = column_values[np.isfinite(column_values)]
        if finite.size:
            out[name] = float(finite.mean())
        if column_values.shape[0] > 1:
            for run, value in enumerate(column_values):
                if np.isfinite(value):
                    out[f"{name}/run_{run}"] = float(value)
    return out


def require_tensorboard() -> None:
    """``ConfigError`` unless tensorboardX can be imported (checked before a run starts)."""
    if importlib.util.find_spec("tensorboardX") is None:
        raise ConfigError("--tensorboard needs the tensorboardX package: pip install 'jaxrl[tensorboard]'")


def require_wandb() -> None:
    """``ConfigError`` unless wandb can be imported (checked before a run starts)."""
    if importlib.util.find_spec("wandb") is None:
        raise ConfigError("--wandb needs the wandb package: pip install 'jaxrl[wandb]' (and `wandb login`)")


class TensorBoardSink:
    """TensorBoard event files in ``logdir``, one scalar per metric and row, x axis env steps.
    A resumed run passes the step it resumes from as ``purge_step``, so TensorBoard hides rows
    that a killed process logged after its last checkpoint (they are logged again)."""

    def __init__(self, logdir: Path, purge_step: int | None = None):
        require_tensorboard()
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(logdir=str(logdir), purge_step=purge_step)

    def write(self, steps: np.ndarray, rows: Mapping[str, np.ndarray]) -> None:
        for column, step in enumerate(steps):
            for name, value in _scalars(rows, column).items():
                self.writer.add_scalar(name, value, int(step))
        self.writer.flush()  # once per chunk, so a killed run keeps what it logged

    def close(self) -> None:
        self.writer.close()


def new_wandb_id() -> str:
    """An id for a new W&B run, saved in checkpoints so a resumed run continues the same one."""
    return secrets.token_hex(4)


class WandbSink:
    """Sends rows to Weights & Biases (project from ``WANDB_PROJECT``, default "jaxrl"); the
    run's files stay inside the run directory."""

    def __init__(self, run_dir: Path, run_id: str, config: Mapping[str, Any]):
        require_wandb()
        import os

        import wandb

        self.wandb = wandb
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "jaxrl"),
            id=run_id,
            resume="allow",
            name=run_dir.name,
            dir=str(run_dir),
            config=dict(config),
        )

    def write(self, steps: np.ndarray, rows: Mapping[str, np.ndarray]) -> None:
        for column, step in enumerate(steps):
            self.run.log(_scalars(rows, column), step=int(step))

    def close(self) -> None:
        self.run.finish()
