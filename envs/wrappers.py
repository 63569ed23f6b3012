"""Environment wrappers. Each keeps whatever statistics it needs inside the env state pytree, so
that they are vmapped, scanned and checkpointed with everything else.

Single-environment wrappers: ``EpisodeStatistics``, ``FlattenObservation``, ``OneHotIndex``,
``RescaleAction``.
``VectorEnv`` batches an environment over ``num_envs``; ``NormalizeObservation`` and
``NormalizeReward`` sit on top of it so that their running statistics are shared by the batch
(one normaliser for the policy, as in the deployed agent).
"""

from __future__ import annotations

import copy
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from envs.core import Environment, spaces


class Wrapper(Environment):
    """Delegates everything to the wrapped environment.

    ``reset_transparent``: the wrapper passes ``step``'s key down unchanged, and its ``step``,
    where the inner environment auto-resets, returns exactly what its ``reset`` returns on the
    inner reset (what ``VectorEnv`` needs to reset ended copies in a batch, below)."""

    reset_transparent = False

    def __init__(self, env: Environment):
        self.env = env

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes the wrapper itself lacks.
        if name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)

    @property
    def name(self) -> str:
        return self.env.name

    @property
    def default_params(self) -> Any:
        return self.env.default_params

    @property
    def num_actions(self) -> int:
        return self.env.num_actions

    def reset(self, key, params=None):
        return self.env.reset(key, params)

    def step(self, key, state, action, params=None):
        return self.env.step(key, state, action, params)

    def reset_to_level(self, key, level, params=None):
        # Correct for wrappers that keep the inner state as it is; the others override it.
        return self.env.reset_to_level(key, level, params)

    def action_space(self, params=None):
        return self.env.action_space(params)

    def observation_space(self, params=None):
        return self.env.observation_space(params)


# --------------------------------------------------------------------------------------------
# Single-environment wrappers


@struct.dataclass
class EpisodeStatisticsState:
    env_state: Any
    episode_return: jax.Array
    episode_length: jax.Array


class EpisodeStatistics(Wrapper):
    """Adds the undiscounted return and length of each finished episode to ``info``.

    ``info["episode_done"]`` marks steps that ended an episode (terminated or truncated), and
    ``info["episode_return"]`` / ``info["episode_length"]`` are that episode's totals there (zero
    elsewhere). Put it below reward normalisation so it reports the environment's true reward.
    """

    reset_transparent = True  # see VectorEnv

    def reset(self, key, params=None):
        return self._start(*self.env.reset(key, params))

    def reset_to_level(self, key, level, params=None):
        return self._start(*self.env.reset_to_level(key, level, params))

    @staticmethod
    def _start(obs, env_state):
        return obs, EpisodeStatisticsState(env_state, jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32))

    def step(self, key, state, action, params=None):
        obs, env_state, reward, terminated, truncated, info = self.env.step(key, state.env_state, action, params)
        done = terminated | truncated
        episode_return = state.episode_return + reward
        episode_length = state.episode_length + 1
        info = dict(
            info,
            episode_done=done,
            episode_return=jnp.where(done, episode_return, 0.0),
            episode_length=jnp.where(done, episode_length, 0),
        )
        state = EpisodeStatisticsState(
            env_state,
            jnp.where(done, 0.0, episode_return),
            jnp.where(done, 0, episode_length),
        )
        return obs, state, reward, terminated, truncated, info


class FlattenObservation(Wrapper):
    """Reshapes observations (and final observations) to one dimension."""

    reset_transparent = True  # see VectorEnv

    def reset(self, key, params=None):
        obs, state = self.env.reset(key, params)
        return obs.reshape(-1), state

    def reset_to_level(self, key, level, params=None):
        obs, state = self.env.reset_to_level(key, level, params)
        return obs.reshape(-1), state

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, params)
        info = dict(info, final_observation=info["final_observation"].reshape(-1))
        return obs.reshape(-1), state, reward, terminated, truncated, info

    def observation_space(self, params=None):
        space = self.env.observation_space(params)
        size = 1
        for d in space.shape:
            size *= d
        low = jnp.broadcast_to(jnp.asarray(space.low, jnp.float32), space.shape).reshape(-1)
        high = jnp.broadcast_to(jnp.asarray(space.high, jnp.float32), space.shape).reshape(-1)
        return spaces.Box(low=low, high=high, shape=(size,), dtype=jnp.float32)


def one_hot_index(obs: jax.Array) -> jax.Array:
    """The index of a one-hot vector (last axis), as a float: its dot product with 0..n-1, exact in
    float32 below 2^24. XLA's CPU argmax is a scalar loop; this is one vectorised product."""
    return jnp.dot(obs, jnp.arange(obs.shape[-1], dtype=obs.dtype), precision=jax.lax.Precision.HIGHEST)


class OneHotIndex(Wrapper):
    """One-hot observations (and final observations) replaced by their index, a float array of
    shape (1,): what a table reads, without n floats a step to store (the grid worlds' one-hots are
    288 long, and as rollouts they were most of a meta-step's memory traffic)."""

    one_hot_observation = False
    reset_transparent = True  # see VectorEnv

    def reset(self, key, params=None):
        obs, state = self.env.reset(key, params)
        return one_hot_index(obs)[None], state

    def reset_to_level(self, key, level, params=None):
        obs, state = self.env.reset_to_level(key, level, params)
        return one_hot_index(obs)[None], state

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, params)
        info = dict(info, final_observation=one_hot_index(info["final_observation"])[None])
        return one_hot_index(obs)[None], state, reward, terminated, truncated, info

    def observation_space(self, params=None):
        size = self.env.observation_space(params).shape[-1]
        return spaces.Box(low=0.0, high=float(size - 1), shape=(1,), dtype=jnp.float32)


class RescaleAction(Wrapper):
    """The agent acts in [-1, 1]^d; actions are clipped there and mapped affinely onto the
    environment's [low, high]. Agents keep the unclipped sample for their log-probabilities."""

    reset_transparent = True  # see VectorEnv

    def __init__(self, env: Environment):
        super().__init__(env)
        space = env.action_space(env.default_params)
        if not isinstance(space, spaces.Box):
            raise TypeError("RescaleAction needs a continuous (Box) action space")
        self._low = jnp.broadcast_to(jnp.asarray(space.low, jnp.float32), space.shape)
        self._high = jnp.broadcast_to(jnp.asarray(space.high, jnp.float32), space.shape)
        self._shape = tuple(space.shape)

    def to_env_action(self, action: jax.Array) -> jax.Array:
        action = jnp.clip(action, -1.0, 1.0)
        return self._low + (action + 1.0) * 0.5 * (self._high - self._low)

    def step(self, key, state, action, params=None):
        return self.env.step(key, state, self.to_env_action(action).reshape(self._shape), params)

    def action_space(self, params=None):
        return spaces.Box(low=-1.0, high=1.0, shape=self._shape, dtype=jnp.float32)


# --------------------------------------------------------------------------------------------
# Vectorisation and batch-level normalisation


class VectorEnv(Wrapper):
    """``num_envs`` independent copies, stepped together with ``vmap``. Observations, rewards and
    flags gain a leading batch axis; one key is split into one per copy.

    ``params`` are per copy: every leaf has a leading axis of ``num_envs`` (``tile_params`` makes
    them from one set), so that copies may run with different parameters (a task distribution)
    and a run state can carry, and change, them like any other data.

    Resets that cost what they should: where the environment at the bottom has
    ``reset_in_batch`` (a suite adapter whose reset costs many steps, e.g. Craftax's world
    generation) and every wrapper above it is ``reset_transparent``, the copies are stepped
    without their auto-reset and only the copies that ended are reset, ``reset_chunk`` at a time
    (``reset_ended``), instead of every copy computing a reset every step under ``vmap``. Each
    ended copy gets the reset its own auto-reset would have computed, from its own key, so each
    one starts on an independently drawn level. The episodes are those of the per-copy
    auto-reset, bit for bit where the suite's arithmetic is exact (navix: tested); in floating
    point XLA may round differently in differently batched programs (Craftax's world generation
    gives a copy a different world for the same key in a batch of 8 and of 16), as it does for
    any change of ``num_envs``."""

    def __init__(self, env: Environment, num_envs: int, reset_chunk: int | None = None):
        super().__init__(env)
        self.num_envs = int(num_envs)
        self._deferred = _deferred_chain(env)
        # 1 in 16 copies per chunk: an ended copy costs at most one chunk of resets that step.
        self.reset_chunk = int(reset_chunk or max(1, self.num_envs // 16))

    @property
    def resets_in_batch(self) -> bool:
        return self._deferred is not None

    def reset(self, key, params):
        keys = jax.random.split(key, self.num_envs)
        return jax.vmap(self.env.reset)(keys, params)

    def step(self, key, state, action, params):
        keys = jax.random.split(key, self.num_envs)
        if self._deferred is None:
            return jax.vmap(self.env.step)(keys, state, action, params)
        chain, bottom = self._deferred
        obs, state, reward, terminated, truncated, info = jax.vmap(chain.step)(keys, state, action, params)
        reset_keys = jax.vmap(bottom.reset_key)(keys)
        obs, state = reset_ended(self.env.reset, reset_keys, params, terminated | truncated, obs, state, self.reset_chunk)
        return obs, state, reward, terminated, truncated, info

    def reset_to_level(self, key, level, params):
        """Every copy restarts on its own level (leaves with a leading ``num_envs`` axis)."""
        keys = jax.random.split(key, self.num_envs)
        return jax.vmap(self.env.reset_to_level)(keys, level, params)


def _deferred_chain(env: Environment) -> tuple[Environment, Environment] | None:
    """``(a copy of the wrapper chain over the bottom environment's deferred() twin, the bottom
    environment)`` where the bottom has ``reset_in_batch`` and every wrapper is
    ``reset_transparent``; None otherwise."""
    if isinstance(env, Wrapper):
        if not type(env).reset_transparent:
            return None
        inner = _deferred_chain(env.env)
        if inner is None:
            return None
        twin = copy.copy(env)
        twin.env = inner[0]
        return twin, inner[1]
    return (env.deferred(), env) if getattr(env, "reset_in_batch", False) else None


def reset_ended(reset, keys, params, done, obs, state, chunk: int):
    """``(obs, state)`` with every copy where ``done`` replaced by ``reset(keys[i], params[i])``,
    computing the resets ``chunk`` copies at a time and only as many chunks as copies ended (a
    ``while_loop``: under an outer ``vmap`` it runs the most any member needs)."""
    n = done.shape[0]
    chunks = -(-n // chunk)
    # The ended copies' indices in order, then n (out of range: gathers clip, scatters drop it).
    order = jnp.sort(jnp.where(done, jnp.arange(n), n))
    order = jnp.concatenate([order, jnp.full((chunks * chunk - n,), n, order.dtype)])
    count = done.sum()

    def reset_chunk(carry):
        i, obs, state = carry
        index = jax.lax.dynamic_slice(order, (i * chunk,), (chunk,))
        rows = jnp.minimum(index, n - 1)
        new_obs, new_state = jax.vmap(reset)(keys[rows], jax.tree.map(lambda x: x[rows], params))
        put = lambda old, new: old.at[index].set(new, mode="drop")  # noqa: E731
        return i + 1, put(obs, new_obs), jax.tree.map(put, state, new_state)

    _, obs, state = jax.lax.while_loop(lambda carry: carry[0] * chunk < count, reset_chunk, (0, obs, state))
    return obs, state


def tile_params(params: Any, num_envs: int) -> Any:
    """One set of environment parameters repeated for ``num_envs`` copies (arrays, so that they
    enter compiled programs as data, never as constants)."""
    return jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (num_envs, *jnp.shape(x))), params)


def per_copy_params(params: Any, default: Any, num_envs: int) -> Any:
    """``params`` for ``num_envs`` copies: tiled when they are one set (leaves shaped like
    ``default``'s), kept when every leaf already has the leading copy axis."""
    leaves, default_leaves = jax.tree.leaves(params), jax.tree.leaves(default)
    if len(leaves) != len(default_leaves):
        raise ValueError("environment parameters do not have the structure of the environment's default parameters")
    if all(jnp.shape(x) == jnp.shape(d) for x, d in zip(leaves, default_leaves)):
        return tile_params(params, num_envs)
    if all(jnp.shape(x) == (num_envs, *jnp.shape(d)) for x, d in zip(leaves, default_leaves)):
        return params
    raise ValueError(f"environment parameters must be one set or one per copy (leading axis {num_envs})")


@struct.dataclass
class RunningMeanStd:
    """Mean and variance of a stream, merged batch by batch (Chan et al., 1979)."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array

    @classmethod
    def zeros(cls, shape: tuple[int, ...]) -> "RunningMeanStd":
        return cls(jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32), jnp.asarray(1e-4, jnp.float32))

    def update(self, batch: jax.Array) -> "RunningMeanStd":
        batch_mean = batch.mean(axis=0)
        batch_var = batch.var(axis=0)
        batch_count = batch.shape[0]
        delta = batch_mean - self.mean
        total = self.count + batch_count
        mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count + delta**2 * self.count * batch_count / total
        return RunningMeanStd(mean, m2 / total, total)


def normalize_observation(stats: RunningMeanStd, obs: jax.Array, clip: float = 10.0) -> jax.Array:
    """The transform the policy sees; saved policies apply it with the statistics of their run."""
    return jnp.clip((obs - stats.mean) / jnp.sqrt(stats.var + 1e-8), -clip, clip)


@struct.dataclass
class NormalizeObservationState:
    env_state: Any
    obs_stats: RunningMeanStd


class NormalizeObservation(Wrapper):
    """Standardises observations with running statistics shared across the batch (wrap a
    ``VectorEnv``). Final observations are normalised with the same statistics."""

    def reset(self, key, params=None):
        return self._start(*self.env.reset(key, params))

    def reset_to_level(self, key, level, params=None):
        """Fresh statistics, as ``reset``: a new run on these levels."""
        return self._start(*self.env.reset_to_level(key, level, params))

    @staticmethod
    def _start(obs, env_state):
        stats = RunningMeanStd.zeros(obs.shape[1:]).update(obs)
        return normalize_observation(stats, obs), NormalizeObservationState(env_state, stats)

    def step(self, key, state, action, params=None):
        obs, env_state, reward, terminated, truncated, info = self.env.step(key, state.env_state, action, params)
        stats = state.obs_stats.update(obs)
        info = dict(info, final_observation=normalize_observation(stats, info["final_observation"]))
        return normalize_observation(stats, obs), NormalizeObservationState(env_state, stats), reward, terminated, truncated, info


@struct.dataclass
class NormalizeRewardState:
    env_state: Any
    discounted_return: jax.Array
    return_stats: RunningMeanStd


class NormalizeReward(Wrapper):
    """Scales rewards by the running standard deviation of the discounted return (wrap a
    ``VectorEnv``). The return estimate restarts after every episode end, truncation included."""

    def __init__(self, env: Environment, gamma: float = 0.99):
        super().__init__(env)
        self.gamma = float(gamma)

    def reset(self, key, params=None):
        return self._start(*self.env.reset(key, params))

    def reset_to_level(self, key, level, params=None):
        """Fresh statistics, as ``reset``."""
        return self._start(*self.env.reset_to_level(key, level, params))

    @staticmethod
    def _start(obs, env_state):
        return obs, NormalizeRewardState(env_state, jnp.zeros((obs.shape[0],), jnp.float32), RunningMeanStd.zeros(()))

    def step(self, key, state, action, params=None):
        obs, env_state, reward, terminated, truncated, info = self.env.step(key, state.env_state, action, params)
        discounted_return = state.discounted_return * self.gamma + reward
        stats = state.return_stats.update(discounted_return)
        scaled = reward / jnp.sqrt(stats.var + 1e-8)
        discounted_return = jnp.where(terminated | truncated, 0.0, discounted_return)
        return obs, NormalizeRewardState(env_state, discounted_return, stats), scaled, terminated, truncated, info


def find_observation_stats(state: Any) -> RunningMeanStd | None:
    """The observation normaliser's statistics inside a (wrapped) env state, if there is one."""
    while state is not None:
        if isinstance(state, NormalizeObservationState):
            return state.obs_stats
        state = getattr(state, "env_state", None)
    return None
