"""PPO on CartPole written "the plain way": one file, one closure, the whole training run as a
single ``lax.scan`` of updates, no runner, no chunking, no metric reduction beyond what the
benchmark needs. It is the baseline that ``ppo_cartpole.py`` compares the kit against, with the
same configuration and the same amount of work per update (rollout, GAE, 4 epochs x 4
minibatches, Adam with clipping and linear annealing).
"""

from __future__ import annotations

import distrax
import flax.linen as nn
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import optax

NUM_ENVS, NUM_STEPS, EPOCHS, MINIBATCHES = 4, 128, 4, 4
LR, GAMMA, LAMBDA, CLIP, ENT, VF, MAX_NORM = 2.5e-4, 0.99, 0.95, 0.2, 0.01, 0.5, 0.5


class Net(nn.Module):
    num_actions: int

    @nn.compact
    def __call__(self, x):
        init = nn.initializers.orthogonal
        a = nn.tanh(nn.Dense(64, kernel_init=init(np.sqrt(2)))(x))
        a = nn.tanh(nn.Dense(64, kernel_init=init(np.sqrt(2)))(a))
        logits = nn.Dense(self.num_actions, kernel_init=init(0.01))(a)
        c = nn.tanh(nn.Dense(64, kernel_init=init(np.sqrt(2)))(x))
        c = nn.tanh(nn.Dense(64, kernel_init=init(np.sqrt(2)))(c))
        return distrax.Categorical(logits=logits), nn.Dense(1, kernel_init=init(1.0))(c).squeeze(-1)


def make_train(total_steps: int):
    env, env_params = gymnax.make("CartPole-v1")
    net = Net(env.num_actions)
    num_updates = total_steps // (NUM_ENVS * NUM_STEPS)
    batch = NUM_ENVS * NUM_STEPS
    tx = optax.chain(
        optax.clip_by_global_norm(MAX_NORM),
        optax.adam(optax.linear_schedule(LR, 0.0, num_updates * EPOCHS * MINIBATCHES), eps=1e-5),
    )
    v_reset = jax.vmap(env.reset, in_axes=(0, None))
    v_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def train(key):
        key, init_key, reset_key = jax.random.split(key, 3)
        params = net.init(init_key, jnp.zeros((4,)))
        opt_state = tx.init(params)
        obs, env_state = v_reset(jax.random.split(reset_key, NUM_ENVS), env_params)

        def update(carry, _):
            params, opt_state, env_state, obs, ep_ret, key = carry

            def env_step(carry, _):
                env_state, obs, ep_ret, key = carry
                key, act_key, step_key = jax.random.split(key, 3)
                dist, value = net.apply(params, obs)
                action, log_prob = dist.sample_and_log_prob(seed=act_key)
                next_obs, env_state, reward, term, trunc, info = v_step(
                    jax.random.split(step_key, NUM_ENVS), env_state, action, env_params
                )
                done = term | trunc
                ep_ret = ep_ret + reward
                finished = jnp.where(done, ep_ret, 0.0)
                ep_ret = jnp.where(done, 0.0, ep_ret)
                out = (obs, action, log_prob, value, reward, term, done, info["final_observation"], finished)
                return (env_state, next_obs, ep_ret, key), out

            (env_state, obs, ep_ret, key), traj = jax.lax.scan(env_step, (env_state, obs, ep_ret, key), None, NUM_STEPS)
            t_obs, t_act, t_logp, t_val, t_rew, t_term, t_done, t_final, t_finished = traj
            _, next_val = net.apply(params, t_final)
            deltas = t_rew + GAMMA * (1.0 - t_term) * next_val - t_val

            def gae_step(adv, x):
                delta, done = x
                adv = delta + GAMMA * LAMBDA * (1.0 - done) * adv
                return adv, adv

            _, adv = jax.lax.scan(gae_step, jnp.zeros(NUM_ENVS), (deltas, t_done), reverse=True)
            targets = adv + t_val

            def loss(params, mb):
                o, a, lp_old, v_old, ad, tg = mb
                dist, v = net.apply(params, o)
                ratio = jnp.exp(dist.log_prob(a) - lp_old)
                ad = (ad - ad.mean()) / (ad.std() + 1e-8)
                pg = -jnp.minimum(ratio * ad, jnp.clip(ratio, 1 - CLIP, 1 + CLIP) * ad).mean()
                v_clip = v_old + jnp.clip(v - v_old, -CLIP, CLIP)
                vl = 0.5 * jnp.maximum(jnp.square(v - tg), jnp.square(v_clip - tg)).mean()
                return pg + VF * vl - ENT * dist.entropy().mean()

            data = jax.tree.map(lambda x: x.reshape((batch,) + x.shape[2:]), (t_obs, t_act, t_logp, t_val, adv, targets))

            def epoch(carry, _):
                params, opt_state, key = carry
                key, perm_key = jax.random.split(key)
                perm = jax.random.permutation(perm_key, batch)
                mbs = jax.tree.map(lambda x: x[perm].reshape((MINIBATCHES, -1) + x.shape[1:]), data)

                def sgd(carry, mb):
                    params, opt_state = carry
                    grads = jax.grad(loss)(params, mb)
                    updates, opt_state = tx.update(grads, opt_state, params)
                    return (optax.apply_updates(params, updates), opt_state), None

                (params, opt_state), _ = jax.lax.scan(sgd, (params, opt_state), mbs)
                return (params, opt_state, key), None

            (params, opt_state, key), _ = jax.lax.scan(epoch, (params, opt_state, key), None, EPOCHS)
            done_count = t_done.sum()
            mean_return = jnp.where(done_count > 0, t_finished.sum() / jnp.maximum(done_count, 1), jnp.nan)
            return (params, opt_state, env_state, obs, ep_ret, key), mean_return

        carry = (params, opt_state, env_state, obs, jnp.zeros(NUM_ENVS), key)
        _, returns = jax.lax.scan(update, carry, None, num_updates)
        return returns

    return train
