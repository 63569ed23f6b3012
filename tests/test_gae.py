"""GAE against hand-computed values, and truncation handled apart from termination."""

import jax
import jax.numpy as jnp
import numpy as np

import envs
from jaxrl.components.gae import gae
from jaxrl.components.rollout import env_reset, rollout


def test_gae_hand_computed():
    # Three steps; the episode is truncated after step 1 (bootstrap from the final observation's
    # value 10) and terminates after step 2 (no bootstrap).
    gamma, lam = 0.9, 0.5
    r = jnp.array([1.0, 2.0, 3.0])
    v = jnp.array([0.5, 1.0, 2.0])
    v_next = jnp.array([1.0, 10.0, 7.0])  # v(final obs) of each transition
    terminated = jnp.array([False, False, True])
    done = jnp.array([False, True, True])
    adv, targets = gae(r, v, v_next, terminated, done, gamma, lam)
    # deltas: 1 + .9*1 - .5 = 1.4 ; 2 + .9*10 - 1 = 10.0 ; 3 + 0 - 2 = 1.0
    # A2 = 1.0 ; A1 = 10.0 (trace cut at the episode end) ; A0 = 1.4 + .9*.5*10.0 = 5.9
    np.testing.assert_allclose(adv, [5.9, 10.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(targets, [6.4, 11.0, 3.0], rtol=1e-6)


def test_gae_batched_matches_per_column():
    key = jax.random.key(0)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    r = jax.random.normal(k1, (7, 3))
    v = jax.random.normal(k2, (7, 3))
    v_next = jax.random.normal(k3, (7, 3))
    term = jax.random.bernoulli(k4, 0.2, (7, 3))
    done = term | jax.random.bernoulli(jax.random.fold_in(k4, 1), 0.2, (7, 3))
    adv, _ = gae(r, v, v_next, term, done, 0.99, 0.95)
    for j in range(3):
        col, _ = gae(r[:, j], v[:, j], v_next[:, j], term[:, j], done[:, j], 0.99, 0.95)
        np.testing.assert_allclose(adv[:, j], col, rtol=1e-5, atol=1e-6)


def test_truncation_bootstraps_and_termination_does_not():
    """On CartPole with a 10-step limit, some episodes are truncated and some terminate. With a
    value function V(s) = 1 + s[0] (depends on the observation) and lambda = 0, the advantage of
    a truncated step must use V(final observation), a terminated step must use no bootstrap."""
    env, params = envs.make("CartPole-v1", max_steps_in_episode=10)
    vec = envs.make_vector(env, 8)
    policy = lambda key, obs: (jax.random.randint(key, obs.shape[:1], 0, 2), {})  # noqa: E731
    carry = env_reset(vec, params, jax.random.key(1))
    _, traj = rollout(vec, policy, carry, jax.random.key(2), 64)
    assert bool(traj.truncated.any()) and bool(traj.terminated.any())
    value = lambda obs: 1.0 + obs[..., 0]  # noqa: E731
    v, v_next = value(traj.obs), value(traj.next_obs)
    gamma = 0.9
    adv, _ = gae(traj.reward, v, v_next, traj.terminated, traj.done, gamma, 0.0)
    trunc = np.asarray(traj.truncated & ~traj.terminated)
    term = np.asarray(traj.terminated)
    np.testing.assert_allclose(np.asarray(adv)[trunc], np.asarray(traj.reward + gamma * v_next - v)[trunc], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(adv)[term], np.asarray(traj.reward - v)[term], rtol=1e-6)
    # The final observation of a truncated step is the pre-reset one, not the next episode's start.
    assert not np.allclose(np.asarray(traj.next_obs)[:-1][trunc[:-1]], np.asarray(traj.obs)[1:][trunc[:-1]])
