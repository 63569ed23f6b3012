"""SFL as published (jaxrl.curricula.sfl): learnability from a long sampled-action rollout on
hand-made levels with known success probabilities, ties broken at random, and every scoring step
counted where it happens, also when refreshes do not divide the updates."""

import jax
import jax.numpy as jnp
import numpy as np

import envs
import jaxrl
from envs.maze import FORWARD, TURN_LEFT, Maze, MazeParams, from_text, stack_levels
from jaxrl.curricula import sfl
from jaxrl.curricula.curriculum import CurriculumConfig

# The goal right in front of the agent (facing east): a forward step reaches it.
AHEAD = "\n".join(["#####", "#>G.#", "#####"])
WALLED = "\n".join(["#####", "#>#G#", "#####"])  # the goal behind a wall: never reached


def _coin_policy(q, obs, key, deterministic, memory=None):
    """Forward with probability q (the policy's 'parameters'), else turn left."""
    return jnp.where(jax.random.uniform(key, obs.shape[:1]) < q, FORWARD, TURN_LEFT)


def test_learnability_of_hand_made_levels_with_known_success_probabilities():
    """One-step episodes: on AHEAD the episode succeeds exactly when the policy steps forward,
    so p = q and learnability q (1 - q); on WALLED p = 0. 1,600 sampled episodes a level."""
    env = envs.AutoReplay(Maze(3, 5))
    levels = stack_levels([from_text(AHEAD, 3, 5), from_text(WALLED, 3, 5)])
    play = jax.jit(sfl.success_counts(env, _coin_policy, None, 2, 1600))
    params = MazeParams(max_steps_in_episode=1)
    for q, key in ((0.5, 0), (0.9, 1)):
        episodes, successes = play(jnp.float32(q), levels, params, jax.random.key(key))
        np.testing.assert_array_equal(episodes, [1600, 1600])  # every step ends a one-step episode
        score = np.asarray(sfl.learnability_from_counts(episodes, successes))
        p = successes[0] / 1600
        assert abs(p - q) < 4 * np.sqrt(q * (1 - q) / 1600), (p, q)
        assert abs(score[0] - q * (1 - q)) < 0.01 and score[1] == 0.0, score
    # longer episodes: two steps to decide (forward first, or a wasted turn), p = q still
    episodes, successes = play(jnp.float32(0.5), levels, MazeParams(max_steps_in_episode=2), jax.random.key(2))
    assert 800 <= episodes[0] and episodes[1] == 800
    assert abs(float(sfl.learnability_from_counts(episodes, successes)[0]) - 0.25) < 0.01


def test_a_level_without_a_finished_episode_scores_zero():
    np.testing.assert_allclose(sfl.learnability_from_counts(jnp.array([0, 4, 4, 10]), jnp.array([0, 2, 4, 1])),
                               [0.0, 0.25, 0.0, 0.09], rtol=1e-6)


def test_top_levels_keep_the_best_and_break_ties_at_random():
    scores = jnp.zeros(100).at[jnp.array([7, 42])].set(jnp.array([0.2, 0.25]))
    picks = [np.asarray(sfl.top_levels(jax.random.key(k), scores, 5)[1]) for k in range(6)]
    for chosen in picks:
        assert chosen[0] == 42 and chosen[1] == 7 and len(set(chosen)) == 5
    tied = {tuple(sorted(chosen[2:])) for chosen in picks}
    assert len(tied) > 1  # the tied zeros differ between keys
    assert not all(set(chosen[2:]) <= {0, 1, 2, 3, 4} for chosen in picks)  # not the lowest indices


def test_every_scoring_step_is_counted_where_it_happens_with_uneven_refreshes():
    """Refreshes at updates 0, 3 and 6 of 7: the step count at each logged update is its rollouts
    plus the refreshes run so far, and those are the refreshes the program actually ran."""
    overrides = {"num_envs": 8, "num_steps": 32, "memory_size": 8, "hidden_sizes": "16", "sfl_levels": 16,
                 "sfl_batch": 8, "sfl_rollout": 32, "sfl_buffer": 4, "sfl_refresh": 3, "total_steps": 3400}
    train = jaxrl.make_train("sfl", "maze", overrides=overrides, env_overrides={"n_walls": "10"}, log_every=1)
    batch, scoring = 8 * 32, 16 * 32
    assert train.num_updates == 7  # 8 updates would take 8 x 256 + 3 x 512 = 3584 > 3400
    state = jax.jit(train.init)(jax.random.key(0), train.default_hparams)
    update = jax.jit(train.agent.update)
    refreshed = []
    for step in range(train.num_updates):
        before = state.buffer.last_seen
        state, _ = update(state, train.default_hparams, jnp.int32(step))
        if step == 0 or not np.array_equal(before, state.buffer.last_seen):
            refreshed.append(step)
    assert refreshed == [0, 3, 6]
    expected = [n * batch + sum(r < n for r in refreshed) * scoring for n in range(1, 8)]
    np.testing.assert_array_equal(train.log_steps(), expected)
    assert train.total_env_steps == expected[-1] == 7 * batch + 3 * scoring <= 3400


def test_plain_curricula_count_whole_updates_when_the_budget_does_not_divide():
    for name in ("dr", "plr", "robust-plr", "accel"):
        train = jaxrl.make_train(name, "maze", overrides={"num_envs": 8, "num_steps": 32, "memory_size": 8,
                                                          "hidden_sizes": "16", "buffer_size": 16, "total_steps": 1000})
        assert train.num_updates == 3 and train.total_env_steps == 768, name  # 1000 // 256 updates


def test_sfl_defaults_are_the_reference_settings_and_too_small_a_budget_is_refused(capsys):
    config = CurriculumConfig(curriculum="sfl")
    assert (config.sfl_levels, config.sfl_batch, config.sfl_rollout, config.sfl_buffer, config.sfl_refresh,
            config.sfl_ratio) == (25_000, 5_000, 2_000, 1_000, 100, 0.5)
    from jaxrl.cli import main

    assert main(["ued", "sfl", "--env", "maze", "--total-steps", "2000000", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "below SFL's first update of 50,008,192 steps" in err, err
