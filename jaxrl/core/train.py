"""The pure layer: a training run as one pure function of (key, hyperparameters, environment
parameters), which composes under ``jax.jit``, ``jax.vmap``, ``jax.grad`` and ``shard_map``.

    train = jaxrl.make_train("ppo", "CartPole-v1", total_steps=100_000)
    state, metrics = jax.jit(train)(jax.random.key(0), train.default_hparams)
    metrics["episode_return"]   # [num_logs]: mean return of the episodes that ended in each window
    metrics["final_return"]     # mean return of the episodes that ended in the last 10% of updates

    # 8 seeds x 4 learning rates, one program:
    hparams = train.default_hparams.replace(lr=jnp.array([1e-4, 3e-4, 1e-3, 3e-3]))
    keys = jax.random.split(jax.random.key(0), 8)
    run = jax.vmap(jax.vmap(train, in_axes=(None, train.hparams_axes(lr=0))), in_axes=(0, None))
    states, metrics = jax.jit(run)(keys, hparams)       # metrics["final_return"]: [8, 4]

A run is ``init`` and then ``num_logs`` logging windows of ``log_every`` updates, each a
static-length ``lax.scan``; updates past the run's end (in a partial last window, or windows past
the end of a chunk) are skipped by a ``lax.cond`` on the update or window index, which is the same
for every vmapped run, so it stays a branch.
Each window's metrics are reduced on the device to one row: episode returns and lengths are means
over the episodes that ended in it, every other metric the mean over its updates. Each row also
holds ``final_return_sum`` and ``final_episode_count``, the returns and number of the episodes that
ended in its updates of the run's final fraction (``final_fraction``, default the last 10% of
updates), so that ``final_return`` is the mean return of those episodes whatever ``log_every``
is, from the rows of one call or of any chunks. ``run``
executes any range of windows, which is how the host driver (``jaxrl.driver``) trains in chunks:
chunks compute exactly what one call computes.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

import envs
from jaxrl.core.contract import Agent, Algorithm, ConfigError, apply_overrides, get_algorithm
from jaxrl.core.environments import make_env
from jaxrl.components.optim import default_optimizer_params

# Metrics an agent reports as sums over episodes that ended; a window divides them by its episode
# count. A metric reported as ``X_sum`` with ``X_count`` (an occasional one, e.g. a periodic
# evaluation) becomes X = sum / count, NaN in a window without any. Every other scalar metric is
# averaged over the window's updates.
EPISODE_SUMS = {"episode_return_sum": "episode_return", "episode_length_sum": "episode_length"}

# The row entries that ``final_return`` reads, summed over the windows of a run.
FINAL_SUMS = ("final_return_sum", "final_episode_count")
DEFAULT_FINAL_FRACTION = 0.1

_TRACES = {"count": 0}


def trace_count() -> int:
    """How many times ``init`` or ``run`` of any training program has been traced: a program
    that is not traced again is not compiled again."""
    return _TRACES["count"]


def default_log_every(num_updates: int, rows: int = 100) -> int:
    """About ``rows`` windows; among window lengths within a factor of two of that, the nearest
    one that divides ``num_updates`` (so that no update needs masking), if there is one."""
    target = max(1, num_updates // rows)
    divisors = [d for d in range(max(1, target // 2), 2 * target + 1) if num_updates % d == 0]
    return min(divisors, key=lambda d: (abs(d - target), d)) if divisors else target


def to_hparams(hparams: Any) -> Any:
    """Leaves as float32 arrays (unless they already have a dtype), so that a Python float and an
    array of the same value reach the same compiled program (a weakly typed float would not)."""
    return jax.tree.map(lambda x: jnp.asarray(x) if hasattr(x, "dtype") else jnp.asarray(x, jnp.float32), hparams)


def final_return(rows: Mapping[str, Any]) -> jax.Array:
    """The run's final return from its rows (windows along the last axis): the mean return of the
    episodes that ended during the final fraction of its updates, NaN if none did. Works on the
    device (``Train.__call__``) and on the host's numpy rows alike."""
    total, count = (jnp.sum(jnp.asarray(rows[name]), axis=-1) for name in FINAL_SUMS)
    return jnp.where(count > 0, total / jnp.maximum(count, 1.0), jnp.nan)


def learning_curve_mean(returns: jax.Array, window_updates: Any) -> jax.Array:
    """The area under the learning curve, as a mean return: each logged window's mean episode
    return (``returns``, windows along the last axis, NaN where none ended) weighted by its number
    of updates (``window_updates``), windows without an episode left out. Unlike the final return
    it keeps ranking runs that all end at a task's maximum: the faster one scores higher."""
    returns = jnp.asarray(returns)
    weights = jnp.where(jnp.isnan(returns), 0.0, jnp.asarray(window_updates, jnp.float32))
    total = jnp.sum(jnp.where(jnp.isnan(returns), 0.0, returns) * weights, axis=-1)
    count = jnp.sum(weights, axis=-1)
    return jnp.where(count > 0, total / jnp.maximum(count, 1.0), jnp.nan)


def check_final_fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not 0.0 < value <= 1.0:
        raise ConfigError(f"final_fraction must be a number in (0, 1], got {value!r}")
    return float(value)


def _reduce_window(metrics: dict[str, jax.Array], num_active: jax.Array) -> dict[str, jax.Array]:
    """One row from a window's per-update metrics [log_every] (zeros where skipped)."""
    sums = {name: values.astype(jnp.float32).sum(axis=0) for name, values in metrics.items()}
    count = sums.get("episode_count")
    row = {}
    for name, total in sums.items():
        base = name[: -len("_sum")]
        if name in EPISODE_SUMS:
            row[EPISODE_SUMS[name]] = jnp.where(count > 0, total / jnp.maximum(count, 1.0), jnp.nan)
        elif name.endswith("_sum") and f"{base}_count" in sums:  # an occasional metric: NaN where absent
            events = sums[f"{base}_count"]
            row[base] = jnp.where(events > 0, total / jnp.maximum(events, 1.0), jnp.nan)
        elif name == "episode_count":
            row[name] = total
        elif name.endswith("_count") and f"{name[: -len('_count')]}_sum" in sums:
            continue
        else:
            row[name] = total / jnp.maximum(num_active, 1)
    return row


class Program:
    """The pure functions of one built agent, logged every ``log_every`` updates. Built once per
    (algorithm, environment, config, ``log_every``, remat) and shared by every ``Train`` of that
    structure, so the host driver compiles each structure once."""

    def __init__(self, agent: Agent, log_every: int, remat: bool = False, final_fraction: float = DEFAULT_FINAL_FRACTION):
        self.agent = agent
        self.num_updates = agent.num_updates
        self.log_every = log_every
        self.num_logs = math.ceil(self.num_updates / log_every)
        self.final_fraction = final_fraction
        # The first update of the final fraction: at least the last update counts.
        self.final_start = self.num_updates - max(1, math.ceil(final_fraction * self.num_updates))
        # One jitted function, so that shaping the skipped branch and the update itself share a
        # single trace of the agent's update.
        self._update = jax.jit(jax.checkpoint(agent.update) if remat else agent.update)

    def init(self, key: jax.Array, hparams: Any, env_params: Any) -> Any:
        _TRACES["count"] += 1  # runs at trace time only
        return self.agent.init(key, hparams, env_params)

    def run(self, state: Any, hparams: Any, first_window: jax.Array, num_windows: int) -> tuple[Any, dict[str, jax.Array]]:
        """Windows ``first_window, ..., first_window + num_windows - 1``; rows [num_windows] each.
        Windows past the end of the run leave the state as it is (their rows are meaningless)."""
        _TRACES["count"] += 1

        def learn(state, step):
            state, metrics = self._update(state, hparams, step)
            metrics.pop("per_env", None)
            return state, metrics

        shapes = jax.eval_shape(learn, state, jnp.int32(0))[1]
        zeros = lambda: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)  # noqa: E731

        def masked_update(state, step):
            return jax.lax.cond(step < self.num_updates, learn, lambda state, step: (state, zeros()), state, step)

        # When the windows tile the run exactly, only whole windows past its end (a chunk's tail)
        # are skipped, by one cond per window; otherwise every update of the last window is
        # masked. A cond per update cost DQN about 15% on a 2-core CPU (experiments/bench/README.md).
        tiled = self.num_updates % self.log_every == 0
        one_update = learn if tiled else masked_update

        def scan_window(state, index):
            first = index * self.log_every
            steps = first + jnp.arange(self.log_every, dtype=jnp.int32)
            state, metrics = jax.lax.scan(one_update, state, steps)
            num_active = jnp.clip(self.num_updates - first, 0, self.log_every)
            return state, self._row(metrics, num_active, steps)

        def skipped_window(state, index):
            return state, self._row(jax.tree.map(lambda z: z[None], zeros()), 0, jnp.zeros(1, jnp.int32))

        def tiled_window(state, index):
            return jax.lax.cond(index < self.num_logs, scan_window, skipped_window, state, index)

        windows = jnp.asarray(first_window, jnp.int32) + jnp.arange(num_windows, dtype=jnp.int32)
        return jax.lax.scan(tiled_window if tiled else scan_window, state, windows)

    def _row(self, metrics: dict[str, jax.Array], num_active: jax.Array, steps: jax.Array) -> dict[str, jax.Array]:
        """The window's row, with the sums ``final_return`` reads over its updates in the final
        fraction (skipped updates report zeros, so they add nothing)."""
        in_final = (steps >= self.final_start).astype(jnp.float32)
        row = _reduce_window(metrics, num_active)
        row["final_return_sum"] = (metrics["episode_return_sum"].astype(jnp.float32) * in_final).sum()
        row["final_episode_count"] = (metrics["episode_count"].astype(jnp.float32) * in_final).sum()
        return row


class Train:
    """``train(key, hparams, env_params=None) -> (state, metrics)``: a whole training run, pure.

    ``hparams`` has the structure of ``default_hparams`` (leaves may be batched by an outer
    ``vmap``: a sweep, or a population of learned objectives); ``env_params`` default to
    ``default_env_params`` and may be one set for every env copy or one per copy (a leading
    ``num_envs`` axis). ``metrics`` holds every logged metric as [num_logs] rows (a window without
    a finished episode has a NaN return) and ``final_return``, reduced on the device."""

    def __init__(
        self,
        algorithm: Algorithm,
        env_name: str,
        env: envs.Environment,
        env_params: Any,
        config: Any,
        hparams: Any,
        program: Program,
        env_overrides: Mapping[str, Any] | None = None,
    ):
        self.algorithm = algorithm
        self.env_name = env_name
        self.env = env
        self.env_overrides = dict(env_overrides or {})
        self.config = config
        self.program = program
        self.agent = program.agent
        self.hparams = hparams  # as resolved (Python numbers where given so): what run specs record
        self.default_hparams = to_hparams(hparams)
        self.default_env_params = jax.tree.map(jnp.asarray, env_params)

    num_updates = property(lambda self: self.program.num_updates)
    num_logs = property(lambda self: self.program.num_logs)
    log_every = property(lambda self: self.program.log_every)
    final_fraction = property(lambda self: self.program.final_fraction)
    steps_per_update = property(lambda self: self.agent.steps_per_update)
    total_env_steps = property(lambda self: int(self.agent.env_steps(self.program.num_updates)))

    def log_steps(self) -> np.ndarray:
        """Env steps (per run) at the end of each logged window."""
        return self.agent.env_steps(self._window_ends())

    def window_updates(self) -> np.ndarray:
        """The number of updates in each logged window (the last may be partial)."""
        return np.diff(self._window_ends(), prepend=0)

    def _window_ends(self) -> np.ndarray:
        return np.minimum((np.arange(self.num_logs) + 1) * self.log_every, self.num_updates)

    def hparams_axes(self, **axes: int | None) -> Any:
        """An ``in_axes`` prefix for ``vmap`` over ``hparams``: the named fields batched along
        ``axes[name]`` (every leaf of a pytree field alike), the rest shared."""
        return jax.tree.map(lambda _: None, self.default_hparams).replace(**axes)

    def init(self, key: jax.Array, hparams: Any, env_params: Any = None) -> Any:
        if env_params is None:
            # Data, not constants: XLA would fold constants into the environment's arithmetic,
            # and the run would then round differently from one given the same values.
            env_params = jax.lax.optimization_barrier(self.default_env_params)
        return self.program.init(key, hparams, env_params)

    def run(self, state: Any, hparams: Any, first_window: jax.Array = 0, num_windows: int | None = None):
        return self.program.run(state, hparams, first_window, self.num_logs if num_windows is None else num_windows)

    def __call__(self, key: jax.Array, hparams: Any, env_params: Any = None) -> tuple[Any, dict[str, jax.Array]]:
        state, metrics = self.run(self.init(key, hparams, env_params), hparams)
        return state, {**metrics, "final_return": final_return(metrics)}

    def policy_params(self, state: Any) -> Any:
        """What ``act`` needs from a run state: weights and observation-normaliser statistics."""
        return self.agent.policy_params(state)

    def act(self, policy_params: Any, obs: jax.Array, key: jax.Array, deterministic: bool = False, memory: Any = None):
        """The action; a recurrent agent's (``initial_memory`` not None) takes and returns its
        memory: ``act(..., memory=m) -> (action, memory)``."""
        if self.agent.initial_memory is None:
            return self.agent.act(policy_params, obs, key, deterministic)
        return self.agent.act(policy_params, obs, key, deterministic, memory)

    @property
    def initial_memory(self):
        """``initial_memory(batch)`` for a recurrent agent, None for a feed-forward one."""
        return self.agent.initial_memory


def resolve(
    algorithm: str | Algorithm,
    env_name: str,
    *,
    config: Any = None,
    hparams: Any = None,
    overrides: Mapping[str, Any] | None = None,
    env_overrides: Mapping[str, Any] | None = None,
) -> tuple[Algorithm, envs.Environment, Any, Any, Any]:
    """Looks up the algorithm and environment, fills in defaults, applies overrides and checks
    everything, before anything is traced. Returns (algorithm, env, env_params, config, hparams)."""
    algo = get_algorithm(algorithm) if isinstance(algorithm, str) else algorithm
    env_overrides = dict(env_overrides or {})
    own_options = algo.env_options(env_name) if algo.env_options is not None else {}
    env, env_params = make_env(env_name, {k: v for k, v in env_overrides.items() if k not in own_options})
    if algo.wrap_env is not None:
        env, env_params = algo.wrap_env(env_name, env, env_params, {k: v for k, v in env_overrides.items() if k in own_options})
    discrete = envs.is_discrete(env.action_space(env_params))
    if discrete and not algo.discrete:
        raise ConfigError(f"{algo.name} needs continuous actions but {env_name} has discrete ones")
    if not discrete and not algo.continuous:
        raise ConfigError(f"{algo.name} needs discrete actions but {env_name} has continuous ones")
    default_config, default_hparams = algo.defaults(env_name, discrete)
    config = default_config if config is None else config
    hparams = default_hparams if hparams is None else hparams
    config, hparams = apply_overrides(algo, config, hparams, dict(overrides or {}))
    if hasattr(config, "optimizer") and hasattr(hparams, "optimizer_params"):
        # A learned optimizer's weights default to its initial ones (the meta-search's start).
        hparams = hparams.replace(optimizer_params=default_optimizer_params(config.optimizer, hparams.optimizer_params))
    algo.check(config, jax.tree.map(np.asarray, hparams), discrete)
    return algo, env, env_params, config, hparams


_PROGRAMS: dict[Any, tuple[Program, envs.Environment]] = {}


def _overrides_key(env_overrides: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, v if callable(v) else repr(v)) for k, v in env_overrides.items()))


def build(
    algorithm: str | Algorithm,
    env_name: str,
    *,
    config: Any = None,
    hparams: Any = None,
    overrides: Mapping[str, Any] | None = None,
    env_overrides: Mapping[str, Any] | None = None,
    log_every: int | None = None,
    remat: bool = False,
    final_fraction: float = DEFAULT_FINAL_FRACTION,
) -> Train:
    """``make_train`` with a given config or hyperparameters (the host driver's entry)."""
    env_overrides = dict(env_overrides or {})
    algo, env, env_params, config, hparams = resolve(
        algorithm, env_name, config=config, hparams=hparams, overrides=overrides, env_overrides=env_overrides
    )
    if log_every is not None and (isinstance(log_every, bool) or not isinstance(log_every, (int, np.integer)) or log_every < 1):
        raise ConfigError(f"log_every must be an integer >= 1, got {log_every!r}")
    final_fraction = check_final_fraction(final_fraction)
    key = (algo, env_name, _overrides_key(env_overrides), config, log_every, bool(remat), final_fraction)
    if key not in _PROGRAMS:
        agent = algo.build(config, env)
        _PROGRAMS[key] = (Program(agent, int(log_every or default_log_every(agent.num_updates)), remat, final_fraction), env)
    program, env = _PROGRAMS[key]
    return Train(algo, env_name, env, env_params, config, hparams, program, env_overrides)


def make_train(
    algorithm: str | Algorithm,
    env: str,
    *,
    total_steps: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    env_overrides: Mapping[str, Any] | None = None,
    log_every: int | None = None,
    remat: bool = False,
    final_fraction: float = DEFAULT_FINAL_FRACTION,
) -> Train:
    """The training run of ``algorithm`` on ``env`` as one pure function (see ``Train``).

    ``overrides`` set config fields (static: they decide shapes) and hyperparameters (traced:
    pass them to the call instead to vary them without recompiling); ``env_overrides`` set
    environment parameters (values, distributions such as ``"uniform:8:12"``, or samplers);
    ``log_every`` is the number of updates per logged window (default: about 100 windows);
    ``final_fraction`` the fraction of the run's last updates whose ended episodes make
    ``metrics["final_return"]`` (default 0.1: the last 10%);
    ``remat=True`` wraps every update in ``jax.checkpoint``, trading compute for memory when
    differentiating through many updates.

    >>> train = make_train("ppo", "CartPole-v1", total_steps=20_480)
    >>> state, metrics = jax.jit(train)(jax.random.key(0), train.default_hparams)
    >>> metrics["episode_return"].shape, metrics["final_return"].shape
    ((10,), ())
    """
    overrides = dict(overrides or {})
    if total_steps is not None:
        overrides["total_steps"] = total_steps
    return build(algorithm, env, overrides=overrides, env_overrides=env_overrides, log_every=log_every, remat=remat,
                 final_fraction=final_fraction)
