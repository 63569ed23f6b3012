"""LPG / GROOVE grid worlds: dynamics, value iteration against hand calculations, the text format,
the generator's level space and the named LPG levels."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.gridworld import (
    LPG_LEVELS, GridWorld, levels_from_text, levels_to_text, lpg_level, make_level, optimal_return, random_level,
    stack, to_text, unstack,
)
from envs.gridworld.generator import SPACES

ENV = GridWorld(6, 3)
# A 1x3 corridor: rows 1 and 2 of the 3x3 square are walls.
CORRIDOR = [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]
RIGHT, STAY = 3, 4


def corridor(objects, steps):
    return make_level(3, start=(0, 0), objects=objects, walls=CORRIDOR, max_steps=steps, grid=6, max_objects=3)


@pytest.mark.parametrize("objects, steps, expected", [
    ([((0, 2), 1.0, 1.0, 0.0)], 5, 1.0),  # two steps to a terminal +1
    ([((0, 2), 1.0, 1.0, 0.0)], 1, 0.0),  # out of reach in one step
    ([((0, 1), 1.0, 0.0, 1.0)], 5, 3.0),  # collect, wait a step for it to reappear, collect...
    ([((0, 1), 1.0, 0.5, 1.0)], 3, 1.5),  # 1, then with probability 0.5 the episode goes on: 1 more
    ([((0, 1), -1.0, 0.0, 0.0), ((0, 2), 3.0, 1.0, 0.0)], 5, 2.0),  # through a -1 to reach a +3
    ([((0, 1), -1.0, 0.0, 0.0), ((0, 2), 0.5, 1.0, 0.0)], 5, 0.0),  # not worth it: stay away
    ([((0, 2), 1.0, 0.0, 0.5)], 4, 1.5),  # 1 at step 2; absent at step 3: back at 4 w.p. 0.5
])
def test_value_iteration_matches_hand_calculations(objects, steps, expected):
    assert float(optimal_return(ENV, corridor(objects, steps))) == pytest.approx(expected, abs=1e-6)


def test_value_iteration_batches_levels_and_discounts():
    levels = stack([corridor([((0, 2), 1.0, 1.0, 0.0)], 5), corridor([((0, 1), 1.0, 0.0, 1.0)], 5)])
    np.testing.assert_allclose(optimal_return(ENV, levels), [1.0, 3.0], atol=1e-6)
    assert float(optimal_return(ENV, corridor([((0, 2), 1.0, 1.0, 0.0)], 5), gamma=0.9)) == pytest.approx(0.9)


def test_steps_collect_terminate_respawn_and_restart_on_the_same_level():
    level = corridor([((0, 1), 1.0, 0.0, 1.0), ((0, 2), 2.0, 1.0, 0.0)], 10)
    obs, state = ENV.reset_to_level(jax.random.PRNGKey(0), level)
    assert obs.shape == (ENV.observation_size,) and float(obs.sum()) == 1.0
    key = jax.random.PRNGKey(1)
    rewards, ends = [], []
    for action in (RIGHT, STAY, STAY, RIGHT):
        key, step_key = jax.random.split(key)
        obs, state, reward, terminated, truncated, info = ENV.step(step_key, state, action)
        rewards.append(float(reward))
        ends.append((bool(terminated), bool(truncated)))
    # collect a (+1), wait (a reappears), collect again, then the terminal +2 restarts the level
    assert rewards == [1.0, 0.0, 1.0, 2.0]
    assert ends == [(False, False)] * 3 + [(True, False)]
    assert tuple(np.asarray(state.pos)) == (0, 0) and bool(state.present[:2].all()) and int(state.time) == 0
    assert info["final_observation"].argmax() != obs.argmax()


def test_truncation_after_max_steps():
    _, state = ENV.reset_to_level(jax.random.PRNGKey(0), corridor([((0, 2), 1.0, 1.0, 0.0)], 3))
    for _ in range(3):
        _, state, _, terminated, truncated, _ = ENV.step(jax.random.PRNGKey(0), state, STAY)
    assert bool(truncated) and not bool(terminated) and int(state.time) == 0


def test_grid_observation_planes():
    env = GridWorld(6, 3, observation="grid")
    obs, _ = env.reset_to_level(jax.random.PRNGKey(0), corridor([((0, 2), 1.0, 1.0, 0.0)], 3))
    planes = np.asarray(obs).reshape(6, 6, 5)
    assert planes[0, 0, 0] == 1 and planes[..., 0].sum() == 1  # the agent
    assert planes[1, 0, 1] == 1 and planes[0, 0, 1] == 0 and planes[5, 5, 1] == 1  # walls, outside included
    assert planes[0, 2, 2] == 1 and planes[..., 2].sum() == 1 and planes[..., 3:].sum() == 0  # one object


def test_text_round_trip_and_errors():
    levels = jax.vmap(lambda k: random_level(k, SPACES["small"][2], 6, 3))(jax.random.split(jax.random.PRNGKey(0), 20))
    back = levels_from_text(levels_to_text(levels), 6, 3)
    for a, b in zip(jax.tree.leaves(levels), jax.tree.leaves(back)):
        np.testing.assert_array_equal(a, b)
    one = unstack(levels)[0]
    assert to_text(unstack(levels_from_text(to_text(one), 6, 3))[0]) == to_text(one)
    good = to_text(one)
    for bad, message in [
        (good.replace("gridworld", "maze"), "starts with"),
        (good.replace("A", "."), "start cell"),
        (good.replace("respawn=", "respawn=2"), "in [0, 1]"),
        ("gridworld size=9 steps=5\n" + "\n".join(["." * 9] * 9), "does not fit"),
        (good + "......\n", "rows"),
    ]:
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
            levels_from_text(bad, 6, 3)


def test_generator_draws_from_its_space():
    grid, slots, params = SPACES["small"]
    levels = jax.vmap(lambda k: random_level(k, params, grid, slots))(jax.random.split(jax.random.PRNGKey(1), 500))
    sizes, counts, steps = (np.asarray(x) for x in (levels.size, levels.num_objects, levels.max_steps))
    assert set(sizes) == {4, 5, 6} and set(counts) == {1, 2, 3}
    assert steps.min() >= 20 and steps.max() <= 100 and np.median(steps) < 60  # log-uniform: median ~45
    assert (np.asarray(levels.reward[:, 0]) >= 0).all() and (np.asarray(levels.reward[:, 1:]) < 0).any()
    used = np.asarray(levels.used)
    for name in ("terminate", "respawn"):
        values = np.asarray(getattr(levels, name))
        assert (values[~used] == 0).all()
    assert np.asarray(levels.terminate)[used].min() >= 0.01 and np.asarray(levels.respawn)[used].max() <= 0.1
    for level in unstack(levels)[:100]:
        cells = [tuple(level.start)] + [tuple(p) for p in level.object_pos[: level.num_objects]]
        assert len(set(cells)) == len(cells) and not any(level.walls[c] for c in cells)
        inside = level.walls[: level.size, : level.size]
        assert inside.sum() <= 7 and level.walls[level.size:].all() and level.walls[:, level.size:].all()


def test_named_lpg_levels():
    assert list(LPG_LEVELS) == ["dense", "sparse", "long", "longer", "long_dense"]
    table = {"dense": (11, 500, 4), "sparse": (13, 50, 2), "long": (11, 1000, 4), "longer": (9, 2000, 7), "long_dense": (11, 2000, 4)}
    for name, (size, steps, count) in table.items():
        env, params = envs.make(f"gridworld/{name}")
        _, state = env.reset(jax.random.PRNGKey(0), params)
        assert (int(state.level.size), int(state.level.max_steps), int(state.level.num_objects)) == (size, steps, count)
        assert float(optimal_return(env, state.level)) > 0
    level = lpg_level("dense")
    assert np.asarray(level.reward).tolist() == [1, 1, -1, -1] and np.asarray(level.respawn).tolist() == pytest.approx([0.05, 0.05, 0.1, 0.5])
    with pytest.raises(envs.InvalidEnvSetting):
        envs.make("gridworld/dense", levels="small")
    with pytest.raises(envs.InvalidEnvSetting):
        envs.make("gridworld", levels="huge")
    for bad in ({"min_terminate": 0.0}, {"min_respawn": 0.2}, {"n_walls": -1}, {"levels": "all", "min_size": 2}):
        with pytest.raises(envs.InvalidEnvSetting):
            envs.make("gridworld", **bad)


def test_registry_options():
    env, params = envs.make("gridworld", levels="all", observation="grid", max_steps="200")
    assert (env.grid, env.max_objects, env.observation, params.max_steps) == (10, 5, "grid", 200)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert obs.shape == (10 * 10 * 7,) and 4 <= int(state.level.size) <= 10
    assert jnp.isfinite(obs).all()


def test_delayed_chain_pays_the_first_action_at_the_end():
    env, params = envs.make("chain/short", min_length=4, max_length=4)
    level = env.sample_level(jax.random.PRNGKey(0), params)
    assert int(level.length) == 4 and float(env.optimal_return(level)) == 1.0
    for first, paid in ((int(level.correct), 1.0), (1 - int(level.correct), -1.0)):
        obs, state = env.reset_to_level(jax.random.PRNGKey(1), level)
        seen, rewards = [int(obs.argmax())], []
        for t, action in enumerate((first, 0, 1, 0)):
            obs, state, reward, terminated, truncated, info = env.step(jax.random.PRNGKey(t), state, action)
            rewards.append(float(reward))
            seen.append(int(info["final_observation"].argmax()))
            assert bool(terminated) == (t == 3) and not bool(truncated)
        assert rewards == [0.0, 0.0, 0.0, paid] and int(obs.argmax()) == 0  # restarted
        assert len(set(seen)) == 5  # start, then three steps along the chosen chain, then its end
    long_env, long_params = envs.make("chain/long")
    lengths = jax.vmap(lambda k: long_env.sample_level(k, long_params).length)(jax.random.split(jax.random.PRNGKey(2), 400))
    assert int(lengths.min()) == 5 and int(lengths.max()) == 50


def test_noisy_chain_rewards_are_plus_minus_one_before_the_end():
    env, params = envs.make("chain/short_noisy", min_length=30, max_length=30)
    _, state = env.reset(jax.random.PRNGKey(0), params)
    rewards = []
    for t in range(29):
        _, state, reward, terminated, _, _ = env.step(jax.random.PRNGKey(t), state, 0)
        rewards.append(float(reward))
    assert set(rewards) == {-1.0, 1.0} and not bool(terminated)
