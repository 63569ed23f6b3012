"""Sweeps: hyperparameters x seeds as one compiled program per structural group, the run axis
sharded over devices, checkpointed and resumed by the one checkpointed-run driver.

Every (configuration, seed) pair is one *run*; the runs of a group form the run axis of the host
driver (``jaxrl.driver.runner``). Run (config c, seed index i) gets the key
``run_keys(seed, [i])``, exactly the key seed index i gets in ``jaxrl.train(..., seed=seed)``. The
run axis is split over all devices (a one-axis ``Mesh("runs")``), padded with copies of the first
run up to a multiple of the device count (the padding is dropped from the results). On several
hosts, call ``jax.distributed.initialize()`` first; see the README's "Devices and hosts" and
``experiments/sweep_multihost.py``.

>>> result = sweep("ppo", "CartPole-v1", grid={"lr": [1e-4, 1e-3]}, seeds=2,
...                overrides={"total_steps": 10240, "num_envs": 4})   # doctest: +SKIP
>>> result.summary[["lr", "mean", "iqm", "ci_low", "ci_high"]]       # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jax
import numpy as np
import pandas as pd

from jaxrl.core.contract import Algorithm, ConfigError
from jaxrl.core.environments import plain_overrides
from jaxrl.core.train import DEFAULT_FINAL_FRACTION, build, final_return, to_hparams, trace_count
from jaxrl.driver import rundir
from jaxrl.driver.checkpoint import CheckpointStore, decode_rows, encode_rows
from jaxrl.driver.loggers import MetricsLog, ProgressBar
from jaxrl.driver.run import CHECKPOINTS, CheckpointPlan, Checkpointer, existing_run_dir, plan_checkpoints, state_template
from jaxrl.driver.runner import default_chunk_windows, execute, programs_for, run_keys
from jaxrl.driver.spec import METADATA_FORMAT, check_resumable, config_dict, json_normal, versions, warn_if_other_jax
from jaxrl.sweeps.plan import Group, SweepPlan, display, plan, stack_hparams
from jaxrl.sweeps.result import SweepResult, summarize, tidy

# What must match for a sweep checkpoint to be resumed, most basic first: everything that decides
# the groups, their compiled programs, random streams and logged rows. Not "spec": it is the grid
# as given (CLI text or API numbers); "configs" holds the typed values it resolves to.
SWEEP_RESUME_FIELDS = (
    "algorithm", "env", "env_overrides", "overrides", "search", "seeds", "seed", "swept", "configs",
    "log_every", "final_fraction", "checkpoint_every",
)


def _place(mesh: jax.sharding.Mesh, keys: jax.Array, hparams: Any, swept: Sequence[str]) -> tuple[jax.Array, Any]:
    """Keys and swept hyperparameters split along the run axis, the rest on every device: where
    the compiled program expects them, so no call starts with a reshuffle."""
    per_run = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("runs"))
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    shared = jax.tree.map(lambda x: jax.device_put(x, replicated), hparams.replace(**{n: None for n in swept}))
    # Keys travel as their raw uint32 data: device_put can lay a host array out over devices of
    # several processes (jax.distributed), but not a typed key array.
    key_data = jax.device_put(np.asarray(jax.random.key_data(keys)), per_run)
    keys = jax.random.wrap_key_data(key_data, impl=jax.random.key_impl(keys))
    return keys, shared.replace(**{n: jax.device_put(getattr(hparams, n), per_run) for n in swept})


class _Progress:
    """A ``MetricsLog`` sink calling ``progress(env_steps_done, env_steps_total)`` over all runs."""

    def __init__(self, progress: Callable[[int, int], None], offset: int, scale: int, total: int):
        self.progress, self.offset, self.scale, self.total = progress, offset, scale, total

    def write(self, steps: np.ndarray, rows: Mapping[str, np.ndarray]) -> None:
        self.progress(self.offset + int(steps[-1]) * self.scale, self.total)

    def close(self) -> None:
        pass


def checkpoint_spec(p: SweepPlan, log_every: int | None, checkpoint_every: int | None, final_fraction: float) -> dict[str, Any]:
    """The static description of a sweep saved in each of its checkpoints (JSON-normal, so a
    fresh one compares equal to one read back)."""
    config, hparams = p.configs[0], p.hparams[0]

    def resolved(name: str) -> Any:  # an override's value as the base configuration holds it
        value = getattr(config, name) if hasattr(config, name) else getattr(hparams, name, p.overrides[name])
        return value if isinstance(value, (tuple, str, bool, int)) else display(value) if np.ndim(value) else float(np.asarray(value))

    return json_normal(
        {
            "format": METADATA_FORMAT,
            "kind": "sweep",
            "algorithm": p.algo.name,
            "env": p.env_name,
            "env_overrides": plain_overrides(p.env_name, p.env_overrides),
            # Overrides as resolved values (CLI text and API numbers for one setting then agree).
            "overrides": {k: display(resolved(k)) for k in sorted(p.overrides)},
            "search": p.kind,
            "spec": p.spec,
            "seeds": p.seeds,
            "seed": p.seed,
            "swept": list(p.names),
            "configs": [{k: display(v) for k, v in c.items()} for c in p.values],
            "log_every": log_every,
            "final_fraction": final_fraction,
            "checkpoint_every": checkpoint_every,
        }
    )


def run(
    sweep_plan: SweepPlan,
    *,
    log_every: int | None = None,
    chunk_windows: int | None = None,
    progress: bool | Callable[[int, int], None] = False,
    devices: Sequence[jax.Device] | None = None,
    run_dir: str | Path | None = None,
    checkpoint_every: int | None = None,
    keep_checkpoints: int = 2,
    resume: bool = False,
    overwrite: bool = False,
    final_fraction: float = DEFAULT_FINAL_FRACTION,
) -> SweepResult:
    """Trains every run of a planned sweep: one compiled program per structural group, its runs
    sharded over ``devices`` (default: all of ``jax.devices()``; pass one device to not shard).
    ``progress`` is True for a bar, or ``progress(env_steps_done, env_steps_total)`` summed over
    all runs.

    With ``run_dir`` the sweep lives in that directory: it checkpoints every ``checkpoint_every``
    env steps per run (``jaxrl.driver.run.plan_checkpoints``; each group also at its end), keeping
    the newest ``keep_checkpoints``, and writes its results there when done. A checkpoint holds
    the in-progress group's state and its rows so far, and the rows of every completed group.
    ``resume=True`` continues from the newest checkpoint, so results.csv is bitwise the one an
    uninterrupted sweep writes; a checkpoint of a different sweep raises ``CheckpointError``
    naming the first difference, before anything on disk changes."""
    p = sweep_plan
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ConfigError("no devices to run the sweep on")
    if run_dir is None and (resume or checkpoint_every is not None):
        raise ConfigError("checkpoints (checkpoint_every, resume) need a run directory (run_dir, --out)")
    if resume and overwrite:
        raise ConfigError("resume continues a sweep in place and cannot be combined with overwrite")
    if keep_checkpoints < 1:
        raise ConfigError(f"keep_checkpoints must be >= 1, got {keep_checkpoints}")
    if checkpoint_every is not None and checkpoint_every < 0:
        raise ConfigError(f"checkpoint_every must be >= 0 env steps, got {checkpoint_every}")
    # One device: the plain vmapped program, exactly what ``jaxrl.train`` runs.
    mesh = jax.sharding.Mesh(np.asarray(devices), ("runs",)) if len(devices) > 1 else None
    trains = [
        build(p.algo, p.env_name, config=g.config, hparams=p.hparams[g.config_ids[0]], env_overrides=p.env_overrides,
              log_every=log_every, final_fraction=final_fraction)
        for g in p.groups
    ]
    group_steps = [len(g.config_ids) * p.seeds * t.total_env_steps for g, t in zip(p.groups, trains)]
    spec = checkpoint_spec(p, log_every, checkpoint_every, trains[0].final_fraction)
    saved: dict[str, Any] | None = None
    path: Path | None = None
    if run_dir is not None and resume:
        # Only reads: a mismatch must leave the directory exactly as it was.
        path = existing_run_dir(run_dir)
        with CheckpointStore(path / CHECKPOINTS) as reader:
            saved_step = reader.latest_step()
            saved = reader.read_metadata(saved_step)
            check_resumable(path, saved_step, saved, spec, SWEEP_RESUME_FIELDS, "sweep")
        warn_if_other_jax(saved)
    elif run_dir is not None:
        path = rundir.prepare(run_dir, overwrite)
    # Completed groups' rows (encoded exactly as saved) by group index; a resumed sweep starts with
    # those of its checkpoint and skips their groups.
    completed: dict[str, Any] = dict(saved["completed"]) if saved else {}
    store = CheckpointStore(path / CHECKPOINTS, keep=keep_checkpoints, writable=True) if path else None
    bar = ProgressBar(sum(group_steps), f"sweep {p.algo.name} {p.env_name}", best=True) if progress is True else None
    t0 = time.perf_counter()
    traces_before = trace_count()
    compile_time, num_compilations, done_before = 0.0, 0, 0
    frames, finals = [], np.full((len(p.values), p.seeds), np.nan)
    try:
        for index, (group, train_fn) in enumerate(zip(p.groups, trains)):
            num_runs = len(group.config_ids) * p.seeds
            resumed = saved if saved is not None and saved.get("group") == index else None
            if resumed is not None and resumed.get("windows_done") == train_fn.num_logs:
                # The checkpoint was taken at this group's end: it is complete, minus the bookkeeping.
                rows = {k: v[:num_runs] for k, v in decode_rows(resumed["metrics"]["rows"]).items()}
                completed[str(index)] = {"metrics": encode_rows(rows), "steps": resumed["metrics"]["steps"]}
            if str(index) in completed:
                # Finished before the interruption: its rows come from the checkpoint, bit for bit.
                metrics = decode_rows(completed[str(index)]["metrics"])
                steps = np.asarray(completed[str(index)]["steps"], np.int64)
            else:
                if bar is not None:
                    bar.scale, bar.offset = num_runs, done_before
                    if len(p.groups) > 1:
                        bar.bar.set_description(f"sweep {p.algo.name} {p.env_name} [program {index + 1}/{len(p.groups)}]")
                sinks = [bar] if bar is not None else [_Progress(progress, done_before, num_runs, sum(group_steps))] if callable(progress) else []
                traces = trace_count()
                metrics, steps, seconds = _run_group(
                    p, index, group, train_fn, devices, mesh, chunk_windows, checkpoint_every, sinks, done_before,
                    store, resumed, completed, spec,
                )
                num_compilations += trace_count() > traces
                compile_time += seconds
                if store is not None:  # later checkpoints carry this group's rows; JSON costs, so only then
                    completed[str(index)] = {"metrics": encode_rows(metrics), "steps": [int(x) for x in steps]}
            done_before += group_steps[index]
            if bar is not None:
                bar.show(done_before)
            finals[group.config_ids] = np.asarray(final_return(metrics), np.float64).reshape(len(group.config_ids), p.seeds)
            frames.append(tidy(p, group, metrics, steps))
    finally:
        if store is not None:
            store.close()  # lets a started save finish even when the sweep failed
        if bar is not None:
            bar.close()
    results = pd.concat(frames, ignore_index=True).sort_values(["config_id", "seed", "step"], kind="stable")
    result = SweepResult(
        algorithm=p.algo.name,
        env_name=p.env_name,
        kind=p.kind,
        names=list(p.names),
        structural=list(p.structural),
        configs=[dict(v) for v in p.values],
        seeds=p.seeds,
        seed=p.seed,
        results=results.reset_index(drop=True),
        summary=summarize(p.names, p.values, finals),
        final_returns=finals,
        num_compilations=int(num_compilations),
        num_traces=trace_count() - traces_before,
        num_devices=len(devices),
        wall_time=time.perf_counter() - t0,
        compile_time=compile_time,
        base=config_dict(p.configs[0], p.hparams[0]),
        overrides=dict(p.overrides),
        env_overrides=plain_overrides(p.env_name, p.env_overrides),
        spec=p.spec,
    )
    if path is not None:
        result.write(path)
    return result


def _run_group(p, index, group: Group, train_fn, devices, mesh, chunk_windows, checkpoint_every, sinks, done_before,
               store, resumed, completed, spec):
    """Trains one structural group (from its checkpoint when ``resumed`` is that checkpoint's
    metadata) and returns its rows [runs, logs], their steps and the compile time. With a
    ``store``, checkpoints on the plan's chunk boundaries and at the group's end, each holding the
    rows of ``completed`` groups and of this one so far."""
    num_runs = len(group.config_ids) * p.seeds
    padded = math.ceil(num_runs / len(devices)) * len(devices)
    # Padding repeats run 0 (a valid key and valid hyperparameters); its results are dropped.
    source = np.concatenate([np.arange(num_runs), np.zeros(padded - num_runs, np.int64)])
    keys = run_keys(p.seed, np.tile(np.arange(p.seeds), len(group.config_ids))[source])
    swept = [n for n in p.names if n not in p.structural]
    hparams = stack_hparams([p.hparams[i] for i in group.config_ids], p.names, repeat=p.seeds)
    hparams = to_hparams(hparams.replace(**{n: jax.tree.map(lambda x: x[source], getattr(hparams, n)) for n in swept}))
    # Swept leaves vary along the run axis; the rest are shared (and broadcast by vmap).
    axes = train_fn.hparams_axes(**{n: 0 for n in swept})
    if mesh is not None:
        keys, hparams = _place(mesh, keys, hparams, swept)
    elif devices[0] != jax.devices()[0]:
        keys, hparams = jax.device_put((keys, hparams), devices[0])

    if store is not None:
        # Chunks must end where checkpoints fall; train_run plans them the same way.
        plan = plan_checkpoints(train_fn.num_logs, train_fn.log_every, train_fn.steps_per_update, checkpoint_every)
    else:
        plan = CheckpointPlan(None, chunk_windows or default_chunk_windows(train_fn.num_logs))
    programs = programs_for(train_fn.program, axes, plan.chunk_windows, mesh)
    log_steps = train_fn.log_steps()
    log = MetricsLog(log_steps, sinks)
    state, windows_done = None, 0
    if resumed is not None:
        windows_done = int(resumed["windows_done"])
        log.restore(resumed["metrics"], windows_done)
        with CheckpointStore(store.directory) as reader:
            restored, _ = reader.restore(state_template(train_fn, keys, hparams, axes), reader.latest_step())
        state = restored["run"]
        if mesh is not None:
            # The compiled program expects the run axis split over the mesh, as init leaves it.
            per_run = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("runs"))
            state = jax.tree.map(lambda x: jax.device_put(x, per_run), state)

    checkpointer = None
    if store is not None:
        def metadata(done: int) -> dict[str, Any]:
            return {
                **spec,
                "group": index,
                "windows_done": done,
                "completed": completed,
                "metrics": log.to_json(),
                "versions": versions(),
                "backend": jax.default_backend(),
            }

        # Steps count env steps over all runs of all groups, so they only grow through a sweep.
        checkpointer = Checkpointer(store, plan, train_fn.num_logs, hparams, metadata,
                                    lambda done: done_before + int(log_steps[done - 1]) * num_runs, windows_done)
    output = execute(programs, keys, hparams, train_fn.default_env_params, state=state, start_window=windows_done,
                     on_rows=log, on_chunk=checkpointer)
    metrics = {name: values[:num_runs] for name, values in log.metrics().items()}
    seconds = output.compile_time
    del output  # the final states of a group are not kept: a sweep's memory is its metrics
    return metrics, log.steps, seconds


def sweep(
    algorithm: str | Algorithm,
    env: str,
    *,
    grid: Mapping[str, Sequence[Any]] | None = None,
    random: Mapping[str, Any] | None = None,
    samples: int | None = None,
    seeds: int = 1,
    overrides: Mapping[str, Any] | None = None,
    env_overrides: Mapping[str, Any] | None = None,
    seed: int = 0,
    log_every: int | None = None,
    chunk_windows: int | None = None,
    progress: bool | Callable[[int, int], None] = False,
    devices: Sequence[jax.Device] | None = None,
    run_dir: str | Path | None = None,
    checkpoint_every: int | None = None,
    keep_checkpoints: int = 2,
    resume: bool = False,
    overwrite: bool = False,
    final_fraction: float = DEFAULT_FINAL_FRACTION,
) -> SweepResult:
    """Trains every configuration of a grid or a random search for ``seeds`` seeds each, as few
    compiled programs as the structural settings allow, sharded over all devices.

    Args:
      algorithm, env: as for ``jaxrl.train``.
      grid: setting -> list of values; the sweep is their Cartesian product. A hyperparameter's
        values may be arrays or weight pytrees of one structure (a population of learned
        objectives): each leaf gets a run axis.
      random: setting -> distribution (``"loguniform:1e-5:1e-2"``, ``"uniform:0:0.1"``,
        ``"int-uniform:1:8"``, ``"choice:64x64,128x128"`` or a list of choices); ``samples``
        configurations are drawn with ``numpy.random.default_rng(seed)``.
      seeds: seeds per configuration; seed index i of every configuration uses the key
        ``jaxrl.train(..., seed=seed)`` gives seed index i.
      overrides, env_overrides: fixed settings of every configuration (not swept ones).
      log_every, chunk_windows, final_fraction: as for ``jaxrl.train`` (per structural group); a
        configuration's final return is the mean return of the episodes that ended in the last
        ``final_fraction`` of its updates.
      progress: True for a progress bar, or ``progress(env_steps_done, env_steps_total)``.
      devices: devices to shard the runs over (default ``jax.devices()``).
      run_dir, checkpoint_every, keep_checkpoints, resume, overwrite: checkpoint the sweep into
        ``run_dir`` and continue it after an interruption (see ``run``); the results are written
        there too.

    >>> result = sweep("ppo", "CartPole-v1", grid={"lr": [1e-4, 1e-3], "ent_coef": [0.0, 0.01]},
    ...                seeds=2, overrides={"total_steps": 10240})     # doctest: +SKIP
    >>> result.summary.shape, result.num_compilations                  # doctest: +SKIP
    ((4, 10), 1)
    """
    sweep_plan = plan(
        algorithm, env, grid=grid, random=random, samples=samples, seeds=seeds, overrides=overrides,
        env_overrides=env_overrides, seed=seed,
    )
    return run(
        sweep_plan, log_every=log_every, chunk_windows=chunk_windows, progress=progress, devices=devices,
        run_dir=run_dir, checkpoint_every=checkpoint_every, keep_checkpoints=keep_checkpoints, resume=resume,
        overwrite=overwrite, final_fraction=final_fraction,
    )
