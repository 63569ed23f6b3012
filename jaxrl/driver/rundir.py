"""Run directories: ``config.json``, ``metrics.csv`` and ``curve.png`` of a training run.

Files are written to a temporary name and renamed, so an interrupted write never leaves a
half-written file in place of a good one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax

from jaxrl.core.environments import plain_overrides
from jaxrl.core.values import ConfigError
from jaxrl.driver.spec import config_dict, versions

if TYPE_CHECKING:
    from jaxrl.driver.training import TrainResult


# Subdirectories a run writes besides its files (see jaxrl.driver.run, and jaxrl.meta.run for
# objective/); --overwrite clears them so the new run's checkpoints and event files do not mix
# with the old run's.
RUN_SUBDIRS = ("checkpoints", "tensorboard", "objective")


def prepare(out: str | os.PathLike, overwrite: bool) -> Path:
    """Resolves the run directory; refuses one that already holds a run (finished, or crashed
    with checkpoints) unless ``overwrite``, which removes the old run's checkpoints and events."""
    path = Path(out).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path} exists and is not a directory")
    if (path / "config.json").exists() and not overwrite:
        raise ConfigError(f"{path} already holds a run; pass --overwrite to replace it or choose another --out")
    if (path / "checkpoints").exists() and not overwrite:
        raise ConfigError(
            f"{path} holds the checkpoints of an unfinished run; pass --resume {out} to continue it, "
            "--overwrite to replace it, or choose another --out"
        )
    if overwrite:
        for name in RUN_SUBDIRS:
            sub = path / name
            if sub.is_symlink():
                sub.unlink()  # the link only, never what it points to
            elif sub.is_dir():
                shutil.rmtree(sub)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")  # keeps the suffix matplotlib reads
    tmp.unlink(missing_ok=True)  # a planted link there would otherwise redirect the write
    write(tmp)
    os.replace(tmp, path)


def run_metadata(result: TrainResult) -> dict[str, Any]:
    return {
        "algorithm": result.algorithm,
        "env": result.env_name,
        "env_overrides": plain_overrides(result.env_name, result.env_overrides),
        "seed": result.seed,
        "num_seeds": len(result.seeds),
        **config_dict(result.config, result.hparams),
        "env_steps": int(result.steps[-1]) if len(result.steps) else 0,
        "final_returns": [None if r != r else float(r) for r in result.final_returns],
        "wall_time_s": round(result.wall_time, 3),
        "compile_time_s": round(result.compile_time, 3),
        "versions": versions(),
        "backend": jax.default_backend(),
    }


def write(result: TrainResult, path: Path) -> None:
    from jaxrl.analysis.plotting import learning_curve

    _atomic_write(path / "config.json", lambda p: p.write_text(json.dumps(run_metadata(result), indent=2) + "\n"))
    frame = result.dataframe()
    _atomic_write(path / "metrics.csv", lambda p: frame.to_csv(p, index=False))
    title = f"{result.algorithm} on {result.env_name}"
    _atomic_write(path / "curve.png", lambda p: learning_curve(frame, p, title=title))
