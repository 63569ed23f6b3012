"""PPO: learning thresholds, determinism, traced hyperparameters."""

import dataclasses

import jax
import numpy as np
import pytest

import jaxrl
from jaxrl.core import train as core_train
from jaxrl.core.contract import Algorithm, ConfigError
from jaxrl.algorithms.ppo import PPO


@pytest.mark.slow
def test_ppo_solves_cartpole_with_standard_configuration():
    result = jaxrl.train("ppo", "CartPole-v1", num_seeds=4, seed=0)
    assert result.config.total_steps == 500_000 and result.config.num_envs == 4
    assert result.steps[-1] <= 500_000
    final = result.final_returns
    assert final.mean() >= 475, final


@pytest.mark.slow
def test_continuous_ppo_learns_pendulum():
    # Random policies score about -1200 on Pendulum-v1; the defaults reach about -200 by 100k steps.
    result = jaxrl.train("ppo", "Pendulum-v1", num_seeds=4, overrides={"total_steps": 100_000})
    returns = result.metrics["episode_return"]
    first = returns[:, np.isfinite(returns).all(axis=0).argmax()]  # first window where all seeds had an episode end
    assert first.mean() < -900, first
    assert result.final_returns.mean() >= -400, result.final_returns


def test_same_seed_is_bitwise_identical():
    kwargs = dict(num_seeds=2, overrides={"total_steps": 8192}, seed=3)
    a = jaxrl.train("ppo", "CartPole-v1", **kwargs)
    b = jaxrl.train("ppo", "CartPole-v1", **kwargs)
    assert a.metrics.keys() == b.metrics.keys()
    for name in a.metrics:
        np.testing.assert_array_equal(a.metrics[name], b.metrics[name])
    c = jaxrl.train("ppo", "CartPole-v1", **{**kwargs, "seed": 4})
    assert not np.array_equal(a.metrics["value_loss"], c.metrics["value_loss"])


def test_seeds_differ_and_seed_index_is_stable():
    two = jaxrl.train("ppo", "CartPole-v1", num_seeds=2, overrides={"total_steps": 4096})
    one = jaxrl.train("ppo", "CartPole-v1", num_seeds=1, overrides={"total_steps": 4096})
    assert not np.array_equal(two.metrics["value_loss"][0], two.metrics["value_loss"][1])
    np.testing.assert_allclose(two.metrics["value_loss"][0], one.metrics["value_loss"][0], rtol=1e-5)


def test_changing_continuous_hyperparameters_does_not_recompile():
    overrides = {"total_steps": 4096}
    a = jaxrl.train("ppo", "CartPole-v1", overrides={**overrides, "lr": 1e-3})
    before = core_train.trace_count()
    b = jaxrl.train("ppo", "CartPole-v1", overrides={**overrides, "lr": 3e-4, "ent_coef": 0.0, "gamma": 0.9})
    assert core_train.trace_count() == before
    assert not np.array_equal(a.metrics["policy_loss"], b.metrics["policy_loss"])
    # A structural change (the number of envs) does compile anew.
    jaxrl.train("ppo", "CartPole-v1", overrides={**overrides, "num_envs": 8})
    assert core_train.trace_count() > before


def test_hyperparameter_leaves_may_be_arrays():
    # An array-valued hyperparameter leaf goes through the runner traced, like learned weights.
    hparams = dataclasses.replace(PPO.defaults("CartPole-v1", True)[1]).replace(lr=np.float32(5e-4))
    result = jaxrl.train("ppo", "CartPole-v1", hparams=hparams, overrides={"total_steps": 2048})
    np.testing.assert_allclose(result.metrics["lr"][0, 0], 5e-4, rtol=1e-6)


def test_trained_policy_acts():
    result = jaxrl.train("ppo", "Pendulum-v1", overrides={"total_steps": 2048})
    act = result.policy(0)
    obs = np.zeros((5, 3), np.float32)
    action = act(obs, jax.random.key(0), True)
    assert action.shape == (5, 1)
    discrete = jaxrl.train("ppo", "CartPole-v1", overrides={"total_steps": 2048}).policy(0)
    assert discrete(np.zeros((5, 4), np.float32), jax.random.key(0), True).shape == (5,)


def test_discrete_only_algorithm_rejects_continuous_env():
    discrete_only = Algorithm(**{**{f.name: getattr(PPO, f.name) for f in dataclasses.fields(PPO)}, "name": "ppo-discrete", "continuous": False})
    with pytest.raises(ConfigError, match="needs discrete actions"):
        core_train.resolve(discrete_only, "Pendulum-v1")


def test_ppo_uses_cnn_torso_on_minatar():
    result = jaxrl.train("ppo", "Breakout-MinAtar", overrides={"total_steps": 2048})
    params = result.state.params["actor"]["params"]["torso"]
    assert "Conv_0" in params and params["Conv_0"]["kernel"].shape[-1] == 16
    assert np.isfinite(result.metrics["policy_loss"]).all()
