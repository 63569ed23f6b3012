"""The environment suites behind optional extras (envs/suites.py): each adapter against the
suite's own API for the same keys and actions, the listed names against the installed suites,
levels, a short PPO run per suite, and the message a missing extra gives."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
import jaxrl
from envs import suites
from jaxrl.cli import main
from trees import assert_trees_equal as _equal

COPIES, STEPS = 8, 40


def _compare(env, params, native, state, seed=0):
    """Steps ``COPIES`` copies of the adapter and of ``native(key, state, action, params) -> (obs,
    state, reward, done, final_obs)`` (the suite's own API with its auto-reset) from the same
    states with the same keys and random actions; asserts equal observations, states, rewards
    and ended episodes, and returns the adapter's (terminated, truncated, state before the step)
    per step for the caller's checks of which is which."""
    # params go in as arguments, not constants: XLA folds constants with other numerics (one ulp
    # in Craftax's light level), whichever side it can fold them on
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    native = jax.jit(jax.vmap(native, in_axes=(0, 0, 0, None)))
    key = jax.random.key(seed)
    flags = []
    for _ in range(STEPS):
        key, action_key, step_key = jax.random.split(key, 3)
        actions = jax.random.randint(action_key, (COPIES,), 0, env.num_actions)
        keys = jax.random.split(step_key, COPIES)
        obs, new_state, reward, terminated, truncated, info = step(keys, state, actions, params)
        n_obs, n_state, n_reward, n_done, n_final = native(keys, state, actions, params)
        np.testing.assert_array_equal(obs, jnp.asarray(n_obs, jnp.float32).reshape(obs.shape))
        np.testing.assert_array_equal(info["final_observation"], jnp.asarray(n_final, jnp.float32).reshape(obs.shape))
        np.testing.assert_array_equal(reward, jnp.asarray(n_reward, jnp.float32))
        np.testing.assert_array_equal(terminated | truncated, np.asarray(n_done, bool))
        assert not np.any(terminated & truncated)
        _equal(new_state, n_state)
        flags.append((np.asarray(terminated), np.asarray(truncated), state, np.asarray(reward)))
        state = new_state
    return flags


def _flag_checks(flags, step_count, limit, reward_ends=False):
    """Truncated exactly when the clock (``step_count`` of the state before the step) ran out
    and the episode did not terminate; with ``reward_ends``, terminated exactly when rewarded
    (MiniGrid rewards only the goal, which ends the episode). Returns the terminations."""
    terminations = 0
    for terminated, truncated, before, reward in flags:
        np.testing.assert_array_equal(truncated, (np.asarray(step_count(before)) + 1 >= limit) & ~terminated)
        if reward_ends:
            np.testing.assert_array_equal(terminated, reward > 0)
        terminations += terminated.sum()
    return terminations


def _native_auto_reset(suite_step, suite_reset, last, observation, reward=lambda ts: ts.reward):
    """The auto-reset written with a suite's own step and reset."""

    def native(key, state, action, params):
        stepped = suite_step(state, action, params)
        fresh = suite_reset(key, params)
        done = last(stepped)
        pick = lambda a, b: jax.tree.map(lambda x, y: jnp.where(done, x, y), a, b)  # noqa: E731
        final = observation(stepped)
        return pick(observation(fresh), final), pick(fresh, stepped), reward(stepped), done, final

    return native


def _reset_all(env, params, seed=1):
    return jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(jax.random.split(jax.random.key(seed), COPIES), params)


# --------------------------------------------------------------------------------------------
# Each adapter against its suite


def test_craftax_matches_craftax_auto_reset_env():
    from craftax.craftax_env import make_craftax_env_from_name

    env, params = envs.make("craftax/Craftax-Classic-Symbolic-v1", max_timesteps=12)
    theirs = make_craftax_env_from_name("Craftax-Classic-Symbolic-v1", auto_reset=True)

    def native(key, state, action, params):
        obs, new_state, reward, done, _ = theirs.step(key, state, action, params)
        final = theirs.step_env(jax.random.split(key)[0], state, action, params)[0]
        return obs, new_state, reward, done, final

    obs, state = _reset_all(env, params)
    their_obs, their_state = _reset_all(theirs, params)
    np.testing.assert_array_equal(obs, their_obs)
    _equal(state, their_state)
    dead = jnp.arange(COPIES) < 2  # two copies start at zero health: they die on their first step
    state = state.replace(player_health=jnp.where(dead, jnp.zeros_like(state.player_health), state.player_health))
    flags = _compare(env, params, native, state)
    _flag_checks(flags, lambda s: s.timestep, 12)
    np.testing.assert_array_equal(flags[0][0], dead)  # died: terminated, with the clock far from out
    assert sum(f[1].sum() for f in flags) >= COPIES  # and every copy's clock ran out at least once


def test_xminigrid_matches_xminigrid():
    env, params = envs.make("xminigrid/MiniGrid-Empty-5x5", max_steps=12)
    raw = env.xminigrid_env
    native = _native_auto_reset(lambda s, a, p: raw.step(p, s, a), lambda k, p: raw.reset(p, k),
                                lambda ts: ts.last(), lambda ts: ts.observation)
    obs, state = _reset_all(env, params)
    flags = _compare(env, params, native, state)
    assert _flag_checks(flags, lambda ts: ts.state.step_num, 12, reward_ends=True) > 0


def test_navix_matches_navix_step():
    env, params = envs.make("navix/Navix-Empty-5x5-v0", max_steps=12)
    raw = env.navix_env
    # navix's public step: the adapter never hands it an ended timestep, so it is one transition
    native = _native_auto_reset(lambda s, a, p: raw.step(s, a), lambda k, p: raw.reset(k), lambda ts: ts.step_type > 0, lambda ts: ts.observation)
    obs, state = _reset_all(env, params)
    flags = _compare(env, params, native, state)
    assert _flag_checks(flags, lambda ts: ts.t, 12, reward_ends=True) > 0


def test_jumanji_matches_jumanji():
    env, params = envs.make("jumanji/Snake-v1", time_limit=4)
    raw = env.jumanji_env
    native = _native_auto_reset(lambda s, a, p: raw.step(s, a), lambda k, p: raw.reset(k),
                                lambda out: out[1].last() | (out[0].step_count >= 4),
                                lambda out: suites.float_observation(out[1].observation),
                                lambda out: out[1].reward)

    def unpack(native):  # jumanji's step and reset return (state, timestep): compare states
        def run(key, state, action, params):
            obs, out, reward, done, final = native(key, state, action, params)
            return obs, out[0], reward, done, final
        return run

    obs, state = _reset_all(env, params)
    flags = _compare(env, params, unpack(native), state)
    assert _flag_checks(flags, lambda s: s.step_count, 4) > 0 and sum(f[1].sum() for f in flags) > 0


def test_jumanji_multi_discrete_actions_flatten_in_c_order():
    env, _ = envs.make("jumanji/Minesweeper-v0")
    rows, cols = env.jumanji_env.action_spec.num_values
    assert env.num_actions == rows * cols
    for flat in (0, 1, cols, rows * cols - 1):
        np.testing.assert_array_equal(env.native_action(jnp.asarray(flat)), [flat // cols, flat % cols])


# --------------------------------------------------------------------------------------------
# The listed names


@pytest.mark.parametrize("prefix", sorted(suites.SUITES))
def test_listed_names_are_the_installed_suites(prefix):
    suite = suites.SUITES[prefix]
    assert suites.installed(suite)
    assert sorted(suites.names(suite)) == sorted(suites.adapter(suite).names())
    assert suites.names(suite)[0] == suite.snapshot[0]  # the fastest variant, listed first
    assert all(f"{prefix}/{n}" in envs.list_envs() for n in suites.names(suite))


def test_craftax_symbolic_names_make():
    # The pixel variants load textures for minutes; Classic-Pixels is made in the torso test below.
    for name, shape in (("Craftax-Classic-Symbolic-v1", (1345,)), ("Craftax-Symbolic-v1", (8268,))):
        assert name in suites.names(suites.SUITES["craftax"])
        env, params = envs.make(f"craftax/{name}")
        assert env.observation_space(params).shape == shape


def test_jumanji_list_is_every_environment_the_adapter_can_run():
    import jumanji

    from envs.jumanji_adapter import MAX_ACTIONS, action_sizes

    listed = set(suites.names(suites.SUITES["jumanji"]))
    for name in jumanji.registered_environments():
        if name.startswith("Sokoban"):  # its levels are a download
            assert name not in listed
            continue
        raw = jumanji.make(name)
        fits = raw.reward_spec.shape == () and 0 < int(np.prod(action_sizes(raw) or (0,))) <= MAX_ACTIONS
        assert fits == (name in listed), name


def test_unknown_suite_name_suggests():
    with pytest.raises(envs.UnknownEnvironmentError, match="did you mean navix/Navix-Empty-5x5-v0"):
        envs.make("navix/Navix-Empty-5x5")


@pytest.mark.parametrize("name", ["craftax/Craftax-Classic-Pixels-v1", "xminigrid/MiniGrid-Empty-5x5",
                                  "navix/Navix-Empty-5x5-v0", "jumanji/Minesweeper-v0"])
def test_observations_choose_the_torso(name):
    from jaxrl.components.networks import torso_kind

    env, params = envs.make(name)
    shape = env.observation_space(params).shape
    assert torso_kind(shape) == ("cnn" if len(shape) == 3 else "mlp")
    assert len(shape) == (1 if name.startswith("jumanji") else 3)  # jumanji's NamedTuple is flattened


# --------------------------------------------------------------------------------------------
# Levels


def test_navix_layout_round_trip():
    env, params = envs.make("navix/Navix-DoorKey-5x5-v0")
    key, other = jax.random.key(3), jax.random.key(4)
    _equal(env.reset_to_level(key, env.sample_level(key)), env.reset(key))
    level = env.sample_level(other)
    obs, state = env.reset_to_level(key, level)
    _equal(state.state.grid, level.grid)
    _equal(state.state.entities, level.entities)
    _equal(obs, env.reset(other)[0])  # the observation is the layout's, whatever the key
    obs2, *_ = env.step(key, state, jnp.asarray(0), params)
    assert obs2.shape == obs.shape


def test_navix_lists_every_registered_name_it_makes():
    # The installed navix's own registry (0.7.x on Python 3.11: 41 names; 4.x on 3.12: 83): every
    # listed name makes, and its reset and step trace (shapes only) with navix's observation shape.
    import navix

    listed = suites.names(suites.SUITES["navix"])
    assert set(listed) == set(navix.registry())
    for name in listed:
        env, params = envs.make(f"navix/{name}")
        obs, state = jax.eval_shape(env.reset, jax.random.key(0), params)
        out = jax.eval_shape(env.step, jax.random.key(0), state, jnp.asarray(0), params)
        assert out[0].shape == obs.shape == tuple(env.navix_env.observation_space.shape), name
        assert env.num_actions == len(env.navix_env.action_set), name


def test_xland_rulesets_are_levels():
    env, params = envs.make("xminigrid/XLand-MiniGrid-R1-9x9")
    level = jax.jit(env.sample_level)(jax.random.key(5))
    _, timestep = env.reset_to_level(jax.random.key(6), level, params)
    _equal(timestep.state.goal_encoding, level.goal)
    _equal(timestep.state.rule_encoding, level.rules)
    target = np.asarray(level.goal)[1:3]
    assert any((np.asarray(level.init_tiles) == target).all(axis=1))  # the goal's object is placed
    placed = np.asarray(timestep.state.grid).reshape(-1, 2)
    assert any((placed == target).all(axis=1))


def test_curriculum_trains_on_navix_layouts():
    train = jaxrl.make_train("plr", "navix/Navix-Empty-5x5-v0", total_steps=4096,
                             overrides={"num_envs": 8, "num_steps": 64, "buffer_size": 16})
    state, metrics = jax.jit(train)(jax.random.key(0), train.default_hparams)
    assert np.isfinite(np.asarray(metrics["final_return"]))


# --------------------------------------------------------------------------------------------
# Training and the missing extra


@pytest.mark.parametrize("name, steps, threshold", [
    ("navix/Navix-Empty-5x5-v0", 60_000, 0.8),
    ("xminigrid/MiniGrid-Empty-5x5", 60_000, 0.8),
    ("jumanji/Snake-v1", 8192, None),
    ("craftax/Craftax-Classic-Symbolic-v1", 4096, None),
])
def test_ppo_runs_on_each_suite(name, steps, threshold):
    overrides = {"num_envs": 16, "num_steps": 128} if threshold else {"num_envs": 8, "num_steps": 64}
    train = jaxrl.make_train("ppo", name, total_steps=steps, overrides=overrides)
    _, metrics = jax.jit(train)(jax.random.key(0), train.default_hparams)
    final = float(metrics["final_return"])
    assert np.isfinite(final)
    if threshold is not None:  # an empty room: PPO must learn to walk to the goal
        assert final >= threshold, final


def test_missing_extra_is_one_line_and_exit_2(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(suites, "installed", lambda suite: suite.prefix != "navix")
    code = main(["train", "ppo", "--env", "navix/Navix-Empty-5x5-v0", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "pip install -e '.[navix]'" in err
    assert not (tmp_path / "run").exists()
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "navix environments (not installed: pip install -e '.[navix]'" in out and "navix/Navix-Empty-5x5-v0" in out
    assert "craftax environments (installed; the fastest first):\n  # on a 2-core CPU: " in out
    assert out.index("craftax/Craftax-Classic-Symbolic-v1") < out.index("craftax/Craftax-Classic-Pixels-v1")
