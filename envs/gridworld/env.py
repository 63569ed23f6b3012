"""The LPG / GROOVE grid world as a gymnax 1.0 environment with levels (``envs.levels``).

Five actions: up, down, left, right, stay. Moving into a wall or the grid's edge leaves the agent
where it is. Entering a cell whose object is present collects it: its reward is paid, it
disappears, and the episode ends with the object's termination probability (terminated); every
absent object reappears at its own cell with its respawn probability on each step (not on the
step it was collected). An episode is truncated after the level's ``max_steps`` steps.

A level stays for the whole training of an agent (its "lifetime", as in LPG and GROOVE): ``step``
restarts an ended episode on the same level; ``reset`` draws a new level from the generator the
params describe (``envs.gridworld.generator``), and ``reset_to_level`` starts one given.

Observations (static choice ``observation``): ``"tabular"``, a one-hot of (cell, which objects are
present), ``S*S*2^K`` long, LPG's tabular agents' input; or ``"grid"``, binary planes of the agent,
the walls and each object slot, ``S*S*(2+K)`` long, for small networks.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from envs.core import Environment, spaces
from envs.gridworld.level import GridLevel

# up, down, left, right, stay as (row, col) steps
MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1), (0, 0))
OBSERVATIONS = ("tabular", "grid")


@struct.dataclass
class GridParams:
    """The level space ``reset`` and ``sample_level`` draw from (traced numbers; the presets are
    ``generator.SPACES``): side ``min_size..max_size``, ``min_objects..max_objects`` objects
    (rewards uniform in [-1, 1], the first in [0, 1]; termination probabilities log-uniform in
    [``min_terminate``, 1]; respawn log-uniform in [``min_respawn``, ``max_respawn``]), up to
    ``n_walls`` walls, episode limits and lifetimes log-uniform integers in their ranges. With
    ``level_seed`` >= 0 every copy of the environment plays the same level, drawn from that seed
    (a training run is then one lifetime on one level; ``--env-set level_seed=int-uniform:0:9999``
    makes the seed a task distribution for meta-training by evolution)."""

    min_size: int = 4
    max_size: int = 6
    min_objects: int = 1
    max_objects: int = 3
    n_walls: int = 7
    min_steps: int = 20
    max_steps: int = 100
    min_lifetime: int = 250
    max_lifetime: int = 250
    min_terminate: float = 0.01
    min_respawn: float = 0.001
    max_respawn: float = 0.1
    level_seed: int = -1  # >= 0: every reset draws the one level of this seed (a lifetime on one level)


@struct.dataclass
class GridState:
    level: GridLevel
    pos: jax.Array  # int32 [2]
    present: jax.Array  # bool [K]
    time: jax.Array  # int32: steps taken in this episode


class ReplaysItsLevel(Environment):
    """The protocol's ``step`` for an environment whose level stays for a whole lifetime: its
    ``transition(key, state, action) -> (state, reward, terminated, truncated)``, then an ended
    episode restarts on the same level (``state.level``); ``info["final_observation"]`` is the
    observation it ended on."""

    @partial(jax.jit, static_argnames=("self",))
    def step(self, key: jax.Array, state: Any, action: jax.Array, params: Any = None):
        next_state, reward, terminated, truncated = self.transition(key, state, action)
        final_obs = self.observe(next_state)
        reset_obs, reset_state = self.reset_to_level(key, state.level, params)
        done = terminated | truncated
        obs = jnp.where(done, reset_obs, final_obs)
        next_state = jax.tree.map(lambda a, b: jnp.where(done, a, b), reset_state, next_state)
        info = {"final_observation": final_obs, "discount": jnp.where(terminated, 0.0, 1.0).astype(jnp.float32)}
        return obs, next_state, reward, terminated, truncated, info

    def step_env(self, key, state, action, params):
        next_state, reward, terminated, _ = self.transition(key, state, action)
        return self.observe(next_state), next_state, reward, terminated, {}


class GridWorld(ReplaysItsLevel):
    """``grid`` (S) and ``max_objects`` (K) fix the arrays' shapes; ``observation`` is
    ``"tabular"`` or ``"grid"`` (see the module docstring); with ``fixed_level`` every ``reset``
    starts that level (a named one) instead of a generated one."""

    def __init__(self, grid: int = 6, max_objects: int = 3, observation: str = "tabular", fixed_level: GridLevel | None = None):
        if grid < 2 or max_objects < 1:
            raise ValueError(f"a grid world needs grid >= 2 and max_objects >= 1, got {grid} and {max_objects}")
        if observation not in OBSERVATIONS:
            raise ValueError(f"observation must be one of {', '.join(OBSERVATIONS)}, got {observation!r}")
        if observation == "tabular" and grid * grid * 2**max_objects > 1 << 20:
            raise ValueError(f"a tabular observation of a {grid}x{grid} grid with {max_objects} objects has "
                             f"{grid * grid * 2**max_objects} entries; use observation='grid'")
        self.grid, self.max_objects, self.observation = grid, max_objects, observation
        self.fixed_level = fixed_level  # one level every reset gives (a named level), else the generator's
        self.one_hot_observation = observation == "tabular"  # agents may read it as a table index

    @property
    def name(self) -> str:
        return "gridworld"

    @property
    def num_actions(self) -> int:
        return len(MOVES)

    @property
    def default_params(self) -> GridParams:
        return GridParams()

    def action_space(self, params: GridParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(len(MOVES))

    @property
    def observation_size(self) -> int:
        cells = self.grid * self.grid
        return cells * 2**self.max_objects if self.observation == "tabular" else cells * (2 + self.max_objects)

    def observation_space(self, params: GridParams | None = None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (self.observation_size,), jnp.float32)

    # ---------------------------------------------------------------- levels
    def sample_level(self, key: jax.Array, params: GridParams | None = None) -> GridLevel:
        if self.fixed_level is not None:
            return jax.tree.map(jnp.asarray, self.fixed_level)
        from envs.gridworld.generator import random_level

        params = self.default_params if params is None else params
        typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
        seeded = (jax.random.key if typed else jax.random.PRNGKey)(jnp.maximum(params.level_seed, 0))
        key = jnp.where(params.level_seed >= 0, jax.random.key_data(seeded), jax.random.key_data(key)) if typed else \
            jnp.where(params.level_seed >= 0, seeded, key)
        key = jax.random.wrap_key_data(key) if typed else key
        return random_level(key, params, self.grid, self.max_objects)

    @partial(jax.jit, static_argnames=("self",))
    def reset_to_level(self, key: jax.Array, level: GridLevel, params: GridParams | None = None):
        del key, params  # the start is the level's
        state = GridState(level, jnp.asarray(level.start, jnp.int32), level.used, jnp.zeros((), jnp.int32))
        return self.observe(state), state

    @partial(jax.jit, static_argnames=("self",))
    def reset(self, key: jax.Array, params: GridParams | None = None):
        level_key, reset_key = jax.random.split(key)
        return self.reset_to_level(reset_key, self.sample_level(level_key, params), params)

    def reset_env(self, key, params):
        return self.reset(key, params)

    # ---------------------------------------------------------------- dynamics
    def state_index(self, pos: jax.Array, present: jax.Array) -> jax.Array:
        """The tabular state's index: cell-major, then the presence bits (object k: bit k)."""
        bits = jnp.sum(present.astype(jnp.int32) << jnp.arange(self.max_objects, dtype=jnp.int32))
        return (pos[0] * self.grid + pos[1]) * 2**self.max_objects + bits

    def observe(self, state: GridState) -> jax.Array:
        if self.observation == "tabular":
            return jax.nn.one_hot(self.state_index(state.pos, state.present), self.observation_size, dtype=jnp.float32)
        cells = jnp.arange(self.grid * self.grid)
        flat = lambda p: p[..., 0] * self.grid + p[..., 1]  # noqa: E731
        agent = (cells == flat(state.pos)).astype(jnp.float32)
        objects = ((cells[:, None] == flat(state.level.object_pos)[None]) & state.present[None]).astype(jnp.float32)
        return jnp.concatenate([agent[:, None], state.level.walls.reshape(-1, 1).astype(jnp.float32), objects], 1).reshape(-1)

    def move(self, level: GridLevel, pos: jax.Array, action: jax.Array) -> jax.Array:
        target = pos + jnp.asarray(MOVES, jnp.int32)[action]
        inside = jnp.all((target >= 0) & (target < self.grid))
        blocked = ~inside | level.walls[jnp.clip(target[0], 0, self.grid - 1), jnp.clip(target[1], 0, self.grid - 1)]
        return jnp.where(blocked, pos, target)

    def transition(self, key: jax.Array, state: GridState, action: jax.Array):
        """One step without restart: ``(state, reward, terminated, truncated)``."""
        level = state.level
        term_key, respawn_key = jax.random.split(key)
        pos = self.move(level, state.pos, jnp.asarray(action, jnp.int32))
        collected = state.present & jnp.all(level.object_pos == pos, axis=-1)
        reward = jnp.sum(jnp.where(collected, level.reward, 0.0))
        p_end = 1.0 - jnp.prod(jnp.where(collected, 1.0 - level.terminate, 1.0))
        terminated = jax.random.uniform(term_key) < p_end
        appear = jax.random.uniform(respawn_key, (self.max_objects,)) < level.respawn
        present = (state.present | (appear & level.used)) & ~collected
        time = state.time + 1
        truncated = (time >= level.max_steps) & ~terminated
        return GridState(level, pos, present, time), reward.astype(jnp.float32), terminated, truncated

    # ---------------------------------------------------------------- host-side helpers
    def optimal_return(self, level: GridLevel, gamma: float = 1.0) -> jax.Array:
        """The expected return of an optimal policy from the level's start (``solver``)."""
        from envs.gridworld.solver import optimal_return

        return optimal_return(self, level, gamma)

    def levels_to_text(self, levels: Any) -> str:
        from envs.gridworld.text import levels_to_text

        return levels_to_text(levels)

    def levels_from_text(self, text: str) -> GridLevel:
        from envs.gridworld.text import levels_from_text

        return levels_from_text(text, self.grid, self.max_objects)

    def read_levels(self, path) -> GridLevel:
        from pathlib import Path

        return self.levels_from_text(Path(path).read_text())
