"""Host-side solver: the least number of actions from the agent's start to the goal.

The maze's actions are turn left, turn right and move forward (Dennis et al., 2020; Jiang et
al., 2021), so the search runs over poses (row, col, direction) rather than cells: turning
costs an action just like moving. Breadth-first search over at most 4*H*W poses is instant for
the kit's level sizes, so this stays plain numpy and Python; it serves file loading (rejecting
unsolvable mazes), evaluation on random *solvable* levels, and tests.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from envs.maze.level import DIRECTION_VECTORS, Level, to_numpy, unstack_levels


def _pose_neighbours(walls: np.ndarray, row: int, col: int, direction: int):
    """The poses one action away: left turn, right turn, forward (or staying put when blocked)."""
    height, width = walls.shape
    yield row, col, (direction - 1) % 4
    yield row, col, (direction + 1) % 4
    drow, dcol = DIRECTION_VECTORS[direction]
    nrow, ncol = row + int(drow), col + int(dcol)
    if 0 <= nrow < height and 0 <= ncol < width and not walls[nrow, ncol]:
        yield nrow, ncol, direction


def shortest_path_length(level: Level) -> int:
    """The least number of actions taking the agent from its start pose onto the goal cell
    (any direction), or -1 when the goal cannot be reached. Leaves may be jax or numpy arrays.

    An agent facing the goal from the next cell needs 1 action; each turn counts as 1.
    """
    level = to_numpy(level)
    walls = np.asarray(level.wall_map, dtype=bool)
    goal = (int(level.goal_pos[0]), int(level.goal_pos[1]))
    start = (int(level.agent_pos[0]), int(level.agent_pos[1]), int(level.agent_dir) % 4)
    if start[:2] == goal:
        return 0
    distance = {start: 0}
    frontier = deque([start])
    while frontier:
        pose = frontier.popleft()
        for nxt in _pose_neighbours(walls, *pose):
            if nxt in distance:
                continue
            distance[nxt] = distance[pose] + 1
            if nxt[:2] == goal:
                return distance[nxt]
            frontier.append(nxt)
    return -1


def shortest_path_lengths(levels: Level) -> np.ndarray:
    """``shortest_path_length`` of every level of a stacked ``Level`` (int [N])."""
    if np.ndim(levels.wall_map) == 2:
        return np.array([shortest_path_length(levels)])
    return np.array([shortest_path_length(level) for level in unstack_levels(to_numpy(levels))])


def solvable(level: Level) -> bool:
    """Whether the goal can be reached from the agent's start."""
    return shortest_path_length(level) > 0


def reachable_cells(level: Level) -> np.ndarray:
    """bool [H, W]: the free cells the agent can walk to from its start (direction ignored, as
    turning is always possible); used to check that a maze is connected."""
    level = to_numpy(level)
    walls = np.asarray(level.wall_map, dtype=bool)
    height, width = walls.shape
    seen = np.zeros_like(walls)
    start = (int(level.agent_pos[0]), int(level.agent_pos[1]))
    seen[start] = True
    frontier = deque([start])
    while frontier:
        row, col = frontier.popleft()
        for drow, dcol in DIRECTION_VECTORS:
            nrow, ncol = row + int(drow), col + int(dcol)
            if 0 <= nrow < height and 0 <= ncol < width and not walls[nrow, ncol] and not seen[nrow, ncol]:
                seen[nrow, ncol] = True
                frontier.append((nrow, ncol))
    return seen


def goal_reachable(level: Level):
    """``solvable`` inside a compiled program (jax bool scalar; vmap it for a batch): a flood
    fill of the free cells from the agent's start, grown one cell per iteration until it stops
    changing. Cells suffice because turning in place reaches every direction, so a pose search
    and a cell search reach the same cells (``reachable_cells``); tests/test_maze.py checks it
    against ``solvable`` on random levels."""
    import jax
    import jax.numpy as jnp

    free = ~level.wall_map
    start = jnp.zeros(free.shape, bool).at[level.agent_pos[0], level.agent_pos[1]].set(True)

    def grow(carry):
        reached, _ = carry
        padded = jnp.pad(reached, 1)
        grown = reached | (free & (padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]))
        return grown, (grown != reached).any()

    reached, _ = jax.lax.while_loop(lambda carry: carry[1], grow, (start, jnp.bool_(True)))
    at_start = (level.agent_pos == level.goal_pos).all()  # 0 actions: not solvable, as above
    return reached[level.goal_pos[0], level.goal_pos[1]] & ~at_start


def shortest_path_traced(level: Level):
    """``shortest_path_length`` inside a compiled program (jax int32 scalar, -1 when the goal is
    unreachable; vmap it for a batch): breadth-first search over poses as synchronous relaxation,
    distances [4, H, W] lowered by one turn or one forward move per iteration until they stop
    changing (at most the longest shortest path's number of iterations). tests/test_maze.py
    checks it against the host solver on random levels."""
    import jax
    import jax.numpy as jnp

    free = ~level.wall_map
    height, width = free.shape
    far = jnp.int32(4 * height * width + 1)
    start = jnp.full((4, height, width), far).at[level.agent_dir % 4, level.agent_pos[0], level.agent_pos[1]].set(0)

    def shifted(grid, drow, dcol):
        """grid moved by (drow, dcol): out[r, c] = grid[r - drow, c - dcol], far outside."""
        padded = jnp.pad(grid, 1, constant_values=far)
        return padded[1 - drow:1 - drow + height, 1 - dcol:1 - dcol + width]

    def relax(carry):
        dist, _ = carry
        turned = jnp.minimum(jnp.roll(dist, 1, axis=0), jnp.roll(dist, -1, axis=0)) + 1
        moved = jnp.stack([jnp.where(free, shifted(dist[d], int(dr), int(dc)) + 1, far)
                           for d, (dr, dc) in enumerate(DIRECTION_VECTORS)])
        new = jnp.minimum(dist, jnp.minimum(turned, moved))
        return new, (new != dist).any()

    dist, _ = jax.lax.while_loop(lambda carry: carry[1], relax, (start, jnp.bool_(True)))
    best = dist[:, level.goal_pos[0], level.goal_pos[1]].min()
    return jnp.where(best >= far, -1, best).astype(jnp.int32)


def level_stats(level: Level) -> dict:
    """The level diagnostics a UED researcher looks at, traceable (vmap for a batch): whether the
    goal is reachable, the shortest path in actions (-1 if not) and the number of walls."""
    path = shortest_path_traced(level)
    return {"solvable": path > 0, "shortest_path": path, "walls": level.wall_map.sum()}


__all__ = ["shortest_path_length", "shortest_path_lengths", "solvable", "goal_reachable", "reachable_cells",
           "shortest_path_traced", "level_stats"]
