"""Sampling For Learnability (Rutherford et al., 2024, "No Regrets: Investigating and Improving
Regret Approximations for Curriculum Discovery"), as its maze script does it.

Every ``sfl_refresh`` updates (update 0 included), ``sfl_levels`` random levels are scored,
``sfl_batch`` at a time: the current policy plays each for ``sfl_rollout`` steps with sampled
actions (a fresh memory, and an ended episode restarts on the same level), and a level's score is
its learnability p (1 - p), p the fraction of its finished episodes that reached the goal. The
``sfl_buffer`` most learnable are kept (ties broken at random, not by index); between refreshes a
fraction ``sfl_ratio`` of the training environments play levels drawn uniformly from them, the
rest new random levels. The reference's maze settings (its ``minigrid-sfl.yaml`` and
``ippo-minigrid.yaml``) are the defaults: 5 batches of 5,000 levels, 2,000 steps each, 1,000 kept,
a refresh every 100 updates, half the environments on the kept levels.

Two small differences from the reference, both documented in the README: it counts the first 10
finished episodes of a level and we count all of them (the same p, a lower-variance estimate);
and a level on which no episode finished scores 0, where the reference's mean over no episodes
is NaN, which its ``argsort`` ranks above every real score.

Every scoring step is an environment step the run is charged for: ``steps_after(n)`` counts the
refreshes the first n updates ran, ceil(n / sfl_refresh) of them.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

import envs
from jaxrl.components.rollout import EnvCarry, rollout


def chunk_length(steps: int, limit: int = 100) -> int:
    """The largest divisor of ``steps`` not above ``limit``: the scoring rollout runs in chunks of
    this many steps, reduced to counts as it goes, so that its memory does not grow with its length."""
    return max(d for d in range(1, min(steps, limit) + 1) if steps % d == 0)


def success_counts(env: Any, act: Callable, initial_memory: Callable | None, num_levels: int, steps: int) -> Callable:
    """``play(policy_params, levels, params, key) -> (episodes, successes)``, each [num_levels]:
    the policy's sampled actions for ``steps`` steps on every level (leaves [num_levels, ...]),
    an ended episode restarting on the same level (``env`` must auto-replay), counting finished
    episodes and those that reached the goal (terminated with a positive reward). ``act`` is the
    agent's ``act(policy_params, obs, key, deterministic, memory)``."""
    vec_env = envs.make_vector(env, num_levels)
    chunk = chunk_length(steps)

    def play(policy_params, levels, params, key):
        params = envs.tile_params(params, num_levels)
        reset_key, key = jax.random.split(key)
        obs, env_state = vec_env.reset_to_level(reset_key, levels, params)
        memory = None if initial_memory is None else initial_memory(num_levels)
        if memory is None:
            policy = lambda k, o: (act(policy_params, o, k, False), {})  # noqa: E731
        else:
            def policy(k, o, m):
                action, m = act(policy_params, o, k, False, m)
                return action, {}, m

        def run_chunk(carry, chunk_key):
            env_carry, episodes, successes = carry
            env_carry, traj = rollout(vec_env, policy, env_carry, chunk_key, chunk)
            ended = (traj.terminated | traj.truncated).sum(axis=0)
            reached = (traj.terminated & (traj.reward > 0)).sum(axis=0)
            return (env_carry, episodes + ended, successes + reached), None

        zeros = jnp.zeros(num_levels, jnp.int32)
        start = (EnvCarry(env_state, obs, params, memory), zeros, zeros)
        (_, episodes, successes), _ = jax.lax.scan(run_chunk, start, jax.random.split(key, steps // chunk))
        return episodes, successes

    return play


def learnability_from_counts(episodes: jax.Array, successes: jax.Array) -> jax.Array:
    """p (1 - p) with p = successes / episodes; 0 where no episode finished."""
    p = successes / jnp.maximum(episodes, 1)
    return jnp.where(episodes > 0, p * (1.0 - p), 0.0)


def top_levels(key: jax.Array, scores: jax.Array, count: int) -> tuple[jax.Array, jax.Array]:
    """(scores, indices) of the ``count`` highest ``scores``, ties broken at random: ``top_k``
    over a random permutation (it keeps the lower index among equals, here a random one)."""
    order = jax.random.permutation(key, scores.shape[0])
    best, chosen = jax.lax.top_k(scores[order], count)
    return best, order[chosen]


def make_refresh(config: Any, env: Any, sample_level: Callable, act: Callable, initial_memory: Callable | None) -> Callable:
    """``refresh(policy_params, params, key) -> (levels, scores)``: ``sfl_levels`` random levels
    scored ``sfl_batch`` at a time, the ``sfl_buffer`` most learnable returned (leaves [sfl_buffer, ...])."""
    play = success_counts(env, act, initial_memory, config.sfl_batch, config.sfl_rollout)
    batches = config.sfl_levels // config.sfl_batch

    def refresh(policy_params, params, key):
        def score_batch(_, batch_key):
            level_key, play_key = jax.random.split(batch_key)
            levels = jax.vmap(sample_level, in_axes=(0, None))(jax.random.split(level_key, config.sfl_batch), params)
            episodes, successes = play(policy_params, levels, params, play_key)
            return None, (levels, learnability_from_counts(episodes, successes))

        batch_keys, tie_key = jax.random.split(key)
        _, (levels, scores) = jax.lax.scan(score_batch, None, jax.random.split(batch_keys, batches))
        levels = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), levels)
        best, chosen = top_levels(tie_key, scores.reshape(-1), config.sfl_buffer)
        return jax.tree.map(lambda x: x[chosen], levels), best

    return refresh


def steps_after(config: Any) -> Callable[[Any], np.ndarray]:
    """``steps(n)``: the environment steps of the first n updates, each update's rollout and
    every refresh's scoring (refreshes run at updates 0, R, 2R, ...: ceil(n / R) of them)."""
    batch = config.num_envs * config.num_steps
    scoring = config.sfl_levels * config.sfl_rollout

    def steps(updates):
        n = np.asarray(updates, np.int64)
        return n * batch + (-(-n // config.sfl_refresh)) * scoring

    return steps


def num_updates(config: Any) -> int:
    """The most updates whose steps, scoring included, fit in ``total_steps``."""
    steps = steps_after(config)
    batch = config.num_envs * config.num_steps
    n = int(config.total_steps // (batch + config.sfl_levels * config.sfl_rollout / config.sfl_refresh))
    while steps(n + 1) <= config.total_steps:
        n += 1
    while n > 0 and steps(n) > config.total_steps:
        n -= 1
    return n


def check(config: Any, require: Callable) -> None:
    require(config.sfl_batch >= 1 and config.sfl_levels >= config.sfl_batch and config.sfl_levels % config.sfl_batch == 0,
            f"sfl_levels={config.sfl_levels} must be a positive multiple of sfl_batch={config.sfl_batch}")
    require(1 <= config.sfl_buffer <= config.sfl_levels, f"sfl_buffer must be in [1, sfl_levels], got {config.sfl_buffer}")
    require(config.sfl_rollout >= 1, f"sfl_rollout must be >= 1, got {config.sfl_rollout}")
    require(config.sfl_refresh >= 1, f"sfl_refresh must be >= 1, got {config.sfl_refresh}")
    require(0.0 <= config.sfl_ratio <= 1.0, f"sfl_ratio must be in [0, 1], got {config.sfl_ratio}")
    first = steps_after(config)(1)
    require(config.total_steps >= first, (
        f"total_steps={config.total_steps} is below SFL's first update of {int(first):,} steps (scoring "
        f"{config.sfl_levels:,} levels x {config.sfl_rollout:,} steps, then one rollout): raise total_steps or "
        "lower sfl_levels / sfl_rollout"))

