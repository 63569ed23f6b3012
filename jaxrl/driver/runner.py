"""The host side of training: the pure program of ``jaxrl.core.train`` for R runs at once, vmapped
over a run axis (seeds x hyperparameter settings) and split over devices with ``shard_map``,
executed in chunks of logging windows.

``init`` is one compiled program over the runs; ``chunk(states, hparams, first_window)`` another,
which performs ``chunk_windows`` windows of every run and returns their rows, reduced on the
device (a single run is run unbatched, off the run axis: see ``_compile_programs``). The host
dispatches the next chunk before it reads the previous chunk's rows (so the device never waits
for it), shows progress between chunks and, when asked, checkpoints there.
Chunks are windows of the one pure program, so a chunked run computes bit for bit what a single
call of ``Train`` computes.
"""

from __future__ import annotations

import importlib
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.components.rollout import EnvCarry
from jaxrl.core.train import Program

# About ten chunks a run: each costs a few milliseconds of host round trip
# (experiments/bench/README.md), under 5% of a half-minute CPU run, and still shows progress.
CHUNKS_PER_RUN = 10


def default_chunk_windows(num_logs: int) -> int:
    return max(1, math.ceil(num_logs / CHUNKS_PER_RUN))


def run_keys(seed: int, seed_indices: np.ndarray) -> jax.Array:
    """Key of each run: seed index i of base seed s is ``fold_in(key(s), i)``, the same whether the
    run trains alone or inside a sweep."""
    base = jax.random.key(seed)
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.asarray(seed_indices, jnp.uint32))


def state_axes(state: Any) -> Any:
    """The run axis of each leaf of a run state: 0, except for the environment parameters, which
    every run of a program shares (the driver gives them all the same ones) and which are kept
    once, unbatched. Besides saving memory, this keeps XLA's code for the environment's arithmetic
    the same whatever the number of runs: with the parameters batched, XLA:CPU contracts
    multiply-adds differently for different batch sizes, and a run would no longer compute bit for
    bit what it computes alone."""
    def axes(node):
        if isinstance(node, EnvCarry):
            return EnvCarry(jax.tree.map(lambda _: 0, node.env_state), jax.tree.map(lambda _: 0, node.obs), jax.tree.map(lambda _: None, node.params),
                            jax.tree.map(lambda _: 0, node.memory))
        return jax.tree.map(lambda _: 0, node)

    return jax.tree.map(axes, state, is_leaf=lambda node: isinstance(node, EnvCarry))


def _unstack_env_params(state: Any) -> Any:
    """``state`` with the environment parameters of the first run only (all runs have the same)."""
    return jax.tree.map(
        lambda node: node.replace(params=jax.tree.map(lambda x: x[0], node.params)) if isinstance(node, EnvCarry) else node,
        state,
        is_leaf=lambda node: isinstance(node, EnvCarry),
    )


@dataclass
class Programs:
    """The jitted programs of one ``Program`` for one run-axis layout and chunk length:
    ``init(keys, hparams, env_params) -> states`` and
    ``chunk(states, hparams, first_window) -> (states, rows)``."""

    program: Program
    init_fn: Callable
    chunk_fn: Callable
    chunk_windows: int
    hparam_axes: Any
    mesh: jax.sharding.Mesh | None = None
    executables: dict = field(default_factory=dict)

    def _jitted(self, name: str, args: tuple) -> Callable:
        fn = self.init_fn if name == "init" else self.chunk_fn
        donate = () if name == "init" else (0,)
        if self.mesh is None:
            return jax.jit(fn, donate_argnums=donate)
        # Runs are independent, so a device needs nothing from another: shard_map states that
        # outright instead of leaving the partitioner to infer it (which may replicate leaves).
        runs, shared = jax.sharding.PartitionSpec("runs"), jax.sharding.PartitionSpec()

        def specs(axes):
            return jax.tree.map(lambda axis: shared if axis is None else runs, axes, is_leaf=lambda x: x is None)

        hparam_specs = specs(self.hparam_axes)
        if name == "init":
            states = specs(state_axes(jax.eval_shape(fn, *args)))
            in_specs, out_specs = (runs, hparam_specs, shared), states
        else:
            states = specs(state_axes(args[0]))
            in_specs, out_specs = (states, hparam_specs, shared), (states, runs)
        return jax.jit(jax.shard_map(fn, mesh=self.mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False), donate_argnums=donate)

    def executable(self, name: str, *args: Any) -> tuple[Callable, float]:
        """The compiled ``init`` or ``chunk`` program for these arguments' shapes, and the seconds
        spent compiling it now (0 when it was compiled before). Compiled ahead of time, so that
        compile time is measured apart from run time."""
        signature = name + str(jax.tree.map(lambda x: (jnp.shape(x), jnp.result_type(x), getattr(x, "sharding", None)), args))
        if signature in self.executables:
            return self.executables[signature], 0.0
        start = time.perf_counter()
        self.executables[signature] = self._jitted(name, args).lower(*args).compile()
        return self.executables[signature], time.perf_counter() - start


def init_runs(program: Program, hparam_axes: Any) -> Callable:
    """``init(keys, hparams, env_params) -> states`` of R runs (leading axis), as the driver runs
    it; ``jax.eval_shape`` of it is what a checkpoint of these runs holds."""

    def init_all(keys, hparams, env_params):
        # lax.map, not vmap: a batched QR (the orthogonal initialiser) can deadlock XLA's CPU
        # runtime on 2 cores, and initialising runs one by one makes each run's initial state
        # independent of how many runs are beside it. Init runs once, so its speed is moot.
        num_runs = keys.shape[0]
        per_run = jax.tree.map(
            lambda axis, x: x if axis == 0 or x is None else jnp.broadcast_to(x, (num_runs, *jnp.shape(x))),
            hparam_axes,
            hparams,
            is_leaf=lambda x: x is None,
        )
        return _unstack_env_params(jax.lax.map(lambda args: program.init(args[0], args[1], env_params), (keys, per_run)))

    return init_all


def _take_run(tree: Any, axes: Any) -> Any:
    return jax.tree.map(lambda axis, x: x if axis is None else x[0], axes, tree, is_leaf=lambda x: x is None)


def _put_run(tree: Any, axes: Any) -> Any:
    return jax.tree.map(lambda axis, x: x if axis is None else x[None], axes, tree, is_leaf=lambda x: x is None)


def _compile_programs(program: Program, hparam_axes: Any, chunk_windows: int, mesh: jax.sharding.Mesh | None) -> Programs:
    def chunk_all(states, hparams, first_window):
        axes = state_axes(states)
        run = lambda state, hparams: program.run(state, hparams, first_window, chunk_windows)  # noqa: E731
        if mesh is None and jax.tree.leaves(states)[0].shape[0] == 1:
            # One run: take it off the run axis and put it back after. XLA:CPU compiles a vmap of
            # size 1 into slower code than the same function unbatched (batched gathers, random
            # bits and scatters; 8-14% at 1 seed, experiments/bench/README.md), and one seed is
            # the run a newcomer makes first. Like any change in the number of runs, this may
            # round differently from the same run inside a larger batch.
            state, rows = run(_take_run(states, axes), _take_run(hparams, hparam_axes))
            return _put_run(state, axes), jax.tree.map(lambda x: x[None], rows)
        return jax.vmap(run, in_axes=(axes, hparam_axes), out_axes=(axes, 0))(states, hparams)

    return Programs(program, init_runs(program, hparam_axes), chunk_all, chunk_windows, hparam_axes, mesh)


_PROGRAMS: dict[Any, Programs] = {}


def programs_for(program: Program, hparam_axes: Any, chunk_windows: int, mesh: jax.sharding.Mesh | None = None) -> Programs:
    """The jitted programs for this layout, built once per (program, axes, chunk length, mesh)."""
    axes, treedef = jax.tree.flatten(hparam_axes, is_leaf=lambda x: x is None)
    key = (program, treedef, tuple(axes), chunk_windows, mesh)
    if key not in _PROGRAMS:
        _PROGRAMS[key] = _compile_programs(program, hparam_axes, chunk_windows, mesh)
    return _PROGRAMS[key]


def clear_caches() -> None:
    """Forgets every built program, so that the next run builds and compiles anew."""
    from jaxrl.core import train

    _PROGRAMS.clear()
    train._PROGRAMS.clear()


@dataclass
class RunOutput:
    state: Any  # final run states, leading axis R
    metrics: dict[str, np.ndarray]  # name -> [R, L] rows logged by this call
    steps: np.ndarray  # [L] env steps (per run) at the end of each of those rows
    wall_time: float
    compile_time: float


def to_host(x: Any) -> np.ndarray:
    """A device array as numpy. Runs split over several hosts (``jax.distributed``) are first
    gathered from every process, so each host sees all rows."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def _import_in_background(names: Sequence[str]) -> threading.Thread:
    # Started only once every program is traced and compiled: from then on the main thread
    # dispatches and waits, and the only import it may make is one of these, which then waits for
    # this thread's. An import that fails here is left for the main thread's own to report.
    def work():
        for name in names:
            try:
                # Looking up an attribute loads a module that envs.core defers to its first use
                # (matplotlib.pyplot); for any other module it is a no-op.
                getattr(importlib.import_module(name), "_jaxrl_warm", None)
            except Exception:  # noqa: BLE001, S110
                pass

    thread = threading.Thread(target=work, name="jaxrl-warm-imports", daemon=True)
    thread.start()
    return thread


def execute(
    programs: Programs,
    keys: jax.Array,
    hparams: Any,
    env_params: Any,
    *,
    state: Any = None,
    start_window: int = 0,
    on_rows: Callable[[int, dict[str, np.ndarray]], None] | None = None,
    on_chunk: Callable[[Any, int], None] | None = None,
    warm_imports: Sequence[str] = (),
) -> RunOutput:
    """Runs every window from ``start_window`` (with a given ``state``, or from ``init``) to the
    end. ``on_rows(env_steps_done, rows)`` is called after each chunk with its rows [R, k].

    ``on_chunk(state, windows_done)`` is called after each chunk with the run states at its end
    (e.g. to checkpoint them), once ``on_rows`` has seen every row up to there. The states'
    buffers are donated to the next chunk, so the hook must copy what it keeps. With a hook, the
    host waits for each chunk before dispatching the next.

    ``warm_imports`` names modules that only the end of the run needs (Orbax for a checkpoint,
    matplotlib and pandas for a run directory's files): they are imported on a background thread
    once the first chunk is dispatched, while the device trains, instead of after it."""
    program = programs.program
    log_steps = program.agent.env_steps(np.minimum((np.arange(program.num_logs) + 1) * program.log_every, program.num_updates))
    t0 = time.perf_counter()
    compile_time = 0.0
    if state is None:
        init, compile_time = programs.executable("init", keys, hparams, env_params)
        state = init(keys, hparams, env_params)
    rows: list[dict[str, np.ndarray]] = []
    pending = None
    executable = None

    def collect(pending):
        chunk_rows, first, count = pending
        host = {name: to_host(values)[:, :count] for name, values in chunk_rows.items()}
        rows.append(host)
        if on_rows is not None:
            on_rows(int(log_steps[first + count - 1]), host)

    for first in range(start_window, program.num_logs, programs.chunk_windows):
        first_window = np.int32(first)
        if executable is None:  # shapes don't change between chunks: look it up once
            executable, seconds = programs.executable("chunk", state, hparams, first_window)
            compile_time += seconds
        state, chunk_rows = executable(state, hparams, first_window)
        if first == start_window and warm_imports:
            _import_in_background(warm_imports)
        if pending is not None:
            collect(pending)
        pending = (chunk_rows, first, min(programs.chunk_windows, program.num_logs - first))
        if on_chunk is not None:
            # The hook must see this chunk's state before the next dispatch donates it, and a
            # checkpoint of it must hold every row up to here: collect now, not one chunk late.
            collect(pending)
            pending = None
            on_chunk(state, min(first + programs.chunk_windows, program.num_logs))
    if pending is not None:
        collect(pending)
    jax.block_until_ready(state)
    metrics = {name: np.concatenate([r[name] for r in rows], axis=1) for name in rows[0]} if rows else {}
    return RunOutput(state, metrics, log_steps[start_window:], time.perf_counter() - t0, compile_time)
