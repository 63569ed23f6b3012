"""Adapter from brax's environments (``brax.envs``) to the kit's protocol.

brax's own training wrappers (EpisodeWrapper, AutoResetWrapper) fold truncation into ``done`` and
auto-reset to a cached first state; we want a fresh random reset per episode and truncation kept
apart from termination, so the episode limit and the auto-reset are written here instead.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from brax import envs as brax_envs
from flax import struct

from envs.core import Environment, spaces


@struct.dataclass
class BraxParams:
    max_steps_in_episode: int = 1000


@struct.dataclass
class BraxState:
    brax_state: Any  # brax.envs.base.State
    time: jax.Array


class BraxEnv(Environment):
    """``brax/<name>``: a brax environment with an episode limit and auto-reset."""

    def __init__(self, name: str, backend: str = "positional", episode_length: int = 1000):
        self._name = name
        self.backend = backend
        self.episode_length = int(episode_length)
        self._env = brax_envs.get_environment(name, backend=backend)

    @property
    def name(self) -> str:
        return f"brax/{self._name}"

    @property
    def brax_env(self):
        return self._env

    @property
    def default_params(self) -> BraxParams:
        return BraxParams(max_steps_in_episode=self.episode_length)

    def reset(self, key: jax.Array, params: BraxParams | None = None):
        brax_state = self._env.reset(key)
        return brax_state.obs, BraxState(brax_state=brax_state, time=jnp.zeros((), jnp.int32))

    def step(self, key: jax.Array, state: BraxState, action: jax.Array, params: BraxParams | None = None):
        params = self.default_params if params is None else params
        stepped = self._env.step(state.brax_state, action)
        time = state.time + 1
        terminated = stepped.done > 0.5
        truncated = jnp.logical_and(time >= params.max_steps_in_episode, ~terminated)
        done = terminated | truncated
        # brax keeps done/reward inside its state; clear them so the reset and stepped
        # states have identical structure and the next step starts clean.
        reset_obs, reset_state = self.reset(key, params)
        next_state = jax.tree.map(
            lambda r, s: jnp.where(done, r, s),
            reset_state,
            BraxState(brax_state=stepped, time=time),
        )
        obs = jnp.where(done, reset_obs, stepped.obs)
        info = {
            "terminated": terminated,
            "truncated": truncated,
            "final_observation": stepped.obs,
        }
        return obs, next_state, stepped.reward, terminated, truncated, info

    # External forces (``envs.adversarial``): MJX keeps ``xfrc_applied`` in its data, which brax's
    # mjx pipeline steps; brax's own pipelines (generalized, positional, spring) take none.
    def supports_push(self) -> bool:
        return self.backend == "mjx"

    def body_names(self) -> tuple[str, ...]:
        model = self._env.sys.mj_model
        return tuple(model.body(i).name for i in range(model.nbody))

    def push(self, state: BraxState, body_ids: tuple[int, ...], forces: jax.Array) -> BraxState:
        """``state`` with world-frame ``forces`` [len(body_ids), 3] applied at those bodies' centres
        of mass during the next step."""
        pipeline = state.brax_state.pipeline_state
        applied = pipeline.xfrc_applied.at[jnp.asarray(body_ids), :3].set(forces)
        brax_state = state.brax_state.replace(pipeline_state=pipeline.replace(xfrc_applied=applied))
        return state.replace(brax_state=brax_state)

    def action_space(self, params: Any = None):
        return spaces.Box(low=-1.0, high=1.0, shape=(self._env.action_size,), dtype=jnp.float32)

    def observation_space(self, params: Any = None):
        return spaces.Box(low=-jnp.inf, high=jnp.inf, shape=(self._env.observation_size,), dtype=jnp.float32)

    @property
    def num_actions(self) -> int:
        return self._env.action_size
