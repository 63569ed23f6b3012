"""PQN on CartPole written "the plain way": one file, one ``make_train`` closure, the whole training
run as a single ``lax.scan`` of updates, gymnax stepped directly. It is the baseline that
``value_based_cartpole.py`` compares the kit's PQN against.

The configuration is read from the kit's defaults (``jaxrl.algorithms.pqn.PQNConfig()`` and
``PQNHParams()``) so that the two stay in step, and every update does the kit's work: ``num_envs``
environments stepped ``num_steps`` times epsilon-greedily, Q(lambda) returns over the rollout
(greedy bootstraps from the pre-reset next observation, so truncated episodes are bootstrapped
from where they were cut), then ``update_epochs`` shuffled passes of ``num_minibatches`` Adam
steps (global-norm clipped) on a LayerNorm MLP. No replay, no target network. Only the MSE /
Huber losses are written here (not the classification heads).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrl.algorithms.pqn import PQNConfig, PQNHParams


class QNetwork(nn.Module):
    num_actions: int
    hidden_sizes: tuple[int, ...]
    activation: str = "relu"
    layer_norm: bool = True

    @nn.compact
    def __call__(self, x):
        act = getattr(nn, self.activation)
        for size in self.hidden_sizes:
            x = nn.Dense(size, kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = act(x)
        return nn.Dense(self.num_actions, kernel_init=nn.initializers.orthogonal(1.0))(x)


def make_train(total_steps: int, config: PQNConfig | None = None, hparams: PQNHParams | None = None):
    """``train(key) -> mean return of the episodes finished in each update (NaN if none)``."""
    cfg = dataclasses.replace(config or PQNConfig(), total_steps=total_steps)
    hp = hparams or PQNHParams()
    if cfg.value_loss not in ("mse", "huber") or cfg.torso not in ("auto", "mlp"):
        raise NotImplementedError("plain_pqn writes PQN with an MLP and an mse or huber loss only")

    env, env_params = gymnax.make("CartPole-v1")
    obs_shape = env.observation_space(env_params).shape
    num_actions = env.num_actions
    num_envs, num_steps = cfg.num_envs, cfg.num_steps
    epochs, minibatches = cfg.update_epochs, cfg.num_minibatches
    batch = num_envs * num_steps
    num_updates = total_steps // batch
    net = QNetwork(num_actions, tuple(cfg.hidden_sizes), cfg.activation, cfg.layer_norm)
    lr = optax.linear_schedule(hp.lr, 0.0, num_updates * epochs * minibatches) if cfg.anneal_lr else hp.lr
    tx = optax.chain(optax.clip_by_global_norm(hp.max_grad_norm), optax.adam(lr, eps=hp.adam_eps))
    v_reset = jax.vmap(env.reset, in_axes=(0, None))
    v_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    eps_steps = max(hp.eps_fraction * total_steps, 1.0)

    def loss(params, mb):
        obs, action, target = mb
        q = jnp.take_along_axis(net.apply(params, obs), action[:, None], axis=-1)[:, 0]
        if cfg.value_loss == "huber":
            return optax.huber_loss(q, target, delta=hp.huber_delta).mean()
        return 0.5 * jnp.square(q - target).mean()

    def train(key):
        key, init_key, reset_key = jax.random.split(key, 3)
        params = net.init(init_key, jnp.zeros((1, *obs_shape)))
        opt_state = tx.init(params)
        obs, env_state = v_reset(jax.random.split(reset_key, num_envs), env_params)

        def update(carry, _):
            params, opt_state, env_state, obs, ep_ret, step, key = carry
            key, rollout_key, shuffle_key = jax.random.split(key, 3)
            frac = jnp.clip(step * batch / eps_steps, 0.0, 1.0)
            epsilon = hp.eps_start + frac * (hp.eps_end - hp.eps_start)

            def env_step(carry, _):
                env_state, obs, ep_ret, key = carry
                key, act_key, step_key = jax.random.split(key, 3)
                explore_key, random_key = jax.random.split(act_key)
                greedy = jnp.argmax(net.apply(params, obs), axis=-1)
                random_action = jax.random.randint(random_key, (num_envs,), 0, num_actions)
                explore = jax.random.uniform(explore_key, (num_envs,)) < epsilon
                action = jnp.where(explore, random_action, greedy)
                next_obs, env_state, reward, term, trunc, info = v_step(
                    jax.random.split(step_key, num_envs), env_state, action, env_params
                )
                done = term | trunc
                ep_ret = ep_ret + reward
                finished = jnp.where(done, ep_ret, 0.0)
                ep_ret = jnp.where(done, 0.0, ep_ret)
                out = (obs, action, reward, term, done, info["final_observation"], finished)
                return (env_state, next_obs, ep_ret, key), out

            (env_state, obs, ep_ret, _), traj = jax.lax.scan(
                env_step, (env_state, obs, ep_ret, rollout_key), None, num_steps
            )
            t_obs, t_act, t_rew, t_term, t_done, t_final, t_finished = traj
            q_next = net.apply(params, t_final).max(axis=-1)

            # Q(lambda): G_t = r_t + gamma (1 - term_t) [q'_t + lambda (1 - done_t) (G_{t+1} - q'_t)],
            # started from G_T = q'_{T-1} so that the last step is the one-step target.
            def q_lambda(next_return, x):
                reward, term, done, q_next = x
                g = reward + hp.gamma * (1.0 - term) * (q_next + hp.q_lambda * (1.0 - done) * (next_return - q_next))
                return g, g

            _, targets = jax.lax.scan(q_lambda, q_next[-1], (t_rew, t_term, t_done, q_next), reverse=True)
            data = jax.tree.map(lambda x: x.reshape((batch,) + x.shape[2:]), (t_obs, t_act, targets))

            def epoch(carry, _):
                params, opt_state, key = carry
                key, perm_key = jax.random.split(key)
                perm = jax.random.permutation(perm_key, batch)
                mbs = jax.tree.map(lambda x: x[perm].reshape((minibatches, -1) + x.shape[1:]), data)

                def sgd(carry, mb):
                    params, opt_state = carry
                    grads = jax.grad(loss)(params, mb)
                    updates, opt_state = tx.update(grads, opt_state, params)
                    return (optax.apply_updates(params, updates), opt_state), None

                (params, opt_state), _ = jax.lax.scan(sgd, (params, opt_state), mbs)
                return (params, opt_state, key), None

            (params, opt_state, _), _ = jax.lax.scan(epoch, (params, opt_state, shuffle_key), None, epochs)
            done_count = t_done.sum()
            mean_return = jnp.where(done_count > 0, t_finished.sum() / jnp.maximum(done_count, 1), jnp.nan)
            return (params, opt_state, env_state, obs, ep_ret, step + 1, key), mean_return

        carry = (params, opt_state, env_state, obs, jnp.zeros(num_envs), jnp.zeros((), jnp.int32), key)
        _, returns = jax.lax.scan(update, carry, None, num_updates)
        return returns

    return train
