"""Generalised advantage estimation (Schulman et al., 2016, "High-Dimensional Continuous Control
Using Generalized Advantage Estimation"), with truncation handled apart from termination."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gae(
    r_t: jax.Array,
    v_t: jax.Array,
    v_tp1: jax.Array,
    terminated_t: jax.Array,
    done_t: jax.Array,
    gamma: jax.Array | float,
    lambda_: jax.Array | float,
) -> tuple[jax.Array, jax.Array]:
    """Advantages and value targets over a rollout, time on the leading axis.

    Args:
      r_t: reward of the transition from step t, shape [T, ...].
      v_t: value of the observation at step t.
      v_tp1: value of the observation the transition reached: the pre-reset ("final")
        observation, so a truncated episode is bootstrapped from where it was cut.
      terminated_t: the transition ended the episode in a terminal state: no bootstrap.
      done_t: the episode ended here (terminated or truncated): the trace does not
        continue into the next episode.
      gamma, lambda_: discount and GAE mixing, scalars (traced hyperparameters).

    Returns:
      (advantages, targets) with targets = advantages + v_t.

      delta_t = r_t + gamma * (1 - terminated_t) * v_tp1 - v_t
      A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}
    """
    not_terminated = 1.0 - terminated_t.astype(v_t.dtype)
    not_done = 1.0 - done_t.astype(v_t.dtype)
    deltas = r_t + gamma * not_terminated * v_tp1 - v_t

    def backward(next_advantage, inputs):
        delta, continues = inputs
        advantage = delta + gamma * lambda_ * continues * next_advantage
        return advantage, advantage

    _, advantages = jax.lax.scan(
        backward, jnp.zeros_like(deltas[0]), (deltas, not_done), reverse=True
    )
    return advantages, advantages + v_t
