"""Runs that survive: the one checkpointed-run driver, used by ``jaxrl train`` (``train_run``) and
``jaxrl sweep`` (one program after another), and the loading of a run from its checkpoint.

The host driver executes training in chunks of logging windows; between chunks a ``Checkpointer``
copies the run states (network parameters, optimizer states, env states with their normaliser
statistics and parameters, replay buffers, PRNG keys) and the array-valued hyperparameters to
the host and hands them to a ``CheckpointStore`` together with JSON metadata: what was trained
(``jaxrl.driver.spec``), how far, with which versions, and every metric row logged so far. A
resume restores the newest checkpoint and runs the remaining chunks; because chunks are windows
of one pure program, the resumed run's rows are bitwise the uninterrupted one's.

Layout of a run directory::

    config.json  metrics.csv  curve.png     # written when the run completes (jaxrl.driver.rundir)
    checkpoints/<env steps>/                # the newest --keep-checkpoints (jaxrl.driver.checkpoint)
    tensorboard/                            # with tensorboard=True
    eval.json  episode.gif                  # from `jaxrl eval`
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import jax
import numpy as np

from jaxrl.core.contract import Algorithm, ConfigError
from jaxrl.core.environments import plain_overrides
from jaxrl.core.train import DEFAULT_FINAL_FRACTION, Train, build
from jaxrl.driver import rundir
from jaxrl.driver.checkpoint import CheckpointError, CheckpointStore
from jaxrl.driver.loggers import MetricsLog, ProgressBar, TensorBoardSink, WandbSink, new_wandb_id, require_tensorboard, require_wandb
from jaxrl.driver.runner import default_chunk_windows, init_runs, run_keys
from jaxrl.driver.spec import (
    METADATA_FORMAT,
    array_fields,
    check_resumable,
    config_dict,
    json_normal,
    spec_from_metadata,
    versions,
    warn_if_other_jax,
)
from jaxrl.driver.training import TrainResult, run_seeds

CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"
DEFAULT_CHECKPOINTS_PER_RUN = 10
# What must match for a checkpoint to be resumed: anything that changes the compiled program,
# the random streams or the logged rows. Checked in this order, so the error names the most
# basic difference.
RESUME_FIELDS = ("algorithm", "env", "env_overrides", "num_seeds", "seed", "config", "hparams", "log_every", "final_fraction")


# --------------------------------------------------------------------------------------------
# When to checkpoint, and the hook that does it


@dataclass(frozen=True)
class CheckpointPlan:
    """Checkpoint every ``every_windows`` logging windows (``None``: only the final state), with
    chunks of ``chunk_windows`` windows, so that every checkpoint falls on a chunk boundary."""

    every_windows: int | None
    chunk_windows: int


def plan_checkpoints(num_logs: int, log_every: int, steps_per_update: int, checkpoint_every: int | None) -> CheckpointPlan:
    """Turns ``checkpoint_every`` env steps (per run; ``None``: about ten checkpoints a run, 0:
    only the final one) into a whole number of log windows and picks a chunk length dividing it,
    as close to the runner's default chunk length as possible. When only much shorter chunks
    would divide it, the interval is rounded to a multiple of the default chunk instead."""
    if checkpoint_every is not None and checkpoint_every < 0:
        raise ConfigError(f"checkpoint_every must be >= 0 env steps, got {checkpoint_every}")
    chunk = default_chunk_windows(num_logs)
    if checkpoint_every == 0:
        return CheckpointPlan(None, chunk)
    if checkpoint_every is None:
        every = max(1, math.ceil(num_logs / DEFAULT_CHECKPOINTS_PER_RUN))
    else:
        every = max(1, round(checkpoint_every / (steps_per_update * log_every)))
    if every <= chunk:
        return CheckpointPlan(every, every)
    divisor = max(d for d in range(1, chunk + 1) if every % d == 0)
    if 2 * divisor >= chunk:
        return CheckpointPlan(every, divisor)
    return CheckpointPlan(round(every / chunk) * chunk, chunk)


class Checkpointer:
    """``execute``'s ``on_chunk`` hook: saves the run states, with the array-valued
    hyperparameters, every ``plan.every_windows`` windows and at the end of the program, as
    checkpoint ``step_of(windows_done)`` with ``metadata(windows_done)``."""

    def __init__(
        self,
        store: CheckpointStore,
        plan: CheckpointPlan,
        num_logs: int,
        hparams: Any,
        metadata: Callable[[int], dict[str, Any]],
        step_of: Callable[[int], int],
        windows_done: int = 0,
    ):
        self.store, self.plan, self.num_logs = store, plan, num_logs
        self.arrays = array_fields(hparams)
        self.metadata, self.step_of = metadata, step_of
        self.last_saved = windows_done

    def __call__(self, state: Any, windows_done: int) -> None:
        every = self.plan.every_windows
        if windows_done == self.num_logs or every is not None and windows_done - self.last_saved >= every:
            self.store.save(self.step_of(windows_done), {"hparams": self.arrays, "run": state}, self.metadata(windows_done))
            self.last_saved = windows_done


def state_template(train_fn: Train, keys: jax.Array, hparams: Any, hparam_axes: Any) -> Any:
    """What a checkpoint of these runs holds, as shapes: the array-valued hyperparameters and the
    run states (traced from ``init``, never run)."""
    run = jax.eval_shape(init_runs(train_fn.program, hparam_axes), keys, hparams, train_fn.default_env_params)
    return {"hparams": jax.eval_shape(lambda: array_fields(hparams)), "run": run}


# --------------------------------------------------------------------------------------------
# Training into a run directory


def run_spec(train_fn: Train, *, seed: int, num_seeds: int) -> dict[str, Any]:
    """The static description of a training run, as saved in each of its checkpoints."""
    return json_normal(
        {
            "format": METADATA_FORMAT,
            "kind": "train",
            "algorithm": train_fn.algorithm.name,
            "env": train_fn.env_name,
            "env_overrides": plain_overrides(train_fn.env_name, train_fn.env_overrides),
            "seed": seed,
            "num_seeds": num_seeds,
            "seeds": list(range(num_seeds)),
            **config_dict(train_fn.config, train_fn.hparams),
            "log_every": train_fn.log_every,
            "final_fraction": train_fn.final_fraction,
            "num_logs": train_fn.num_logs,
            "num_updates": train_fn.num_updates,
            "steps_per_update": train_fn.steps_per_update,
        }
    )


def existing_run_dir(run_dir: str | Path) -> Path:
    """The resolved path of a run directory that holds checkpoints; ``CheckpointError`` otherwise.
    Creates nothing."""
    path = Path(run_dir).expanduser().resolve()
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a run directory")
    checkpoints = path / CHECKPOINTS
    if checkpoints.is_symlink() or not checkpoints.is_dir():
        raise CheckpointError(f"{path} has no checkpoints to load ({CHECKPOINTS}/ is missing)")
    return path


def _metadata_int(metadata: Mapping[str, Any], name: str, upper: int | None = None) -> int:
    value = metadata.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or upper is not None and value > upper:
        raise CheckpointError(f"the checkpoint's {name} is not an integer in range")
    return value


def train_run(
    algorithm: str | Algorithm,
    env: str,
    run_dir: str | Path,
    *,
    overrides: Mapping[str, Any] | None = None,
    env_overrides: Mapping[str, Any] | None = None,
    seed: int = 0,
    num_seeds: int = 1,
    log_every: int | None = None,
    checkpoint_every: int | None = None,
    keep_checkpoints: int = 2,
    resume: bool = False,
    overwrite: bool = False,
    tensorboard: bool = False,
    wandb: bool = False,
    progress: bool = False,
    final_fraction: float = DEFAULT_FINAL_FRACTION,
) -> TrainResult:
    """Trains ``num_seeds`` runs of one configuration into ``run_dir``, checkpointing every
    ``checkpoint_every`` env steps per run (see ``plan_checkpoints``) and at the end, keeping the
    newest ``keep_checkpoints``. Writes ``config.json``, ``metrics.csv`` and ``curve.png`` on
    completion.

    With ``resume=True`` the run continues from its newest checkpoint; the arguments must describe
    the same run (algorithm, env and overrides, seeds, config, hyperparameters, ``log_every``,
    ``final_fraction``),
    else ``CheckpointError`` names the first difference and nothing on disk changes.
    Without it, a directory that already holds a run is refused unless ``overwrite``.

    >>> train_run("ppo", "CartPole-v1", "runs/cartpole", overrides={"total_steps": 20_000})  # doctest: +SKIP
    >>> train_run("ppo", "CartPole-v1", "runs/cartpole", overrides={"total_steps": 20_000}, resume=True)  # doctest: +SKIP
    """
    if isinstance(num_seeds, bool) or not isinstance(num_seeds, (int, np.integer)) or num_seeds < 1:
        raise ConfigError(f"num_seeds must be an integer >= 1, got {num_seeds!r}")
    if keep_checkpoints < 1:
        raise ConfigError(f"keep_checkpoints must be >= 1, got {keep_checkpoints}")
    if resume and overwrite:
        raise ConfigError("resume continues a run in place and cannot be combined with overwrite")
    train_fn = build(algorithm, env, overrides=overrides, env_overrides=env_overrides, log_every=log_every,
                     final_fraction=final_fraction)
    spec = run_spec(train_fn, seed=seed, num_seeds=num_seeds)
    if tensorboard:
        require_tensorboard()
    if wandb:
        require_wandb()
    plan = plan_checkpoints(train_fn.num_logs, train_fn.log_every, train_fn.steps_per_update, checkpoint_every)
    keys = run_keys(seed, np.arange(num_seeds))
    hparams, axes = train_fn.default_hparams, jax.tree.map(lambda _: None, train_fn.default_hparams)

    state, saved = None, None
    if resume:
        path = existing_run_dir(run_dir)
        with CheckpointStore(path / CHECKPOINTS) as reader:
            step = reader.latest_step()
            check_resumable(path, step, reader.read_metadata(step), spec, RESUME_FIELDS, "training")
            restored, saved = reader.restore(state_template(train_fn, keys, hparams, axes), step)
        state = restored["run"]
        if train_fn.log_steps()[_metadata_int(saved, "windows_done", train_fn.num_logs) - 1] != step:
            raise CheckpointError(f"cannot resume {path}: checkpoint {step} disagrees with its own progress metadata")
        if not isinstance(saved.get("metrics"), dict):
            raise CheckpointError(f"cannot resume {path}: checkpoint {step} holds no metric rows")
        warn_if_other_jax(saved, stacklevel=3)
    else:
        path = rundir.prepare(run_dir, overwrite)
    windows_done = saved["windows_done"] if saved else 0
    log_steps = train_fn.log_steps()
    steps_done = int(log_steps[windows_done - 1]) if windows_done else 0
    wandb_id = (saved or {}).get("wandb_id") or new_wandb_id()

    log = MetricsLog(log_steps)
    if progress:
        log.sinks.append(ProgressBar(train_fn.total_env_steps, f"{train_fn.algorithm.name} {env}", steps_done))
    if tensorboard:
        if (path / TENSORBOARD).is_symlink():
            raise ConfigError(f"{path / TENSORBOARD} is a symbolic link; refusing to write event files through it")
        log.sinks.append(TensorBoardSink(path / TENSORBOARD, purge_step=steps_done if resume else None))
    if wandb:
        log.sinks.append(WandbSink(path, wandb_id, spec))
    if saved:
        log.restore(saved["metrics"], windows_done)

    def metadata(done: int) -> dict[str, Any]:
        return {
            **spec,
            "windows_done": done,
            "updates_done": min(done * train_fn.log_every, train_fn.num_updates),
            "env_steps_done": int(log_steps[done - 1]),
            "versions": versions(),
            "backend": jax.default_backend(),
            "wandb_id": wandb_id,
            "metrics": log.to_json(),
        }

    store = CheckpointStore(path / CHECKPOINTS, keep=keep_checkpoints, writable=True)
    checkpointer = Checkpointer(store, plan, train_fn.num_logs, hparams, metadata, lambda done: int(log_steps[done - 1]), windows_done)
    try:
        output = run_seeds(
            train_fn, seed=seed, num_seeds=num_seeds, chunk_windows=plan.chunk_windows, on_rows=log,
            on_chunk=checkpointer, state=state, start_window=windows_done,
            warm_imports=("orbax.checkpoint", "matplotlib.pyplot", "jaxrl.analysis.plotting"),  # checkpoint, curve.png
        )
    finally:
        store.close()  # lets a started save finish even when training failed
        log.close()
    result = TrainResult(
        algorithm=train_fn.algorithm.name,
        env_name=env,
        config=train_fn.config,
        hparams=train_fn.hparams,
        seeds=list(range(num_seeds)),
        seed=seed,
        metrics=log.metrics(),
        steps=log.steps,
        state=output.state,
        train=train_fn,
        env_overrides=dict(train_fn.env_overrides),
        wall_time=output.wall_time,
        compile_time=output.compile_time,
    )
    rundir.write(result, path)
    return result


# --------------------------------------------------------------------------------------------
# Loading a run for evaluation and deployment


@dataclass
class LoadedRun:
    """A run rebuilt from one checkpoint: its training function and state (leading run axis)."""

    path: Path
    step: int  # env steps per run the checkpoint was taken at
    metadata: dict[str, Any]
    train: Train
    state: Any
    seeds: list[int]

    algorithm = property(lambda self: self.train.algorithm)
    env_name = property(lambda self: self.train.env_name)
    env_overrides = property(lambda self: self.train.env_overrides)
    config = property(lambda self: self.train.config)
    hparams = property(lambda self: self.train.default_hparams)

    def policy_params(self, seed_index: int | None = None) -> Any:
        """What ``train.act`` needs (weights, observation-normaliser statistics): of every run
        (leading axis) or of one."""
        params = self.train.policy_params(self.state)
        if seed_index is None:
            return params
        if not 0 <= seed_index < len(self.seeds):
            raise ConfigError(f"seed index {seed_index} is out of range: the run has {len(self.seeds)} seeds")
        return jax.tree.map(lambda x: x[seed_index], params)


def load_run(run_dir: str | Path, step: int | None = None) -> LoadedRun:
    """Rebuilds the run in ``run_dir`` from its checkpoint ``step`` (default: the newest), using
    only what the checkpoint holds (array-valued hyperparameters included). Raises
    ``CheckpointError`` for a missing, corrupt or inconsistent checkpoint; reads and changes
    nothing else."""
    path = existing_run_dir(run_dir)
    with CheckpointStore(path / CHECKPOINTS) as reader:
        step = reader.latest_step() if step is None else step
        metadata = reader.read_metadata(step)
        algo, config, hparams = spec_from_metadata(metadata)
        env_name, env_overrides = metadata.get("env"), metadata.get("env_overrides", {})
        if not isinstance(env_name, str) or not isinstance(env_overrides, dict):
            raise CheckpointError(f"checkpoint {step} in {path} names no environment")
        num_seeds = _metadata_int(metadata, "num_seeds")
        seed = _metadata_int(metadata, "seed")
        # Array-valued hyperparameters are shapes in the metadata; zeros stand in for them until
        # the checkpoint's arrays are read.
        placeholder = jax.tree.map(lambda x: np.zeros(x.shape, x.dtype) if isinstance(x, jax.ShapeDtypeStruct) else x, hparams)
        try:
            train_fn = build(algo, env_name, config=config, hparams=placeholder, env_overrides=env_overrides, log_every=metadata.get("log_every"))
        except ConfigError as error:
            raise CheckpointError(f"checkpoint {step} in {path} describes an invalid run: {error}") from None
        keys = run_keys(seed, np.arange(num_seeds))
        axes = jax.tree.map(lambda _: None, train_fn.default_hparams)
        restored, metadata = reader.restore(state_template(train_fn, keys, train_fn.default_hparams, axes), step)
    train_fn = build(algo, env_name, config=config, hparams=dataclasses.replace(placeholder, **restored["hparams"]),
                     env_overrides=env_overrides, log_every=metadata.get("log_every"))
    return LoadedRun(path=path, step=step, metadata=metadata, train=train_fn, state=restored["run"], seeds=list(range(num_seeds)))
