"""Level generators: the random maze of the UED literature, the empty maze ACCEL starts from and
host-side perfect mazes.

``random_level`` is the domain-randomisation generator of Dennis et al. (2020) as used by Jiang
et al. (2021) and JaxUED: up to ``n_walls`` walls (cells drawn with replacement; exactly n distinct
ones as an option), then agent and goal on two distinct free cells, a uniform direction. Every
shape is static, so ``n_walls`` may be a traced value (a per-environment parameter under vmap).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from envs.maze.level import DEFAULT_SIZE, Level, make_level


def _cell_pos(cell: jax.Array, width: int) -> jax.Array:
    return jnp.stack([cell // width, cell % width]).astype(jnp.int32)


def random_level(key: jax.Array, n_walls: jax.Array | int, height: int = DEFAULT_SIZE, width: int = DEFAULT_SIZE,
                 exact: jax.Array | bool = False) -> Level:
    """A random level: walls, then agent and goal on two distinct free cells, a uniform direction.

    Two regimes for the walls (``exact`` may be traced, like ``n_walls``; n is clipped to
    0..H*W-2 so that agent and goal always fit):

    * ``exact=False`` (the default), JaxUED's generator (its ``make_level_generator``): n cells
      drawn uniformly *with replacement*, so ``n_walls`` is an upper bound. On the 13x13 maze
      60 draws give 169 (1 - (168/169)^60), about 50.6, distinct walls on average;
    * ``exact=True``: exactly n walls on distinct cells (one random permutation of the cells,
      walls the first n), the generator of the kit's first edition.

    The agent is then placed uniformly on a free cell and the goal uniformly on a free cell other
    than the agent's, as JaxUED does. The level may be unsolvable, as in Dennis et al. (2020);
    curricula such as PLR learn to skip those.
    """
    cells = height * width
    wall_key, order_key, agent_key, goal_key, dir_key = jax.random.split(key, 5)
    n = jnp.clip(jnp.asarray(n_walls, jnp.int32), 0, cells - 2)
    drawn = jax.random.randint(wall_key, (cells,), 0, cells)  # with replacement; the first n count
    with_replacement = jnp.zeros(cells, bool).at[drawn].max(jnp.arange(cells) < n)
    order = jax.random.permutation(order_key, cells)  # order[rank] = cell
    distinct = jnp.zeros(cells, bool).at[order].set(jnp.arange(cells) < n)
    walls = jnp.where(jnp.asarray(exact, bool), distinct, with_replacement)
    agent = jax.random.choice(agent_key, cells, p=(~walls).astype(jnp.float32))
    goal_free = (~walls).at[agent].set(False)
    goal = jax.random.choice(goal_key, cells, p=goal_free.astype(jnp.float32))
    return Level(
        wall_map=walls.reshape(height, width),
        goal_pos=_cell_pos(goal, width),
        agent_pos=_cell_pos(agent, width),
        agent_dir=jax.random.randint(dir_key, (), 0, 4, dtype=jnp.int32),
    )


def empty_level(key: jax.Array, params=None, height: int = DEFAULT_SIZE, width: int = DEFAULT_SIZE) -> Level:
    """A level with no walls, goal and agent on distinct random cells, a random direction: the
    starting point of ACCEL's "from empty mazes" variant (Parker-Holder et al., 2022), where all
    structure comes from mutations. ``params`` is accepted (and ignored) so that it has the
    signature of ``sample_level``."""
    del params
    return random_level(key, 0, height, width, exact=True)


def perfect_maze(seed: int, height: int = DEFAULT_SIZE, width: int = DEFAULT_SIZE) -> Level:
    """A perfect maze (every free cell reachable from every other by exactly one path) by the
    depth-first "recursive backtracker", deterministic for ``seed``; host-side numpy.

    The passages lie on the odd-coordinate lattice of the grid *with* its border, i.e. the
    interior cells with both coordinates even; the backtracker walks from a random lattice cell
    to unvisited lattice neighbours two cells away, knocking out the wall between, and backs up
    at dead ends (an explicit stack, no recursion). Goal and agent go on two distinct random
    free cells and the direction is random.
    """
    if height < 1 or width < 1:
        raise ValueError(f"perfect_maze needs a positive size, got {height}x{width}")
    rng = np.random.default_rng(seed)
    walls = np.ones((height, width), dtype=bool)
    rows, cols = (height + 1) // 2, (width + 1) // 2  # lattice cells at interior (2i, 2j)
    visited = np.zeros((rows, cols), dtype=bool)
    start = (int(rng.integers(rows)), int(rng.integers(cols)))
    visited[start] = True
    walls[2 * start[0], 2 * start[1]] = False
    stack = [start]
    steps = ((0, 1), (1, 0), (0, -1), (-1, 0))
    while stack:
        i, j = stack[-1]
        options = [(i + di, j + dj) for di, dj in steps
                   if 0 <= i + di < rows and 0 <= j + dj < cols and not visited[i + di, j + dj]]
        if not options:
            stack.pop()
            continue
        ni, nj = options[int(rng.integers(len(options)))]
        visited[ni, nj] = True
        walls[2 * ni, 2 * nj] = False
        walls[i + ni, j + nj] = False  # the wall cell between (2i, 2j) and (2ni, 2nj)
        stack.append((ni, nj))
    free = np.argwhere(~walls)
    if len(free) < 2:
        raise ValueError(f"a {height}x{width} perfect maze has fewer than two free cells")
    goal, agent = rng.choice(len(free), size=2, replace=False)
    return make_level(walls, free[goal], free[agent], int(rng.integers(4)))
