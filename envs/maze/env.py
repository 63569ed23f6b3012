"""The partially observable grid maze of the UED literature as a gymnax 1.0 environment.

Semantics follow Dennis et al. (2020, PAIRED) and Jiang et al. (2021, Robust PLR): a 13x13
interior with an implicit wall border, three actions (turn left, turn right, move forward), an
egocentric 5x5 view without occlusion, and a reward of ``1 - 0.9 * t / T`` for reaching the goal
after ``t`` of at most ``T`` steps, so that faster solutions score higher and regret estimates
have something to compare. Episodes end on the goal (terminated) or at ``T`` (truncated).

Observation (float32 vector, length ``view_size * view_size * 2 + 4``, 54 by default):
``view[r, c, k]`` flattened in C order, then a one-hot of the agent's direction. The view
follows minigrid's convention: the agent stands at row ``view_size - 1`` (the bottom row),
column ``view_size // 2``, looking towards row 0; view cell ``(r, c)`` is the grid cell
``view_size - 1 - r`` steps ahead and ``c - view_size // 2`` steps to the agent's right.
Channel 0 is wall (cells outside the grid are walls), channel 1 the goal. Walls do not hide
what lies behind them.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import Environment, spaces
from envs.maze import generator, mutation
from envs.maze.level import DEFAULT_SIZE, DIRECTION_VECTORS, Level, is_wall

TURN_LEFT, TURN_RIGHT, FORWARD = 0, 1, 2


@struct.dataclass
class MazeParams:
    """Parameters of the maze: traced values, so they may differ per environment copy.

    ``max_steps_in_episode`` is ``T`` in the reward ``1 - 0.9 t / T``; ``n_walls`` is the wall
    count of the random generator (``sample_level``) and of the auto-reset's new levels: an
    upper bound (cells drawn with replacement, JaxUED's regime) unless ``exact_walls`` is 1, then
    exactly that many distinct walls (``generator.random_level``).
    """

    max_steps_in_episode: int = 250
    n_walls: int = 25
    exact_walls: int = 0


@struct.dataclass
class MazeState:
    """The level being played (with its start pose), the agent's current pose and the number of
    steps taken in this episode."""

    level: Level
    agent_pos: jax.Array
    agent_dir: jax.Array
    time: jax.Array


def _tree_where(condition: jax.Array, new: Any, old: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), new, old)


class Maze(Environment):
    """The UED maze (see the module docstring). ``height``, ``width`` and ``view_size`` are
    static: they fix every array's shape."""

    def __init__(self, height: int = DEFAULT_SIZE, width: int = DEFAULT_SIZE, view_size: int = 5):
        if height < 1 or width < 1 or height * width < 2:
            raise ValueError(f"a maze needs at least two cells, got {height}x{width}")
        if view_size < 1 or view_size % 2 == 0:
            raise ValueError(f"view_size must be a positive odd number, got {view_size}")
        self.height, self.width, self.view_size = height, width, view_size
        # Offsets of every view cell: steps ahead and steps to the right of the agent.
        rows, cols = np.meshgrid(np.arange(view_size), np.arange(view_size), indexing="ij")
        self._ahead = (view_size - 1 - rows).astype(np.int32)
        self._right = (cols - view_size // 2).astype(np.int32)

    # ---------------------------------------------------------------- protocol basics
    @property
    def name(self) -> str:
        return "maze"

    @property
    def num_actions(self) -> int:
        return 3

    @property
    def default_params(self) -> MazeParams:
        return MazeParams()

    def action_space(self, params: MazeParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(3)

    def observation_space(self, params: MazeParams | None = None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (self.observation_size,), jnp.float32)

    @property
    def observation_size(self) -> int:
        return self.view_size * self.view_size * 2 + 4

    # ---------------------------------------------------------------- levels
    def sample_level(self, key: jax.Array, params: MazeParams | None = None) -> Level:
        """A random level with up to ``params.n_walls`` walls, exactly that many when
        ``params.exact_walls`` is 1 (``generator.random_level``)."""
        params = self.default_params if params is None else params
        return generator.random_level(key, params.n_walls, self.height, self.width, params.exact_walls > 0)

    def empty_level(self, key: jax.Array, params: MazeParams | None = None) -> Level:
        """A wall-free level with random goal and agent (ACCEL from empty mazes)."""
        return generator.empty_level(key, params, self.height, self.width)

    def mutate_level(self, key: jax.Array, level: Level, num_edits: int, params: MazeParams | None = None) -> Level:
        """``num_edits`` random ACCEL edits of ``level`` (``mutation.mutate_level``)."""
        return mutation.mutate_level(key, level, num_edits)

    @partial(jax.jit, static_argnames=("self",))
    def reset_to_level(self, key: jax.Array, level: Level, params: MazeParams | None = None):
        """An episode on ``level`` from its start pose; the maze is deterministic, so ``key``
        is unused (kept for the protocol)."""
        del key, params
        state = MazeState(
            level=level,
            agent_pos=jnp.asarray(level.agent_pos, jnp.int32),
            agent_dir=jnp.asarray(level.agent_dir, jnp.int32),
            time=jnp.zeros((), jnp.int32),
        )
        return self.observe(state), state

    @partial(jax.jit, static_argnames=("self",))
    def reset(self, key: jax.Array, params: MazeParams | None = None):
        """An episode on a new random level (``sample_level``)."""
        level_key, reset_key = jax.random.split(key)
        return self.reset_to_level(reset_key, self.sample_level(level_key, params), params)

    def reset_env(self, key: jax.Array, params: MazeParams):
        return self.reset(key, params)

    # ---------------------------------------------------------------- dynamics
    def observe(self, state: MazeState) -> jax.Array:
        """The egocentric view and direction one-hot (layout in the module docstring)."""
        forward = jnp.asarray(DIRECTION_VECTORS)[state.agent_dir]
        right = jnp.asarray(DIRECTION_VECTORS)[(state.agent_dir + 1) % 4]
        cells = (state.agent_pos[None, None, :]
                 + self._ahead[..., None] * forward[None, None, :]
                 + self._right[..., None] * right[None, None, :])
        walls = is_wall(state.level.wall_map, cells)
        goal = (cells[..., 0] == state.level.goal_pos[0]) & (cells[..., 1] == state.level.goal_pos[1])
        view = jnp.stack([walls, goal], axis=-1).astype(jnp.float32)
        direction = jax.nn.one_hot(state.agent_dir, 4, dtype=jnp.float32)
        return jnp.concatenate([view.reshape(-1), direction])

    def transition(self, state: MazeState, action: jax.Array, params: MazeParams | None = None):
        """One step without auto-reset: ``(state, reward, terminated, truncated)``. Moving into a
        wall or the border leaves the agent where it is; the step still counts."""
        params = self.default_params if params is None else params
        action = jnp.asarray(action, jnp.int32)
        direction = jnp.where(action == TURN_LEFT, (state.agent_dir + 3) % 4,
                              jnp.where(action == TURN_RIGHT, (state.agent_dir + 1) % 4, state.agent_dir))
        target = state.agent_pos + jnp.asarray(DIRECTION_VECTORS)[state.agent_dir]
        can_move = (action == FORWARD) & ~is_wall(state.level.wall_map, target)
        position = jnp.where(can_move, target, state.agent_pos)
        time = state.time + 1
        reached = jnp.all(position == state.level.goal_pos)
        horizon = jnp.asarray(params.max_steps_in_episode, jnp.float32)
        reward = jnp.where(reached, 1.0 - 0.9 * time.astype(jnp.float32) / horizon, 0.0).astype(jnp.float32)
        truncated = (time >= params.max_steps_in_episode) & ~reached
        state = state.replace(agent_pos=position.astype(jnp.int32), agent_dir=direction.astype(jnp.int32), time=time)
        return state, reward, reached, truncated

    @partial(jax.jit, static_argnames=("self",))
    def step(self, key: jax.Array, state: MazeState, action: jax.Array, params: MazeParams | None = None):
        """gymnax 1.0's six-value step with auto-reset onto a NEW random level (drawn with a key
        split from ``key``); ``info["final_observation"]`` is the observation the step reached
        before the reset, ``info["discount"]`` 0 on termination and 1 otherwise."""
        params = self.default_params if params is None else params
        next_state, reward, terminated, truncated = self.transition(state, action, params)
        final_obs = self.observe(next_state)
        reset_obs, reset_state = self.reset(key, params)
        done = terminated | truncated
        obs = jnp.where(done, reset_obs, final_obs)
        next_state = _tree_where(done, reset_state, next_state)
        info = {
            "final_observation": final_obs,
            "discount": jnp.where(terminated, 0.0, 1.0).astype(jnp.float32),
        }
        return obs, next_state, reward, terminated, truncated, info

    def step_env(self, key, state, action, params):
        next_state, reward, terminated, _ = self.transition(state, action, params)
        return self.observe(next_state), next_state, reward, terminated, {}

    # ---------------------------------------------------------------- host-side helpers
    # The kit's curricula and CLI look these up on the environment (jaxrl.curricula).
    def solvable(self, level: Level) -> bool:
        from envs.maze.solver import solvable

        return solvable(level)

    def level_solvable(self, level: Level) -> jax.Array:
        """``solvable`` as a traceable function (``solver.goal_reachable``), for inside programs."""
        from envs.maze.solver import goal_reachable

        return goal_reachable(level)

    def level_stats(self, level: Level) -> dict[str, jax.Array]:
        """Traceable diagnostics of a level (``solver.level_stats``): solvable, shortest path, walls."""
        from envs.maze.solver import level_stats

        return level_stats(level)

    def holdout_levels(self) -> dict[str, Level]:
        """The named holdout mazes (13x13 only)."""
        from envs.maze.holdouts import holdout_levels

        if (self.height, self.width) != (DEFAULT_SIZE, DEFAULT_SIZE):
            return {}
        return holdout_levels()

    def read_levels(self, path) -> Level:
        """The mazes of a file, checked and stacked (``text.read_levels``)."""
        from envs.maze.level import stack_levels
        from envs.maze.text import read_levels

        return stack_levels(read_levels(path, self.height, self.width))

    def levels_to_text(self, levels) -> str:
        from envs.maze.text import levels_to_text

        return levels_to_text(levels)

    def levels_from_text(self, text: str) -> Level:
        from envs.maze.text import levels_from_text

        return levels_from_text(text, self.height, self.width)
