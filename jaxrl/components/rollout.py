"""The one rollout: ``num_steps`` steps of a vectorised environment under a policy, scanned."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

import envs

# policy(key, obs) -> (action, extras); extras is a dict of per-step arrays the agent wants kept
# (log-probabilities, values, ...). A recurrent agent's policy also takes and returns its memory:
# policy(key, obs, memory) -> (action, extras, memory).
Policy = Callable[..., tuple]


@struct.dataclass
class EnvCarry:
    """What a rollout threads from one step to the next: the environments' state, their latest
    observation and their parameters (one set per copy; a run may change them between updates),
    and a recurrent agent's memory (leaves [num_envs, ...]; ``None`` for feed-forward agents),
    zeroed in every copy whose episode ended."""

    env_state: Any
    obs: jax.Array
    params: Any
    memory: Any = None


@struct.dataclass
class Transition:
    """A batch of transitions, [T, num_envs, ...] after a rollout."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    next_obs: jax.Array  # the pre-reset observation the transition reached
    extras: dict[str, jax.Array]
    episode_done: jax.Array
    episode_return: jax.Array
    episode_length: jax.Array

    @property
    def done(self) -> jax.Array:
        return self.terminated | self.truncated


def env_reset(env: envs.VectorEnv, params: Any, key: jax.Array) -> EnvCarry:
    """Starts every copy of a vectorised ``env``. ``params`` are one set of environment
    parameters (given to every copy) or one per copy (a leading ``num_envs`` axis)."""
    params = envs.per_copy_params(params, env.default_params, env.num_envs)
    obs, env_state = env.reset(key, params)
    return EnvCarry(env_state, obs, params)


def reset_memory(memory: Any, done: jax.Array) -> Any:
    """``memory`` (leaves [num_envs, ...]) zeroed where ``done`` [num_envs]."""
    return jax.tree.map(lambda m: jnp.where(done.reshape(done.shape + (1,) * (m.ndim - 1)), jnp.zeros_like(m), m), memory)


def restart_on_levels(env: envs.VectorEnv, carry: EnvCarry, key: jax.Array, levels: Any) -> EnvCarry:
    """Every copy restarted on its own level (leaves [num_envs, ...]) with ``reset_to_level``,
    its memory zeroed: what a curriculum does at the start of an update."""
    obs, env_state = env.reset_to_level(key, levels, carry.params)
    memory = jax.tree.map(jnp.zeros_like, carry.memory)
    return EnvCarry(env_state, obs, carry.params, memory)


def rollout(env, policy: Policy, carry: EnvCarry, key: jax.Array, num_steps: int) -> tuple[EnvCarry, Transition]:
    """Steps ``env`` ``num_steps`` times with the parameters in ``carry``. ``key`` is consumed:
    each step splits off one key for the policy and one for the environment. With a memory in
    ``carry`` the policy is recurrent (see ``Policy``) and the memory of a copy whose episode
    ended is zeroed before the next episode's first step."""
    recurrent = carry.memory is not None

    def step(carry_and_key, _):
        carry, key = carry_and_key
        key, act_key, env_key = jax.random.split(key, 3)
        if recurrent:
            action, extras, memory = policy(act_key, carry.obs, carry.memory)
        else:
            (action, extras), memory = policy(act_key, carry.obs), None
        obs, env_state, reward, terminated, truncated, info = env.step(env_key, carry.env_state, action, carry.params)
        transition = Transition(
            obs=carry.obs,
            action=action,
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            next_obs=info["final_observation"],
            extras=extras,
            episode_done=info["episode_done"],
            episode_return=info["episode_return"],
            episode_length=info["episode_length"],
        )
        if recurrent:
            memory = reset_memory(memory, terminated | truncated)
        return (EnvCarry(env_state, obs, carry.params, memory), key), transition

    (carry, _), transitions = jax.lax.scan(step, (carry, key), None, length=num_steps)
    return carry, transitions


def episode_metrics(transitions: Transition) -> dict[str, jax.Array]:
    """Sums over the episodes that ended in a batch; the runner turns them into means over each
    logging window (so a window without a finished episode logs NaN, not a stale value)."""
    done = transitions.episode_done.astype(jnp.float32)
    return {
        "episode_return_sum": (transitions.episode_return * done).sum(),
        "episode_length_sum": (transitions.episode_length * done).sum(),
        "episode_count": done.sum(),
    }


def per_env(transitions: Transition, **more: jax.Array) -> dict[str, jax.Array]:
    """What a curriculum scores levels with, [num_steps, num_envs] each: rewards, episode ends
    (terminated or truncated), and finished episodes' returns (0 where none ended), plus ``more``
    (values, advantages, TD errors) from the agent."""
    return {
        "reward": transitions.reward,
        "done": transitions.done,
        "terminated": transitions.terminated,
        "episode_return": transitions.episode_return,
        **more,
    }
