"""Value-based agents: the replay buffer per run, DQN and PQN learning CartPole-v1 with their
defaults, classification losses inside the agents, checkpoint/resume with the replay buffer,
and the error for continuous actions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl
from jaxrl.analysis import stats
from jaxrl.core.contract import ConfigError
from jaxrl.cli import main
from jaxrl.components.replay import Replay
from jaxrl.components.rollout import Transition
from jaxrl.driver.run import load_run


def _transitions(values: jax.Array) -> Transition:
    """A fake rollout [T, num_envs] whose observations carry ``values``."""
    zeros = jnp.zeros_like(values)
    return Transition(
        obs=values[..., None], action=zeros.astype(jnp.int32), reward=values, terminated=zeros.astype(bool),
        truncated=zeros.astype(bool), next_obs=values[..., None] + 0.5, extras={}, episode_done=zeros.astype(bool),
        episode_return=zeros, episode_length=zeros,
    )


def test_replay_sampling_is_per_run_and_independent_across_the_vmapped_axis():
    replay = Replay(num_envs=2, capacity=20, batch_size=256, sequence_length=3)

    def fill_and_sample(run_index, key):
        state = replay.init(jnp.zeros(1), jnp.zeros((), jnp.int32))
        # 15 steps of 2 envs; run r stores 1000 r + 10 t + env, the last 10 steps of each env kept
        values = (1000 * run_index + 10 * jnp.arange(15)[:, None] + jnp.arange(2)).astype(jnp.float32)
        state = replay.add(state, _transitions(values[:8]))
        state = replay.add(state, _transitions(values[8:]))
        return replay.sample(state, key)

    keys = jax.random.split(jax.random.key(0), 3)
    runs = jnp.array([0, 1, 1])  # runs 1 and 2 hold the same data but have their own keys
    batched = jax.jit(jax.vmap(fill_and_sample))(runs, keys)
    obs = np.asarray(batched["obs"][..., 0])  # [run, time, batch]
    assert obs.shape == (3, 3, 256)
    # every sample comes from its own run's data, from the 10 newest steps, in time order
    for run in range(3):
        run_base = 1000 * int(runs[run])
        step = (obs[run] - run_base) // 10
        assert ((step >= 5) & (step <= 14)).all()
        np.testing.assert_array_equal(np.diff(obs[run], axis=0), 10.0)
        np.testing.assert_array_equal(batched["next_obs"][run, ..., 0], obs[run] + 0.5)
    # the same data with different keys gives different draws; each equals the unbatched draw
    assert not np.array_equal(obs[1], obs[2])
    for run in range(3):
        alone = fill_and_sample(runs[run], keys[run])
        np.testing.assert_array_equal(np.asarray(alone["obs"][..., 0]), obs[run])


@pytest.mark.slow
def test_dqn_defaults_solve_cartpole():
    # The IQM over 4 seeds of the mean return over the last 10% of training (50k steps): DQN
    # solves CartPole, and one seed's dip there (one ended at 371 against 495-500) should not
    # decide the test either way.
    result = jaxrl.train("dqn", "CartPole-v1", num_seeds=4)
    assert stats.iqm(result.final_returns) >= 475, result.final_returns


@pytest.mark.slow
def test_pqn_defaults_solve_cartpole():
    # The IQM over 4 seeds: PQN solves CartPole on most seeds, and a single seed that dips in the
    # last 10% of training should not decide the test either way.
    result = jaxrl.train("pqn", "CartPole-v1", num_seeds=4)
    assert stats.iqm(result.final_returns) >= 475, result.final_returns


@pytest.mark.slow
def test_pqn_learns_with_hl_gauss_value_loss():
    # At 3x MSE's learning rate, as in experiments/value_classification. The two seeds end at 499
    # and 396 on the AVX-512 CPU the study ran on and at 310 and 420 on an AVX2 one (floating-point
    # rounding differs between them and RL amplifies it), so the bar is "clearly learns": ten times
    # random play (about 22), not "solves".
    result = jaxrl.train("pqn", "CartPole-v1", num_seeds=2, overrides={"value_loss": "hl_gauss", "lr": 3e-4})
    assert result.final_returns.mean() >= 250, result.final_returns


@pytest.mark.parametrize(
    "algorithm, overrides, min_return",
    [
        ("dqn", {"value_loss": "c51", "num_bins": 21, "v_min": 0.0, "v_max": 100.0, "learning_starts": 2_000}, 40),
        ("dqn", {"value_loss": "two_hot", "double": False, "n_step": 1, "learning_starts": 2_000}, None),
        # Huber runs, but on CartPole it does not learn at DQN's learning rate (experiments/value_based)
        ("dqn", {"value_loss": "huber", "tau": 0.05, "target_update_every": 1, "learning_starts": 2_000}, None),
        ("ppo", {"value_loss": "hl_gauss", "num_bins": 21, "v_min": 0.0, "v_max": 100.0}, 40),
        ("ppo", {"value_loss": "two_hot", "num_bins": 21, "v_min": 0.0, "v_max": 100.0}, 40),
    ],
)
def test_value_loss_switch_in_every_agent(algorithm, overrides, min_return):
    # Short runs (random CartPole play lasts ~22 steps): every path compiles, its losses stay
    # finite, and the classification critics learn something.
    result = jaxrl.train(algorithm, "CartPole-v1", num_seeds=1, overrides={"total_steps": 40_000, **overrides})
    frame = result.dataframe()
    loss = frame["q_loss" if algorithm == "dqn" else "value_loss"].dropna()
    assert len(loss) > 0 and np.isfinite(loss).all()
    if min_return is not None:
        assert result.final_returns.mean() > min_return, result.final_returns


def test_dqn_resumes_from_a_checkpoint_with_its_replay_buffer_bitwise(tmp_path):
    overrides = {"total_steps": 6_000, "learning_starts": 1_000, "buffer_size": 2_000}
    full = jaxrl.train_run("dqn", "CartPole-v1", tmp_path / "run", overrides=overrides, num_seeds=2, checkpoint_every=3_000)
    middle = load_run(tmp_path / "run", step=3_000)
    assert int(np.asarray(middle.state.replay.current_index).max()) > 0  # the buffer was saved with data
    resumed = jaxrl.train(
        "dqn", "CartPole-v1", num_seeds=2, overrides=overrides, state=middle.state,
        start_window=middle.metadata["windows_done"], log_every=middle.metadata["log_every"],
    )
    # Continuing from the checkpoint reaches the uninterrupted run's final state (replay buffer,
    # networks, optimizer, environments, key) bit for bit, and logs the same rows.
    for a, b in zip(jax.tree.leaves(jax.random.key_data(resumed.state.key)), jax.tree.leaves(jax.random.key_data(full.state.key))):
        np.testing.assert_array_equal(a, b)
    same = jax.tree.map(lambda a, b: np.array_equal(np.asarray(a), np.asarray(b)), resumed.state.replay, full.state.replay)
    assert all(jax.tree.leaves(same))
    same = jax.tree.map(lambda a, b: np.array_equal(np.asarray(a), np.asarray(b)), resumed.state.learner, full.state.learner)
    assert all(jax.tree.leaves(same))
    rows = resumed.metrics["q_loss"].shape[1]
    np.testing.assert_array_equal(resumed.metrics["q_loss"], full.metrics["q_loss"][:, -rows:])


def test_value_based_agents_refuse_continuous_actions(tmp_path, capsys):
    with pytest.raises(ConfigError, match="needs discrete actions"):
        jaxrl.train("pqn", "Pendulum-v1")
    assert main(["train", "dqn", "--env", "Pendulum-v1", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "needs discrete actions" in err and len(err.splitlines()) == 1


def test_dqn_sweeps_with_one_compilation_and_matches_a_lone_run():
    small = {"total_steps": 3_000, "learning_starts": 1_000, "buffer_size": 2_000}
    result = jaxrl.sweep("dqn", "CartPole-v1", grid={"lr": [1e-4, 1e-3]}, seeds=2, overrides=small)
    assert result.num_compilations == 1
    alone = jaxrl.train("dqn", "CartPole-v1", num_seeds=2, overrides={**small, "lr": 1e-3})
    swept = result.results[result.results["config_id"] == 1].pivot(index="seed", columns="step", values="q_loss")
    np.testing.assert_array_equal(swept.to_numpy(), alone.metrics["q_loss"])
