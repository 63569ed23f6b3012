"""The maze's level: a pytree holding one layout and the agent's start pose.

The grid maze of the unsupervised-environment-design (UED) literature (Dennis et al., 2020,
"Emergent Complexity and Zero-shot Transfer via Unsupervised Environment Design"; Jiang et al.,
2021, "Replay-Guided Adversarial Environment Design" / "Prioritized Level Replay") is a square
interior of free and wall cells surrounded by an implicit wall border, one goal and one agent.
A level is plain data so that curricula can store thousands of them in a buffer, vmap over them
and mutate them inside the compiled program.

Coordinates are (row, col) with row 0 at the top; directions are 0 east, 1 south, 2 west,
3 north, the order in which turning right (clockwise) advances.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.levels import stack_levels as stack

DEFAULT_SIZE = 13

# (drow, dcol) of each direction: east, south, west, north (index = agent_dir).
DIRECTION_VECTORS = np.array([[0, 1], [1, 0], [0, -1], [-1, 0]], dtype=np.int32)
DIRECTION_NAMES = ("east", "south", "west", "north")


@struct.dataclass
class Level:
    """One maze layout.

    ``wall_map`` bool [H, W] is the interior only (every cell outside it counts as a wall),
    ``goal_pos`` and ``agent_pos`` int32 [2] are (row, col), ``agent_dir`` an int32 scalar
    (0 east, 1 south, 2 west, 3 north). A valid level has goal and agent on distinct free cells
    of the interior; solvability is a separate question (``envs.maze.solver``), because the
    random generator of Dennis et al. (2020) deliberately produces unsolvable levels too.
    """

    wall_map: jax.Array
    goal_pos: jax.Array
    agent_pos: jax.Array
    agent_dir: jax.Array

    @property
    def height(self) -> int:
        return int(self.wall_map.shape[-2])

    @property
    def width(self) -> int:
        return int(self.wall_map.shape[-1])


def make_level(wall_map: Any, goal_pos: Any, agent_pos: Any, agent_dir: Any) -> Level:
    """A ``Level`` with the canonical dtypes (bool walls, int32 positions and direction), from
    anything array-like; host-built levels (text, holdouts, perfect mazes) all go through here
    so that they stack and compare with levels made inside JAX."""
    return Level(
        wall_map=jnp.asarray(wall_map, dtype=bool),
        goal_pos=jnp.asarray(goal_pos, dtype=jnp.int32).reshape(2),
        agent_pos=jnp.asarray(agent_pos, dtype=jnp.int32).reshape(2),
        agent_dir=jnp.asarray(agent_dir, dtype=jnp.int32).reshape(()),
    )


def in_bounds(pos: jax.Array, height: int, width: int) -> jax.Array:
    """True where ``pos`` (..., 2) lies inside the interior."""
    return (pos[..., 0] >= 0) & (pos[..., 0] < height) & (pos[..., 1] >= 0) & (pos[..., 1] < width)


def is_wall(wall_map: jax.Array, pos: jax.Array) -> jax.Array:
    """The wall state of ``pos``, with every cell outside the interior a wall (the maze's
    border), so that moves and observations need no padded copy of the map."""
    height, width = wall_map.shape[-2:]
    inside = in_bounds(pos, height, width)
    row = jnp.clip(pos[..., 0], 0, height - 1)
    col = jnp.clip(pos[..., 1], 0, width - 1)
    return jnp.where(inside, wall_map[row, col], True)


def is_valid_level(level: Level) -> jax.Array:
    """JAX bool scalar: goal and agent inside the interior, on free cells, on distinct cells and
    the direction in 0..3. Works under jit and vmap (vmap it for a stack of levels)."""
    height, width = level.wall_map.shape[-2:]
    goal_ok = in_bounds(level.goal_pos, height, width) & ~is_wall(level.wall_map, level.goal_pos)
    agent_ok = in_bounds(level.agent_pos, height, width) & ~is_wall(level.wall_map, level.agent_pos)
    distinct = jnp.any(level.goal_pos != level.agent_pos)
    dir_ok = (level.agent_dir >= 0) & (level.agent_dir < 4)
    return goal_ok & agent_ok & distinct & dir_ok


def stack_levels(levels: Sequence[Level]) -> Level:
    """One ``Level`` whose leaves have a leading axis of ``len(levels)`` (what ``vmap``,
    ``reset_to_level`` over a batch and the curricula's level buffers take)."""
    return stack(levels)


def unstack_levels(levels: Level) -> list[Level]:
    """The inverse of ``stack_levels``: a list of single levels."""
    count = int(np.shape(levels.wall_map)[0])
    return [jax.tree.map(lambda x, i=i: x[i], levels) for i in range(count)]


def num_levels(levels: Level) -> int:
    """How many levels a stacked ``Level`` holds (1 for an unstacked one)."""
    return int(np.prod(np.shape(levels.wall_map)[:-2], dtype=np.int64))


def to_numpy(level: Level) -> Level:
    """The same level with numpy leaves, for host-side code (text, solver, rendering)."""
    return jax.tree.map(np.asarray, jax.device_get(level))
