"""Levels as data: environments whose episodes start from a given level (a pytree), and the
wrappers that choose each episode's level.

An environment with levels implements, besides the protocol's ``reset`` and ``step``,

    reset_to_level(key, level, params) -> (obs, state)   # an episode on this level
    sample_level(key, params) -> level                   # a random level

and keeps in its state whatever it needs to go on stepping on that level. Its own auto-reset may
start a random level; ``EpisodeLevels`` (and with it ``AutoReplay`` and ``DomainRandomization``)
overrides that choice at every episode end, so a replayed level never silently becomes a random
one after its first episode.

``ParamsAsLevels`` gives any environment levels: a level is a complete set of its parameters
(CartPole's pole length and mass, Pendulum's gravity...), kept in the state for the episode.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

from envs.wrappers import Wrapper

# next_level(key, level, params) -> the level of the episode that starts after one ended on ``level``
NextLevel = Callable[[jax.Array, Any, Any], Any]


@struct.dataclass
class LevelState:
    env_state: Any
    level: Any


def stack_levels(levels: Any) -> Any:
    """One level pytree whose leaves have a leading axis of ``len(levels)`` (a batch of levels,
    as ``reset_to_level`` on a ``VectorEnv`` and the curricula's buffers take)."""
    if not levels:
        raise ValueError("stack_levels needs at least one level")
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *levels)


def _where(condition: jax.Array, new: Any, old: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), new, old)


class ParamsAsLevels(Wrapper):
    """Any environment whose levels are its parameters: ``reset_to_level(key, level, params)``
    starts an episode with ``level`` (a params pytree) as the parameters and keeps it in the
    state, so every step of the episode, and the inner environment's own auto-reset, use it. A
    random level (``sample_level``) is ``params`` themselves: wrap in ``DomainRandomization``
    to draw them from a distribution."""

    def reset(self, key, params=None):
        return self.reset_to_level(key, self.default_params if params is None else params, params)

    def reset_to_level(self, key, level, params=None):
        obs, env_state = self.env.reset(key, level)
        return obs, LevelState(env_state, level)

    def sample_level(self, key, params=None):
        return self.default_params if params is None else params

    def step(self, key, state, action, params=None):
        obs, env_state, reward, terminated, truncated, info = self.env.step(key, state.env_state, action, state.level)
        return obs, LevelState(env_state, state.level), reward, terminated, truncated, info


class EpisodeLevels(Wrapper):
    """Chooses the level of every episode of an environment with levels: the first with
    ``first_level(key, params)`` (default: the environment's ``sample_level``), each next one
    with ``next_level(key, level_that_ended, params)``; the environment is restarted on it with
    ``reset_to_level`` the step the previous episode ends (terminated or truncated). The current
    level is in the state (``state.level``), where a curriculum can read or replace it."""

    def __init__(self, env, next_level: NextLevel, first_level: Callable[[jax.Array, Any], Any] | None = None):
        super().__init__(env)
        self.next_level = next_level
        self.first_level = first_level or env.sample_level

    def reset(self, key, params=None):
        level_key, reset_key = jax.random.split(key)
        return self.reset_to_level(reset_key, self.first_level(level_key, params), params)

    def reset_to_level(self, key, level, params=None):
        obs, env_state = self.env.reset_to_level(key, level, params)
        return obs, LevelState(env_state, level)

    def sample_level(self, key, params=None):
        return self.first_level(key, params)

    def step(self, key, state, action, params=None):
        step_key, level_key, reset_key = jax.random.split(key, 3)
        obs, env_state, reward, terminated, truncated, info = self.env.step(step_key, state.env_state, action, params)
        done = terminated | truncated
        level = self.next_level(level_key, state.level, params)
        reset_obs, reset_state = self.env.reset_to_level(reset_key, level, params)
        # info["final_observation"] is the inner step's, from the episode that just ended.
        obs = _where(done, reset_obs, obs)
        state = LevelState(_where(done, reset_state, env_state), _where(done, level, state.level))
        return obs, state, reward, terminated, truncated, info


def _same_level(key: jax.Array, level: Any, params: Any) -> Any:
    return level


def AutoReplay(env, first_level: Callable[[jax.Array, Any], Any] | None = None) -> EpisodeLevels:
    """Restarts every ended episode on the level it was played on (a level given with
    ``reset_to_level`` stays until someone resets to another)."""
    return EpisodeLevels(env, _same_level, first_level)


def DomainRandomization(env, sampler: Callable[[jax.Array, Any], Any]) -> EpisodeLevels:
    """Domain randomisation of any environment's parameters (Tobin et al., 2017): every episode
    runs with parameters ``sampler(key, params)`` drawn anew when it starts, inside the compiled
    program. ``sampler`` returns a full params pytree (e.g. ``params.replace(gravity=...)``)."""
    return EpisodeLevels(ParamsAsLevels(env), lambda key, _level, params: sampler(key, params), sampler)
