"""The UED maze (envs.maze): solver, text, generators, dynamics, mutations, holdouts, the PAIRED
editor, rendering and registration. Small levels and jitted functions keep it fast on a CPU."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
import envs.maze as maze
from envs.maze import (
    HOLDOUT_NAMES,
    Maze,
    MazeEditor,
    MazeParams,
    from_text,
    is_valid_level,
    perfect_maze,
    read_levels,
    shortest_path_length,
    to_text,
)

LEFT, RIGHT, FORWARD = 0, 1, 2


def text_level(text: str):
    rows = text.strip().split("\n")
    return from_text(text.strip(), len(rows), len(rows[0]))


# ------------------------------------------------------------------ solver
def test_bfs_straight_corridor_counts_moves_and_turns():
    east = text_level("#####\n>...G\n#####")
    assert shortest_path_length(east) == 4
    west = text_level("#####\n<...G\n#####")
    assert shortest_path_length(west) == 2 + 4  # two turns, then four moves
    north = text_level("#####\n^...G\n#####")
    assert shortest_path_length(north) == 1 + 4


def test_bfs_maze_needing_turns():
    level = text_level(">.#\n#.#\n#.G")
    # forward, right, forward, forward, left, forward
    assert shortest_path_length(level) == 6


def test_bfs_unsolvable_and_adjacent():
    assert shortest_path_length(text_level(">.#..\n..#.G\n..#..")) == -1
    assert shortest_path_length(text_level(">G.\n...")) == 1
    assert shortest_path_length(text_level("<G.\n...")) == 3
    stacked = maze.stack_levels([text_level(">G.\n..."), text_level("<G.\n...")])
    assert list(maze.shortest_path_lengths(stacked)) == [1, 3]


def test_in_program_solver_agrees_with_bfs():
    from envs.maze.solver import goal_reachable

    hand = [text_level(">.#..\n..#.G\n..#.."), text_level(">G.\n..."), text_level("v.#\n#.#\n#.G"), text_level(">.#\n#.#\n#.G")]
    assert [bool(goal_reachable(level)) for level in hand] == [False, True, True, True]
    for n_walls in (20, 60, 100):
        env, params = envs.make("maze", n_walls=n_walls)
        levels = jax.vmap(env.sample_level, in_axes=(0, None))(jax.random.split(jax.random.key(n_walls), 100), params)
        fast = np.asarray(jax.jit(jax.vmap(goal_reachable))(levels))
        assert list(fast) == [maze.solvable(level) for level in maze.unstack_levels(levels)], n_walls
        assert 0 < fast.sum() < 100 or n_walls == 20  # both kinds drawn where walls are dense


# ------------------------------------------------------------------ text
MAZES = [
    "#####\n>...G\n#####",
    "v.#\n#.#\n#.G",
    "G...\n.##.\n...<",
    "^..\n.#.\nG..",
]


@pytest.mark.parametrize("text", MAZES)
def test_text_round_trip(text):
    assert to_text(text_level(text)) == text


def test_text_round_trip_of_random_levels():
    keys = jax.random.split(jax.random.key(0), 8)
    levels = jax.jit(jax.vmap(lambda k: maze.random_level(k, 40)))(keys)
    for level in maze.unstack_levels(levels):
        again = from_text(to_text(level))
        for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(level)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("text, message", [
    ("...\n>.G", r"2 rows, expected 3 rows of 3 characters"),
    ("...\n>.G\n....", r"row 3 has 4 characters, expected 3 rows of 3"),
    ("..x\n>.G\n...", r"unknown character 'x' at row 1, column 3"),
    ("G..\n>.G\n...", r"2 goals"),
    ("...\n..G\n...", r"no agents"),
    ("...\n>.<\n..G", r"2 agents"),
])
def test_malformed_text(text, message):
    with pytest.raises(ValueError, match=message):
        from_text(text, 3, 3)


def test_read_levels_names_file_and_index(tmp_path):
    good, unsolvable = "#####\n>...G\n#####", "##.##\n>.#.G\n##.##"
    path = tmp_path / "mazes.txt"
    path.write_text(f"{good}\n\n{good}\n\n{unsolvable}\n")
    with pytest.raises(ValueError, match=r"^maze 3 in .*mazes.txt is unsolvable: the goal cannot be reached$"):
        read_levels(path, 3, 5)
    path.write_text(f"{good}\n\n>...G\n")
    with pytest.raises(ValueError, match=r"maze 2 in .*mazes.txt: maze has 1 rows"):
        read_levels(path, 3, 5)
    with pytest.raises(FileNotFoundError, match="maze file not found"):
        read_levels(tmp_path / "missing.txt")
    levels = [text_level(good), text_level("#####\nG...<\n#####")]
    maze.write_levels(path, levels)
    assert [to_text(level) for level in read_levels(path, 3, 5)] == [to_text(level) for level in levels]
    stacked = Maze(3, 5).read_levels(path)
    assert stacked.wall_map.shape == (2, 3, 5)


# ------------------------------------------------------------------ generator
def test_generator_places_exactly_n_walls_when_asked():
    keys = jax.random.split(jax.random.key(1), 16)
    sample = jax.jit(jax.vmap(lambda k, n: maze.random_level(k, n, exact=True), in_axes=(0, None)))
    for n_walls in (0, 10, 50):
        levels = sample(keys, n_walls)
        assert np.all(np.asarray(levels.wall_map).sum(axis=(1, 2)) == n_walls)
        assert np.all(np.asarray(jax.vmap(is_valid_level)(levels)))
    env = Maze()
    counts = jnp.array([0, 10, 50, 167])
    params = MazeParams(max_steps_in_episode=jnp.full(4, 250), n_walls=counts, exact_walls=jnp.ones(4, jnp.int32))  # traced
    levels = jax.jit(jax.vmap(env.sample_level))(jax.random.split(jax.random.key(2), 4), params)
    np.testing.assert_array_equal(np.asarray(levels.wall_map).sum(axis=(1, 2)), counts)
    assert np.all(np.asarray(jax.vmap(is_valid_level)(levels)))


def test_default_generator_draws_wall_cells_with_replacement_as_jaxued():
    """n_walls is an upper bound: n cells drawn uniformly with replacement, so the number of
    distinct walls has mean C (1 - (1 - 1/C)^n) and variance from the occupancy distribution
    (C cells); agent and goal on two distinct free cells."""
    env, params = envs.make("maze", n_walls=60)
    levels = jax.jit(jax.vmap(env.sample_level, in_axes=(0, None)))(jax.random.split(jax.random.key(3), 4000), params)
    walls = np.asarray(levels.wall_map).sum(axis=(1, 2))
    cells, n = 169, 60
    mean = cells * (1 - (1 - 1 / cells) ** n)
    variance = cells * (cells - 1) * (1 - 2 / cells) ** n + cells * (1 - 1 / cells) ** n - (cells * (1 - 1 / cells) ** n) ** 2
    assert abs(walls.mean() - mean) < 4 * np.sqrt(variance / walls.size), (walls.mean(), mean)
    assert abs(walls.var() - variance) < 0.15 * variance, (walls.var(), variance)
    assert walls.max() <= n and walls.min() < n
    assert np.all(np.asarray(jax.vmap(is_valid_level)(levels)))
    # the exact regime on the same parameters: always n
    exact = jax.jit(jax.vmap(env.sample_level, in_axes=(0, None)))(jax.random.split(jax.random.key(3), 64), params.replace(exact_walls=1))
    assert np.all(np.asarray(exact.wall_map).sum(axis=(1, 2)) == n)
    with pytest.raises(ValueError, match="exact_walls must be 0"):
        envs.make("maze", exact_walls=2)


# ------------------------------------------------------------------ dynamics
SMALL = """
.....
.....
.#...
.^...
...G.
"""


@pytest.fixture(scope="module")
def small():
    env = Maze(5, 5)
    level = text_level(SMALL)
    obs, state = env.reset_to_level(jax.random.key(0), level, MazeParams(max_steps_in_episode=20))
    return env, level, obs, state


def view(obs, r, c, channel, size=5):
    return float(obs[(r * size + c) * 2 + channel])


def test_observation_layout(small):
    env, _, obs, state = small
    assert obs.shape == (54,) and obs.dtype == jnp.float32
    assert env.observation_space(None).shape == (54,)
    assert view(obs, 3, 2, 0) == 1.0  # the wall directly in front of the agent
    assert float(obs[34]) == 1.0  # the same cell by its flat index
    assert view(obs, 4, 2, 0) == 0.0 and view(obs, 4, 1, 0) == 0.0  # its own cell, its left
    assert all(view(obs, 0, c, 0) == 1.0 for c in range(5))  # four rows ahead: outside the grid
    assert view(obs, 4, 0, 0) == 1.0  # two to the left: outside the grid
    assert float(obs[:50].reshape(5, 5, 2)[..., 1].sum()) == 0.0  # the goal is behind
    np.testing.assert_array_equal(np.asarray(obs[50:]), [0, 0, 0, 1])  # facing north
    obs, _ = env.reset_to_level(jax.random.key(0), text_level(SMALL.replace("^", ">")), None)
    assert view(obs, 2, 3, 1) == 1.0  # facing east: goal two ahead, one to the right
    assert float(obs[:50].reshape(5, 5, 2)[..., 1].sum()) == 1.0
    corner = text_level("v....\n.....\n.....\n.....\n....G")
    walls = np.asarray(env.reset_to_level(jax.random.key(0), corner, None)[0][:50]).reshape(5, 5, 2)[..., 0]
    # Facing south from the top-left corner: the agent's right is west, outside the grid.
    np.testing.assert_array_equal(walls, np.tile([0, 0, 0, 1, 1], (5, 1)))


def test_wall_blocks_and_turns(small):
    env, _, _, state = small
    params = MazeParams(max_steps_in_episode=20)
    key = jax.random.key(3)
    _, blocked, reward, terminated, truncated, _ = env.step(key, state, FORWARD, params)
    np.testing.assert_array_equal(blocked.agent_pos, [3, 1])
    assert int(blocked.time) == 1 and float(reward) == 0.0 and not terminated and not truncated
    _, left, *_ = env.step(key, state, LEFT, params)
    _, right, *_ = env.step(key, state, RIGHT, params)
    assert int(left.agent_dir) == 2 and int(right.agent_dir) == 0
    # Moving into the border does not move either.
    tiny = Maze(2, 2)
    _, border_state = tiny.reset_to_level(key, text_level("^G\n.."), params)
    _, after, *_ = tiny.step(key, border_state, FORWARD, params)
    np.testing.assert_array_equal(after.agent_pos, [0, 0])


def run(env, state, actions, params, key=jax.random.key(4)):
    outputs = []
    for action in actions:
        key, step_key = jax.random.split(key)
        out = env.step(step_key, state, action, params)
        state = out[1]
        outputs.append(out)
    return outputs


def test_goal_reward_termination_and_final_observation(small):
    env, _, _, state = small
    route = [RIGHT, FORWARD, FORWARD, RIGHT, FORWARD]  # five steps onto the goal
    for horizon in (20, 5):  # reaching it on the last allowed step is terminated only
        params = MazeParams(max_steps_in_episode=horizon)
        outputs = run(env, state, route, params)
        assert not any(bool(o[3]) or bool(o[4]) for o in outputs[:-1])
        obs, new_state, reward, terminated, truncated, info = outputs[-1]
        assert bool(terminated) and not bool(truncated)
        assert float(reward) == pytest.approx(1 - 0.9 * 5 / horizon)
        assert float(info["discount"]) == 0.0
        assert not np.array_equal(np.asarray(info["final_observation"]), np.asarray(obs))
        assert int(new_state.time) == 0  # already the next episode
        final = np.asarray(info["final_observation"])
        np.testing.assert_array_equal(final[50:], [0, 1, 0, 0])  # it ended facing south


def test_truncation(small):
    env, _, _, state = small
    outputs = run(env, state, [LEFT, LEFT, LEFT], MazeParams(max_steps_in_episode=3))
    assert [bool(o[4]) for o in outputs] == [False, False, True]
    assert not any(bool(o[3]) for o in outputs)
    assert all(float(o[2]) == 0.0 for o in outputs)
    assert float(outputs[-1][5]["discount"]) == 1.0


def test_auto_reset_draws_new_levels_and_auto_replay_keeps_them():
    env, params = envs.make("maze", max_steps_in_episode=2)
    obs, state = env.reset(jax.random.key(5), params)
    outputs = run(env, state, [LEFT, LEFT], params)
    assert bool(outputs[-1][4])
    assert not np.array_equal(np.asarray(outputs[-1][1].level.wall_map), np.asarray(state.level.wall_map))
    replay = envs.AutoReplay(env)
    _, rstate = replay.reset_to_level(jax.random.key(6), state.level, params)
    outputs = run(replay, rstate, [LEFT, LEFT], params)
    np.testing.assert_array_equal(np.asarray(outputs[-1][1].level.wall_map), np.asarray(state.level.wall_map))


# ------------------------------------------------------------------ mutation
def test_mutation_keeps_levels_valid():
    keys = jax.random.split(jax.random.key(7), 256)
    base = jax.vmap(maze.random_level, in_axes=(0, None))(keys, 60)
    mutate = jax.jit(jax.vmap(lambda k, lv: maze.mutate_level(k, lv, 8)))
    children = mutate(jax.random.split(jax.random.key(8), 256), base)
    assert np.all(np.asarray(jax.vmap(is_valid_level)(children)))
    changed = np.any(np.asarray(children.wall_map) != np.asarray(base.wall_map), axis=(1, 2))
    moved = np.any(np.asarray(children.goal_pos) != np.asarray(base.goal_pos), axis=1)
    assert changed.mean() > 0.5 and moved.mean() > 0.5
    grandchildren = mutate(jax.random.split(jax.random.key(9), 256), children)
    assert np.all(np.asarray(jax.vmap(is_valid_level)(grandchildren)))
    unchanged = maze.mutate_level(jax.random.key(0), maze.unstack_levels(base)[0], 0)
    np.testing.assert_array_equal(unchanged.wall_map, base.wall_map[0])


def test_empty_level():
    levels = jax.vmap(maze.empty_level)(jax.random.split(jax.random.key(10), 32))
    assert not np.asarray(levels.wall_map).any()
    assert np.all(np.asarray(jax.vmap(is_valid_level)(levels)))


# ------------------------------------------------------------------ holdouts and perfect mazes
def test_holdouts():
    holdouts = maze.holdout_levels()
    assert tuple(holdouts) == HOLDOUT_NAMES and len(HOLDOUT_NAMES) == 8
    assert set(maze.HOLDOUTS) == set(HOLDOUT_NAMES)
    for name, level in holdouts.items():
        assert level.wall_map.shape == (13, 13), name
        assert bool(is_valid_level(level)), name
        assert shortest_path_length(level) > 0, name
        np.testing.assert_array_equal(maze.reachable_cells(level), ~np.asarray(level.wall_map), err_msg=name)
    flipped = np.asarray(holdouts["LabyrinthFlipped"].wall_map)
    np.testing.assert_array_equal(flipped, np.asarray(holdouts["Labyrinth"].wall_map)[:, ::-1])
    assert Maze().holdout_levels().keys() == holdouts.keys()


def adjacent_free_pairs(walls: np.ndarray) -> int:
    free = ~walls
    return int((free[1:, :] & free[:-1, :]).sum() + (free[:, 1:] & free[:, :-1]).sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_perfect_maze(seed):
    level = perfect_maze(seed)
    walls = np.asarray(level.wall_map)
    assert walls.shape == (13, 13) and bool(is_valid_level(level))
    assert shortest_path_length(level) > 0
    np.testing.assert_array_equal(maze.reachable_cells(level), ~walls)  # all free cells connected
    assert adjacent_free_pairs(walls) == (~walls).sum() - 1  # a tree: no loops
    assert to_text(perfect_maze(seed)) == to_text(level)
    assert to_text(perfect_maze(seed + 10)) != to_text(level)


# ------------------------------------------------------------------ editor
def test_editor_builds_level_step_by_step():
    editor = MazeEditor(4, 4, n_walls=3)
    assert editor.max_steps == 5 and editor.action_space(None).n == 16
    obs, state = editor.reset(jax.random.key(11))
    assert obs.shape == (4 * 4 * 3 + 1,) and float(obs.sum()) == 0.0
    key = jax.random.key(12)
    actions = [5, 5, 0, 5, 15]  # goal (1,1); agent on the goal -> next cell (1,2); walls
    for t, action in enumerate(actions):
        obs, state, reward, terminated, truncated, info = editor.step(key, state, action)
        assert float(reward) == 0.0 and not bool(truncated)
        assert bool(terminated) == (t == len(actions) - 1)
        if t == 1:
            level = editor.level(state)
            np.testing.assert_array_equal(level.goal_pos, [1, 1])
            np.testing.assert_array_equal(level.agent_pos, [1, 2])
            grid = np.asarray(obs[:-1]).reshape(4, 4, 3)
            assert grid[1, 1, 1] == 1.0 and grid[1, 2, 2] == 1.0 and float(obs[-1]) == pytest.approx(2 / 5)
    final = info["final_level"]
    expected = np.zeros((4, 4), bool)
    expected[0, 0] = expected[3, 3] = True  # the wall on the goal was ignored
    np.testing.assert_array_equal(final.wall_map, expected)
    assert bool(is_valid_level(final))
    assert float(info["final_observation"][-1]) == 1.0
    assert int(state.time) == 0 and not np.asarray(state.wall_map).any()  # auto-reset


# ------------------------------------------------------------------ rendering
def test_rendering(tmp_path):
    level = maze.holdout_levels()["SixteenRooms"]
    image = maze.render_level(level, cell=8)
    assert image.shape == (15 * 8, 15 * 8, 3) and image.dtype == np.uint8
    frames = maze.render_frames(maze.stack_levels([level, level]), cell=4)
    assert len(frames) == 2 and frames[0].shape == (60, 60, 3)
    maze.save_png(tmp_path / "level.png", image)
    corridor = text_level("#####\n>...G\n#####")
    env = Maze(3, 5)
    episode = maze.render_episode(env, MazeParams(), corridor, lambda obs, key: FORWARD, jax.random.key(0), 10, cell=4)
    assert len(episode) == 5  # the start and four moves, the last onto the goal
    maze.save_gif(tmp_path / "episode.gif", episode)
    assert (tmp_path / "level.png").stat().st_size > 0 and (tmp_path / "episode.gif").stat().st_size > 0
    figure = maze.level_grid(maze.holdout_levels(), columns=4, cell=4)
    assert len(figure.axes) == 8


# ------------------------------------------------------------------ registry
def test_registry():
    env, params = envs.make("maze")
    assert isinstance(env, Maze) and env.name == "maze" and env.num_actions == 3
    assert params == MazeParams()
    _, params = envs.make("maze", n_walls=50, max_steps_in_episode="100")
    assert params.n_walls == 50 and params.max_steps_in_episode == 100
    with pytest.raises(envs.InvalidEnvSetting, match="no parameter"):
        envs.make("maze", walls=3)
    with pytest.raises(envs.InvalidEnvSetting, match="must be an integer"):
        envs.make("maze", n_walls=2.5)
    assert "maze" in envs.list_envs()


def test_traced_shortest_path_agrees_with_the_host_solver():
    from envs.maze import holdout_levels
    from envs.maze.solver import level_stats, shortest_path_traced

    env, params = envs.make("maze", n_walls=60)
    levels = jax.vmap(env.sample_level, in_axes=(0, None))(jax.random.split(jax.random.key(9), 200), params)
    levels = maze.stack_levels(maze.unstack_levels(levels) + list(holdout_levels().values()))
    traced = np.asarray(jax.jit(jax.vmap(shortest_path_traced))(levels))
    np.testing.assert_array_equal(traced, maze.shortest_path_lengths(levels))
    assert (traced == -1).any() and (traced > 20).any()  # both kinds, and long holdout paths
    stats = jax.jit(jax.vmap(level_stats))(levels)
    np.testing.assert_array_equal(stats["solvable"], traced > 0)
    np.testing.assert_array_equal(stats["walls"], np.asarray(levels.wall_map).sum(axis=(1, 2)))
