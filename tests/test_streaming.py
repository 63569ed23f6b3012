"""The streaming agents (stream-q, stream-sarsa, stream-ac): each learns CartPole in a short run,
their traces end at episode ends and (Q(lambda) only) after exploratory actions, a learner
vmapped equals it alone bit for bit, and they run through the kit's CLI: checkpoints, exact
resume, evaluation, ``load_policy``, sweeps and one-line errors. The components themselves are
tested in ``test_streaming_components.py``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl
from jaxrl.analysis import stats
from jaxrl.cli import main
from jaxrl.core.train import make_train
from jaxrl.driver.run import load_run
from tests.trees import assert_trees_equal


def _one_step(algorithm, env_overrides=None, **hparams):
    """Sixteen learners (vmapped seeds) after exactly one environment step and its update."""
    train = make_train(algorithm, "CartPole-v1", total_steps=1, overrides={"num_steps": 1}, env_overrides=env_overrides)
    keys = jax.random.split(jax.random.key(3), 16)
    state, metrics = jax.jit(jax.vmap(train, in_axes=(0, None)))(keys, train.default_hparams.replace(**hparams))
    return state, metrics


def _traces_zero(opt_state):
    """[learners] True where every trace of a learner is zero."""
    return np.all(np.stack([np.all(np.asarray(z).reshape(z.shape[0], -1) == 0, axis=1) for z in jax.tree.leaves(opt_state)]), axis=0)


@pytest.mark.parametrize("algorithm", ["stream-q", "stream-sarsa", "stream-ac"])
def test_every_agent_learns_cartpole(algorithm):
    # Random play lasts about 22 steps; each agent balances for far longer after 40k steps (the
    # paper runs 500k). The IQM over 3 seeds of the return in the last 10% of training.
    result = jaxrl.train(algorithm, "CartPole-v1", num_seeds=3, overrides={"total_steps": 40_000})
    assert stats.iqm(result.final_returns) >= 150, result.final_returns


def test_q_lambda_traces_end_after_exploratory_actions_and_sarsa_traces_do_not():
    # epsilon 1: every action is random; with two actions about half differ from the greedy one.
    state, metrics = _one_step("stream-q", eps_start=1.0, eps_end=1.0)
    exploratory = np.asarray(metrics["exploratory"])[:, 0] == 1.0
    assert 0 < exploratory.sum() < 16
    np.testing.assert_array_equal(_traces_zero(state.opt_state), exploratory)
    # epsilon 0: greedy actions, the traces live on
    state, metrics = _one_step("stream-q", eps_start=0.0, eps_end=0.0)
    assert not np.asarray(metrics["exploratory"]).any() and not _traces_zero(state.opt_state).any()
    # SARSA(lambda) follows its exploratory actions: its traces survive them
    state, metrics = _one_step("stream-sarsa", eps_start=1.0, eps_end=1.0)
    assert np.asarray(metrics["exploratory"]).any() and not _traces_zero(state.opt_state).any()


@pytest.mark.parametrize("algorithm", ["stream-q", "stream-sarsa", "stream-ac"])
def test_traces_end_with_the_episode(algorithm):
    # One-step episodes: every step truncates, and every learner's traces are zero after it;
    # with the usual 500 they are not.
    greedy = {} if algorithm == "stream-ac" else {"eps_start": 0.0, "eps_end": 0.0}
    state, metrics = _one_step(algorithm, env_overrides={"max_steps_in_episode": 1}, **greedy)
    assert np.asarray(metrics["episode_count"]).min() == 1
    assert _traces_zero(state.opt_state).all()
    state, _ = _one_step(algorithm, **greedy)
    assert not _traces_zero(state.opt_state).any()


@pytest.mark.parametrize("algorithm, env", [("stream-q", "CartPole-v1"), ("stream-sarsa", "CartPole-v1"),
                                            ("stream-ac", "MountainCarContinuous-v0")])
def test_vmapped_learners_equal_each_learner_run_alone_bit_for_bit(algorithm, env):
    train = make_train(algorithm, env, total_steps=2_000, overrides={"num_steps": 100})
    keys = jax.random.split(jax.random.key(1), 3)
    population, population_metrics = jax.jit(jax.vmap(train, in_axes=(0, None)))(keys, train.default_hparams)
    for i in range(3):
        alone, metrics = jax.jit(train)(keys[i], train.default_hparams)
        assert_trees_equal(jax.tree.map(lambda x: x[i], (population, population_metrics)), (alone, metrics))


def test_time_feature_and_normaliser_travel_with_the_policy(tmp_path):
    run = tmp_path / "run"
    argv = ["train", "stream-ac", "--env", "CartPole-v1", "--seeds", "2", "--set", "total_steps=2000",
            "--set", "num_steps=500", "--out", str(run)]
    assert main(argv) == 0
    params = load_run(run).policy_params(1)
    # the statistics saw every observation: each step's, and each reset's
    assert int(params["obs_stats"].count) > 2_000
    assert float(params["time_limit"]) == 500
    act = jaxrl.load_policy(run, seed_index=1)
    memory = act.initial_memory(4)
    obs = jnp.zeros((4, 4))
    action, memory = act(obs, jax.random.key(0), memory)
    assert action.shape == (4,) and np.array_equal(np.asarray(memory), np.ones(4))
    assert main(["eval", str(run), "--episodes", "3"]) == 0


def test_cli_resume_is_exact(tmp_path):
    argv = ["train", "stream-q", "--env", "CartPole-v1", "--seeds", "2", "--set", "total_steps=3000",
            "--set", "num_steps=500", "--checkpoint-every", "1000"]
    assert main(argv + ["--out", str(tmp_path / "full")]) == 0
    full = load_run(tmp_path / "full")
    steps = sorted(int(p.name) for p in (tmp_path / "full" / "checkpoints").iterdir() if p.name.isdigit())
    assert len(steps) >= 2
    middle = load_run(tmp_path / "full", step=steps[0])
    resumed = jaxrl.train("stream-q", "CartPole-v1", num_seeds=2, overrides={"total_steps": 3000, "num_steps": 500},
                          state=middle.state, start_window=middle.metadata["windows_done"], log_every=middle.metadata["log_every"])
    assert_trees_equal(resumed.state, full.state)


def test_sweep_over_kappa_is_one_program(tmp_path):
    result = jaxrl.sweep("stream-q", "CartPole-v1", grid={"kappa": [0.0, 2.0], "lr": [0.01, 1.0]}, seeds=2,
                         overrides={"total_steps": 2000, "num_steps": 500})
    assert result.final_returns.shape == (4, 2) and result.num_compilations == 1


@pytest.mark.parametrize("argv, message", [
    (["train", "stream-q", "--env", "Pendulum-v1"], "discrete"),
    (["train", "stream-ac", "--env", "CartPole-v1", "--set", "sparsity=1.5"], "sparsity"),
    (["train", "stream-q", "--env", "CartPole-v1", "--set", "kappa=-1"], "kappa"),
    (["train", "stream-q", "--env", "Breakout-MinAtar", "--set", "time_feature=true"], "time_feature"),
])
def test_bad_settings_are_one_line_errors(argv, message, capsys, tmp_path):
    assert main(argv + ["--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
