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


# --------------------------------------------------------------------------------------------
# Parameters as data, levels, auto-replay, domain randomisation


def test_per_copy_params_tile_one_set_and_keep_per_copy_sets():
    env, params = envs.make("CartPole-v1")
    tiled = envs.per_copy_params(params, env.default_params, 3)
    assert np.shape(tiled.gravity) == (3,)
    assert envs.per_copy_params(tiled, env.default_params, 3) is tiled
    with pytest.raises(ValueError, match="one per copy"):
        envs.per_copy_params(envs.tile_params(params, 2), env.default_params, 3)


def test_params_as_levels_replays_its_level_through_episode_ends():
    env, params = envs.make("CartPole-v1")
    level = params.replace(length=0.9, force_mag=3.0, polemass_length=0.09)
    replay = envs.AutoReplay(envs.ParamsAsLevels(env))
    obs, state = replay.reset_to_level(jax.random.key(0), level, params)
    actions = jax.random.randint(jax.random.key(1), (300,), 0, 2)

    def step(state, inputs):
        key, action = inputs
        obs, new_state, reward, term, trunc, info = replay.step(key, state, action, params)
        # The same transition computed by gymnax with the level's parameters.
        theirs = env._env.step_env(jax.random.key(0), state.env_state.env_state, action, level)[0]
        default = env._env.step_env(jax.random.key(0), state.env_state.env_state, action, params)[0]
        return new_state, (new_state.level.length, term | trunc, info["final_observation"], theirs, default)

    _, (lengths, done, final, theirs, default) = jax.lax.scan(step, state, (jax.random.split(jax.random.key(2), 300), actions))
    assert int(done.sum()) >= 5  # several episodes ended...
    np.testing.assert_array_equal(lengths, np.float32(0.9))  # ...and every one restarted on the level
    np.testing.assert_allclose(final, theirs, rtol=1e-5, atol=1e-6)  # whose dynamics it follows
    assert np.abs(np.asarray(final) - np.asarray(default)).max() > 1e-2


class Corridor(envs.Environment):
    """A test environment with levels: walk right to the goal cell (the level); ``reset`` draws a
    random goal, as a generator of random levels does."""

    def reset(self, key, params=None):
        return self.reset_to_level(key, jax.random.randint(key, (), 1, 10), params)

    def reset_to_level(self, key, level, params=None):
        state = {"position": jnp.zeros((), jnp.int32), "goal": jnp.asarray(level, jnp.int32)}
        return self._obs(state), state

    def sample_level(self, key, params=None):
        return jax.random.randint(key, (), 1, 10)

    def step(self, key, state, action, params=None):
        state = {**state, "position": state["position"] + 1}
        terminated = state["position"] >= state["goal"]
        final = self._obs(state)
        obs, reset = self.reset(key, params)
        state = jax.tree.map(lambda a, b: jnp.where(terminated, a, b), reset, state)
        obs = jnp.where(terminated, obs, final)
        return obs, state, terminated.astype(jnp.float32), terminated, jnp.zeros((), bool), {"final_observation": final}

    @staticmethod
    def _obs(state):
        return jnp.stack([state["position"], state["goal"]]).astype(jnp.float32)


def test_auto_replay_keeps_a_level_that_the_environment_would_replace():
    env = Corridor()

    def goals(wrapped, steps=60):
        obs, state = wrapped.reset_to_level(jax.random.key(0), jnp.int32(3), None)

        def step(state, key):
            obs, state, *_ = wrapped.step(key, state, 0, None)
            return state, obs[1]

        return np.asarray(jax.lax.scan(step, state, jax.random.split(jax.random.key(1), steps))[1])

    assert len(set(goals(env).tolist())) > 1  # the bare environment's auto-reset draws new levels
    np.testing.assert_array_equal(goals(envs.AutoReplay(env)), 3)  # replayed: always level 3


def test_domain_randomisation_draws_every_episode_inside_the_program():
    from jaxrl.core.environments import make_env

    env, params = make_env("CartPole-v1", {"gravity": "uniform:8:12", "length": "choice:0.4,0.6"})
    vec = envs.make_vector(env, 16)
    copies = envs.tile_params(params, 16)
    obs, state = vec.reset(jax.random.key(0), copies)

    def step(state, key):
        actions = jax.random.randint(key, (16,), 0, 2)
        obs, state, reward, term, trunc, info = vec.step(key, state, actions, copies)
        level = state.env_state.level  # EpisodeStatistics -> EpisodeLevels
        return state, (level.gravity, level.length, term | trunc)

    _, (gravity, length, done) = jax.jit(lambda s: jax.lax.scan(step, s, jax.random.split(jax.random.key(1), 200)))(state)
    gravity, length, done = np.asarray(gravity), np.asarray(length), np.asarray(done)
    assert gravity.min() >= 8 and gravity.max() <= 12 and len(np.unique(gravity)) > 20
    np.testing.assert_allclose(np.unique(length), [0.4, 0.6], rtol=1e-6)
    # Within an episode the parameters stay; they change only where an episode ended.
    changed = gravity[1:] != gravity[:-1]
    assert changed.any() and not (changed & ~done[1:]).any()


@pytest.mark.parametrize(
    "env_set, message",
    [
        ("gravty=1", "has no parameter 'gravty' (did you mean gravity?)"),
        ("gravity=fast", "bad value for gravity: expected a number, got 'fast'"),
        ("max_steps_in_episode=2.5", "expected an integer"),
        ("gravity=uniform:5", "expected uniform:LOW:HIGH with two numbers"),
        ("max_steps_in_episode=uniform:100:200", "cannot be drawn from uniform"),
    ],
)
def test_bad_env_settings_exit_2_before_anything_compiles(env_set, message, tmp_path, capsys):
    from jaxrl.cli import main
    from jaxrl.core.train import trace_count

    traces = trace_count()
    assert main(["train", "ppo", "--env", "CartPole-v1", "--env-set", env_set, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert trace_count() == traces and not (tmp_path / "run").exists()


def test_bad_brax_backend_exits_2(tmp_path, capsys):
    from jaxrl.cli import main

    assert main(["train", "sac", "--env", "brax/inverted_pendulum", "--env-set", "backend=bogus", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown brax backend 'bogus'" in err and len(err.splitlines()) == 1
