"""MuJoCo Playground's DM Control Suite (envs/playground_adapter.py): the adapter against
Playground's own environment and episode wrapper for the same keys and actions, the flags, the
listed names against the installed package, and the one-line errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs import suites
from jaxrl.cli import main
from trees import assert_trees_equal as _equal

pytest.importorskip("mujoco_playground")

COPIES, STEPS = 4, 40
NAME = "playground/CartpoleBalance"
_WRAPPER_INFO = ("steps", "truncation", "episode_done", "episode_metrics")  # brax's EpisodeWrapper's


def _without_wrapper(state):
    """Playground's State without what the episode wrapper adds to its ``info``."""
    return state.replace(info={k: v for k, v in state.info.items() if k not in _WRAPPER_INFO})


@pytest.fixture(scope="module")
def cartpole():
    """The adapter's CartpoleBalance with its vmapped reset and step compiled once: the tests
    give it their episode limits as data (the params are arguments, not constants)."""
    env, params = envs.make(NAME)
    return (env, params, jax.jit(jax.vmap(env.reset, in_axes=(0, None))),
            jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None))))


def _native(env, params):
    """Playground's own: the environment in brax's EpisodeWrapper (the episode limit and action
    repeat Playground's training applies), with the auto-reset of the kit's protocol (a fresh
    ``reset`` from the step's key where ``done``) written around it."""
    from brax.envs.wrappers.training import EpisodeWrapper

    wrapped = EpisodeWrapper(env.playground_env, params.episode_length, params.action_repeat)

    def step(key, state, action):
        stepped = wrapped.step(state, action)
        fresh = wrapped.reset(key)
        done = stepped.done > 0
        pick = lambda a, b: jax.tree.map(lambda x, y: jnp.where(done, x, y), a, b)  # noqa: E731
        return pick(fresh.obs, stepped.obs), pick(fresh, stepped), stepped.reward, done, stepped.obs

    return wrapped, step


@pytest.mark.parametrize("episode_length, action_repeat", [(12, 1), (9, 2)])
def test_matches_playground_with_its_episode_wrapper(cartpole, episode_length, action_repeat):
    env, params, reset, step = cartpole
    params = params.replace(episode_length=episode_length, action_repeat=action_repeat)
    wrapped, native = _native(env, params)
    keys = jax.random.split(jax.random.key(1), COPIES)
    obs, state = reset(keys, params)
    n_state = jax.jit(jax.vmap(wrapped.reset))(keys)
    np.testing.assert_array_equal(obs, n_state.obs)
    _equal(state.env_state, _without_wrapper(n_state))

    native = jax.jit(jax.vmap(native))
    key = jax.random.key(0)
    truncations = 0
    for _ in range(STEPS):
        key, action_key, step_key = jax.random.split(key, 3)
        actions = jax.random.uniform(action_key, (COPIES, env.num_actions), minval=-1, maxval=1)
        keys = jax.random.split(step_key, COPIES)
        obs, new_state, reward, terminated, truncated, info = step(keys, state, actions, params)
        n_obs, new_n_state, n_reward, n_done, n_final = native(keys, n_state, actions)
        np.testing.assert_array_equal(obs, n_obs)
        np.testing.assert_array_equal(info["final_observation"], n_final)
        np.testing.assert_array_equal(reward, n_reward)
        assert reward.dtype == jnp.float32 and obs.dtype == jnp.float32
        np.testing.assert_array_equal(terminated | truncated, n_done)
        _equal(new_state.env_state, _without_wrapper(new_n_state))
        # the flags: truncated exactly when the clock ran out, as Playground's wrapper says
        ran_out = (np.asarray(state.time) + 1) * action_repeat >= episode_length
        np.testing.assert_array_equal(truncated, ran_out & ~np.asarray(terminated))
        np.testing.assert_array_equal(truncated, np.asarray(n_state.info["steps"] + action_repeat >= episode_length))
        assert not np.any(terminated) and not np.any(terminated & truncated)
        np.testing.assert_array_equal(new_state.time, np.where(truncated, 0, np.asarray(state.time) + 1))
        truncations += int(truncated.sum())
        state, n_state = new_state, new_n_state
    assert truncations >= COPIES * (STEPS // params.max_steps_in_episode)


def test_batched_resets_equal_the_copies_own(cartpole):
    # envs.VectorEnv resets only the ended copies, a chunk at a time: the same episodes as the
    # adapter's own auto-reset, bit for bit
    import copy

    from envs.wrappers import EpisodeStatistics, VectorEnv

    env, params = cartpole[:2]
    plain_env = copy.copy(env)
    plain_env.reset_in_batch = False
    n, per_copy = 8, envs.tile_params(params.replace(episode_length=5), 8)
    runs = []
    for vec in (VectorEnv(EpisodeStatistics(env), n, reset_chunk=3), VectorEnv(EpisodeStatistics(plain_env), n)):
        _, state = jax.jit(vec.reset)(jax.random.key(1), per_copy)
        step, key, runs = jax.jit(vec.step), jax.random.key(2), runs + [[]]
        for _ in range(11):
            key, action_key, step_key = jax.random.split(key, 3)
            out = step(step_key, state, jax.random.uniform(action_key, (n, 1), minval=-1, maxval=1), per_copy)
            state = out[1]
            runs[-1].append(out)
    assert VectorEnv(env, n).resets_in_batch and not VectorEnv(plain_env, n).resets_in_batch
    _equal(runs[0], runs[1])
    assert sum(int(out[4].sum()) for out in runs[0]) == 2 * n


def test_a_blow_up_terminates_and_resets(cartpole):
    env, params, reset, step = cartpole
    params = params.replace(episode_length=5)
    obs, state = reset(jax.random.split(jax.random.key(2), COPIES), params)
    broken = jnp.arange(COPIES) < 2  # two copies blow up: NaN velocities
    data = state.env_state.data
    qvel = jnp.where(broken[:, None], jnp.nan, data.qvel)
    state = state.replace(env_state=state.env_state.replace(data=data.replace(qvel=qvel)), time=state.time + 4)
    step_keys = jax.random.split(jax.random.key(3), COPIES)
    obs, new_state, reward, terminated, truncated, info = step(step_keys, state, jnp.zeros((COPIES, 1)), params)
    np.testing.assert_array_equal(terminated, broken)
    np.testing.assert_array_equal(truncated, ~broken)  # the clock ran out too: terminated wins
    assert np.isfinite(obs).all() and np.isfinite(reward).all() and np.isfinite(info["final_observation"]).all()
    np.testing.assert_array_equal(obs, reset(step_keys, params)[0])
    np.testing.assert_array_equal(new_state.time, np.zeros(COPIES))


def test_warp_backend_follows_the_jax_one(cartpole):
    # MuJoCo Warp keeps some leaves (its contact counts) once for all vmapped copies: the
    # auto-reset must leave them be (selecting them per copy leaked a tracer out of Warp's call)
    env, params, reset, step = cartpole
    warp_env, _ = envs.make(NAME, impl="warp")
    assert warp_env.impl == "warp"
    runs = {"jax": (reset, step),
            "warp": (jax.jit(jax.vmap(warp_env.reset, in_axes=(0, None))), jax.jit(jax.vmap(warp_env.step, in_axes=(0, 0, 0, None))))}
    params = params.replace(episode_length=3)
    for impl, (reset, step) in runs.items():
        obs, state = reset(jax.random.split(jax.random.key(4), COPIES), params)
        key, runs[impl] = jax.random.key(5), []
        for _ in range(7):
            key, action_key, step_key = jax.random.split(key, 3)
            actions = jax.random.uniform(action_key, (COPIES, 1), minval=-1, maxval=1)
            obs, state, reward, terminated, truncated, _ = step(jax.random.split(step_key, COPIES), state, actions, params)
            runs[impl].append((obs, reward, terminated, truncated))
    for (obs, reward, *flags), (w_obs, w_reward, *w_flags) in zip(runs["jax"], runs["warp"]):
        np.testing.assert_allclose(w_obs, obs, atol=1e-5)
        np.testing.assert_allclose(w_reward, reward, atol=1e-5)
        _equal(w_flags, flags)
    assert sum(int(f[3].sum()) for f in runs["warp"]) == 2 * COPIES  # truncated at steps 3 and 6


def test_spaces_and_settings():
    env, params = envs.make(NAME, episode_length=300, action_repeat=2, impl="jax")
    space = env.action_space(params)
    assert envs.action_size(space) == env.playground_env.action_size == 1
    assert float(space.low) == -1.0 and float(space.high) == 1.0 and not envs.is_discrete(space)
    assert env.observation_space(params).shape == (5,)
    assert params.max_steps_in_episode == 150 and env.impl == "jax"
    # text from the command line is parsed by each setting's kind
    from jaxrl.core.environments import make_env

    env, params = make_env(NAME, {"episode_length": "50", "sim_dt": "0.005"})
    assert params.episode_length == 50 and env.playground_env.sim_dt == 0.005 and env.playground_env.n_substeps == 2


def test_listed_names_are_the_bundled_dm_control_suite():
    from mujoco_playground._src import dm_control_suite, locomotion, manipulation

    suite = suites.SUITES["playground"]
    assert set(suites.names(suite)) == set(dm_control_suite.ALL_ENVS)
    assert suites.names(suite) == list(suites.adapter(suite).names())
    assert not set(suites.names(suite)) & (set(locomotion.ALL_ENVS) | set(manipulation.ALL_ENVS))
    assert suite.unavailable and "\n" not in suite.unavailable


@pytest.mark.parametrize("setting, message", [
    ({"episode_lenght": 10}, "has no setting 'episode_lenght' (did you mean episode_length?)"),
    ({"impl": "cuda"}, "impl must be one of jax, warp"),
    ({"action_repeat": 0}, "action_repeat must be positive"),
    ({"vision": True}, "has no setting 'vision'"),
])
def test_unknown_setting_is_one_line(setting, message):
    with pytest.raises(envs.InvalidEnvSetting) as error:
        envs.make(NAME, **setting)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_unknown_setting_from_the_cli_is_one_line(capsys, tmp_path):
    code = main(["train", "ppo", "--env", NAME, "--env-set", "episode_lenght=10", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "episode_lenght" in err and "Traceback" not in err


def test_missing_extra_is_one_line_and_exit_2(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(suites, "installed", lambda suite: suite.prefix != "playground")
    code = main(["train", "ppo", "--env", NAME, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "pip install -e '.[playground]'" in err
    assert not (tmp_path / "run").exists()
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "playground environments (not installed: pip install -e '.[playground]'" in out and NAME in out


def test_only_the_episode_length_can_be_randomised():
    from jaxrl.core.environments import make_env
    from jaxrl.core.values import ConfigError

    with pytest.raises(ConfigError, match="ctrl_dt cannot be randomised"):
        make_env(NAME, {"ctrl_dt": "uniform:0.01:0.02"})
