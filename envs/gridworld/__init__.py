"""The grid worlds of LPG and GROOVE (Oh et al. 2020; Jackson et al. 2023): levels as pytrees with
objects (reward, termination and respawn probabilities), walls, tabular or grid observations; the
five LPG training levels by name; GROOVE's level space as a generator; exact optimal returns by
value iteration; LPG's delayed chain MDPs.

    envs.make("gridworld", levels="small")            # random levels of the small space (6x6, 3 objects)
    envs.make("gridworld", levels="all", observation="grid")   # GROOVE's space, grid observations
    envs.make("gridworld/dense")                      # one of LPG's five levels, every episode
    envs.make("chain/long_noisy")                     # a delayed chain MDP (lengths 5-50, noisy rewards)

    level.py      GridLevel, make_level, stack, unstack
    env.py        GridWorld, GridParams, GridState, MOVES
    generator.py  random_level, SPACES (small, all)
    named.py      LPG_LEVELS, lpg_level
    solver.py     optimal_return, state_values
    text.py       to_text, from_text, levels_to_text, levels_from_text
    chain.py      DelayedChain, ChainParams, ChainLevel, VARIANTS (short, short_noisy, long, long_noisy)
"""

from __future__ import annotations

from typing import Any

from envs.gridworld.chain import VARIANTS, ChainLevel, ChainParams, DelayedChain
from envs.gridworld.env import MOVES, GridParams, GridState, GridWorld
from envs.gridworld.generator import SPACES, random_level
from envs.gridworld.level import GridLevel, make_level, stack, unstack
from envs.gridworld.named import LPG_LEVELS, lpg_level
from envs.gridworld.solver import optimal_return, state_values
from envs.gridworld.text import from_text, levels_from_text, levels_to_text, to_text
from envs.registry import InvalidEnvSetting, register, replace_params

__all__ = [
    "ChainLevel", "ChainParams", "DelayedChain", "VARIANTS", "GridLevel", "GridParams", "GridState", "GridWorld", "LPG_LEVELS", "MOVES", "SPACES", "from_text", "levels_from_text",
    "levels_to_text", "lpg_level", "make_level", "optimal_return", "random_level", "stack", "state_values", "to_text",
    "unstack",
]


def _int(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value) if any(c in value for c in ".e") else int(value)
        except ValueError:
            return value
    return value


def make_gridworld(**overrides: Any) -> tuple[GridWorld, GridParams]:
    """The registry's factory: ``levels`` (a space of ``SPACES``, default small), ``observation``
    (tabular | grid) and overrides of ``GridParams``' fields, each checked."""
    space = overrides.pop("levels", "small")
    observation = overrides.pop("observation", "tabular")
    if space not in SPACES:
        raise InvalidEnvSetting(f"gridworld levels must be one of {', '.join(SPACES)}, got {space!r}")
    if observation not in ("tabular", "grid"):
        raise InvalidEnvSetting(f"gridworld observation must be tabular or grid, got {observation!r}")
    grid, max_objects, params = SPACES[space]
    params = replace_params("gridworld", params, {k: _int(v) for k, v in overrides.items()})
    if not 2 <= params.min_size <= params.max_size <= grid or not 1 <= params.min_objects <= params.max_objects <= max_objects:
        raise InvalidEnvSetting(f"gridworld {space}: sizes must be in 2..{grid} and objects in 1..{max_objects}, low <= high")
    if not 1 <= params.min_steps <= params.max_steps or not 0 < params.min_lifetime <= params.max_lifetime:
        raise InvalidEnvSetting("gridworld: steps and lifetimes must be positive, low <= high")
    if params.min_size**2 < max_objects + 1:
        raise InvalidEnvSetting(f"gridworld {space}: min_size must leave room for the start and {max_objects} objects "
                                f"(min_size >= {int((max_objects + 1) ** 0.5 + 0.999)})")
    if not (0 < params.min_terminate <= 1 and 0 < params.min_respawn <= params.max_respawn <= 1 and params.n_walls >= 0):
        raise InvalidEnvSetting("gridworld: need 0 < min_terminate <= 1, 0 < min_respawn <= max_respawn <= 1, n_walls >= 0")
    return GridWorld(grid, max_objects, observation), params


def _named(name: str):
    def make(**overrides: Any) -> tuple[GridWorld, GridParams]:
        observation = overrides.pop("observation", "tabular")
        if overrides:
            raise InvalidEnvSetting(f"gridworld/{name} has one option, observation (tabular | grid); got {', '.join(overrides)}")
        if observation not in ("tabular", "grid"):
            raise InvalidEnvSetting(f"gridworld observation must be tabular or grid, got {observation!r}")
        level = lpg_level(name)
        env = GridWorld(int(level.walls.shape[0]), int(level.reward.shape[0]), observation, fixed_level=level)
        return env, env.default_params

    return make


def _chain(variant: str):
    def make(**overrides: Any) -> tuple[DelayedChain, ChainParams]:
        low, high, noisy = VARIANTS[variant]
        params = replace_params(f"chain/{variant}", ChainParams(low, high, noisy), {k: _int(v) for k, v in overrides.items()})
        if not 2 <= params.min_length <= params.max_length or params.noisy not in (0, 1):
            raise InvalidEnvSetting(f"chain/{variant}: lengths must satisfy 2 <= min_length <= max_length, noisy 0 or 1")
        return DelayedChain(params.max_length), params

    return make


def _options() -> dict[str, Any]:
    params = SPACES["small"][2]
    return {"levels": "small", "observation": "tabular", **{f: getattr(params, f) for f in params.__dataclass_fields__}}


register("gridworld", make_gridworld, _options)
for _variant in VARIANTS:
    register(f"chain/{_variant}", _chain(_variant))
for _name in LPG_LEVELS:
    register(f"gridworld/{_name}", _named(_name))
