"""Curricula as algorithms: every one runs vmapped over seeds and resumes exactly from a
checkpoint (level buffer included); the branch schedule; auto-replay really replays the chosen
level; Robust PLR does not learn on new levels; the level interface works on a second
environment (CartPole whose pole length is the level); bad input is one line and exit 2."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl
from jaxrl.cli import main
from jaxrl.curricula.curriculum import MUTATE, NEW, REPLAY, CurriculumConfig, schedule
from jaxrl.driver.run import load_run

CARTPOLE = {"length": "uniform:0.2:1.5"}
SMALL = {"num_envs": 8, "num_steps": 32, "buffer_size": 16, "memory_size": 8, "hidden_sizes": "16",
         "min_fill": 0.5, "replay_prob": 0.5, "sfl_levels": 16, "sfl_batch": 8, "sfl_rollout": 32, "sfl_buffer": 4,
         "sfl_refresh": 2}


def _same(a, b):
    return all(bool(jnp.array_equal(x, y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_schedule_fills_the_buffer_first_and_accel_mutates_after_every_replay():
    config = CurriculumConfig(curriculum="accel", num_envs=8, buffer_size=64, min_fill=0.5, replay_prob=0.5)
    kinds = schedule(config, 400)
    assert (kinds[:4] == NEW).all()  # 0.5 x 64 levels / 8 envs = 4 updates of new levels first
    after_replay = kinds[1:][kinds[:-1] == REPLAY]
    assert (after_replay == MUTATE).all() and (kinds[1:][kinds[:-1] != REPLAY] != MUTATE).all()
    plr = schedule(CurriculumConfig(curriculum="plr", num_envs=8, buffer_size=64, replay_prob=0.8), 2000)
    assert abs((plr[4:] == REPLAY).mean() - 0.8) < 0.03 and not (plr == MUTATE).any()
    assert (schedule(CurriculumConfig(curriculum="dr"), 50) == NEW).all()


@pytest.mark.parametrize("curriculum", ["dr", "plr", "robust-plr", "sfl"])
def test_curricula_run_vmapped_and_resume_exactly(tmp_path, curriculum):
    # 8 updates; SFL's also score 16 levels x 32 steps at updates 0, 2, 4 and 6 (on average 512 a step)
    overrides = {**SMALL, "total_steps": 8 * 32 * 8 * (2 if curriculum == "sfl" else 1)}
    steps = 8 * 32 * (2 if curriculum == "sfl" else 1)
    full = jaxrl.train_run(curriculum, "CartPole-v1", tmp_path / "run", overrides=overrides, env_overrides=CARTPOLE,
                           num_seeds=2, checkpoint_every=4 * steps, log_every=1)
    assert full.train.steps_per_update == steps and full.metrics["episode_return"].shape == (2, 8)
    middle = load_run(tmp_path / "run", step=4 * steps)
    resumed = jaxrl.train(curriculum, "CartPole-v1", num_seeds=2, overrides=overrides, env_overrides=CARTPOLE,
                          state=middle.state, start_window=middle.metadata["windows_done"], log_every=1)
    assert _same(resumed.state, full.state)
    if curriculum != "dr":
        assert int(full.state.buffer.filled[0].sum()) == (4 if curriculum == "sfl" else 16)
    assert not _same(jax.tree.map(lambda x: x[0], full.state.agent.params), jax.tree.map(lambda x: x[1], full.state.agent.params))


def test_auto_replay_keeps_each_env_on_its_level_and_robust_plr_learns_only_on_replays():
    train = jaxrl.make_train("robust-plr", "CartPole-v1", overrides={**SMALL, "num_steps": 96, "total_steps": 8 * 96 * 12},
                             env_overrides=CARTPOLE)
    kinds = schedule(train.config, train.num_updates)
    state = jax.jit(train.init)(jax.random.key(0), train.default_hparams)
    update = jax.jit(train.agent.update)
    episodes = 0.0
    for step in range(train.num_updates):
        before = state
        state, metrics = update(state, train.default_hparams, jnp.int32(step))
        assert _same(state.agent.params, before.agent.params) == (kinds[step] == NEW), step
        # every env still plays the level it was restarted on, over all the episodes that ended
        playing = state.agent.env.env_state.env_state.level.length
        episodes += float(metrics["episode_count"])
        if kinds[step] == REPLAY:
            replayed = np.asarray(state.parents.length)
            np.testing.assert_array_equal(np.asarray(playing), replayed)
            assert np.isin(replayed, np.asarray(before.buffer.levels.length)).all()
    assert (kinds == REPLAY).any() and (kinds == NEW).any()
    assert episodes > 8 * train.num_updates  # episodes ended inside rollouts, and were replayed


@pytest.mark.parametrize("argv, message", [
    (["ued", "nope"], "unknown curriculum 'nope'"),
    (["ued", "paired"], "paired needs the maze"),
    (["ued", "plr", "--set", "replay_prob=1.5"], "replay_prob must be in [0, 1]"),
    (["ued", "plr", "--set", "temperature=0"], "temperature must be positive"),
    (["ued", "plr", "--set", "score=regret"], "unknown score 'regret'"),
    (["train", "plr", "--set", "curriculum=dr"], "use `jaxrl ued dr`"),
    (["ued", "plr", "--set", "eval_random=8"], "eval_random needs eval_every > 0"),
    (["ued", "plr", "--set", "eval_every=2", "--set", "eval_random=8"], "eval_random needs a level solver"),
    (["ued", "plr", "--set", "eval_every=2"], "eval_every needs holdout levels or eval_random"),
])
def test_bad_curriculum_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    out = tmp_path / "r"
    assert main([*argv, "--env", "CartPole-v1", "--env-set", "length=uniform:0.2:1.5", "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


def test_an_environment_without_levels_is_refused(capsys):
    assert main(["ued", "plr", "--env", "CartPole-v1", "--quiet"]) == 2
    assert "has no levels" in capsys.readouterr().err
