"""DQN on CartPole written "the plain way": one file, one ``make_train`` closure, the whole training
run as a single ``lax.scan`` of updates, gymnax stepped directly and a flashbax trajectory buffer
in the carry. It is the baseline that ``value_based_cartpole.py`` compares the kit's DQN against.

The configuration is read from the kit's defaults (``jaxrl.algorithms.dqn.DQNConfig()`` and
``DQNHParams()``) so that the two stay in step, and every update does the kit's work: ``num_envs``
environments stepped ``num_steps`` times epsilon-greedily, the transitions added to a replay of
``buffer_size`` (``buffer_size // num_envs`` per environment, each transition with its
pre-reset next observation), then, once ``learning_starts`` environment steps have been
collected, ``gradient_steps`` Adam steps (global-norm clipped, learning rate optionally annealed
linearly over the updates) on batches of ``batch_size`` sequences of ``n_step`` transitions
(n-step returns cut at the end of an episode and bootstrapped from where it ended), a target
network refreshed every ``target_update_every`` updates, and optionally Double DQN targets. Only
the MSE / Huber losses are written here (not the classification heads).
"""

from __future__ import annotations

import dataclasses

import flashbax
import flax.linen as nn
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrl.algorithms.dqn import DQNConfig, DQNHParams


class QNetwork(nn.Module):
    num_actions: int
    hidden_sizes: tuple[int, ...]
    activation: str = "relu"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x):
        act = getattr(nn, self.activation)
        for size in self.hidden_sizes:
            x = nn.Dense(size, kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = act(x)
        return nn.Dense(self.num_actions, kernel_init=nn.initializers.orthogonal(1.0))(x)


def make_train(total_steps: int, config: DQNConfig | None = None, hparams: DQNHParams | None = None):
    """``train(key) -> mean return of the episodes finished in each update (NaN if none)``."""
    cfg = dataclasses.replace(config or DQNConfig(), total_steps=total_steps)
    hp = hparams or DQNHParams()
    if cfg.value_loss not in ("mse", "huber") or cfg.torso not in ("auto", "mlp"):
        raise NotImplementedError("plain_dqn writes DQN with an MLP and an mse or huber loss only")

    env, env_params = gymnax.make("CartPole-v1")
    obs_shape = env.observation_space(env_params).shape
    num_actions = env.num_actions
    num_envs, num_steps = cfg.num_envs, cfg.num_steps
    steps_per_update = num_envs * num_steps
    num_updates = total_steps // steps_per_update
    net = QNetwork(num_actions, tuple(cfg.hidden_sizes), cfg.activation, cfg.layer_norm)
    n = cfg.n_step
    # Annealing, as the kit does it: lr x (1 - update / num_updates) for the update that takes the
    # step; optax counts gradient steps, which begin with the first update that may learn.
    first_learning_update = max(-(-cfg.learning_starts // steps_per_update) - 1, -(-n // num_steps) - 1, 0)

    def annealed(count):
        return hp.lr * (1.0 - (first_learning_update + count // cfg.gradient_steps) / num_updates)

    lr = annealed if cfg.anneal_lr else hp.lr
    tx = optax.chain(optax.clip_by_global_norm(hp.max_grad_norm), optax.adam(lr, eps=hp.adam_eps))
    buffer = flashbax.make_trajectory_buffer(
        add_batch_size=num_envs,
        sample_batch_size=cfg.batch_size,
        sample_sequence_length=n,
        period=1,
        min_length_time_axis=n,
        max_length_time_axis=cfg.buffer_size // num_envs,
    )
    v_reset = jax.vmap(env.reset, in_axes=(0, None))
    v_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    eps_steps = max(hp.eps_fraction * total_steps, 1.0)

    def loss(params, target_params, batch):
        # batch: [batch_size, n, ...], n consecutive transitions of one environment. The return
        # sums rewards up to the first transition that ends the episode (index `last`) and
        # bootstraps from the observation that transition reached, unless it terminated.
        ended = batch["terminated"] + batch["truncated"] - batch["terminated"] * batch["truncated"]
        alive = jnp.cumprod(1.0 - ended, axis=1)
        counts = jnp.concatenate([jnp.ones_like(alive[:, :1]), alive[:, :-1]], axis=1)
        discounts = hp.gamma ** jnp.arange(n, dtype=jnp.float32)
        n_step_return = (counts * discounts * batch["reward"]).sum(axis=1)
        last = (counts.sum(axis=1) - 1).astype(jnp.int32)
        terminated_last = jnp.take_along_axis(batch["terminated"], last[:, None], axis=1)[:, 0]
        bootstrap_discount = hp.gamma ** (last + 1.0) * (1.0 - terminated_last)
        bootstrap_obs = jnp.take_along_axis(batch["next_obs"], last.reshape((-1, 1) + (1,) * len(obs_shape)), axis=1)[:, 0]

        q_next_target = net.apply(target_params, bootstrap_obs)
        q_next_select = net.apply(params, bootstrap_obs) if cfg.double else q_next_target
        next_action = jnp.argmax(q_next_select, axis=-1)
        q_next = jnp.take_along_axis(q_next_target, next_action[:, None], axis=-1)[:, 0]
        target = jax.lax.stop_gradient(n_step_return + bootstrap_discount * q_next)
        first = jax.tree.map(lambda x: x[:, 0], batch)
        q = jnp.take_along_axis(net.apply(params, first["obs"]), first["action"][:, None], axis=-1)[:, 0]
        if cfg.value_loss == "huber":
            return optax.huber_loss(q, target, delta=hp.huber_delta).mean()
        return 0.5 * jnp.square(q - target).mean()

    def train(key):
        key, init_key, reset_key = jax.random.split(key, 3)
        params = net.init(init_key, jnp.zeros((1, *obs_shape)))
        opt_state = tx.init(params)
        obs, env_state = v_reset(jax.random.split(reset_key, num_envs), env_params)
        buffer_state = buffer.init(
            {
                "obs": jnp.zeros(obs_shape),
                "action": jnp.zeros((), jnp.int32),
                "reward": jnp.zeros(()),
                "terminated": jnp.zeros(()),
                "truncated": jnp.zeros(()),
                "next_obs": jnp.zeros(obs_shape),
            }
        )

        def update(carry, _):
            params, target_params, opt_state, buffer_state, env_state, obs, ep_ret, step, key = carry
            key, rollout_key, learn_key = jax.random.split(key, 3)
            frac = jnp.clip(step * steps_per_update / eps_steps, 0.0, 1.0)
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
                transition = {
                    "obs": obs,
                    "action": action,
                    "reward": reward.astype(jnp.float32),
                    "terminated": term.astype(jnp.float32),
                    "truncated": trunc.astype(jnp.float32),
                    "next_obs": info["final_observation"],
                }
                return (env_state, next_obs, ep_ret, key), (transition, finished, done)

            (env_state, obs, ep_ret, _), (traj, finished, done) = jax.lax.scan(
                env_step, (env_state, obs, ep_ret, rollout_key), None, num_steps
            )
            # flashbax wants [envs, time, ...]
            buffer_state = buffer.add(buffer_state, jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), traj))
            step = step + 1

            def learn(params, opt_state):
                def sgd(carry, sample_key):
                    params, opt_state = carry
                    batch = buffer.sample(buffer_state, sample_key).experience
                    grads = jax.grad(loss)(params, target_params, batch)
                    updates, opt_state = tx.update(grads, opt_state, params)
                    return (optax.apply_updates(params, updates), opt_state), None

                keys = jax.random.split(learn_key, cfg.gradient_steps)
                return jax.lax.scan(sgd, (params, opt_state), keys)[0]

            learning = (step * steps_per_update >= cfg.learning_starts) & buffer.can_sample(buffer_state)
            params, opt_state = jax.lax.cond(learning, learn, lambda p, o: (p, o), params, opt_state)
            refresh = learning & (step % cfg.target_update_every == 0)
            target_params = jax.tree.map(
                lambda new, old: jnp.where(refresh, new, old),
                optax.incremental_update(params, target_params, hp.tau),
                target_params,
            )
            done_count = done.sum()
            mean_return = jnp.where(done_count > 0, finished.sum() / jnp.maximum(done_count, 1), jnp.nan)
            carry = (params, target_params, opt_state, buffer_state, env_state, obs, ep_ret, step, key)
            return carry, mean_return

        carry = (params, params, opt_state, buffer_state, env_state, obs, jnp.zeros(num_envs), jnp.zeros((), jnp.int32), key)
        _, returns = jax.lax.scan(update, carry, None, num_updates)
        return returns

    return train
