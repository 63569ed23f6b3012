"""Adapter for gymnax's own environments.

gymnax 1.0 already implements the protocol; the adapter only fixes dtypes (observations float32,
rewards float32, flags bool) so that every environment in the kit yields the same kinds of arrays,
e.g. MinAtar's boolean image observations become floats a network can take.
"""

from __future__ import annotations

from typing import Any

import gymnax
import jax
import jax.numpy as jnp

from envs.core import Environment


def _as_float(x: jax.Array) -> jax.Array:
    return jnp.asarray(x, jnp.float32)


class GymnaxEnv(Environment):
    """A gymnax environment with float32 observations and rewards."""

    def __init__(self, name: str):
        self._env, self._default_params = gymnax.make(name)
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def default_params(self) -> Any:
        return self._default_params

    @property
    def num_actions(self) -> int:
        return self._env.num_actions

    def reset(self, key: jax.Array, params: Any = None):
        params = self._default_params if params is None else params
        obs, state = self._env.reset(key, params)
        return _as_float(obs), state

    def step(self, key: jax.Array, state: Any, action: jax.Array, params: Any = None):
        params = self._default_params if params is None else params
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        info = dict(info, final_observation=_as_float(info["final_observation"]))
        return (
            _as_float(obs),
            state,
            _as_float(reward),
            jnp.asarray(terminated, bool),
            jnp.asarray(truncated, bool),
            info,
        )

    def action_space(self, params: Any = None):
        return self._env.action_space(self._default_params if params is None else params)

    def observation_space(self, params: Any = None):
        return self._env.observation_space(self._default_params if params is None else params)

    def render(self, state: Any, params: Any = None):
        """Delegates to gymnax's renderer where the environment has one."""
        return self._env.render(state, self._default_params if params is None else params)
