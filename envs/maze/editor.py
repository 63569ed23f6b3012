"""The teacher's environment for PAIRED: a level built one cell per step.

In PAIRED (Dennis et al., 2020) an adversary designs the student's level as a sequential
decision problem: it places the goal, then the agent, then ``n_walls`` walls, seeing the whole
grid as it goes; its reward is the regret of the student's and antagonist's returns on the
finished level, which the curriculum computes, so this environment's own reward is 0. Jiang et
al. (2021) use the same editor as a baseline teacher.

Observation (float32, length ``H * W * 3 + 1``): the grid's wall, goal and agent channels
(``[H, W, 3]`` flattened in C order) and the fraction ``t / (n_walls + 2)`` of the episode
done. Action: a cell index ``row * W + col`` in ``[0, H*W)``. Step 0 places the goal there;
step 1 the agent (on the goal's cell it takes the next cell in raster order instead); steps
2..n_walls+1 put a wall there, ignored on the goal or agent cell. The agent's direction is drawn
at reset. The episode terminates after ``n_walls + 2`` steps; then the editor auto-resets to an
empty grid. ``n_walls`` is a constructor argument because it fixes the episode length, which a
training loop needs statically.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from flax import struct

from envs.core import Environment, spaces
from envs.maze.level import DEFAULT_SIZE, Level

UNPLACED = -1


@struct.dataclass
class EditorParams:
    """The editor has nothing to trace; ``max_steps_in_episode`` only reports the episode
    length (``MazeEditor.default_params`` sets it to ``n_walls + 2``) for tools that read it."""

    max_steps_in_episode: int = 27


@struct.dataclass
class EditorState:
    """The level under construction (goal and agent at (-1, -1) until placed) and the number of
    steps taken."""

    wall_map: jax.Array
    goal_pos: jax.Array
    agent_pos: jax.Array
    agent_dir: jax.Array
    time: jax.Array


class MazeEditor(Environment):
    """The PAIRED adversary's environment (module docstring)."""

    def __init__(self, height: int = DEFAULT_SIZE, width: int = DEFAULT_SIZE, n_walls: int = 25):
        if height * width < 2:
            raise ValueError(f"a maze needs at least two cells, got {height}x{width}")
        if n_walls < 0:
            raise ValueError(f"n_walls must be >= 0, got {n_walls}")
        self.height, self.width, self.n_walls = height, width, int(n_walls)

    @property
    def name(self) -> str:
        return "maze-editor"

    @property
    def max_steps(self) -> int:
        """Steps in one editing episode: goal, agent, then ``n_walls`` walls."""
        return self.n_walls + 2

    @property
    def num_actions(self) -> int:
        return self.height * self.width

    @property
    def default_params(self) -> EditorParams:
        return EditorParams(max_steps_in_episode=self.max_steps)

    def action_space(self, params: EditorParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self.height * self.width)

    def observation_space(self, params: EditorParams | None = None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (self.height * self.width * 3 + 1,), jnp.float32)

    def level(self, state: EditorState) -> Level:
        """The level built so far (positions are (-1, -1) while not yet placed)."""
        return Level(wall_map=state.wall_map, goal_pos=state.goal_pos, agent_pos=state.agent_pos,
                     agent_dir=state.agent_dir)

    def observe(self, state: EditorState) -> jax.Array:
        rows = jnp.arange(self.height)[:, None]
        cols = jnp.arange(self.width)[None, :]
        goal = (rows == state.goal_pos[0]) & (cols == state.goal_pos[1])
        agent = (rows == state.agent_pos[0]) & (cols == state.agent_pos[1])
        grid = jnp.stack([state.wall_map, goal, agent], axis=-1).astype(jnp.float32)
        progress = (state.time.astype(jnp.float32) / self.max_steps)[None]
        return jnp.concatenate([grid.reshape(-1), progress])

    @partial(jax.jit, static_argnames=("self",))
    def reset(self, key: jax.Array, params: EditorParams | None = None):
        """An empty grid, nothing placed, a random agent direction."""
        unplaced = jnp.full((2,), UNPLACED, jnp.int32)
        state = EditorState(
            wall_map=jnp.zeros((self.height, self.width), bool),
            goal_pos=unplaced,
            agent_pos=unplaced,
            agent_dir=jax.random.randint(key, (), 0, 4, dtype=jnp.int32),
            time=jnp.zeros((), jnp.int32),
        )
        return self.observe(state), state

    def reset_env(self, key, params):
        return self.reset(key, params)

    def transition(self, state: EditorState, action: jax.Array) -> EditorState:
        """The state after placing ``action``'s cell (no auto-reset)."""
        cells = self.height * self.width
        cell = jnp.clip(jnp.asarray(action, jnp.int32), 0, cells - 1)
        goal_cell = state.goal_pos[0] * self.width + state.goal_pos[1]
        agent_cell = jnp.where(cell == goal_cell, (cell + 1) % cells, cell)

        def pos(c):
            return jnp.stack([c // self.width, c % self.width]).astype(jnp.int32)

        is_goal_step, is_agent_step = state.time == 0, state.time == 1
        is_wall_step = (state.time >= 2) & (state.time < self.max_steps)
        placed_goal = jnp.where(is_goal_step, pos(cell), state.goal_pos)
        placed_agent = jnp.where(is_agent_step, pos(agent_cell), state.agent_pos)
        occupied = (cell == goal_cell) | (cell == state.agent_pos[0] * self.width + state.agent_pos[1])
        wall_flat = state.wall_map.reshape(-1)
        wall_flat = wall_flat.at[cell].set(wall_flat[cell] | (is_wall_step & ~occupied))
        return state.replace(wall_map=wall_flat.reshape(self.height, self.width), goal_pos=placed_goal,
                             agent_pos=placed_agent, time=state.time + 1)

    @partial(jax.jit, static_argnames=("self",))
    def step(self, key: jax.Array, state: EditorState, action: jax.Array, params: EditorParams | None = None):
        """Six-value step; terminated after ``n_walls + 2`` steps, reward 0, auto-reset to an
        empty editor; ``info["final_observation"]`` and ``info["final_level"]`` are the grid's
        observation and level as this step left them, before the reset (on the last step, the
        finished level that the student is then trained on)."""
        next_state = self.transition(state, action)
        final_obs = self.observe(next_state)
        terminated = next_state.time >= self.max_steps
        reset_obs, reset_state = self.reset(key, params)
        obs = jnp.where(terminated, reset_obs, final_obs)
        reset_or_next = jax.tree.map(lambda a, b: jnp.where(terminated, a, b), reset_state, next_state)
        info = {
            "final_observation": final_obs,
            "final_level": self.level(next_state),  # the finished level, before the reset
            "discount": jnp.where(terminated, 0.0, 1.0).astype(jnp.float32),
        }
        return obs, reset_or_next, jnp.zeros((), jnp.float32), terminated, jnp.zeros((), bool), info

    def step_env(self, key, state, action, params):
        next_state = self.transition(state, action)
        return self.observe(next_state), next_state, jnp.zeros((), jnp.float32), next_state.time >= self.max_steps, {}
