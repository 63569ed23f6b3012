"""The exact optimal return of a grid-world level by finite-horizon value iteration over the
tabular state (cell, which objects are present, steps taken), for normalising returns and tests.

The environment's dynamics make each object's next presence independent given the cell entered:
collected (present and entered) -> absent; present otherwise -> present; absent -> present with its
respawn probability. So the expectation of the next values over all 2^K presence patterns is K
contractions with 2x2 matrices, one per object, instead of a 2^K x 2^K sum.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from envs.gridworld.level import GridLevel


def _patterns(num_objects: int) -> jax.Array:
    """bool [2^K, K]: the presence bits of every tabular index (object k: bit k)."""
    index = jnp.arange(2**num_objects)[:, None]
    return ((index >> jnp.arange(num_objects)[None]) & 1).astype(bool)


def _expected_next(values: jax.Array, matrices: jax.Array) -> jax.Array:
    """values [2^K] over next patterns; matrices [K, 2, 2] (now, next) per object ->
    [2^K]: E[values(next) | now] for every current pattern."""
    num_objects = matrices.shape[0]
    table = values.reshape((2,) * num_objects)  # axis j is bit K-1-j
    for k in range(num_objects):
        axis = num_objects - 1 - k
        table = jnp.moveaxis(jnp.tensordot(matrices[k], table, axes=([1], [axis])), 0, axis)
    return table.reshape(-1)


@partial(jax.jit, static_argnames=("env", "horizon"))
def state_values(env, level: GridLevel, gamma: float, horizon: int) -> jax.Array:
    """[S*S, 2^K] optimal values at the start of an episode (0 steps taken) of the episode
    truncated after ``level.max_steps`` steps (``horizon``: a static bound on it)."""
    grid, num_objects = env.grid, env.max_objects
    cells = jnp.stack(jnp.unravel_index(jnp.arange(grid * grid), (grid, grid)), -1).astype(jnp.int32)
    moves = jnp.arange(env.num_actions)
    entered = jax.vmap(lambda c: jax.vmap(lambda a: env.move(level, c, a))(moves))(cells)  # [S*S, A, 2]
    entered = entered[..., 0] * grid + entered[..., 1]
    patterns = _patterns(num_objects)
    at = jnp.all(level.object_pos[None] == cells[:, None], -1)  # [S*S, K]: object k's cell is c
    collected = patterns[None] & at[:, None]  # [S*S(entered), 2^K, K]
    reward = jnp.sum(jnp.where(collected, level.reward, 0.0), -1)
    survive = jnp.prod(jnp.where(collected, 1.0 - level.terminate, 1.0), -1)
    appear = jnp.where(level.used, level.respawn, 0.0)
    absent_row = jnp.stack([1.0 - appear, appear], -1)  # [K, 2]
    present_row = jnp.where(at[..., None], jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]))  # [S*S, K, 2]
    matrices = jnp.stack([jnp.broadcast_to(absent_row, present_row.shape), present_row], -2)  # [S*S, K, 2, 2]

    def backup(values, t):
        expected = jax.vmap(_expected_next)(values, matrices)  # [S*S(entered), 2^K]
        after = reward + gamma * survive * expected
        new = jnp.max(after[entered], axis=1)  # [S*S, A, 2^K] -> [S*S, 2^K]
        return jnp.where(t < level.max_steps, new, 0.0), None

    values, _ = jax.lax.scan(backup, jnp.zeros((grid * grid, 2**num_objects)), jnp.arange(horizon)[::-1])
    return values


def optimal_return(env, level: GridLevel, gamma: float = 1.0) -> jax.Array:
    """The optimal expected return from ``level``'s start (one level, or a batch on a leading axis),
    undiscounted by default (the episode's return)."""
    level = jax.tree.map(jnp.asarray, level)
    batched = level.size.ndim == 1
    horizon = int(np.max(np.asarray(level.max_steps)))

    def one(lv):
        return state_values(env, lv, gamma, horizon).reshape(-1)[env.state_index(lv.start, lv.used)]

    return jax.vmap(one)(level) if batched else one(level)
