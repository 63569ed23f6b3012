"""Resets that cost what they should (envs.VectorEnv with ``reset_in_batch``): only the copies that
ended are reset, each from the key its own auto-reset would have used, so every ended episode
starts a fresh, independently drawn level; flags and final observations as before."""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.wrappers import EpisodeStatistics, VectorEnv, reset_ended, tile_params
from trees import assert_trees_equal as _assert_equal
from trees import bits as _data


def _run(vec, params, steps, seed=0, state=None):
    """``steps`` random steps of ``vec``: the outputs of every step, and the states before each."""
    step = jax.jit(vec.step)
    key = jax.random.key(seed)
    if state is None:
        _, state = jax.jit(vec.reset)(jax.random.key(seed + 100), params)
    out, before = [], []
    for _ in range(steps):
        key, action_key, step_key = jax.random.split(key, 3)
        actions = jax.random.randint(action_key, (vec.num_envs,), 0, vec.num_actions)
        before.append(state)
        result = step(step_key, state, actions, params)
        state = result[1]
        out.append(result)
    return out, before


def test_reset_ended_resets_exactly_the_ended_copies_in_any_chunking():
    n = 7

    def reset(key, params):  # a "reset" whose result names its key and params
        return jax.random.key_data(key).astype(jnp.float32).sum() + params, {"p": params, "k": key}

    keys = jax.random.split(jax.random.key(0), n)
    params = jnp.arange(n, dtype=jnp.float32) * 10
    obs = -jnp.ones(n)
    state = {"p": -jnp.ones(n), "k": jax.random.split(jax.random.key(1), n)}
    want_obs, want_state = jax.vmap(reset)(keys, params)
    for done in ([0, 0, 0, 0, 0, 0, 0], [1, 0, 0, 1, 1, 0, 1], [1] * 7, [0, 0, 0, 0, 0, 0, 1]):
        done = jnp.asarray(done, bool)
        for chunk in (1, 2, 3, 7, 8):
            got_obs, got_state = jax.jit(reset_ended, static_argnums=(0, 6))(reset, keys, params, done, obs, state, chunk)
            np.testing.assert_array_equal(got_obs, jnp.where(done, want_obs, obs))
            np.testing.assert_array_equal(got_state["p"], jnp.where(done, want_state["p"], state["p"]))
            np.testing.assert_array_equal(_data(got_state["k"]), np.where(np.asarray(done)[:, None], _data(want_state["k"]), _data(state["k"])))


@pytest.mark.parametrize("name, settings, chunk", [
    ("navix/Navix-DoorKey-5x5-v0", {"max_steps": 6}, 1),
    ("xminigrid/MiniGrid-DoorKey-5x5", {"max_steps": 6}, 3),
    ("jumanji/Snake-v1", {"time_limit": 6}, 3),
])
def test_batched_resets_equal_per_copy_auto_resets_bit_for_bit(name, settings, chunk):
    # These suites' dynamics are integer arithmetic, so the two programs must agree exactly: same
    # flags, rewards, episode statistics, final observations and next episodes (the layouts and
    # Snake's starts are random, so a wrong key or a copy given another's reset shows).
    batched_env, params = envs.make(name, **settings)
    assert batched_env.reset_in_batch
    env = copy.copy(batched_env)
    env.reset_in_batch = False
    n = 8
    plain = VectorEnv(EpisodeStatistics(env), n)
    batched = VectorEnv(EpisodeStatistics(batched_env), n, reset_chunk=chunk)
    assert batched.resets_in_batch and not plain.resets_in_batch
    per_copy = tile_params(params, n)
    ours, _ = _run(batched, per_copy, 14)
    theirs, _ = _run(plain, per_copy, 14)
    ended = 0
    for a, b in zip(ours, theirs):
        _assert_equal(a, b)
        ended += int((a[3] | a[4]).sum())
    assert ended >= 2 * n  # every copy's clock ran out at least twice, with some goals reached

    if name.startswith("navix"):  # under an outer vmap (seeds), where the while_loop runs the most any seed needs
        seeds = jax.random.split(jax.random.key(7), 3)

        def one(vec):
            def run(key):
                _, state = vec.reset(key, per_copy)
                step = lambda t, state: vec.step(jax.random.fold_in(key, t), state, jnp.zeros(n, jnp.int32), per_copy)[1]  # noqa: E731
                return jax.lax.fori_loop(0, 7, step, state)
            return jax.jit(jax.vmap(run))(seeds)

        _assert_equal(one(batched), one(plain))


def test_craftax_resets_only_ended_copies_each_on_a_fresh_world():
    env, params = envs.make("craftax/Craftax-Classic-Symbolic-v1", max_timesteps=6)
    n = 8
    vec = VectorEnv(env, n, reset_chunk=3)
    assert vec.resets_in_batch
    per_copy = tile_params(params, n)
    _, state = jax.jit(vec.reset)(jax.random.key(1), per_copy)
    dead = jnp.arange(n) < 3  # three copies start at zero health: they die on their first step
    state = state.replace(player_health=jnp.where(dead, jnp.zeros_like(state.player_health), state.player_health))
    out, before = _run(vec, per_copy, 13, state=state)
    observe = jax.jit(jax.vmap(lambda s: env.craftax_env.get_obs(s).reshape(-1)))
    seen_ended_together = 0
    for (obs, after, reward, terminated, truncated, info), prior in zip(out, before):
        ended = np.asarray(terminated | truncated)
        assert not np.any(np.asarray(terminated & truncated))
        np.testing.assert_array_equal(truncated, (np.asarray(prior.timestep) + 1 >= 6) & ~np.asarray(terminated))
        timestep = np.asarray(after.timestep)
        np.testing.assert_array_equal(timestep[ended], 0)  # a new episode
        np.testing.assert_array_equal(timestep[~ended], np.asarray(prior.timestep)[~ended] + 1)
        maps = np.asarray(after.map).reshape(n, -1)
        old = np.asarray(prior.map).reshape(n, -1)
        np.testing.assert_array_equal(np.asarray(info["final_observation"])[~ended], np.asarray(obs)[~ended])
        rows = np.flatnonzero(ended)
        first = np.asarray(observe(after))
        for i in rows:  # an ended copy starts on a world it was not on, and sees it
            assert not np.array_equal(maps[i], old[i])
            np.testing.assert_allclose(np.asarray(obs)[i], first[i], atol=1e-6)
        for a in range(len(rows)):  # copies that ended together get different worlds
            for b in range(a + 1, len(rows)):
                assert not np.array_equal(maps[rows[a]], maps[rows[b]])
        seen_ended_together += len(rows) >= 2
    np.testing.assert_array_equal(np.asarray(out[0][3]), np.asarray(dead))
    assert seen_ended_together >= 2
