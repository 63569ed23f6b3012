"""The one runner. It owns jit, the loop of updates, chunking, vmap over runs (seeds x
hyperparameter settings), on-device metric reduction and progress. Algorithms only supply
``init`` and ``update``.

Execution model: the runs form one axis of length R. ``init`` is vmapped over it; training is a
compiled *chunk* function, vmapped too, that performs ``logs_per_chunk`` logging windows of
``log_every`` updates each, reducing each window's metrics on the device to one row. The host
calls the chunk function repeatedly (dispatching the next chunk before it reads the previous
chunk's rows, so the device never waits for the host) and shows progress between chunks.
Window lengths are traced, so a final partial window costs no extra compilation, and a chunked
run computes exactly what a single call would.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

import envs
from jaxrl.algorithms.base import Agent, Algorithm, ConfigError, apply_overrides, get_algorithm

# Metrics an agent reports as sums over episodes that ended; the runner divides them by the
# episode count of each window. Every other metric is averaged over the window's updates.
EPISODE_SUMS = {"episode_return_sum": "episode_return", "episode_length_sum": "episode_length"}

_COMPILES = {"count": 0}


def compile_count() -> int:
    """How many times the runner has traced (hence compiled) an init or chunk program."""
    return _COMPILES["count"]


def to_hparams(hparams: Any) -> Any:
    """Leaves as float32 arrays, so a Python float and an array of the same value hit the same
    compiled program (a weakly typed float would not)."""
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32) if not hasattr(x, "dtype") else jnp.asarray(x), hparams)


def run_keys(seed: int, seed_indices: np.ndarray) -> jax.Array:
    """Key of each run: seed index i of base seed s is ``fold_in(key(s), i)``, the same whether the
    run trains alone or inside a sweep."""
    base = jax.random.key(seed)
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.asarray(seed_indices, jnp.uint32))


def _reduce_window(sums: dict[str, jax.Array], num_updates: jax.Array) -> dict[str, jax.Array]:
    count = sums.get("episode_count")
    row = {}
    for name, total in sums.items():
        if name in EPISODE_SUMS:
            row[EPISODE_SUMS[name]] = jnp.where(count > 0, total / jnp.maximum(count, 1.0), jnp.nan)
        elif name == "episode_count":
            row[name] = total
        else:
            row[name] = total / jnp.maximum(num_updates, 1)
    return row


@dataclass
class CompiledRun:
    """The jitted programs for one (agent, run-axis layout, chunk shape)."""

    init: Callable
    chunk: Callable
    logs_per_chunk: int
    executables: dict = field(default_factory=dict)

    def executable(self, name: str, *args: Any) -> tuple[Callable, float]:
        """The compiled ``init`` or ``chunk`` program for these arguments' shapes, and the
        seconds spent compiling it now (0 when it was compiled before). Compiled ahead of time,
        so compile time is measured apart from run time."""
        signature = name + str(jax.tree.map(lambda x: (jnp.shape(x), jnp.result_type(x), getattr(x, "sharding", None)), args))
        if signature in self.executables:
            return self.executables[signature], 0.0
        start = time.perf_counter()
        self.executables[signature] = getattr(self, name).lower(*args).compile()
        return self.executables[signature], time.perf_counter() - start


def compile_run(agent: Agent, hparam_axes: Any, logs_per_chunk: int, mesh: jax.sharding.Mesh | None = None) -> CompiledRun:
    """Builds the vmapped, jitted ``init(keys, hparams)`` and
    ``chunk(state, hparams, window_sizes) -> (state, rows)``. ``hparam_axes`` says, per
    hyperparameter leaf, whether it varies along the run axis (0) or is shared (None).

    With a ``mesh`` (one axis, ``"runs"``), the run axis is split over its devices: each device
    runs the vmapped program on its own slice of runs (``shard_map``), so there is no
    communication between devices and the state stays split along its leading axis. The number
    of runs must then be a multiple of the number of devices (``jaxrl.sweep`` pads them)."""

    def init_one(key, hparams):
        _COMPILES["count"] += 1  # runs at trace time only
        return agent.init(key, hparams)

    def window(state, hparams, num_updates):
        # The trip count is traced, so a final partial window needs no second compilation.
        template = jax.eval_shape(agent.update, state, hparams)[1]
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, jnp.float32), template)

        def body(_, carry):
            state, sums = carry
            state, metrics = agent.update(state, hparams)
            return state, jax.tree.map(lambda a, m: a + m.astype(jnp.float32), sums, metrics)

        state, sums = jax.lax.fori_loop(0, num_updates, body, (state, zeros))
        return state, _reduce_window(sums, num_updates)

    def chunk_one(state, hparams, window_sizes):
        _COMPILES["count"] += 1

        def step(state, num_updates):
            return window(state, hparams, num_updates)

        return jax.lax.scan(step, state, window_sizes)

    def init_all(keys, hparams):
        # lax.map, not vmap: a batched QR (the orthogonal initialiser) can deadlock XLA's CPU
        # runtime on 2 cores, and initialising runs one by one makes each run's initial state
        # independent of how many runs are beside it. Init is run once, so its speed is moot.
        num_runs = keys.shape[0]
        per_run = jax.tree.map(
            lambda axis, x: x if axis == 0 else jnp.broadcast_to(x, (num_runs, *jnp.shape(x))),
            hparam_axes,
            hparams,
            is_leaf=lambda x: x is None,
        )
        return jax.lax.map(lambda args: init_one(*args), (keys, per_run))

    chunk_all = jax.vmap(chunk_one, in_axes=(0, hparam_axes, None))
    if mesh is not None:
        # Runs are independent, so a device needs nothing from another: shard_map states that
        # outright instead of leaving the partitioner to infer it (which may replicate leaves).
        runs, shared = jax.sharding.PartitionSpec("runs"), jax.sharding.PartitionSpec()
        hparam_specs = jax.tree.map(lambda axis: shared if axis is None else runs, hparam_axes, is_leaf=lambda x: x is None)
        init_all = jax.shard_map(init_all, mesh=mesh, in_specs=(runs, hparam_specs), out_specs=runs, check_vma=False)
        chunk_all = jax.shard_map(chunk_all, mesh=mesh, in_specs=(runs, hparam_specs, shared), out_specs=runs, check_vma=False)
    init = jax.jit(init_all)
    chunk = jax.jit(chunk_all, donate_argnums=(0,))
    return CompiledRun(init=init, chunk=chunk, logs_per_chunk=logs_per_chunk)


def plan_windows(num_updates: int, log_every: int, logs_per_chunk: int) -> list[np.ndarray]:
    """Window sizes per chunk, e.g. 10 updates, log_every 4, 2 logs a chunk -> [[4, 4], [2, 0]]."""
    sizes = [log_every] * (num_updates // log_every)
    if num_updates % log_every:
        sizes.append(num_updates % log_every)
    chunks = []
    for start in range(0, len(sizes), logs_per_chunk):
        part = sizes[start : start + logs_per_chunk]
        chunks.append(np.asarray(part + [0] * (logs_per_chunk - len(part)), np.int32))
    return chunks


def default_log_every(num_updates: int, rows: int = 100) -> int:
    return max(1, num_updates // rows)


def default_logs_per_chunk(num_logs: int, chunks: int = 10) -> int:
    # Each chunk costs a few milliseconds of host round trip (experiments/bench/README.md);
    # about ten per run keeps that under 5% of a half-minute CPU run and still shows progress.
    return max(1, math.ceil(num_logs / chunks))


@dataclass
class RunOutput:
    state: Any  # final run state, leading axis R
    metrics: dict[str, np.ndarray]  # name -> [R, L]
    steps: np.ndarray  # [L] env steps (per run) at the end of each logged window
    wall_time: float
    compile_time: float


def execute(
    compiled: CompiledRun,
    keys: jax.Array,
    hparams: Any,
    *,
    num_updates: int,
    steps_per_update: int,
    log_every: int,
    progress: Callable[[int, dict[str, np.ndarray]], None] | None = None,
    state: Any = None,
    start_update: int = 0,
    on_chunk: Callable[[Any, int], None] | None = None,
) -> RunOutput:
    """Runs ``num_updates`` updates (from ``start_update`` with a given ``state``, or from
    ``init``) and gathers the logged rows. ``progress(env_steps_done, rows)`` is called after
    each chunk with that chunk's rows.

    ``on_chunk(state, updates_done)`` is called after each chunk with the run state at that
    chunk's end (e.g. to checkpoint it), once ``progress`` has seen every row up to there. The
    state's buffers are donated to the next chunk, so the hook must copy what it keeps. With a
    hook, the host waits for each chunk before dispatching the next."""
    t0 = time.perf_counter()
    compile_time = 0.0
    if state is None:
        init, compile_time = compiled.executable("init", keys, hparams)
        state = init(keys, hparams)
    plan = plan_windows(num_updates - start_update, log_every, compiled.logs_per_chunk)
    rows: list[dict[str, np.ndarray]] = []
    steps: list[int] = []
    done_updates = start_update
    pending = None
    executable = None
    for sizes in plan:
        if executable is None:  # shapes don't change between chunks: look it up once
            executable, seconds = compiled.executable("chunk", state, hparams, sizes)
            compile_time += seconds
        state, chunk_rows = executable(state, hparams, sizes)
        if pending is not None:
            _collect(pending, rows, steps, progress, steps_per_update)
        pending = (chunk_rows, sizes, done_updates)
        done_updates += int(sizes.sum())
        if on_chunk is not None:
            # The hook must see this chunk's state before the next dispatch donates it, and a
            # checkpoint of it must hold every row up to here: collect now, not one chunk late.
            _collect(pending, rows, steps, progress, steps_per_update)
            pending = None
            on_chunk(state, done_updates)
    if pending is not None:
        _collect(pending, rows, steps, progress, steps_per_update)
    jax.block_until_ready(state)
    metrics = {name: np.concatenate([r[name] for r in rows], axis=1) for name in rows[0]} if rows else {}
    return RunOutput(state, metrics, np.asarray(steps, np.int64), time.perf_counter() - t0, compile_time)


def _to_host(x: Any) -> np.ndarray:
    """A device array as numpy. Runs split over several hosts (``jax.distributed``) are first
    gathered from every process, so each host sees all rows."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def _collect(pending, rows, steps, progress, steps_per_update):
    chunk_rows, sizes, start = pending
    active = int((sizes > 0).sum())
    host = {name: _to_host(v)[:, :active] for name, v in chunk_rows.items()}
    rows.append(host)
    ends = start + np.cumsum(sizes[:active])
    steps.extend(int(e) * steps_per_update for e in ends)
    if progress is not None:
        progress(int(ends[-1]) * steps_per_update, host)


# --------------------------------------------------------------------------------------------
# Training: one algorithm, one environment, several seeds


def last_finite(returns: np.ndarray) -> np.ndarray:
    """Per run (rows of [runs, logs]): the last finite logged value, NaN if there is none."""
    out = np.full(returns.shape[0], np.nan)
    for i, row in enumerate(returns):
        finite = np.flatnonzero(np.isfinite(row))
        if finite.size:
            out[i] = row[finite[-1]]
    return out


@dataclass
class TrainResult:
    algorithm: str
    env_name: str
    config: Any
    hparams: Any
    seeds: list[int]  # seed indices of the runs
    seed: int  # base seed
    metrics: dict[str, np.ndarray]  # name -> [num_seeds, L]
    steps: np.ndarray  # [L]
    state: Any  # final run states, leading seed axis
    agent: Agent
    env_overrides: dict[str, Any] = field(default_factory=dict)
    wall_time: float = 0.0
    compile_time: float = 0.0

    @property
    def final_returns(self) -> np.ndarray:
        """Per seed: the mean return of the episodes that ended in the last logged window that
        had any (NaN if none ever did)."""
        return last_finite(self.metrics["episode_return"])

    def dataframe(self):
        """Tidy metrics: one row per seed and logged step."""
        import pandas as pd

        num_seeds, num_logs = self.metrics["episode_return"].shape
        frame = {"step": np.tile(self.steps, num_seeds), "seed": np.repeat(self.seeds, num_logs)}
        order = ["episode_return", "episode_length"] + sorted(
            k for k in self.metrics if k not in ("episode_return", "episode_length")
        )
        for name in order:
            frame[name] = self.metrics[name].reshape(-1)
        return pd.DataFrame(frame)

    def policy(self, seed_index: int = 0):
        """``act(obs, key, deterministic=False)`` of one seed, jitted, normaliser included."""
        params = jax.tree.map(lambda x: x[seed_index], self.agent.policy_params(self.state))
        act = self.agent.act
        return jax.jit(lambda obs, key, deterministic=False: act(params, obs, key, deterministic), static_argnums=2)


def resolve(
    algorithm: str | Algorithm,
    env_name: str,
    *,
    config: Any = None,
    hparams: Any = None,
    overrides: dict[str, Any] | None = None,
    env_overrides: dict[str, Any] | None = None,
) -> tuple[Algorithm, Any, Any, Any, Any]:
    """Looks up the algorithm and environment, fills in defaults, applies overrides and checks
    everything. Returns (algorithm, env, env_params, config, hparams)."""
    algo = get_algorithm(algorithm) if isinstance(algorithm, str) else algorithm
    env, env_params = envs.make(env_name, **(env_overrides or {}))
    discrete = envs.is_discrete(env.action_space(env_params))
    if discrete and not algo.discrete:
        raise ConfigError(f"{algo.name} needs continuous actions but {env_name} has discrete ones")
    if not discrete and not algo.continuous:
        raise ConfigError(f"{algo.name} needs discrete actions but {env_name} has continuous ones")
    default_config, default_hparams = algo.defaults(env_name, discrete)
    config = default_config if config is None else config
    hparams = default_hparams if hparams is None else hparams
    config, hparams = apply_overrides(algo, config, hparams, overrides or {})
    algo.check(config, jax.tree.map(np.asarray, hparams), discrete)
    return algo, env, env_params, config, hparams


_BUILD_CACHE: dict[Any, tuple[Agent, dict[Any, CompiledRun]]] = {}


def build_agent(algo: Algorithm, env_name: str, env_overrides: dict[str, Any], env, env_params, config) -> Agent:
    """Builds (or reuses) the agent, so repeated runs of one configuration share compiled code."""
    key = (algo.name, env_name, tuple(sorted((env_overrides or {}).items())), config)
    if key not in _BUILD_CACHE:
        _BUILD_CACHE[key] = (algo.build(config, env, env_params), {})
    return _BUILD_CACHE[key][0]


def compiled_for(agent: Agent, hparam_axes: Any, logs_per_chunk: int, mesh: jax.sharding.Mesh | None = None) -> CompiledRun:
    """The compiled programs of a cached agent for this run-axis layout (built once)."""
    for built, cache in _BUILD_CACHE.values():
        if built is agent:
            axes, treedef = jax.tree.flatten(hparam_axes, is_leaf=lambda x: x is None)
            key = (treedef, tuple(axes), logs_per_chunk, mesh)
            if key not in cache:
                cache[key] = compile_run(agent, hparam_axes, logs_per_chunk, mesh)
            return cache[key]
    return compile_run(agent, hparam_axes, logs_per_chunk, mesh)


def train(
    algorithm: str | Algorithm,
    env: str,
    *,
    config: Any = None,
    hparams: Any = None,
    overrides: dict[str, Any] | None = None,
    env_overrides: dict[str, Any] | None = None,
    seed: int = 0,
    num_seeds: int = 1,
    log_every: int | None = None,
    logs_per_chunk: int | None = None,
    progress: bool | Callable[[int, dict[str, np.ndarray]], None] = False,
    on_chunk: Callable[[Any, int], None] | None = None,
    state: Any = None,
    start_update: int = 0,
) -> TrainResult:
    """Trains ``num_seeds`` independent runs of one configuration as one compiled program.

    >>> result = train("ppo", "CartPole-v1", num_seeds=2, overrides={"total_steps": 20_000})
    >>> result.final_returns.shape
    (2,)

    ``state``/``start_update`` continue a run from a saved state (its metrics then hold only
    the rows from ``start_update`` on) and ``on_chunk`` is ``execute``'s hook; ``jaxrl.session``
    uses them for checkpoints and resume.
    """
    if num_seeds < 1:
        raise ConfigError(f"num_seeds must be >= 1, got {num_seeds}")
    env_overrides = dict(env_overrides or {})
    algo, env_obj, env_params, config, hparams = resolve(
        algorithm, env, config=config, hparams=hparams, overrides=overrides, env_overrides=env_overrides
    )
    agent = build_agent(algo, env, env_overrides, env_obj, env_params, config)
    num_updates = config.total_steps // agent.steps_per_update
    log_every = log_every or default_log_every(num_updates)
    if log_every < 1:
        raise ConfigError(f"log_every must be >= 1, got {log_every}")
    num_logs = math.ceil(num_updates / log_every)
    logs_per_chunk = logs_per_chunk or default_logs_per_chunk(num_logs)
    hparam_axes = jax.tree.map(lambda _: None, hparams)
    compiled = compiled_for(agent, hparam_axes, logs_per_chunk)
    seeds = list(range(num_seeds))
    callback = _progress_bar(num_updates * agent.steps_per_update, f"{algo.name} {env}") if progress is True else progress or None
    output = execute(
        compiled,
        run_keys(seed, np.asarray(seeds)),
        to_hparams(hparams),
        num_updates=num_updates,
        steps_per_update=agent.steps_per_update,
        log_every=log_every,
        progress=callback,
        state=state,
        start_update=start_update,
        on_chunk=on_chunk,
    )
    if progress is True:
        callback.close()
    return TrainResult(
        algorithm=algo.name,
        env_name=env,
        config=config,
        hparams=hparams,
        seeds=seeds,
        seed=seed,
        metrics=output.metrics,
        steps=output.steps,
        state=output.state,
        agent=agent,
        env_overrides=env_overrides,
        wall_time=output.wall_time,
        compile_time=output.compile_time,
    )


class _progress_bar:
    """tqdm bar over environment steps, with steps/s and the latest mean return."""

    def __init__(self, total_steps: int, description: str):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total_steps, desc=description, unit="step", unit_scale=True, dynamic_ncols=True)
        self.done = 0

    def __call__(self, steps_done: int, rows: dict[str, np.ndarray]) -> None:
        returns = rows.get("episode_return")
        if returns is not None:
            finite = returns[np.isfinite(returns)]
            if finite.size:
                self.bar.set_postfix(ret=f"{finite.mean():.1f}")
        self.bar.update(steps_done - self.done)
        self.done = steps_done

    def close(self) -> None:
        self.bar.close()


def config_dict(config: Any, hparams: Any) -> dict[str, Any]:
    """JSON-ready view of a config and its hyperparameters."""
    out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items()}
    hp = {f.name: getattr(hparams, f.name) for f in dataclasses.fields(hparams)}
    return {"config": out, "hparams": {k: np.asarray(v).tolist() for k, v in hp.items()}}
