"""``craftax/<name>``: Craftax and Craftax-Classic (Matthews et al., 2024), symbolic or pixels.

Craftax is gymnax-style with a five-value step whose ``done`` folds the episode limit
(``params.max_timesteps``, 10000) into death. The adapter steps craftax's no-auto-reset
environment and writes the auto-reset itself, splitting the step's key as craftax's own
auto-resetting environment does (so both give the same episodes for the same keys), and keeps
truncation apart: an episode is terminated when it would be over with the clock at zero (the
agent died, or beat the boss in full Craftax), truncated when only the clock ran out. Craftax's
``info`` (``Achievements/<name>`` as percentages of the ended episode's state, ``discount``)
passes through. Parameters are craftax's ``EnvParams``: data, so they can be overridden,
randomised and vmapped like gymnax's.

Observations: symbolic ones are flat vectors (1345 floats for Classic); pixel ones are
(H, W, 3) images, for which the agents choose the CNN torso.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from envs.suites import SuiteEnv, float_observation

NAMES = ("Craftax-Classic-Pixels-v1", "Craftax-Classic-Symbolic-v1", "Craftax-Pixels-v1", "Craftax-Symbolic-v1")


def names() -> tuple[str, ...]:
    return NAMES


def option_defaults(name: str) -> dict[str, Any]:
    params = CraftaxEnv(name).default_params
    return {f.name: getattr(params, f.name) for f in dataclasses.fields(params) if f.name != "fractal_noise_angles"}


def make(name: str, overrides: dict[str, Any]):
    from envs.registry import replace_params

    env = CraftaxEnv(name)
    return env, replace_params(env.name, env.default_params, overrides)


class CraftaxEnv(SuiteEnv):
    def __init__(self, name: str):
        from craftax.craftax_env import make_craftax_env_from_name

        self._env = make_craftax_env_from_name(name, auto_reset=False)
        super().__init__(f"craftax/{name}", self._env.num_actions)

    def reset_key(self, key: jax.Array) -> jax.Array:
        return jax.random.split(key)[1]

    @property
    def craftax_env(self):
        return self._env

    @property
    def default_params(self) -> Any:
        return self._env.default_params

    def reset(self, key: jax.Array, params: Any = None):
        obs, state = self._env.reset_env(key, self.default_params if params is None else params)
        return float_observation(obs), state

    def step(self, key: jax.Array, state: Any, action: jax.Array, params: Any = None):
        params = self.default_params if params is None else params
        step_key, reset_key = jax.random.split(key)  # reset_key(key) repeats this split
        obs, next_state, reward, done, info = self._env.step_env(step_key, state, action, params)
        obs = float_observation(obs)
        done = jnp.asarray(done, bool)
        terminated = done & jnp.asarray(self._env.is_terminal(next_state.replace(timestep=jnp.zeros_like(next_state.timestep)), params), bool)
        truncated = done & ~terminated
        info = dict(info, final_observation=obs)
        obs, next_state = self.auto_reset(reset_key, params, done, obs, next_state)
        return obs, next_state, jnp.asarray(reward, jnp.float32), terminated, truncated, info
