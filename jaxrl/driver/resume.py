"""What the step-by-step drivers of meta-training share (generations of evolution,
``jaxrl.meta.run``; meta-steps of a meta-gradient, ``jaxrl.rules.run``): the metadata a checkpoint
carries (the spec, steps done, wall time, the table's rows), an exact resume from it, checked
against the spec before anything is touched, and the table written as ``meta.csv``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import jax

import numpy as np

from jaxrl.core.values import ConfigError
from jaxrl.driver import rundir
from jaxrl.driver.checkpoint import CheckpointError, CheckpointStore, first_difference
from jaxrl.driver.spec import versions


def progress_metadata(spec: Mapping[str, Any], count_key: str, done: int, wall_time: float,
                      rows: Mapping[str, list[float]]) -> dict[str, Any]:
    """What a checkpoint records beside the state; ``repr(float)`` parses back to the same bits,
    and as text inf and nan survive JSON too."""
    return {"spec": spec, count_key: done, "wall_time": wall_time,
            "rows": {k: [repr(float(v)) for v in values] for k, values in rows.items()}, "versions": versions()}


def resume_from(checkpoints: Path, state: Any, spec: Mapping[str, Any], *, count_key: str, total: int, unit: str,
           saved_spec: Callable[[Mapping[str, Any]], Mapping[str, Any]] = dict) -> tuple[Any, dict[str, list[float]], int, float]:
    """(state, rows, steps done, wall time) from the newest checkpoint in ``checkpoints``, read
    through a read-only store, so a refused resume changes nothing: ``CheckpointError`` when the
    saved spec (after ``saved_spec``) differs from ``spec``, ``ConfigError`` when it already ran more
    than ``total`` ``unit``."""
    with CheckpointStore(checkpoints) as saved:
        metadata = saved.read_metadata()
        difference = first_difference(saved_spec(metadata.get("spec", {})), spec)
        if difference:
            raise CheckpointError(f"cannot resume {checkpoints.parent}: {difference}")
        state, metadata = saved.restore(jax.eval_shape(lambda: state))
    rows = {k: [float(v) for v in values] for k, values in metadata["rows"].items()}
    done, wall_time = int(metadata[count_key]), float(metadata["wall_time"])
    if done > total:
        raise ConfigError(f"{checkpoints.parent} already ran {done} {unit}; ask for at least that many")
    return state, rows, done, wall_time


def write_table(path: Path, rows: Mapping[str, list[float]], counters: tuple[str, ...]) -> None:
    """``path/meta.csv``: one row per step, the ``counters`` columns as integers."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    for name in counters:
        frame[name] = frame[name].astype(np.int64)
    rundir._atomic_write(path / "meta.csv", lambda p: frame.to_csv(p, index=False))
