"""``xminigrid/<name>``: XLand-MiniGrid (Nikulin et al., 2023), its MiniGrid ports and its XLand
meta-RL worlds.

xminigrid's API is ``reset(params, key) -> TimeStep`` and ``step(params, timestep, action)``;
a step never resets, and its TimeStep says LAST with discount 0 on termination and LAST with
discount 1 when ``params.max_steps`` ran out. The adapter keeps the TimeStep as the state, reads
the two flags apart from it and resets with the protocol's key. Observations are xminigrid's
egocentric (view, view, 2) grids of tile and colour ids, as floats (the CNN torso takes them).
Parameters are xminigrid's ``EnvParams``; their sizes are static (xminigrid's choice), so
``envs.make("xminigrid/...", max_steps=..., view_size=...)`` sets them when it builds.

Levels: in the XLand worlds (``XLand-MiniGrid-R<rooms>-<size>``) a level is a ruleset (goal,
rules, initial objects: xminigrid's ``RuleSet``), which is what ``reset_to_level`` plays and what
the curricula keep. xminigrid's default ruleset has no goal (no episode ever succeeds), and its
benchmarks of rulesets are downloads, so ``sample_level`` draws rulesets of its own: one goal
(pick up, or stand next to, one of three random objects), no rules. A ruleset from
``xminigrid.load_benchmark(...).get_ruleset(i)`` with the same array shapes is a level too.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from envs.suites import SuiteEnv, float_observation


def names() -> tuple[str, ...]:
    import xminigrid

    return tuple(xminigrid.registered_environments())


def option_defaults(name: str) -> None:
    return None  # settings are static options of make, not traced parameters


def make(name: str, overrides: dict[str, Any]):
    from envs.registry import InvalidEnvSetting

    cls = XLandEnv if name.startswith("XLand-") else XMiniGridEnv
    try:
        env = cls(name, **overrides)
    except TypeError as error:
        raise InvalidEnvSetting(f"xminigrid/{name}: {error}") from None
    return env, env.default_params


class XMiniGridEnv(SuiteEnv):
    def __init__(self, name: str, **options: Any):
        import xminigrid

        self._env, self._params = xminigrid.make(name, **options)
        super().__init__(f"xminigrid/{name}", self._env.num_actions(self._params))

    @property
    def xminigrid_env(self):
        return self._env

    @property
    def default_params(self) -> Any:
        return self._params

    def reset(self, key: jax.Array, params: Any = None):
        timestep = self._env.reset(self._params if params is None else params, key)
        return float_observation(timestep.observation), timestep

    def step(self, key: jax.Array, state: Any, action: jax.Array, params: Any = None):
        params = self._params if params is None else params
        timestep = self._env.step(params, state, action)
        done = timestep.last()
        terminated = done & (timestep.discount == 0)
        obs = float_observation(timestep.observation)
        info = {"final_observation": obs}
        obs, next_state = self.auto_reset(key, params, done, obs, timestep)
        return obs, next_state, jnp.asarray(timestep.reward, jnp.float32), terminated, done & ~terminated, info


class XLandEnv(XMiniGridEnv):
    """An XLand world, whose levels are rulesets (see the module docstring)."""

    num_objects = 3

    def reset_to_level(self, key: jax.Array, level: Any, params: Any = None):
        params = self._params if params is None else params
        return self.reset(key, params.replace(ruleset=level))

    def sample_level(self, key: jax.Array, params: Any = None) -> Any:
        """A ruleset: pick up (or stand next to) one of ``num_objects`` random objects."""
        from xminigrid.core.constants import TILES_REGISTRY, Colors, Tiles
        from xminigrid.core.goals import AgentHoldGoal, AgentNearGoal
        from xminigrid.core.rules import EmptyRule
        from xminigrid.types import RuleSet

        kind_key, tile_key, colour_key, goal_key = jax.random.split(key, 4)
        kinds = jnp.array([Tiles.BALL, Tiles.SQUARE, Tiles.PYRAMID, Tiles.KEY, Tiles.STAR, Tiles.HEX])
        colours = jnp.array([Colors.RED, Colors.GREEN, Colors.BLUE, Colors.PURPLE, Colors.YELLOW, Colors.GREY])
        tiles = TILES_REGISTRY[
            jax.random.choice(tile_key, kinds, (self.num_objects,)),
            jax.random.choice(colour_key, colours, (self.num_objects,)),
        ]
        target = tiles[jax.random.randint(kind_key, (), 0, self.num_objects)]
        goal = jnp.where(jax.random.bernoulli(goal_key), AgentHoldGoal(tile=target).encode(), AgentNearGoal(tile=target).encode())
        return RuleSet(goal=goal, rules=EmptyRule().encode()[None], init_tiles=tiles)
