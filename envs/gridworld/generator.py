"""GROOVE's level space (Jackson et al. 2023) as a traced generator, and its presets.

A level: a side drawn from ``min_size..max_size``; ``min_objects..max_objects`` objects with
rewards uniform in [-1, 1] (the first in [0, 1], so every level has something worth collecting),
termination probabilities log-uniform in [``min_terminate``, 1] and respawn probabilities
log-uniform in [``min_respawn``, ``max_respawn``]; ``n_walls`` wall cells drawn without replacement
from the whole ``S x S`` array (those outside the level's square change nothing, so a small level
has fewer); an episode limit and a lifetime, log-uniform integers in their ranges. The start and
the objects take distinct cells of the square first and walls never cover them (GROOVE's code
draws walls first and can leave too few free cells for a small level).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from envs.gridworld.env import GridParams
from envs.gridworld.level import GridLevel

# name -> (grid S, object slots K, params). "small" is the CPU-scale space of
# experiments/lpg; "all" is GROOVE's (sides 4-10, 1-5 objects, 20-750 steps).
SPACES = {
    "small": (6, 3, GridParams(min_size=4, max_size=6, min_objects=1, max_objects=3, n_walls=7, min_steps=20,
                               max_steps=100, min_lifetime=250, max_lifetime=250)),
    "all": (10, 5, GridParams(min_size=4, max_size=10, min_objects=1, max_objects=5, n_walls=15, min_steps=20,
                              max_steps=750, min_lifetime=250, max_lifetime=250)),
}


def log_uniform(key: jax.Array, low, high, shape=()) -> jax.Array:
    return jnp.exp(jax.random.uniform(key, shape, minval=jnp.log(low), maxval=jnp.log(high)))


def log_uniform_int(key: jax.Array, low, high) -> jax.Array:
    return jnp.round(log_uniform(key, jnp.float32(low), jnp.float32(high))).astype(jnp.int32)


def random_level(key: jax.Array, params: GridParams, grid: int, max_objects: int) -> GridLevel:
    keys = jax.random.split(key, 10)
    size = jax.random.randint(keys[0], (), params.min_size, jnp.minimum(params.max_size, grid) + 1)
    count = jax.random.randint(keys[1], (), params.min_objects, jnp.minimum(params.max_objects, max_objects) + 1)
    rows, cols = jnp.divmod(jnp.arange(grid * grid), grid)
    inside = (rows < size) & (cols < size)
    # The start and the object slots: max_objects + 1 distinct cells of the square.
    order = jnp.argsort(jnp.where(inside, jax.random.uniform(keys[2], (grid * grid,)), 2.0))
    chosen = order[: max_objects + 1]
    taken = jnp.zeros(grid * grid, bool).at[chosen].set(True)
    # Walls: the first n_walls cells of a random order of the whole array, skipping taken ones.
    rank = jnp.argsort(jnp.argsort(jnp.where(taken, 2.0, jax.random.uniform(keys[3], (grid * grid,)))))
    walls = (~inside | (rank < params.n_walls)) & ~taken
    position = lambda cell: jnp.stack([cell // grid, cell % grid], -1).astype(jnp.int32)  # noqa: E731
    used = jnp.arange(max_objects) < count
    reward = jax.random.uniform(keys[4], (max_objects,), minval=-1.0, maxval=1.0)
    reward = reward.at[0].set(jnp.abs(reward[0]))
    terminate = log_uniform(keys[5], params.min_terminate, 1.0, (max_objects,))
    respawn = log_uniform(keys[6], params.min_respawn, params.max_respawn, (max_objects,))
    zero = lambda x: jnp.where(used, x, 0.0).astype(jnp.float32)  # noqa: E731
    return GridLevel(
        walls=walls.reshape(grid, grid),
        size=size.astype(jnp.int32),
        start=position(chosen[0]),
        object_pos=jnp.where(used[:, None], position(chosen[1:]), 0),  # empty slots at (0, 0), as in text
        reward=zero(reward),
        terminate=zero(terminate),
        respawn=zero(respawn),
        num_objects=count.astype(jnp.int32),
        max_steps=log_uniform_int(keys[7], params.min_steps, params.max_steps),
        lifetime=log_uniform_int(keys[8], params.min_lifetime, params.max_lifetime),
    )
