"""The one experience replay: a flashbax trajectory buffer per run, kept in the agent state (so
it is vmapped over seeds and hyperparameters and checkpointed with the run).

Transitions are stored per environment in time order, with the pre-reset ``next_obs`` of each,
so n-step sequences never need the following transition's ``obs`` and truncated episodes are
bootstrapped from where they were cut. Sampling draws sequences of ``sequence_length``
consecutive transitions of one environment (1 for one-step learners).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxrl.components.rollout import Transition


def stored(transitions: Transition) -> dict[str, jax.Array]:
    """What the replay keeps of a rollout's transitions."""
    return {
        "obs": transitions.obs,
        "action": transitions.action,
        "reward": transitions.reward,
        "terminated": transitions.terminated,
        "truncated": transitions.truncated,
        "next_obs": transitions.next_obs,
    }


class Replay:
    """``capacity`` transitions in all, ``capacity // num_envs`` per environment."""

    def __init__(self, num_envs: int, capacity: int, batch_size: int, sequence_length: int = 1):
        import flashbax  # on first use: the on-policy agents never pay for its import

        self.buffer = flashbax.make_trajectory_buffer(
            add_batch_size=num_envs,
            sample_batch_size=batch_size,
            sample_sequence_length=sequence_length,
            period=1,
            min_length_time_axis=sequence_length,
            max_length_time_axis=capacity // num_envs,
        )

    def init(self, obs: jax.Array, action: jax.Array, extras: dict[str, jax.Array] | None = None) -> Any:
        """An empty buffer for transitions with one environment's ``obs`` and ``action`` shapes (and
        ``extras``: more per-transition fields, by example)."""
        obs, action = jnp.zeros_like(obs), jnp.zeros_like(action)
        false = jnp.zeros((), bool)
        example = {"obs": obs, "action": action, "reward": jnp.zeros((), jnp.float32), "terminated": false, "truncated": false,
                   "next_obs": obs, **jax.tree.map(jnp.zeros_like, extras or {})}
        return self.buffer.init(example)

    def add(self, state: Any, transitions: Transition, extras: dict[str, jax.Array] | None = None) -> Any:
        """Adds a rollout's transitions, [T, num_envs, ...] (and the ``extras`` given at ``init``)."""
        data = {**stored(transitions), **(extras or {})}
        return self.buffer.add(state, jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), data))

    def can_sample(self, state: Any) -> jax.Array:
        """Whether every environment has at least ``sequence_length`` transitions."""
        return self.buffer.can_sample(state)

    def sample(self, state: Any, key: jax.Array) -> dict[str, jax.Array]:
        """``batch_size`` sequences, each leaf [sequence_length, batch_size, ...] (time first)."""
        experience = self.buffer.sample(state, key).experience
        return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), experience)
