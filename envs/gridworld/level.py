"""A grid-world level of the LPG / GROOVE family (Oh et al. 2020; Jackson et al. 2023) as a pytree:
walls, a start cell and up to K objects, each with a reward, a probability of ending the episode
when collected and a probability of reappearing (at its own cell) on each step it is absent; the
episode's step limit and, for meta-training, the length of an agent's lifetime on it.

Every array has the environment's static shape (an ``S x S`` grid, ``K`` object slots), so levels
of different sizes stack into one batch: a level ``size`` wide uses the top-left ``size x size``
cells (the rest are walls), and only the first ``num_objects`` slots hold objects.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


@struct.dataclass
class GridLevel:
    walls: jax.Array  # bool [S, S]; every cell outside the level's size x size square is a wall
    size: jax.Array  # int32: the side of the level's square
    start: jax.Array  # int32 [2]: (row, col) where every episode starts
    object_pos: jax.Array  # int32 [K, 2]: each object's cell (fixed: it reappears there)
    reward: jax.Array  # float32 [K]: reward for collecting it
    terminate: jax.Array  # float32 [K]: probability that collecting it ends the episode
    respawn: jax.Array  # float32 [K]: probability, each step it is absent, that it reappears
    num_objects: jax.Array  # int32: slots [0, num_objects) hold objects
    max_steps: jax.Array  # int32: an episode is truncated after this many steps
    lifetime: jax.Array  # int32: agent updates in a lifetime on this level (meta-training; 0: not set)

    @property
    def used(self) -> jax.Array:
        """bool [K]: which slots hold objects."""
        return jnp.arange(self.reward.shape[-1]) < self.num_objects[..., None]


def make_level(
    size: int,
    *,
    start: Sequence[int],
    objects: Sequence[tuple[Sequence[int], float, float, float]],
    walls: Sequence[Sequence[int]] = (),
    max_steps: int,
    lifetime: int = 0,
    grid: int | None = None,
    max_objects: int | None = None,
) -> GridLevel:
    """A level from Python values: ``objects`` as ``((row, col), reward, terminate, respawn)``,
    ``walls`` as cells, padded to a ``grid x grid`` array and ``max_objects`` slots (default:
    exactly this level's). ``ValueError`` for cells outside the level, on a wall or shared."""
    grid = size if grid is None else grid
    max_objects = len(objects) if max_objects is None else max_objects
    if not 1 <= size <= grid:
        raise ValueError(f"level size {size} must be between 1 and the grid's {grid}")
    if len(objects) > max_objects:
        raise ValueError(f"{len(objects)} objects do not fit {max_objects} slots")
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    wall_map = np.ones((grid, grid), bool)
    wall_map[:size, :size] = False
    for r, c in walls:
        wall_map[r, c] = True
    cells = [tuple(start)] + [tuple(pos) for pos, *_ in objects]
    for r, c in cells:
        if not (0 <= r < size and 0 <= c < size) or wall_map[r, c]:
            raise ValueError(f"cell {(r, c)} is outside the level or on a wall")
    if len(set(cells)) != len(cells):
        raise ValueError("the start and the objects need distinct cells")
    pad = max_objects - len(objects)
    column = lambda i, dtype: np.array([o[i] for o in objects] + [0] * pad, dtype)  # noqa: E731
    positions = np.array([list(o[0]) for o in objects] + [[0, 0]] * pad, np.int32).reshape(max_objects, 2)
    return GridLevel(
        walls=jnp.asarray(wall_map),
        size=jnp.int32(size),
        start=jnp.asarray(start, jnp.int32),
        object_pos=jnp.asarray(positions),
        reward=jnp.asarray(column(1, np.float32)),
        terminate=jnp.asarray(column(2, np.float32)),
        respawn=jnp.asarray(column(3, np.float32)),
        num_objects=jnp.int32(len(objects)),
        max_steps=jnp.int32(max_steps),
        lifetime=jnp.int32(lifetime),
    )


def to_numpy(level: GridLevel) -> GridLevel:
    return jax.tree.map(np.asarray, level)


def unstack(levels: GridLevel) -> list[GridLevel]:
    """A batch of levels (leading axis) as a list of single levels (numpy)."""
    levels = to_numpy(levels)
    return [jax.tree.map(lambda x, i=i: x[i], levels) for i in range(int(np.shape(levels.size)[0]))]


def stack(levels: Sequence[Any]) -> GridLevel:
    if not levels:
        raise ValueError("stack needs at least one level")
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *levels)
