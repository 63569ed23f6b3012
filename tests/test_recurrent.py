"""Recurrent PPO (memory=gru): the memory is carried through the rollout and zeroed at episode
ends, learning replays whole per-environment sequences, act carries the memory, and a recurrent
policy solves a memory task that a feed-forward one cannot."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl
from jaxrl.components.rollout import EnvCarry, reset_memory, rollout
from jaxrl.core.contract import ConfigError

MEMORY_CHAIN = {"num_envs": 16, "num_steps": 64, "num_minibatches": 4, "lr": 1e-3, "anneal_lr": False, "memory_size": 32}


def test_rollout_zeroes_memory_exactly_where_an_episode_ended():
    import envs

    env, params = envs.make("CartPole-v1")
    vec = envs.make_vector(env, 4)
    obs, state = vec.reset(jax.random.key(0), envs.tile_params(params, 4))

    def policy(key, obs, memory):  # counts steps since the episode began
        return jnp.zeros(obs.shape[0], jnp.int32), {"memory_seen": memory}, memory + 1.0

    carry = EnvCarry(state, obs, envs.tile_params(params, 4), jnp.zeros((4, 1)))
    carry, traj = rollout(vec, policy, carry, jax.random.key(1), 60)
    seen = np.asarray(traj.extras["memory_seen"][..., 0])
    done = np.asarray(traj.done)
    for env_index in range(4):
        expected, count = [], 0.0
        for t in range(60):
            expected.append(count)
            count = 0.0 if done[t, env_index] else count + 1.0
        np.testing.assert_array_equal(seen[:, env_index], expected)
    assert done.any()  # always-left CartPole episodes end within 60 steps
    np.testing.assert_array_equal(reset_memory(jnp.ones((3, 2)), jnp.array([True, False, True])), [[0, 0], [1, 1], [0, 0]])


def test_recurrent_act_carries_memory_and_feed_forward_act_is_unchanged():
    train = jaxrl.make_train("ppo", "CartPole-v1", total_steps=2048, overrides={"memory": "gru", "memory_size": 8})
    state = jax.jit(train.init)(jax.random.key(0), train.default_hparams)
    params = train.policy_params(state)
    memory = train.initial_memory(2)
    assert memory.shape == (2, 8)
    obs = jnp.ones((2, 4))
    _, memory1 = train.act(params, obs, jax.random.key(1), True, memory)
    _, memory2 = train.act(params, obs, jax.random.key(1), True, memory1)
    assert not np.allclose(memory1, memory2)  # the state moves with each step
    with pytest.raises(ValueError, match="needs its memory"):
        train.agent.act(params, obs, jax.random.key(1), True)
    plain = jaxrl.make_train("ppo", "CartPole-v1", total_steps=2048)
    assert plain.initial_memory is None
    assert plain.act(plain.policy_params(jax.jit(plain.init)(jax.random.key(0), plain.default_hparams)), obs, jax.random.key(1), True).shape == (2,)


def test_recurrent_policy_solves_memory_chain_that_feed_forward_cannot():
    """bsuite's MemoryChain (length 5): the context bit is shown only at the first step and the
    reward (+1 right, -1 wrong) only at the last; a feed-forward policy is at chance (mean 0)."""
    finals = {}
    for memory in ("gru", "none"):
        train = jaxrl.make_train("ppo", "MemoryChain-bsuite", total_steps=16 * 64 * 40, overrides={**MEMORY_CHAIN, "memory": memory})
        keys = jax.random.split(jax.random.key(0), 2)
        _, metrics = jax.jit(jax.vmap(train, in_axes=(0, None)))(keys, train.default_hparams)
        finals[memory] = np.asarray(metrics["episode_return"][:, -5:]).mean(axis=1)
    assert (finals["gru"] > 0.9).all(), finals
    assert (np.abs(finals["none"]) < 0.35).all(), finals


def test_recurrent_settings_are_checked():
    with pytest.raises(ConfigError, match="must divide num_envs"):
        jaxrl.make_train("ppo", "CartPole-v1", overrides={"memory": "gru", "num_envs": 6, "num_minibatches": 4})
    with pytest.raises(ConfigError, match="memory must be none, gru or lstm"):
        jaxrl.make_train("ppo", "CartPole-v1", overrides={"memory": "transformer"})
    with pytest.raises(ConfigError, match="head_sizes is for recurrent agents"):
        jaxrl.make_train("ppo", "CartPole-v1", overrides={"head_sizes": "32"})
