"""``navix/<name>``: NAVIX (Pignatelli et al., 2024), MiniGrid in JAX.

navix's ``step(timestep, action)`` resets on the call *after* an episode ended (ignoring that
call's action), and its TimeStep's ``step_type`` is 0 (transition), 1 (truncation, ``max_steps``
ran out) or 2 (termination). The adapter steps with navix's transition without that deferred
reset (``Environment._step``, which navix's ``step`` runs for every step that is not a reset),
restarts ended episodes at once with the protocol's key, and reads the two flags from
``step_type``. Settings are navix's constructor options (``envs.make("navix/...",
max_steps=200)``); observations are navix's (the full (H, W, 3) symbolic grid by default) as
floats.

Levels: a level is a layout, the grid and entities (walls, doors, keys, goal, player) that
navix's reset generates, without its rendering cache; ``reset_to_level`` starts an episode on
it exactly as navix's reset starts one on the layout it generated, and ``sample_level`` is the
layout of a random reset.

Versions: navix 0.7.x (Python 3.11, 41 environments) and navix 4.x (Python >= 3.12, 83) run
through the same code here. What the adapter calls is unchanged between them (``navix.make``,
``navix.registry()``, ``Environment._step`` and ``max_steps``, ``action_set``,
``observation_fn``, the TimeStep's fields and ``step_type`` values, ``RenderingCache.init``);
what changed inside navix's state the adapter carries as navix gives it: ``State.mission`` (one
``Event`` or None in 0.7; in 4 a tuple of them, empty for none), and ``State.events``
(named fields in 0.7; in 4 one slot per entity type present, sized by its entities, and cleared
by ``_step`` before each transition), which ``reset_to_level`` takes from navix's reset: a
layout of the same environment has the same entity shapes, and a reset's events are all clear.
navix 4's ``step`` skips the deferred reset where the environment has ``disable_autoreset``,
but still traces the reset; the adapter calls ``_step`` with either version.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from envs.suites import OptionParams, SuiteEnv, float_observation


def names() -> tuple[str, ...]:
    """The installed navix's registered names, in its registry's order: every one makes and steps
    through the adapter (navix 0.7.4's 41 and 4.0.0's 83 checked against navix's own step on
    2026-12-07; tests/test_suites.py makes and traces each). navix 4's ``make`` also takes a few
    MiniGrid ``-v1`` names for registered ``-v0`` ones; they are not registered, so not listed."""
    import navix

    return tuple(navix.registry())


def option_defaults(name: str) -> None:
    return None


def make(name: str, overrides: dict[str, Any]):
    from envs.registry import InvalidEnvSetting

    try:
        env = NavixEnv(name, **overrides)
    except TypeError as error:
        raise InvalidEnvSetting(f"navix/{name}: {error}") from None
    return env, env.default_params


@struct.dataclass
class Layout:
    grid: jax.Array
    entities: dict
    mission: Any = None  # navix's State.mission: an Event or None (0.7), a tuple of Events (4)


class NavixEnv(SuiteEnv):
    def __init__(self, name: str, **options: Any):
        import navix

        self._env = navix.make(name, **options)
        super().__init__(f"navix/{name}", len(self._env.action_set))

    @property
    def navix_env(self):
        return self._env

    @property
    def default_params(self) -> OptionParams:
        return OptionParams(max_steps_in_episode=int(self._env.max_steps))

    def reset(self, key: jax.Array, params: Any = None):
        timestep = self._env.reset(key)
        return float_observation(timestep.observation), timestep

    def step(self, key: jax.Array, state: Any, action: jax.Array, params: Any = None):
        timestep = self._env._step(state, action)
        terminated = timestep.step_type == 2
        truncated = timestep.step_type == 1
        obs = float_observation(timestep.observation)
        info = {"final_observation": obs}
        obs, next_state = self.auto_reset(key, params, terminated | truncated, obs, timestep)
        return obs, next_state, jnp.asarray(timestep.reward, jnp.float32), terminated, truncated, info

    # ---------------------------------------------------------------- levels
    def sample_level(self, key: jax.Array, params: Any = None) -> Layout:
        state = self._env.reset(key).state
        return Layout(grid=state.grid, entities=state.entities, mission=state.mission)

    def reset_to_level(self, key: jax.Array, level: Layout, params: Any = None):
        """An episode on ``level``: navix's reset with the generated layout replaced by it."""
        from navix.rendering.cache import RenderingCache

        timestep = self._env.reset(key)  # the key, time and reward fields an episode starts with
        state = timestep.state.replace(
            grid=level.grid, cache=RenderingCache.init(level.grid), entities=level.entities, mission=level.mission
        )
        timestep = timestep.replace(state=state, observation=self._env.observation_fn(state))
        return float_observation(timestep.observation), timestep
