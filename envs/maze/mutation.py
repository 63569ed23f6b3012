"""ACCEL's level editor: small random edits of a level, in JAX.

ACCEL (Parker-Holder et al., 2022, "Evolving Curricula with Regret-Based Environment Design")
replays high-regret levels and adds their mutated children to the buffer; in the maze of Dennis
et al. (2020) and Jiang et al. (2021) an edit flips one cell or moves the goal or the agent.
Every edit keeps the level valid (goal and agent on distinct free cells), so a child can be
played at once; solvability is not guaranteed, and the curriculum's scores decide its fate.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from envs.maze.level import Level

FLIP_WALL, MOVE_GOAL, MOVE_AGENT = 0, 1, 2
NUM_EDIT_KINDS = 3


def _random_cell(key: jax.Array, allowed: jax.Array) -> jax.Array:
    """A uniformly random cell (row, col) among the ``allowed`` ones (bool [H, W], at least one)."""
    height, width = allowed.shape
    logits = jnp.where(allowed.reshape(-1), 0.0, -jnp.inf)
    cell = jax.random.categorical(key, logits)
    return jnp.stack([cell // width, cell % width]).astype(jnp.int32)


def _cell_mask(pos: jax.Array, height: int, width: int) -> jax.Array:
    return (jnp.arange(height)[:, None] == pos[0]) & (jnp.arange(width)[None, :] == pos[1])


def edit_level(key: jax.Array, level: Level) -> Level:
    """One edit, its kind uniform over: flip the wall state of a random cell (a no-op when the
    cell holds the goal or the agent, which must stay free), move the goal to a random free cell
    other than the agent's, move the agent to a random free cell other than the goal's."""
    height, width = level.wall_map.shape
    kind_key, cell_key, goal_key, agent_key = jax.random.split(key, 4)
    kind = jax.random.randint(kind_key, (), 0, NUM_EDIT_KINDS)
    goal_cell = _cell_mask(level.goal_pos, height, width)
    agent_cell = _cell_mask(level.agent_pos, height, width)
    free = ~level.wall_map

    flip_pos = jax.random.randint(cell_key, (2,), 0, jnp.array([height, width]), dtype=jnp.int32)
    flip = _cell_mask(flip_pos, height, width) & ~goal_cell & ~agent_cell
    flipped = level.wall_map ^ flip
    # The goal's own cell is always allowed, so the choice set is never empty.
    new_goal = _random_cell(goal_key, free & ~agent_cell)
    new_agent = _random_cell(agent_key, free & ~goal_cell)

    return level.replace(
        wall_map=jnp.where(kind == FLIP_WALL, flipped, level.wall_map),
        goal_pos=jnp.where(kind == MOVE_GOAL, new_goal, level.goal_pos),
        agent_pos=jnp.where(kind == MOVE_AGENT, new_agent, level.agent_pos),
    )


def mutate_level(key: jax.Array, level: Level, num_edits: int, params=None) -> Level:
    """``num_edits`` successive random edits (``edit_level``) of ``level``; ``num_edits`` is a
    static Python int (it fixes the loop), ``params`` is accepted and unused so that the
    signature matches the environment's method. jit- and vmap-able."""
    del params
    if num_edits < 0:
        raise ValueError(f"num_edits must be >= 0, got {num_edits}")
    keys = jax.random.split(key, max(num_edits, 1))[:num_edits]

    def one(level, edit_key):
        return edit_level(edit_key, level), None

    level, _ = jax.lax.scan(one, level, keys)
    return level
