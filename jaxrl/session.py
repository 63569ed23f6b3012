"""Runs that survive: a training run that lives in a run directory, saves its whole state every
so many env steps, and continues after a crash as if it had never stopped.

The runner executes training in chunks; between chunks ``train_run`` copies the run state (network
parameters, optimiser state, env states with their normaliser statistics, PRNG keys) to the host
and hands it to a ``CheckpointStore`` together with JSON metadata: what was trained (algorithm,
config, hyperparameters, env and its overrides, seeds), how far (updates, env steps), with which
versions, and every metric row logged so far. ``train_run(..., resume=True)`` restores the newest
checkpoint and runs the remaining chunks; because a chunked run computes exactly what a single
call would, the resumed run's ``metrics.csv`` is bitwise the uninterrupted one's.

Layout of a run directory::

    config.json  metrics.csv  curve.png     # written when the run completes (jaxrl.rundir)
    checkpoints/<env steps>/                # the newest --keep-checkpoints, see jaxrl.checkpoint
    tensorboard/                            # with tensorboard=True
    eval.json  episode.gif                  # from `jaxrl eval`

``load_run`` rebuilds a run (agent and state) from its newest checkpoint alone; evaluation and
``jaxrl.load_policy`` use it. Sweeps reuse the same pieces: ``CheckpointStore`` for any state
pytree with metadata, ``first_difference`` to refuse an incompatible resume, ``MetricsLog`` rows.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import typing
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import jax
import numpy as np

from jaxrl import rundir
from jaxrl.algorithms.base import Agent, Algorithm, ConfigError, get_algorithm
from jaxrl.checkpoint import CheckpointError, CheckpointStore, first_difference
from jaxrl.loggers import MetricsLog, ProgressBar, TensorBoardSink, WandbSink, new_wandb_id, require_tensorboard, require_wandb
from jaxrl.runner import (
    TrainResult,
    build_agent,
    config_dict,
    default_log_every,
    default_logs_per_chunk,
    resolve,
    run_keys,
    to_hparams,
    train,
)

CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"
METADATA_FORMAT = 1
DEFAULT_CHECKPOINTS_PER_RUN = 10
# What must match for a checkpoint to be resumed: anything that changes the compiled program,
# the random streams or the logged rows. Checked in this order, so the error names the most
# basic difference.
RESUME_FIELDS = ("algorithm", "env", "env_overrides", "num_seeds", "seed", "config", "hparams", "log_every")


# --------------------------------------------------------------------------------------------
# When to checkpoint


@dataclass(frozen=True)
class CheckpointPlan:
    """Checkpoint every ``every_updates`` updates (``None``: only the final state), with chunks of
    ``logs_per_chunk`` log windows, so that every checkpoint falls on a chunk boundary."""

    every_updates: int | None
    logs_per_chunk: int


def plan_checkpoints(num_updates: int, log_every: int, steps_per_update: int, checkpoint_every: int | None) -> CheckpointPlan:
    """Turns ``checkpoint_every`` env steps (per run; ``None``: about ten checkpoints a run, 0:
    only the final one) into a whole number of log windows and picks a chunk length dividing it,
    as close to the runner's default chunk length as possible. When only much shorter chunks
    would divide it, the interval is rounded to a multiple of the default chunk instead."""
    if checkpoint_every is not None and checkpoint_every < 0:
        raise ConfigError(f"checkpoint_every must be >= 0 env steps, got {checkpoint_every}")
    num_logs = math.ceil(num_updates / log_every)
    chunk_logs = default_logs_per_chunk(num_logs)
    if checkpoint_every == 0:
        return CheckpointPlan(None, chunk_logs)
    if checkpoint_every is None:
        every_logs = max(1, math.ceil(num_logs / DEFAULT_CHECKPOINTS_PER_RUN))
    else:
        every_logs = max(1, round(checkpoint_every / (steps_per_update * log_every)))
    if every_logs <= chunk_logs:
        return CheckpointPlan(every_logs * log_every, every_logs)
    divisor = max(d for d in range(1, chunk_logs + 1) if every_logs % d == 0)
    if 2 * divisor >= chunk_logs:
        return CheckpointPlan(every_logs * log_every, divisor)
    every_logs = round(every_logs / chunk_logs) * chunk_logs
    return CheckpointPlan(every_logs * log_every, chunk_logs)


# --------------------------------------------------------------------------------------------
# Metadata: what a run is, as JSON


def _json(value: Any) -> Any:
    """JSON-normal form (tuples become lists, numpy scalars Python numbers), so a freshly built
    spec compares equal to one read back from a checkpoint."""
    return json.loads(json.dumps(value, default=lambda x: np.asarray(x).tolist()))


def run_spec(
    algorithm: str,
    env_name: str,
    env_overrides: Mapping[str, Any],
    config: Any,
    hparams: Any,
    *,
    seed: int,
    num_seeds: int,
    log_every: int,
    num_updates: int,
    steps_per_update: int,
) -> dict[str, Any]:
    """The static description of a training run, as saved in each of its checkpoints."""
    return _json(
        {
            "format": METADATA_FORMAT,
            "kind": "train",
            "algorithm": algorithm,
            "env": env_name,
            "env_overrides": dict(env_overrides),
            "seed": seed,
            "num_seeds": num_seeds,
            "seeds": list(range(num_seeds)),
            **config_dict(config, hparams),
            "log_every": log_every,
            "num_updates": num_updates,
            "steps_per_update": steps_per_update,
        }
    )


def versions() -> dict[str, str]:
    from jaxrl import __version__

    import orbax.checkpoint as ocp

    return {"jaxrl": __version__, "jax": jax.__version__, "orbax": ocp.__version__, "python": platform.python_version()}


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """A config value read from JSON, checked against its field's type (no eval, no pickle)."""
    if typing.get_origin(annotation) is tuple:
        (item_type, *_rest) = typing.get_args(annotation)
        if not isinstance(value, list):
            raise CheckpointError(f"{where} should be a list in the checkpoint, got {_json_type(value)}")
        return tuple(_coerce(v, item_type, where) for v in value)
    if annotation is bool:
        ok = isinstance(value, bool)
    elif annotation is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif annotation is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif annotation is str:
        ok = isinstance(value, str)
    else:
        raise CheckpointError(f"{where} has a type the checkpoint format does not support ({annotation})")
    if not ok:
        raise CheckpointError(f"{where} should be {annotation.__name__} in the checkpoint, got {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    return type(value).__name__


def _number_tree(value: Any, where: str) -> Any:
    if isinstance(value, list):
        return np.asarray([_number_tree(v, where) for v in value], np.float32)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise CheckpointError(f"{where} should be a number in the checkpoint, got {_json_type(value)}")


def spec_from_metadata(metadata: Mapping[str, Any]) -> tuple[Algorithm, Any, Any]:
    """The algorithm, config and hyperparameters a checkpoint's metadata describes, every value
    type-checked against the algorithm's dataclasses."""
    if metadata.get("format") != METADATA_FORMAT or metadata.get("kind") != "train":
        raise CheckpointError(
            f"not a training checkpoint of this kit (format {metadata.get('format')!r}, kind {metadata.get('kind')!r})"
        )
    name = metadata.get("algorithm")
    if not isinstance(name, str):
        raise CheckpointError("the checkpoint names no algorithm")
    algo = get_algorithm(name)
    saved_config, saved_hparams = metadata.get("config"), metadata.get("hparams")
    if not isinstance(saved_config, dict) or not isinstance(saved_hparams, dict):
        raise CheckpointError("the checkpoint has no config or hyperparameters")
    config_fields, hparam_fields = algo.field_names()
    for saved, fields, what in ((saved_config, config_fields, "config"), (saved_hparams, hparam_fields, "hparams")):
        difference = first_difference(sorted(saved), sorted(fields), what)
        if difference:
            raise CheckpointError(f"the checkpoint's {what} fields are not {algo.name}'s: {difference}")
    hints = typing.get_type_hints(algo.config_type)
    config = algo.config_type(**{k: _coerce(saved_config[k], hints[k], f"config.{k}") for k in config_fields})
    hparams = algo.hparams_type(**{k: _number_tree(saved_hparams[k], f"hparams.{k}") for k in hparam_fields})
    return algo, config, hparams


def _metadata_int(metadata: Mapping[str, Any], name: str) -> int:
    value = metadata.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise CheckpointError(f"the checkpoint's {name} is not a non-negative integer")
    return value


def _metadata_str(metadata: Mapping[str, Any], name: str) -> str:
    value = metadata.get(name)
    if not isinstance(value, str):
        raise CheckpointError(f"the checkpoint's {name} is not a string")
    return value


def _metadata_env_overrides(metadata: Mapping[str, Any]) -> dict[str, Any]:
    value = metadata.get("env_overrides", {})
    if not isinstance(value, dict) or not all(isinstance(v, (int, float, str, bool)) for v in value.values()):
        raise CheckpointError("the checkpoint's env_overrides are not a mapping of plain values")
    return dict(value)


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


def _init_template(agent: Agent, seed: int, num_seeds: int, hparams: Any) -> Any:
    """The run state's structure, shapes and dtypes, without running (or compiling) init."""
    return jax.eval_shape(
        jax.vmap(agent.init, in_axes=(0, None)), run_keys(seed, np.arange(num_seeds)), to_hparams(hparams)
    )


# --------------------------------------------------------------------------------------------
# Training into a run directory


def train_run(
    algorithm: str,
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
) -> TrainResult:
    """Trains ``num_seeds`` runs of one configuration into ``run_dir``, checkpointing every
    ``checkpoint_every`` env steps per run (see ``plan_checkpoints``) and at the end, keeping the
    newest ``keep_checkpoints``. Writes ``config.json``, ``metrics.csv`` and ``curve.png`` on
    completion.

    With ``resume=True`` the run continues from its newest checkpoint; the arguments must describe
    the same run (algorithm, env and overrides, seeds, config, hyperparameters, ``log_every``),
    else ``CheckpointError`` names the first difference and nothing on disk changes.
    Without it, a directory that already holds a run is refused unless ``overwrite``.

    >>> train_run("ppo", "CartPole-v1", "runs/cartpole", overrides={"total_steps": 20_000})  # doctest: +SKIP
    >>> train_run("ppo", "CartPole-v1", "runs/cartpole", overrides={"total_steps": 20_000}, resume=True)  # doctest: +SKIP
    """
    if num_seeds < 1:
        raise ConfigError(f"num_seeds must be >= 1, got {num_seeds}")
    if keep_checkpoints < 1:
        raise ConfigError(f"keep_checkpoints must be >= 1, got {keep_checkpoints}")
    if log_every is not None and log_every < 1:
        raise ConfigError(f"log_every must be >= 1, got {log_every}")
    if resume and overwrite:
        raise ConfigError("resume continues a run in place and cannot be combined with overwrite")
    env_overrides = dict(env_overrides or {})
    algo, env_obj, env_params, config, hparams = resolve(
        algorithm, env, overrides=dict(overrides or {}), env_overrides=env_overrides
    )
    if tensorboard:
        require_tensorboard()
    if wandb:
        require_wandb()
    agent = build_agent(algo, env, env_overrides, env_obj, env_params, config)
    steps_per_update = agent.steps_per_update
    num_updates = config.total_steps // steps_per_update
    log_every = log_every or default_log_every(num_updates)
    plan = plan_checkpoints(num_updates, log_every, steps_per_update, checkpoint_every)
    spec = run_spec(
        algo.name, env, env_overrides, config, hparams, seed=seed, num_seeds=num_seeds,
        log_every=log_every, num_updates=num_updates, steps_per_update=steps_per_update,
    )

    state, saved = None, None
    if resume:
        path = existing_run_dir(run_dir)
        state, saved = _restore_for_resume(path, spec, agent, seed, num_seeds, hparams)
    else:
        path = rundir.prepare(run_dir, overwrite)
    updates_done = saved["updates_done"] if saved else 0
    wandb_id = (saved or {}).get("wandb_id") or new_wandb_id()

    sinks: list[Any] = []
    if progress:
        sinks.append(ProgressBar(num_updates * steps_per_update, f"{algo.name} {env}", updates_done * steps_per_update))
    if tensorboard:
        if (path / TENSORBOARD).is_symlink():
            raise ConfigError(f"{path / TENSORBOARD} is a symbolic link; refusing to write event files through it")
        sinks.append(TensorBoardSink(path / TENSORBOARD, purge_step=updates_done * steps_per_update if resume else None))
    if wandb:
        sinks.append(WandbSink(path, wandb_id, spec))
    log = MetricsLog(log_every=log_every, steps_per_update=steps_per_update, num_updates=num_updates, sinks=sinks)
    if saved:
        log.restore(saved["metrics"], updates_done)

    store = CheckpointStore(path / CHECKPOINTS, keep=keep_checkpoints, writable=True)
    last_saved = [updates_done]

    def on_chunk(state: Any, done: int) -> None:
        due = plan.every_updates is not None and done - last_saved[0] >= plan.every_updates
        if due or done == num_updates:
            metadata = {
                **spec,
                "updates_done": done,
                "env_steps_done": done * steps_per_update,
                "versions": versions(),
                "backend": jax.default_backend(),
                "wandb_id": wandb_id,
                "metrics": log.to_json(),
            }
            store.save(done * steps_per_update, state, metadata)
            last_saved[0] = done

    try:
        result = train(
            algo,
            env,
            config=config,
            hparams=hparams,
            env_overrides=env_overrides,
            seed=seed,
            num_seeds=num_seeds,
            log_every=log_every,
            logs_per_chunk=plan.logs_per_chunk,
            progress=log,
            on_chunk=on_chunk,
            state=state,
            start_update=updates_done,
        )
    finally:
        store.close()  # lets a started save finish even when training failed
        log.close()
    result = dataclasses.replace(result, metrics=log.metrics(), steps=log.steps)
    rundir.write(result, path)
    return result


def _restore_for_resume(
    path: Path, spec: Mapping[str, Any], agent: Agent, seed: int, num_seeds: int, hparams: Any
) -> tuple[Any, dict[str, Any]]:
    """The newest checkpoint's state and metadata, after checking it is this run's."""
    with CheckpointStore(path / CHECKPOINTS) as reader:
        step = reader.latest_step()
        check_resumable(path, step, reader.read_metadata(step), spec, RESUME_FIELDS, "training")
        state, saved = reader.restore(_init_template(agent, seed, num_seeds, hparams), step)
    updates_done = _metadata_int(saved, "updates_done")
    if updates_done > spec["num_updates"] or updates_done * spec["steps_per_update"] != step:
        raise CheckpointError(f"cannot resume {path}: checkpoint {step} disagrees with its own progress metadata")
    if not isinstance(saved.get("metrics"), dict):
        raise CheckpointError(f"cannot resume {path}: checkpoint {step} holds no metric rows")
    warn_if_other_jax(saved, stacklevel=4)
    return state, saved


def check_resumable(
    path: Path, step: int, saved: Mapping[str, Any], spec: Mapping[str, Any], fields: tuple[str, ...], what: str
) -> None:
    """Refuses (``CheckpointError``, one line) to resume ``path`` from checkpoint ``step`` unless
    its metadata ``saved`` is of the same kind and format as ``spec`` and agrees with it on every
    one of ``fields``, checked in order; the first difference is named. Shared by training runs
    and sweeps, so both refuse an incompatible resume the same way."""
    if saved.get("kind") != spec["kind"] or saved.get("format") != spec["format"]:
        raise CheckpointError(f"cannot resume {path}: checkpoint {step} is not a {what} checkpoint of this kit")
    for field in fields:
        difference = first_difference(saved.get(field), spec[field], field)
        if difference:
            raise CheckpointError(f"cannot resume {path}: {difference}")


def warn_if_other_jax(saved: Mapping[str, Any], stacklevel: int = 3) -> None:
    """Warns when the checkpoint was written by another jax version: resuming is still allowed,
    but bitwise equality with an uninterrupted run is then not promised."""
    saved_jax = (saved.get("versions") or {}).get("jax")
    if saved_jax != jax.__version__:
        warnings.warn(
            f"checkpoint written with jax {saved_jax}, resuming with jax {jax.__version__}: "
            "the continued run may differ from an uninterrupted one in the last bits",
            stacklevel=stacklevel,
        )


# --------------------------------------------------------------------------------------------
# Loading a run for evaluation and deployment


@dataclass
class LoadedRun:
    """A run rebuilt from one checkpoint: its agent and state (leading run axis)."""

    path: Path
    step: int  # env steps per run the checkpoint was taken at
    metadata: dict[str, Any]
    algorithm: Algorithm
    env_name: str
    env_overrides: dict[str, Any]
    config: Any
    hparams: Any
    agent: Agent
    state: Any
    seeds: list[int]

    def policy_params(self, seed_index: int | None = None) -> Any:
        """What ``agent.act`` needs (weights, observation-normaliser statistics): of every run
        (leading axis) or of one."""
        params = self.agent.policy_params(self.state)
        if seed_index is None:
            return params
        if not 0 <= seed_index < len(self.seeds):
            raise ConfigError(f"seed index {seed_index} is out of range: the run has {len(self.seeds)} seeds")
        return jax.tree.map(lambda x: x[seed_index], params)


def load_run(run_dir: str | Path, step: int | None = None) -> LoadedRun:
    """Rebuilds the run in ``run_dir`` from its checkpoint ``step`` (default: the newest), using
    only what the checkpoint holds. Raises ``CheckpointError`` for a missing, corrupt or
    inconsistent checkpoint; reads and changes nothing else."""
    path = existing_run_dir(run_dir)
    with CheckpointStore(path / CHECKPOINTS) as reader:
        step = reader.latest_step() if step is None else step
        metadata = reader.read_metadata(step)
        algo, config, hparams = spec_from_metadata(metadata)
        env_name = _metadata_str(metadata, "env")
        env_overrides = _metadata_env_overrides(metadata)
        seed = _metadata_int(metadata, "seed")
        num_seeds = _metadata_int(metadata, "num_seeds")
        try:
            algo, env_obj, env_params, config, hparams = resolve(
                algo, env_name, config=config, hparams=hparams, env_overrides=env_overrides
            )
        except ConfigError as error:
            raise CheckpointError(f"checkpoint {step} in {path} describes an invalid run: {error}") from None
        except ValueError as error:  # unknown environment or environment option
            raise CheckpointError(f"checkpoint {step} in {path} describes an unknown environment: {error}") from None
        agent = build_agent(algo, env_name, env_overrides, env_obj, env_params, config)
        state, metadata = reader.restore(_init_template(agent, seed, num_seeds, hparams), step)
    return LoadedRun(
        path=path,
        step=step,
        metadata=metadata,
        algorithm=algo,
        env_name=env_name,
        env_overrides=env_overrides,
        config=config,
        hparams=hparams,
        agent=agent,
        state=state,
        seeds=list(range(num_seeds)),
    )
