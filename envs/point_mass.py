"""``point_mass_wind``: a point mass that must pass a gap in a wall while a wind pushes it, the
small testbed of robust adversarial RL (the point mass of the QARL reference code, Reddi et al.,
ICLR 2024, which defines it without running it; written here from its description).

A mass of ``mass`` (5) moves in the square [-2, 2]^2 under the protagonist's force (at most 1
per axis) and a viscous friction (``friction`` x velocity), integrated with ``substeps`` (10)
Euler steps of 0.01 s per step. It starts at rest at (0, -1.5); the goal is (0, 1.5) and
reaching it within 0.1 ends the episode. A wall along y = 0 is open only where |x| < gap / 2;
a mass that would cross it elsewhere stops against it (vy = 0, on its side). The arena's edges
stop the velocity across them. The reward is exp(-distance to the goal) - 1 per step (0 on
arrival), so a faster passage scores more.

The wind is an external force: ``push(state, ids, forces)`` (``envs.adversarial``) sets it for
the next step, and it acts only inside the band ``wind_low <= y <= wind_high`` ([-1, 0], just
below the wall). Without an adversary there is no wind. Parameters are data (gymnax's
convention): ``--env-set mass=8`` or a distribution of them.

Observation: (x, vx, y, vy). Action: the protagonist's force, in [-1, 1]^2.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from envs.core import Environment, spaces
from envs.registry import register, replace_params

START = (0.0, -1.5)
GOAL = (0.0, 1.5)
ARENA = 2.0


@struct.dataclass
class PointMassParams:
    mass: float = 5.0
    friction: float = 1.0
    gap: float = 1.0  # width of the opening in the wall, centred on x = 0
    goal_tolerance: float = 0.1
    wind_low: float = -1.0
    wind_high: float = 0.0
    dt: float = 0.01
    substeps: int = struct.field(pytree_node=False, default=10)
    max_steps_in_episode: int = 200


@struct.dataclass
class PointMassState:
    position: jax.Array  # (x, y)
    velocity: jax.Array
    wind: jax.Array  # the force the adversary set for the next step
    time: jax.Array


class PointMassWind(Environment):
    @property
    def name(self) -> str:
        return "point_mass_wind"

    @property
    def default_params(self) -> PointMassParams:
        return PointMassParams()

    def supports_push(self) -> bool:
        return True

    def body_names(self) -> tuple[str, ...]:
        return ("world", "mass")

    def push(self, state: PointMassState, body_ids: tuple[int, ...], forces: jax.Array) -> PointMassState:
        """The wind for the next step: the x and y components of the force on the mass."""
        if tuple(body_ids) != (1,):
            raise ValueError("point_mass_wind has one body, 'mass'")
        return state.replace(wind=forces[0, :2])

    @staticmethod
    def _observe(state: PointMassState) -> jax.Array:
        return jnp.stack([state.position[0], state.velocity[0], state.position[1], state.velocity[1]])

    def reset(self, key: jax.Array, params: PointMassParams | None = None):
        zeros = jnp.zeros(2, jnp.float32)
        state = PointMassState(jnp.asarray(START, jnp.float32), zeros, zeros, jnp.zeros((), jnp.int32))
        return self._observe(state), state

    def _substep(self, params: PointMassParams, force: jax.Array, state: PointMassState) -> PointMassState:
        y = state.position[1]
        windy = (y >= params.wind_low) & (y <= params.wind_high)
        total = force + jnp.where(windy, state.wind, 0.0)
        velocity = state.velocity + params.dt * (total - params.friction * state.velocity) / params.mass
        position = state.position + params.dt * velocity
        # the arena's edges stop the motion across them
        outside = jnp.abs(position) > ARENA
        velocity = jnp.where(outside, 0.0, velocity)
        position = jnp.clip(position, -ARENA, ARENA)
        # the wall: crossing y = 0 away from the gap leaves the mass against it, on its side
        crossed = (jnp.sign(position[1]) != jnp.sign(y)) & (y != 0.0) & (jnp.abs(position[0]) >= 0.5 * params.gap)
        position = position.at[1].set(jnp.where(crossed, jnp.sign(y) * 1e-4, position[1]))
        velocity = velocity.at[1].set(jnp.where(crossed, 0.0, velocity[1]))
        return state.replace(position=position, velocity=velocity)

    def step(self, key: jax.Array, state: PointMassState, action: jax.Array, params: PointMassParams | None = None):
        params = self.default_params if params is None else params
        force = jnp.clip(jnp.asarray(action, jnp.float32).reshape(2), -1.0, 1.0)
        stepped = jax.lax.fori_loop(0, params.substeps, lambda _, s: self._substep(params, force, s), state)
        distance = jnp.linalg.norm(stepped.position - jnp.asarray(GOAL, jnp.float32))
        terminated = distance <= params.goal_tolerance
        reward = jnp.where(terminated, 0.0, jnp.exp(-distance) - 1.0)
        time = state.time + 1
        truncated = (time >= params.max_steps_in_episode) & ~terminated
        stepped = stepped.replace(wind=jnp.zeros(2, jnp.float32), time=time)
        final_obs = self._observe(stepped)
        reset_obs, reset_state = self.reset(key, params)
        done = terminated | truncated
        next_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, stepped)
        obs = jnp.where(done, reset_obs, final_obs)
        return obs, next_state, reward, terminated, truncated, {"final_observation": final_obs}

    def action_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(low=-1.0, high=1.0, shape=(2,), dtype=jnp.float32)

    def observation_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(low=-math.inf, high=math.inf, shape=(4,), dtype=jnp.float32)

    @property
    def num_actions(self) -> int:
        return 2


def make_point_mass(**overrides: Any) -> tuple[PointMassWind, PointMassParams]:
    env = PointMassWind()
    defaults = env.default_params
    parsed = {k: (float(v) if isinstance(v, int) and isinstance(getattr(defaults, k, None), float) else v) for k, v in overrides.items()}
    return env, replace_params("point_mass_wind", defaults, parsed)


def _options() -> dict[str, Any]:
    defaults = PointMassParams()
    return {name: getattr(defaults, name) for name in PointMassParams.__dataclass_fields__}


register("point_mass_wind", make_point_mass, _options)
