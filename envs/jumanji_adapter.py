"""``jumanji/<name>``: Jumanji (Bonnet et al., 2024), InstaDeep's combinatorial and grid-world
suite.

jumanji's API is ``reset(key) -> (state, timestep)`` and ``step(state, action) -> (state,
timestep)`` with dm_env-style TimeSteps: LAST with discount 0 on termination, LAST with a
non-zero discount on truncation (the environment's own time limit). The adapter keeps jumanji's
state, resets ended episodes with the protocol's key and reads the flags apart. Observations are
NamedTuples of arrays (a board, positions, an action mask...): they are flattened field by field
into one float vector (``envs.suites.float_observation``). Multi-discrete actions (Minesweeper's
row and column, Tetris's rotation and column...) become one discrete action over their product,
unravelled in C order. The kit makes the single-agent environments with a scalar reward and at
most ``MAX_ACTIONS`` joint actions, and not Sokoban, whose levels are a download. Settings are
jumanji's constructor options (``envs.make("jumanji/Snake-v1", time_limit=500)``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from envs.suites import SUITES, OptionParams, SuiteEnv, float_observation

MAX_ACTIONS = 1024


def names() -> tuple[str, ...]:
    # Which environments pass the rules above is a property of the pinned version; the tests
    # check every listed one against them (and that none outside the list would).
    import jumanji

    return tuple(n for n in SUITES["jumanji"].snapshot if n in jumanji.registered_environments())


def option_defaults(name: str) -> None:
    return None


def make(name: str, overrides: dict[str, Any]):
    from envs.registry import InvalidEnvSetting

    try:
        env = JumanjiEnv(name, **overrides)
    except TypeError as error:
        raise InvalidEnvSetting(f"jumanji/{name}: {error}") from None
    return env, env.default_params


def action_sizes(env: Any) -> tuple[int, ...]:
    """The sizes of a jumanji action's components: ``(n,)`` for a discrete one; ``()`` when
    the action space is continuous."""
    from jumanji import specs

    spec = env.action_spec
    if isinstance(spec, specs.DiscreteArray):
        return (int(spec.num_values),)
    if isinstance(spec, specs.MultiDiscreteArray):
        return tuple(int(n) for n in np.asarray(spec.num_values).reshape(-1))
    return ()


# Environments whose own time limit ends episodes as terminations, with their default limit.
_LIMIT_AS_TERMINATION = {"Snake-v1": 4000}


class JumanjiEnv(SuiteEnv):
    def __init__(self, name: str, **options: Any):
        import jumanji
        from jumanji import specs

        if name in _LIMIT_AS_TERMINATION:
            # Snake reports its time limit as a termination (discount 0), which would stop the
            # critic bootstrapping at a cut-off: the adapter keeps the limit itself and reports it
            # as truncation, and jumanji's own limit is pushed out of reach.
            limit = options.get("time_limit") or _LIMIT_AS_TERMINATION[name]
            options = {**options, "time_limit": 2**30}
        self._own_limit = name in _LIMIT_AS_TERMINATION
        self._env = jumanji.make(name, **options)
        self._sizes = action_sizes(self._env)
        self._multi = isinstance(self._env.action_spec, specs.MultiDiscreteArray)
        self._action_dtype = self._env.action_spec.dtype
        super().__init__(f"jumanji/{name}", int(np.prod(self._sizes)) if self._sizes else 0)
        if not self._own_limit:
            limit = getattr(self._env, "time_limit", None) or getattr(self._env, "max_steps", None) or 1000
        self._params = OptionParams(max_steps_in_episode=int(limit))

    @property
    def jumanji_env(self):
        return self._env

    @property
    def default_params(self) -> OptionParams:
        return self._params

    def native_action(self, action: jax.Array) -> jax.Array:
        """The jumanji action of a flat discrete one."""
        if not self._multi:
            return jnp.asarray(action, self._action_dtype)
        parts = jnp.unravel_index(jnp.asarray(action, jnp.int32), self._sizes)
        return jnp.stack(parts).reshape(self._env.action_spec.shape).astype(self._action_dtype)

    def reset(self, key: jax.Array, params: Any = None):
        state, timestep = self._env.reset(key)
        return float_observation(timestep.observation), state

    def step(self, key: jax.Array, state: Any, action: jax.Array, params: Any = None):
        state, timestep = self._env.step(state, self.native_action(action))
        done = timestep.last()
        terminated = done & (timestep.discount == 0)
        if self._own_limit:
            done = done | (state.step_count >= (params or self._params).max_steps_in_episode)
        obs = float_observation(timestep.observation)
        info = {"final_observation": obs}
        obs, state = self.auto_reset(key, params, done, obs, state)
        return obs, state, jnp.asarray(timestep.reward, jnp.float32), terminated, done & ~terminated, info
