"""Environment adapters, registry and wrappers."""

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs


def _random_actions(space, key, n):
    return jax.vmap(space.sample)(jax.random.split(key, n))


@pytest.mark.parametrize("name", ["CartPole-v1", "Pendulum-v1", "Acrobot-v1", "Breakout-MinAtar"])
def test_gymnax_adapter_matches_gymnax(name):
    ours, params = envs.make(name)
    theirs, their_params = gymnax.make(name)
    steps = 300
    actions = _random_actions(theirs.action_space(their_params), jax.random.key(3), steps)
    keys = jax.random.split(jax.random.key(4), steps)

    def run(env, p):
        obs, state = env.reset(jax.random.key(5), p)

        def step(state, inputs):
            key, action = inputs
            obs, state, reward, term, trunc, info = env.step(key, state, action, p)
            return state, (obs, reward, term, trunc, info["final_observation"])

        return jax.lax.scan(step, state, (keys, actions))[1]

    a, b = jax.jit(lambda: run(ours, params))(), jax.jit(lambda: run(theirs, their_params))()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y).astype(np.asarray(x).dtype))
    assert a[0].dtype == jnp.float32


def test_brax_adapter_matches_brax():
    env, params = envs.make("brax/inverted_pendulum", backend="spring", episode_length=30)
    raw = env.brax_env
    key = jax.random.key(0)
    actions = jax.random.uniform(jax.random.key(1), (40, 1), minval=-1, maxval=1)
    obs, state = env.reset(key, params)
    raw_state = raw.reset(key)
    np.testing.assert_array_equal(obs, raw_state.obs)
    step = jax.jit(env.step)
    raw_step = jax.jit(raw.step)
    for t in range(40):
        obs, state, reward, term, trunc, info = step(jax.random.key(100 + t), state, actions[t], params)
        raw_state = raw_step(raw_state, actions[t])
        np.testing.assert_array_equal(info["final_observation"], raw_state.obs)
        np.testing.assert_array_equal(reward, raw_state.reward)
        assert bool(term) == bool(raw_state.done > 0.5)
        if bool(term) or bool(trunc):
            assert bool(term) or t + 1 == 30  # truncation exactly at the episode limit
            break
    else:
        pytest.fail("episode never ended")


def test_unknown_name_lists_close_names():
    with pytest.raises(envs.UnknownEnvironmentError, match="did you mean CartPole-v1"):
        envs.make("Cartpole-v1")
    with pytest.raises(ValueError, match="no parameter"):
        envs.make("CartPole-v1", not_a_param=3)
    with pytest.raises(ValueError, match="backend"):
        envs.make("brax/hopper", backend="warp")


def test_registry_covers_gymnax_and_brax():
    names = envs.list_envs()
    for name in ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1", "MountainCarContinuous-v0", "Breakout-MinAtar"]:
        assert name in names
        envs.make(name)
    assert "brax/hopper" in names and "brax/inverted_pendulum" in names
    _, p = envs.make("CartPole-v1", max_steps_in_episode=50)
    assert p.max_steps_in_episode == 50


def test_episode_statistics():
    env, params = envs.make("CartPole-v1", max_steps_in_episode=7)
    wrapped = envs.EpisodeStatistics(env)
    obs, state = wrapped.reset(jax.random.key(0), params)
    total, ended = 0.0, []
    for t in range(20):
        obs, state, r, term, trunc, info = wrapped.step(jax.random.key(t), state, 0, params)
        total += float(r)
        if bool(info["episode_done"]):
            ended.append((float(info["episode_return"]), int(info["episode_length"])))
            total = 0.0
        else:
            assert float(info["episode_return"]) == 0.0
    assert ended and all(ret == length for ret, length in ended)  # CartPole: reward 1 per step


def test_rescale_action_maps_unit_box():
    env, params = envs.make("Pendulum-v1")  # torque in [-2, 2]
    wrapped = envs.RescaleAction(env)
    np.testing.assert_allclose(wrapped.to_env_action(jnp.array([-1.0, 0.0, 0.5, 3.0])), [-2.0, 0.0, 1.0, 2.0])
    assert float(wrapped.action_space(params).high) == 1.0


def test_running_mean_std_matches_numpy():
    data = jax.random.normal(jax.random.key(0), (5, 16, 3)) * 3.0 + 1.0
    stats = envs.RunningMeanStd.zeros((3,))
    for batch in data:
        stats = stats.update(batch)
    flat = np.asarray(data).reshape(-1, 3)
    np.testing.assert_allclose(stats.mean, flat.mean(0), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(stats.var, flat.var(0), rtol=1e-3)


def test_normalisers_keep_statistics_in_state_and_normalise_final_obs():
    env, params = envs.make("Pendulum-v1")
    vec = envs.make_vector(env, 4, normalize_obs=True, normalize_reward=True)
    params = envs.tile_params(params, 4)  # a vectorised env takes one set of parameters per copy
    obs, state = vec.reset(jax.random.key(0), params)
    step = jax.jit(vec.step)
    for t in range(50):
        obs, state, r, term, trunc, info = step(jax.random.key(t), state, jnp.zeros((4, 1)), params)
    stats = envs.find_observation_stats(state)
    assert stats is not None and float(stats.count) > 200
    # final_observation is normalised with the same statistics as obs (no episode ended: equal)
    np.testing.assert_allclose(info["final_observation"], obs)
    assert np.abs(np.asarray(obs)).max() <= 10.0


def test_flatten_observation():
    env, params = envs.make("Breakout-MinAtar")
    flat = envs.FlattenObservation(env)
    obs, state = flat.reset(jax.random.key(0), params)
    assert obs.shape == (400,) and flat.observation_space(params).shape == (400,)
    obs, *_rest, info = flat.step(jax.random.key(1), state, 0, params)
    assert obs.shape == (400,) and info["final_observation"].shape == (400,)
