"""Prioritized Level Replay (Jiang, Grefenstette and Rocktäschel, 2021, "Prioritized Level
Replay", ICML) with recurrent PPO on the kit's maze, written "the plain way": one file, one
``make_train`` closure, the whole run as a single ``lax.scan`` of updates, each update a
``lax.cond`` between a "replay" branch and a "new levels" branch, the level buffer as arrays, in
the style of the public UED code (JaxUED, PureJaxRL). Only the environment comes from the kit.

It is the plain baseline that ``experiments/bench/ued_speed.py`` times the kit's ``plr``
curriculum against, with the same configuration (the ``plr`` defaults below) and the same work
per update: a rollout of 32 envs x 256 steps on the chosen levels, GAE, 4 epochs x 4
minibatches of whole env sequences replayed through the GRUs, MaxMC scores, buffer update.
"""

from __future__ import annotations

import functools

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import envs
from envs.maze import Maze

NUM_ENVS, NUM_STEPS, UPDATE_EPOCHS, NUM_MINIBATCHES = 32, 256, 4, 4
LR, MAX_GRAD_NORM, GAMMA, GAE_LAMBDA = 3e-4, 0.5, 0.995, 0.98
CLIP_EPS, ENT_COEF, VF_COEF = 0.2, 0.01, 0.5
HIDDEN, NUM_ACTIONS = 64, 3
BUFFER_SIZE, MIN_FILL, REPLAY_PROB, TEMPERATURE, STALENESS = 4000, 2000, 0.8, 0.3, 0.3


class ResetGRU(nn.Module):
    """A GRU scanned over time (leading axis); the memory is zeroed where ``reset`` is set."""

    @functools.partial(nn.scan, variable_broadcast="params", split_rngs={"params": False}, in_axes=0, out_axes=0)
    @nn.compact
    def __call__(self, memory, inputs):
        x, reset = inputs
        memory = jnp.where(reset[:, None], jnp.zeros_like(memory), memory)
        return nn.GRUCell(features=HIDDEN)(memory, x)


class RecurrentNet(nn.Module):
    """Dense + relu, GRU, Dense head; inputs [T, B, ...], memory [B, HIDDEN]."""

    outputs: int
    head_scale: float

    @nn.compact
    def __call__(self, memory, obs, resets):
        ortho = nn.initializers.orthogonal
        x = nn.relu(nn.Dense(HIDDEN, kernel_init=ortho(np.sqrt(2)), bias_init=nn.initializers.zeros)(obs))
        memory, x = ResetGRU()(memory, (x, resets))
        return memory, nn.Dense(self.outputs, kernel_init=ortho(self.head_scale), bias_init=nn.initializers.zeros)(x)


def make_train(total_steps: int):
    maze = Maze()
    level_params = maze.default_params.replace(n_walls=60)
    env_params = envs.tile_params(level_params, NUM_ENVS)
    env = envs.make_vector(envs.AutoReplay(maze, maze.sample_level), NUM_ENVS)
    num_updates = total_steps // (NUM_ENVS * NUM_STEPS)
    actor, critic = RecurrentNet(NUM_ACTIONS, 0.01), RecurrentNet(1, 1.0)
    tx = optax.chain(optax.clip_by_global_norm(MAX_GRAD_NORM), optax.adam(LR, eps=1e-5))
    sample_levels = jax.vmap(maze.sample_level, in_axes=(0, None))
    zero_memory = jnp.zeros((NUM_ENVS, HIDDEN))

    def rollout_and_learn(key, params, opt_state, levels):
        """One PPO update on ``levels`` (leaves [NUM_ENVS, ...]): the transitions' values and
        episode statistics come back for scoring."""
        key, reset_key, rollout_key, learn_key = jax.random.split(key, 4)
        obs, env_state = env.reset_to_level(reset_key, levels, env_params)

        def env_step(carry, step_key):
            env_state, obs, (actor_memory, critic_memory), last_done = carry
            act_key, step_key = jax.random.split(step_key)
            actor_memory, logits = actor.apply(params["actor"], actor_memory, obs[None], last_done[None])
            critic_memory, value = critic.apply(params["critic"], critic_memory, obs[None], last_done[None])
            action, log_prob = distrax.Categorical(logits=logits[0]).sample_and_log_prob(seed=act_key)
            next_obs, env_state, reward, terminated, truncated, info = env.step(step_key, env_state, action, env_params)
            done = terminated | truncated
            transition = dict(obs=obs, action=action, log_prob=log_prob, value=value[0, :, 0], reward=reward,
                              terminated=terminated, done=done, reset=last_done, critic_memory=critic_memory,
                              final_obs=info["final_observation"], episode_done=info["episode_done"],
                              episode_return=info["episode_return"])
            return (env_state, next_obs, (actor_memory, critic_memory), done), transition

        carry = (env_state, obs, (zero_memory, zero_memory), jnp.zeros(NUM_ENVS, bool))
        _, traj = jax.lax.scan(env_step, carry, jax.random.split(rollout_key, NUM_STEPS))

        # Deviation from the public code (which treats every done as terminal): truncated
        # episodes bootstrap from the critic, run from its memory after step t on the pre-reset obs.
        flat = NUM_STEPS * NUM_ENVS
        _, next_value = critic.apply(params["critic"], traj["critic_memory"].reshape(flat, HIDDEN),
                                     traj["final_obs"].reshape(1, flat, -1), jnp.zeros((1, flat), bool))
        next_value = next_value.reshape(NUM_STEPS, NUM_ENVS)
        deltas = traj["reward"] + GAMMA * (1.0 - traj["terminated"]) * next_value - traj["value"]

        def gae_step(advantage, x):
            delta, done = x
            advantage = delta + GAMMA * GAE_LAMBDA * (1.0 - done) * advantage
            return advantage, advantage

        _, advantages = jax.lax.scan(gae_step, jnp.zeros(NUM_ENVS), (deltas, traj["done"]), reverse=True)
        targets = advantages + traj["value"]

        def loss_fn(params, batch):
            memory = jnp.zeros((batch["obs"].shape[1], HIDDEN))
            _, logits = actor.apply(params["actor"], memory, batch["obs"], batch["reset"])
            _, value = critic.apply(params["critic"], memory, batch["obs"], batch["reset"])
            dist, value = distrax.Categorical(logits=logits), value[..., 0]
            ratio = jnp.exp(dist.log_prob(batch["action"]) - batch["log_prob"])
            adv = batch["advantage"]
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            policy_loss = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - CLIP_EPS, 1 + CLIP_EPS) * adv).mean()
            value_clipped = batch["value"] + jnp.clip(value - batch["value"], -CLIP_EPS, CLIP_EPS)
            value_loss = 0.5 * jnp.maximum(jnp.square(value - batch["target"]),
                                           jnp.square(value_clipped - batch["target"])).mean()
            return policy_loss + VF_COEF * value_loss - ENT_COEF * dist.entropy().mean()

        data = {k: traj[k] for k in ("obs", "action", "log_prob", "value", "reset")}
        data.update(advantage=advantages, target=targets)

        def epoch(carry, epoch_key):
            params, opt_state = carry
            # Minibatches are sets of whole env sequences: [NUM_MINIBATCHES, T, envs/mb, ...].
            perm = jax.random.permutation(epoch_key, NUM_ENVS)
            minibatches = jax.tree.map(
                lambda x: jnp.swapaxes(x[:, perm].reshape(NUM_STEPS, NUM_MINIBATCHES, -1, *x.shape[2:]), 0, 1), data)

            def sgd_step(carry, batch):
                params, opt_state = carry
                grads = jax.grad(loss_fn)(params, batch)
                updates, opt_state = tx.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), None

            return jax.lax.scan(sgd_step, (params, opt_state), minibatches)[0], None

        (params, opt_state), _ = jax.lax.scan(epoch, (params, opt_state), jax.random.split(learn_key, UPDATE_EPOCHS))
        return params, opt_state, traj

    def max_mc(traj, prior_best):
        """MaxMC per env: mean_t (R_max - V(s_t)) and R_max."""
        rollout_best = jnp.where(traj["episode_done"], traj["episode_return"], -jnp.inf).max(axis=0)
        best = jnp.maximum(rollout_best, prior_best)
        return (best[None] - traj["value"]).mean(axis=0), best

    def replay_probabilities(buffer, now):
        filled = buffer["filled"]
        order = jnp.argsort(jnp.where(filled, -buffer["scores"], jnp.inf))  # best first, empty slots last
        rank = jnp.empty(BUFFER_SIZE, jnp.float32).at[order].set(jnp.arange(1, BUFFER_SIZE + 1, dtype=jnp.float32))
        h = jnp.where(filled, 1.0 / rank, 0.0) ** (1.0 / TEMPERATURE)
        p_score = h / jnp.maximum(h.sum(), 1e-30)
        stale = jnp.where(filled, (now - buffer["last_seen"]).astype(jnp.float32), 0.0)
        uniform = filled / jnp.maximum(filled.sum(), 1)
        p_stale = jnp.where(stale.sum() > 0, stale / jnp.maximum(stale.sum(), 1e-30), uniform)
        return (1.0 - STALENESS) * p_score + STALENESS * p_stale

    def on_replay_levels(key, params, opt_state, buffer, now):
        sample_key, learn_key = jax.random.split(key)
        slots = jax.random.choice(sample_key, BUFFER_SIZE, (NUM_ENVS,), p=replay_probabilities(buffer, now))
        levels = jax.tree.map(lambda x: x[slots], buffer["levels"])
        params, opt_state, traj = rollout_and_learn(learn_key, params, opt_state, levels)
        scores, best = max_mc(traj, buffer["max_returns"][slots])
        buffer = dict(buffer, scores=buffer["scores"].at[slots].set(scores),
                      last_seen=buffer["last_seen"].at[slots].set(now),
                      max_returns=buffer["max_returns"].at[slots].max(best))
        return params, opt_state, buffer, traj

    def on_new_levels(key, params, opt_state, buffer, now):
        level_key, learn_key = jax.random.split(key)
        levels = sample_levels(jax.random.split(level_key, NUM_ENVS), level_params)
        params, opt_state, traj = rollout_and_learn(learn_key, params, opt_state, levels)
        scores, best = max_mc(traj, jnp.zeros(NUM_ENVS))

        def insert(buffer, item):
            # Deviation: no duplicate check (the kit's buffer has one; random 60-wall mazes repeat rarely).
            level, score, best = item
            slot = jnp.argmin(jnp.where(buffer["filled"], buffer["scores"], -jnp.inf))  # an empty slot first
            write = ~buffer["filled"][slot] | (score > buffer["scores"][slot])

            def put(old, new):
                return old.at[slot].set(jnp.where(write, new, old[slot]))

            return dict(levels=jax.tree.map(put, buffer["levels"], level), scores=put(buffer["scores"], score),
                        last_seen=put(buffer["last_seen"], now), max_returns=put(buffer["max_returns"], best),
                        filled=put(buffer["filled"], True)), None

        buffer, _ = jax.lax.scan(insert, buffer, (levels, scores, best))
        return params, opt_state, buffer, traj

    def train(key):
        key, actor_key, critic_key, level_key = jax.random.split(key, 4)
        obs = jnp.zeros((1, NUM_ENVS, maze.observation_size))
        resets = jnp.zeros((1, NUM_ENVS), bool)
        params = {"actor": actor.init(actor_key, zero_memory, obs, resets),
                  "critic": critic.init(critic_key, zero_memory, obs, resets)}
        opt_state = tx.init(params)
        example = maze.sample_level(level_key, level_params)
        buffer = dict(levels=jax.tree.map(lambda x: jnp.zeros((BUFFER_SIZE, *x.shape), x.dtype), example),
                      scores=jnp.zeros(BUFFER_SIZE), last_seen=jnp.zeros(BUFFER_SIZE, jnp.int32),
                      max_returns=jnp.zeros(BUFFER_SIZE), filled=jnp.zeros(BUFFER_SIZE, bool))

        def update(carry, now):
            params, opt_state, buffer, key = carry
            key, draw_key, branch_key = jax.random.split(key, 3)
            # Replay once half the buffer is filled, with probability REPLAY_PROB (a draw per run).
            # Under vmap over seeds the predicate is batched, so lax.cond runs both branches, as
            # the public code would if vmapped; the kit draws its schedule statically instead.
            replay = (buffer["filled"].sum() >= MIN_FILL) & (jax.random.uniform(draw_key) < REPLAY_PROB)
            params, opt_state, buffer, traj = jax.lax.cond(replay, on_replay_levels, on_new_levels,
                                                           branch_key, params, opt_state, buffer, now)
            ended = traj["episode_done"].sum()
            mean_return = jnp.where(ended > 0, (traj["episode_return"] * traj["episode_done"]).sum()
                                    / jnp.maximum(ended, 1), jnp.nan)
            return (params, opt_state, buffer, key), mean_return

        _, returns = jax.lax.scan(update, (params, opt_state, buffer, key), jnp.arange(num_updates, dtype=jnp.int32))
        return returns.astype(jnp.float32)

    return train
