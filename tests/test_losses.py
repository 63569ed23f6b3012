"""PPO losses against values computed by hand."""

import jax.numpy as jnp
import numpy as np

from jaxrl.components.losses import clipped_surrogate_loss, normalize, value_loss


def test_clipped_surrogate_hand_computed():
    old = jnp.log(jnp.array([0.5, 0.5, 0.5, 0.5]))
    new = jnp.log(jnp.array([0.75, 0.25, 0.75, 0.25]))  # ratios 1.5, 0.5, 1.5, 0.5
    adv = jnp.array([2.0, 2.0, -1.0, -1.0])
    # eps 0.2: min(1.5*2, 1.2*2) = 2.4 ; min(0.5*2, 0.8*2) = 1.0 ;
    #          min(1.5*-1, 1.2*-1) = -1.5 ; min(0.5*-1, 0.8*-1) = -0.8  -> mean 0.275
    np.testing.assert_allclose(clipped_surrogate_loss(new, old, adv, 0.2), -0.275, rtol=1e-6)


def test_value_loss_plain_and_clipped():
    v = jnp.array([1.0, 3.0])
    target = jnp.array([2.0, 2.0])
    np.testing.assert_allclose(value_loss(v, target), 0.5 * (1 + 1) / 2, rtol=1e-6)
    old = jnp.array([0.0, 2.0])
    # clipped predictions with eps 0.5: 0.5 and 2.5 -> errors 2.25 and 0.25; max with 1, 1
    np.testing.assert_allclose(value_loss(v, target, old, 0.5), 0.5 * (2.25 + 1.0) / 2, rtol=1e-6)


def test_normalize():
    x = normalize(jnp.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_allclose(x.mean(), 0.0, atol=1e-6)
    np.testing.assert_allclose(x.std(), 1.0, rtol=1e-5)
