"""The kit's policy distributions against distrax's (an independent implementation) and against
hand-computed values."""

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.components.action_dists import Categorical, DiagNormal


def _close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_categorical_matches_distrax():
    logits = jax.random.normal(jax.random.key(0), (5, 4)) * 3.0
    other = jax.random.normal(jax.random.key(1), (5, 4))
    ours, theirs = Categorical.from_logits(logits), distrax.Categorical(logits=logits)
    actions = jnp.array([0, 3, 1, 2, 3])
    _close(ours.log_prob(actions), theirs.log_prob(actions))
    _close(ours.entropy(), theirs.entropy())
    _close(ours.kl_divergence(Categorical.from_logits(other)), theirs.kl_divergence(distrax.Categorical(logits=other)))
    np.testing.assert_array_equal(ours.mode(), theirs.mode())
    key = jax.random.key(2)
    np.testing.assert_array_equal(ours.sample(seed=key), theirs.sample(seed=key))
    action, log_prob = ours.sample_and_log_prob(seed=key)
    _close(log_prob, theirs.log_prob(action))


def test_categorical_hand_values_and_zero_probability():
    dist = Categorical.from_logits(jnp.log(jnp.array([0.25, 0.75])))
    _close(dist.entropy(), -(0.25 * np.log(0.25) + 0.75 * np.log(0.75)))
    _close(dist.kl_divergence(Categorical.from_logits(jnp.log(jnp.array([0.5, 0.5])))), 0.25 * np.log(0.5) + 0.75 * np.log(1.5))
    # An impossible action contributes nothing, to the value and to the gradient.
    masked = jnp.array([0.0, -jnp.inf, 1.0])
    _close(Categorical.from_logits(masked).entropy(), Categorical.from_logits(jnp.array([0.0, 1.0])).entropy())
    other = Categorical.from_logits(jnp.zeros(3))
    for fn in (lambda x: Categorical.from_logits(x).entropy(), lambda x: Categorical.from_logits(x).kl_divergence(other)):
        grad = np.asarray(jax.grad(fn)(masked))
        assert np.all(np.isfinite(grad)) and grad[1] == 0.0


def test_categorical_sampling_frequencies():
    probs = np.array([0.1, 0.6, 0.3])
    dist = Categorical.from_logits(jnp.broadcast_to(jnp.log(jnp.asarray(probs)), (20000, 3)))
    draws = np.asarray(dist.sample(seed=jax.random.key(3)))
    np.testing.assert_allclose(np.bincount(draws, minlength=3) / draws.size, probs, atol=0.015)


@pytest.mark.parametrize("batch", [(), (6,)])
def test_diag_normal_matches_distrax(batch):
    key_loc, key_scale, key_x, key_other = jax.random.split(jax.random.key(4), 4)
    loc = jax.random.normal(key_loc, (*batch, 3))
    scale = jnp.exp(jax.random.normal(key_scale, (3,)) * 0.5)  # state-independent, as the actor's
    x = jax.random.normal(key_x, (*batch, 3))
    ours, theirs = DiagNormal(loc, scale), distrax.MultivariateNormalDiag(loc, scale)
    _close(ours.log_prob(x), theirs.log_prob(x))
    _close(ours.entropy(), theirs.entropy())
    other_loc, other_scale = loc + 0.3, jnp.exp(jax.random.normal(key_other, (3,)) * 0.5)
    _close(ours.kl_divergence(DiagNormal(other_loc, other_scale)),
           theirs.kl_divergence(distrax.MultivariateNormalDiag(other_loc, other_scale)))
    np.testing.assert_array_equal(ours.mode(), theirs.mode())
    key = jax.random.key(5)
    _close(ours.sample(seed=key), theirs.sample(seed=key))
    action, log_prob = ours.sample_and_log_prob(seed=key)
    _close(log_prob, theirs.log_prob(action))


def test_diag_normal_hand_values():
    dist = DiagNormal(jnp.array([1.0]), jnp.array([2.0]))
    _close(dist.log_prob(jnp.array([2.0])), -0.5 * 0.25 - np.log(2.0) - 0.5 * np.log(2 * np.pi))
    _close(dist.entropy(), 0.5 * np.log(2 * np.pi * np.e * 4.0))
    # KL(N(1, 1) || N(0, 4)) = log(2) + (1 + 1) / 8 - 1/2
    _close(DiagNormal(jnp.array([1.0]), jnp.array([1.0])).kl_divergence(dist.replace(loc=jnp.array([0.0]))), np.log(2.0) + 0.25 - 0.5)


def test_distributions_are_pytrees():
    dist = DiagNormal(jnp.zeros((2, 3)), jnp.ones(3))
    first = jax.tree.map(lambda x: x[0], Categorical.from_logits(jnp.zeros((2, 4))))
    assert first.logits.shape == (4,)
    assert jax.jit(lambda d: d.entropy())(dist).shape == (2,)
