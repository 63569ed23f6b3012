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


# --------------------------------------------------------------------------------------------
# DSAC-T: Duan et al., "Distributional Soft Actor-Critic with Three Refinements" (2023/2025).
# The critic models the soft return as a Gaussian Z(s, a) ~ N(Q(s, a), sigma(s, a)^2).


def dsac_t_targets(
    r_t: jax.Array,
    discount_t: jax.Array,
    q_tp1: jax.Array,
    std_tp1: jax.Array,
    entropy_term_tp1: jax.Array,
    noise_tp1: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """The two soft targets of DSAC-T from twin target value distributions at (s', a'),
    a' ~ pi(s').

    Twin value distributions (refinement b): of the two target distributions, the one whose
    mean is the smaller at (s', a') is used, its mean and its standard deviation together.

    Args:
      r_t, discount_t: [B] rewards and gamma x (1 - terminated).
      q_tp1, std_tp1: [2, B] means and standard deviations of the twin target distributions.
      entropy_term_tp1: [B] alpha x log pi(a' | s').
      noise_tp1: [B] standard normal draws for the sampled return.

    Returns:
      (y_q, y_z): the expected target r + discount (Q'(s', a') - alpha log pi) and the sampled
      one r + discount (z' - alpha log pi), z' = Q' + sigma' x noise ~ Z'(s', a').
    """
    smaller = jnp.argmin(q_tp1, axis=0)[None]
    q_next = jnp.take_along_axis(q_tp1, smaller, axis=0)[0]
    std_next = jnp.take_along_axis(std_tp1, smaller, axis=0)[0]
    y_q = r_t + discount_t * (q_next - entropy_term_tp1)
    y_z = r_t + discount_t * (q_next + std_next * noise_tp1 - entropy_term_tp1)
    return jax.lax.stop_gradient(y_q), jax.lax.stop_gradient(y_z)


def dsac_t_critic_loss(
    q_t: jax.Array,
    std_t: jax.Array,
    y_q_t: jax.Array,
    y_z_t: jax.Array,
    std_bar: jax.Array,
    xi: jax.Array | float = 3.0,
    eps: jax.Array | float = 0.1,
) -> jax.Array:
    """A surrogate whose gradient is DSAC-T's critic gradient for one value distribution.

    The Gaussian negative log-likelihood -log N(y; Q, sigma^2) has gradients -(y - Q) / sigma^2
    in Q and -((y - Q)^2 - sigma^2) / sigma^3 in sigma. DSAC-T changes it three ways:

    * expected value substitution (refinement a): the mean's gradient uses the expected target
      ``y_q`` instead of the sampled ``y_z``, which removes the return noise from it;
    * variance-based gradient adjustment (refinement c): the sampled target is clipped to
      Q +- xi x ``std_bar`` (``std_bar`` the moving average of the critic's sigma) and the whole
      gradient is scaled by ``std_bar^2 + eps``, which makes its size independent of the reward
      scale; ``eps`` also keeps the sigma^2 and sigma^3 denominators away from 0.

    So, per sample, with Q, sigma held fixed inside the coefficients::

        dL/dQ     = -(std_bar^2 + eps) (y_q - Q) / (sigma^2 + eps)
        dL/dsigma = -(std_bar^2 + eps) ((clip(y_z) - Q)^2 - sigma^2) / (sigma^3 + eps)

    averaged over the batch. The value of the surrogate means nothing; only its gradient does.

    Args:
      q_t, std_t: [B] the critic's mean and standard deviation at the replayed (s, a).
      y_q_t, y_z_t: [B] the expected and sampled targets (``dsac_t_targets``).
      std_bar: scalar moving average of this critic's standard deviation.
    """
    q, std = jax.lax.stop_gradient(q_t), jax.lax.stop_gradient(std_t)
    y_q_t, y_z_t = jax.lax.stop_gradient(y_q_t), jax.lax.stop_gradient(y_z_t)
    bound = xi * jax.lax.stop_gradient(std_bar)
    y_z_clipped = q + jnp.clip(y_z_t - q, -bound, bound)
    mean_coefficient = -(y_q_t - q) / (jnp.square(std) + eps)
    std_coefficient = -(jnp.square(y_z_clipped - q) - jnp.square(std)) / (std**3 + eps)
    scale = jnp.square(jax.lax.stop_gradient(std_bar)) + eps
    return scale * jnp.mean(mean_coefficient * q_t + std_coefficient * std_t)


# --------------------------------------------------------------------------------------------
# MDPO: Tomar et al., "Mirror Descent Policy Optimization" (ICLR 2022, arXiv:2005.09814).


def mdpo_step_size(update_step: jax.Array | int, num_updates: int) -> jax.Array:
    """The annealed mirror-descent step size t_k = 1 - k / K of MDPO (Tomar et al., section 5),
    for iteration k = 0, ..., K - 1; it falls from 1 to 1 / K, so the KL weight 1 / t_k grows
    from 1 to K over training. Clipped below at 1 / K so that iterations past K stay finite."""
    k = jnp.asarray(update_step, jnp.float32)
    return jnp.maximum(1.0 - k / num_updates, 1.0 / num_updates)


def mdpo_policy_loss(
    log_prob: jax.Array,
    old_log_prob: jax.Array,
    advantage: jax.Array,
    kl: jax.Array,
    step_size: jax.Array | float,
) -> jax.Array:
    """On-policy MDPO's policy objective, negated to a loss (Tomar et al., eq. 11):

        -mean(rho * A) + mean(KL(pi_theta(.|s) || pi_old(.|s))) / t_k,  rho = exp(log_prob - old_log_prob)

    ``kl`` is the per-state KL divergence of the current policy from the rollout policy
    (closed form), ``step_size`` the mirror-descent step t_k. There is no ratio clipping: the
    KL term alone keeps each update near the rollout policy.
    """
    ratio = jnp.exp(log_prob - old_log_prob)
    return -(ratio * advantage).mean() + kl.mean() / step_size
