"""Continuous task spaces over any environment's numeric parameters, and the environment whose
every episode is played on a task a teacher samples (ALP-GMM, AGAIN, uniform).

A task space is a box: ``NAME=LOW:HIGH`` per parameter (``--task-space length=0.05:2``). Inside
the compiled program a task is a point of the unit cube (``Task.values``), mapped linearly onto
the box and written into the environment's parameters at every step of its episode, so a task
is data like any parameter (rounded for an integer parameter). Some of the box may be
infeasible or trivial: finding that out is the teacher's job.

``TaskEpisodes`` draws the task of every new episode from the teacher's distribution: with probability
``random_ratio`` uniform on the box, otherwise a Gaussian component of a mixture chosen in
proportion to its learning progress (uniformly among active components when all have none),
sampled and clipped to the box (Portelas et al., 2019). The teacher changes it between updates;
during a rollout every episode end draws from it, as the paper's teacher does per episode. Each
copy logs the tasks and returns of the episodes it finished (``log_size`` of them) until the
teacher reads and clears the log.

The distribution is in the environment *state* (``TaskState.sampler``, uniform after a reset),
not its parameters, because the driver keeps one set of parameters for all the runs of a
program, while every seed's teacher has its own.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import spaces
from envs.wrappers import Wrapper
from jaxrl.core.values import ConfigError

# Parameters that build an environment rather than being data in its params (as in make_env).
_NOT_DATA_PREFIXES = ("brax/", "playground/")


@dataclass(frozen=True)
class TaskSpace:
    names: tuple[str, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    integer: tuple[bool, ...]

    @property
    def dim(self) -> int:
        return len(self.names)

    @property
    def text(self) -> str:
        return ",".join(f"{n}={lo:g}:{hi:g}" for n, lo, hi in zip(self.names, self.low, self.high))

    def values(self, unit: jax.Array) -> jax.Array:
        """Points of the unit cube [..., dim] as parameter values."""
        low, high = jnp.asarray(self.low, jnp.float32), jnp.asarray(self.high, jnp.float32)
        return low + jnp.clip(unit, 0.0, 1.0) * (high - low)

    def apply(self, params: Any, unit: jax.Array) -> Any:
        """``params`` with this task's values (one task, ``unit`` [dim])."""
        raw = self.values(unit)
        fields = {}
        for i, name in enumerate(self.names):
            dtype = jnp.asarray(getattr(params, name)).dtype
            fields[name] = (jnp.round(raw[i]) if self.integer[i] else raw[i]).astype(dtype)
        return params.replace(**fields)


def parse_task_space(env_name: str, items: str | list[str] | tuple[str, ...], params: Any) -> TaskSpace:
    """``NAME=LOW:HIGH`` items (a list, or one comma-separated text) over ``params``' numeric
    fields. ``ConfigError`` on one line for a malformed item, an unknown or non-numeric
    parameter, a bound that is not a number or an empty interval."""
    if isinstance(items, str):
        items = [item for item in items.split(",") if item.strip()]
    if not items:
        raise ConfigError("the task space is empty: give --task-space NAME=LOW:HIGH at least once")
    if env_name.startswith(_NOT_DATA_PREFIXES):
        raise ConfigError(f"{env_name}'s settings build the environment; they cannot form a task space "
                          "(use an environment whose parameters are data, e.g. a gymnax one)")
    numeric = {f: getattr(params, f) for f in getattr(params, "__dataclass_fields__", {})
               if _is_number(getattr(params, f))}
    names, lows, highs, integer = [], [], [], []
    for item in items:
        name, eq, bounds = item.strip().partition("=")
        low_text, colon, high_text = bounds.partition(":")
        name = name.strip()
        if not eq or not colon or not name:
            raise ConfigError(f"bad task space item {item!r}: write NAME=LOW:HIGH (e.g. length=0.1:2)")
        if name not in numeric:
            fields = getattr(params, "__dataclass_fields__", {})
            what = "is not a numeric parameter" if name in fields else "has no parameter"
            close = difflib.get_close_matches(name, sorted(numeric), n=3, cutoff=0.5)
            hint = f" (did you mean {', '.join(close)}?)" if close and name not in fields else ""
            subject = f"{env_name} {what} {name!r}" if what == "has no parameter" else f"{env_name}'s {name!r} {what}"
            raise ConfigError(f"{subject}{hint}; its numeric parameters: {', '.join(sorted(numeric)) or 'none'}")
        if name in names:
            raise ConfigError(f"task space parameter {name} is given twice")
        try:
            low, high = float(low_text), float(high_text)
        except ValueError:
            raise ConfigError(f"task space bounds for {name} must be numbers, got {bounds!r}") from None
        if not (np.isfinite(low) and np.isfinite(high)):
            raise ConfigError(f"task space bounds for {name} must be finite, got {bounds!r}")
        if not low < high:
            raise ConfigError(f"task space interval for {name} is empty: {low:g}:{high:g} (LOW must be below HIGH)")
        names.append(name)
        lows.append(low)
        highs.append(high)
        integer.append(np.issubdtype(np.asarray(numeric[name]).dtype, np.integer))
    return TaskSpace(tuple(names), tuple(lows), tuple(highs), tuple(integer))


def _is_number(value: Any) -> bool:
    array = np.asarray(value)
    return array.shape == () and (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)) \
        and not isinstance(value, (bool, np.bool_))


@struct.dataclass
class Task:
    """A level: a point of the unit cube and the mixture component it was drawn from (-1: uniform)."""

    values: jax.Array
    origin: jax.Array


@struct.dataclass
class TaskSampler:
    """A teacher's task distribution as data: ``random_ratio`` and a mixture of Gaussians over
    (task, ALP) in unit-cube coordinates, with Cholesky factors of their covariances."""

    random_ratio: jax.Array  # []
    means: jax.Array  # [C, dim + 1]
    chols: jax.Array  # [C, dim + 1, dim + 1]
    alp: jax.Array  # [C] each component's mean ALP (>= 0)
    active: jax.Array  # [C] bool


def uniform_sampler(dim: int, components: int) -> TaskSampler:
    eye = jnp.broadcast_to(jnp.eye(dim + 1), (components, dim + 1, dim + 1))
    return TaskSampler(jnp.float32(1.0), jnp.zeros((components, dim + 1)), eye, jnp.zeros(components),
                       jnp.zeros(components, bool))


def sample_task(key: jax.Array, sampler: TaskSampler) -> Task:
    """One task: uniform with probability ``random_ratio`` (or when no component is active), else
    from a component drawn in proportion to its ALP (uniformly among the active ones when their
    ALP is all 0), its ALP coordinate dropped and the task clipped to the cube."""
    dim = sampler.means.shape[-1] - 1
    coin_key, uniform_key, pick_key, normal_key = jax.random.split(key, 4)
    weights = jnp.where(sampler.active, jnp.maximum(sampler.alp, 0.0), 0.0)
    weights = jnp.where(weights.sum() > 0, weights, sampler.active.astype(jnp.float32))
    component = jax.random.categorical(pick_key, jnp.log(jnp.where(weights > 0, weights, 1e-30)))
    gaussian = sampler.means[component] + sampler.chols[component] @ jax.random.normal(normal_key, (dim + 1,))
    uniform = jax.random.uniform(uniform_key, (dim,))
    random = (jax.random.uniform(coin_key) < sampler.random_ratio) | ~sampler.active.any()
    values = jnp.where(random, uniform, jnp.clip(gaussian[:dim], 0.0, 1.0))
    return Task(values, jnp.where(random, -1, component).astype(jnp.int32))


@struct.dataclass
class TaskLog:
    """The episodes a copy finished since the teacher last read: task, origin, return."""

    values: jax.Array  # [Q, dim]
    origin: jax.Array  # [Q]
    returns: jax.Array  # [Q]
    count: jax.Array  # [] episodes finished (beyond Q they are counted, not kept)


@struct.dataclass
class TaskState:
    env_state: Any
    task: Task
    episode_return: jax.Array
    log: TaskLog
    sampler: TaskSampler


def empty_log(dim: int, size: int) -> TaskLog:
    return TaskLog(jnp.zeros((size, dim)), jnp.zeros(size, jnp.int32), jnp.zeros(size), jnp.int32(0))


class TaskEpisodes(Wrapper):
    """Every episode on a task of ``space`` (see the module docstring). ``reset_to_level(key,
    task, params)`` starts one on a given ``Task``; with ``observe_task`` the task's unit-cube
    coordinates are appended to the observation. ``components`` is the size of the teacher's
    mixture (the sampler's static shape)."""

    def __init__(self, env, space: TaskSpace, observe_task: bool = False, components: int = 1, log_size: int = 8):
        super().__init__(env)
        self.space, self.observe_task, self.components, self.log_size = space, observe_task, components, log_size

    def _obs(self, obs: jax.Array, task: Task) -> jax.Array:
        return jnp.concatenate([obs, task.values.astype(obs.dtype)], axis=-1) if self.observe_task else obs

    def reset(self, key, params=None):
        task_key, key = jax.random.split(key)
        return self.reset_to_level(key, self.sample_level(task_key, params), params)

    def reset_to_level(self, key, level, params=None):
        params = self.default_params if params is None else params
        obs, env_state = self.env.reset(key, self.space.apply(params, level.values))
        state = TaskState(env_state, level, jnp.float32(0.0), empty_log(self.space.dim, self.log_size),
                          uniform_sampler(self.space.dim, self.components))
        return self._obs(obs, level), state

    def sample_level(self, key, params=None):
        return sample_task(key, uniform_sampler(self.space.dim, self.components))

    def step(self, key, state, action, params=None):
        params = self.default_params if params is None else params
        step_key, task_key, reset_key = jax.random.split(key, 3)
        obs, env_state, reward, terminated, truncated, info = self.env.step(
            step_key, state.env_state, action, self.space.apply(params, state.task.values))
        done = terminated | truncated
        episode_return = state.episode_return + reward
        log = state.log
        slot = jnp.where(done, log.count, self.log_size)  # out of range: dropped
        log = TaskLog(log.values.at[slot].set(state.task.values, mode="drop"),
                      log.origin.at[slot].set(state.task.origin, mode="drop"),
                      log.returns.at[slot].set(episode_return, mode="drop"), log.count + done.astype(jnp.int32))
        task = sample_task(task_key, state.sampler)
        reset_obs, reset_state = self.env.reset(reset_key, self.space.apply(params, task.values))
        info = dict(info, final_observation=self._obs(info["final_observation"], state.task))
        pick = lambda new, old: jax.tree.map(lambda a, b: jnp.where(done, a, b), new, old)  # noqa: E731
        next_state = TaskState(pick(reset_state, env_state), pick(task, state.task),
                               jnp.where(done, 0.0, episode_return), log, state.sampler)
        return self._obs(pick(reset_obs, obs), next_state.task), next_state, reward, terminated, truncated, info

    def observation_space(self, params=None):
        space = self.env.observation_space(params)
        if not self.observe_task:
            return space
        return spaces.Box(low=-jnp.inf, high=jnp.inf, shape=(space.shape[0] + self.space.dim,), dtype=jnp.float32)


def find_task_state(state: Any) -> TaskState:
    """The ``TaskEpisodes`` state inside the wrappers' states of a training stack."""
    while not isinstance(state, TaskState):
        state = state.env_state
    return state


def replace_task_state(state: Any, task_state: TaskState) -> Any:
    if isinstance(state, TaskState):
        return task_state
    return state.replace(env_state=replace_task_state(state.env_state, task_state))
