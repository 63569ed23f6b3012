"""Whole lifetimes on one level, as pure functions: an agent trained by its rule for N updates on
all ``num_envs`` copies of a level, and the return of a policy there (each copy's first episode).
GROOVE's algorithmic regret and the held-out evaluations of ``experiments/lpg`` use them."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxrl.components.rollout import restart_on_levels, rollout


def on_level(agent, state, level: Any, key: jax.Array):
    """``state`` with every environment copy restarted on ``level``."""
    levels = jax.tree.map(lambda x: jnp.broadcast_to(x, (agent.vec_env.num_envs, *jnp.shape(x))), level)
    return state.replace(env=restart_on_levels(agent.vec_env, state.env, key, levels))


def train_on_level(agent, hparams, level: Any, key: jax.Array, updates: int, env_params: Any):
    """A fresh agent (``agent.init``) trained ``updates`` updates on ``level``: its final state."""
    init_key, level_key = jax.random.split(key)
    state = on_level(agent, agent.init(init_key, hparams, env_params), level, level_key)

    def body(state, step):
        state, traj = agent.collect(state, hparams, step)
        return agent.learn(state, hparams, traj, step)[0], None

    return jax.lax.scan(body, state, jnp.arange(updates))[0]


def level_return(agent, params: Any, env_carry: Any, level: Any, key: jax.Array, steps: int) -> jax.Array:
    """The mean return of the first episode of every copy on ``level``, the policy sampling its
    actions, over ``steps`` steps (a static bound on the level's episode length: an episode not
    ended by then counts what it collected)."""
    restart_key, rollout_key = jax.random.split(key)
    levels = jax.tree.map(lambda x: jnp.broadcast_to(x, (agent.vec_env.num_envs, *jnp.shape(x))), level)
    carry = restart_on_levels(agent.vec_env, env_carry, restart_key, levels)

    def policy(act_key, obs):
        logits, _ = agent.net.apply(params, obs)
        return jax.random.categorical(act_key, logits), {}

    _, traj = rollout(agent.vec_env, policy, carry, rollout_key, steps)
    ended_before = jnp.cumsum(traj.done, axis=0) - traj.done  # episodes finished before step t
    first = ended_before == 0
    return jnp.mean(jnp.sum(jnp.where(first, traj.reward, 0.0), axis=0))
