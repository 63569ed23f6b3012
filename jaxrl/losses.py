"""Losses as pure functions of batched arrays (rlax style: named by what they are, the paper cited)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def clipped_surrogate_loss(
    log_prob: jax.Array, old_log_prob: jax.Array, advantage: jax.Array, clip_eps: jax.Array | float
) -> jax.Array:
    """PPO's clipped policy objective, negated to a loss (Schulman et al., 2017, eq. 7):

        -mean(min(rho * A, clip(rho, 1 - eps, 1 + eps) * A)),  rho = exp(log_prob - old_log_prob)
    """
    ratio = jnp.exp(log_prob - old_log_prob)
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    return -jnp.minimum(ratio * advantage, clipped * advantage).mean()


def value_loss(
    value: jax.Array,
    target: jax.Array,
    old_value: jax.Array | None = None,
    clip_eps: jax.Array | float | None = None,
) -> jax.Array:
    """0.5 * mean squared error; with ``old_value`` and ``clip_eps``, the pessimistic clipped
    form of PPO implementations (the larger of the plain and the clipped-prediction errors)."""
    error = jnp.square(value - target)
    if old_value is not None:
        clipped = old_value + jnp.clip(value - old_value, -clip_eps, clip_eps)
        error = jnp.maximum(error, jnp.square(clipped - target))
    return 0.5 * error.mean()


def normalize(x: jax.Array, eps: float = 1e-8) -> jax.Array:
    """Zero mean, unit standard deviation over the whole batch (advantage normalisation)."""
    return (x - x.mean()) / (x.std() + eps)
