"""Continuous SAC on Pendulum-v1 written "the plain way": one file, one ``make_train`` closure, the
whole training run as a single ``lax.scan`` of updates, gymnax stepped directly and a flashbax
trajectory buffer in the carry. It is the baseline that ``off_policy_speed.py`` compares the
kit's SAC against.

The configuration is read from the kit's defaults (``jaxrl.algorithms.sac.defaults(env_name,
discrete=False)``) so that the two stay in step, and every update does the kit's work:
``num_envs`` environments stepped ``num_steps`` times (uniformly random actions in [-1, 1] while
fewer than ``learning_starts`` environment steps have been taken, then a sample of the
tanh-Gaussian policy), actions clipped to [-1, 1] and mapped affinely onto the environment's
bounds, the transitions added to a replay of ``buffer_size`` (``buffer_size // num_envs`` per
environment, each with its pre-reset next observation), then, once ``learning_starts``
environment steps have been collected, ``gradient_steps`` learner steps on batches of
``batch_size``. A learner step is Haarnoja et al. (2018): twin critics (one vmapped module)
regressed on r + gamma (1 - terminated) (min_i Q'_i(s', a') - alpha log pi(a'|s')), then the
actor on alpha log pi(a|s) - min_i Q_i(s, a) with the updated critics, then log alpha towards
the target entropy -action_dim x scale, then Polyak-averaged target critics; each with its own
Adam. Networks are MLPs (orthogonal initialisation, the kit's sizes); the actor has a mean head
and a log standard deviation head clipped to [-5, 2].
"""

from __future__ import annotations

import dataclasses
import math

import flashbax
import flax.linen as nn
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrl.algorithms import sac

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


class MLP(nn.Module):
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
        return x


class GaussianActor(nn.Module):
    """Mean and clipped log standard deviation of the pre-tanh Gaussian."""

    action_dim: int
    hidden_sizes: tuple[int, ...]
    activation: str = "relu"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, obs):
        x = MLP(self.hidden_sizes, self.activation, self.layer_norm)(obs)
        mean = nn.Dense(self.action_dim, kernel_init=nn.initializers.orthogonal(0.01))(x)
        log_std = nn.Dense(self.action_dim, kernel_init=nn.initializers.orthogonal(0.01))(x)
        return mean, jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)


class QFunction(nn.Module):
    hidden_sizes: tuple[int, ...]
    activation: str = "relu"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, obs, action):
        x = MLP(self.hidden_sizes, self.activation, self.layer_norm)(jnp.concatenate([obs, action], axis=-1))
        return nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0))(x)[..., 0]


# Two critics with stacked weights, evaluated by one vmapped call: outputs [2, batch].
TwinQ = nn.vmap(
    QFunction,
    variable_axes={"params": 0},
    split_rngs={"params": True},
    in_axes=None,
    out_axes=0,
    axis_size=2,
)


def sample_action(key, mean, log_std):
    """tanh(mean + std x noise) and its log-density: the Gaussian's minus log |d tanh(u)/du|,
    the latter as 2 (log 2 - u - softplus(-2u)) so it stays finite where tanh saturates."""
    noise = jax.random.normal(key, mean.shape)
    u = mean + jnp.exp(log_std) * noise
    gaussian = -0.5 * jnp.square(noise) - log_std - 0.5 * math.log(2.0 * math.pi)
    log_det = 2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u))
    return jnp.tanh(u), (gaussian - log_det).sum(axis=-1)


def make_train(total_steps: int, config=None, hparams=None, env_name: str = "Pendulum-v1"):
    """``train(key) -> mean return of the episodes finished in each update (NaN if none)``."""
    default_config, default_hparams = sac.defaults(env_name, discrete=False)
    cfg = dataclasses.replace(config or default_config, total_steps=total_steps)
    hp = hparams or default_hparams

    env, env_params = gymnax.make(env_name)
    space = env.action_space(env_params)
    if not isinstance(space, gymnax.environments.spaces.Box):
        raise NotImplementedError("plain_sac writes continuous SAC only")
    obs_shape = env.observation_space(env_params).shape
    action_dim = int(np.prod(space.shape))
    low = jnp.broadcast_to(jnp.asarray(space.low, jnp.float32), space.shape)
    high = jnp.broadcast_to(jnp.asarray(space.high, jnp.float32), space.shape)
    num_envs, num_steps = cfg.num_envs, cfg.num_steps
    steps_per_update = num_envs * num_steps
    num_updates = total_steps // steps_per_update
    entropy_target = -hp.target_entropy_scale * action_dim

    hidden = tuple(cfg.hidden_sizes)
    actor = GaussianActor(action_dim, hidden, cfg.activation, cfg.layer_norm)
    critic = TwinQ(hidden, cfg.activation, cfg.layer_norm)
    actor_tx, critic_tx, alpha_tx = optax.adam(hp.actor_lr), optax.adam(hp.critic_lr), optax.adam(hp.alpha_lr)
    buffer = flashbax.make_trajectory_buffer(
        add_batch_size=num_envs,
        sample_batch_size=cfg.batch_size,
        sample_sequence_length=1,
        period=1,
        min_length_time_axis=1,
        max_length_time_axis=cfg.buffer_size // num_envs,
    )
    v_reset = jax.vmap(env.reset, in_axes=(0, None))
    v_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def to_env_action(action):
        return low + (jnp.clip(action, -1.0, 1.0) + 1.0) * 0.5 * (high - low)

    def learner_step(learner, batch, key):
        """One gradient step of critics, actor and temperature, then the target critics."""
        actor_params, critic_params, target_params, log_alpha, actor_opt, critic_opt, alpha_opt = learner
        next_key, actor_key = jax.random.split(key)
        alpha = jnp.exp(log_alpha)

        next_action, next_log_prob = sample_action(next_key, *actor.apply(actor_params, batch["next_obs"]))
        next_q = critic.apply(target_params, batch["next_obs"], next_action).min(axis=0)
        target = batch["reward"] + hp.gamma * (1.0 - batch["terminated"]) * (next_q - alpha * next_log_prob)
        target = jax.lax.stop_gradient(target)

        def critic_loss(params):
            q = critic.apply(params, batch["obs"], batch["action"])
            return 0.5 * jnp.square(q - target).mean(axis=-1).sum()

        grads = jax.grad(critic_loss)(critic_params)
        updates, critic_opt = critic_tx.update(grads, critic_opt, critic_params)
        critic_params = optax.apply_updates(critic_params, updates)

        def actor_loss(params):
            action, log_prob = sample_action(actor_key, *actor.apply(params, batch["obs"]))
            q = critic.apply(critic_params, batch["obs"], action).min(axis=0)
            return (alpha * log_prob - q).mean(), log_prob

        grads, log_prob = jax.grad(actor_loss, has_aux=True)(actor_params)
        updates, actor_opt = actor_tx.update(grads, actor_opt, actor_params)
        actor_params = optax.apply_updates(actor_params, updates)

        entropy_gap = jax.lax.stop_gradient(-log_prob - entropy_target).mean()
        alpha_grad = jax.grad(lambda la: la * entropy_gap)(log_alpha)
        updates, alpha_opt = alpha_tx.update(alpha_grad, alpha_opt, log_alpha)
        log_alpha = optax.apply_updates(log_alpha, updates)

        target_params = jax.tree.map(lambda o, t: hp.tau * o + (1.0 - hp.tau) * t, critic_params, target_params)
        return actor_params, critic_params, target_params, log_alpha, actor_opt, critic_opt, alpha_opt

    def train(key):
        key, actor_key, critic_key, reset_key = jax.random.split(key, 4)
        dummy_obs, dummy_action = jnp.zeros((1, *obs_shape)), jnp.zeros((1, action_dim))
        actor_params = actor.init(actor_key, dummy_obs)
        critic_params = critic.init(critic_key, dummy_obs, dummy_action)
        log_alpha = jnp.log(jnp.asarray(hp.init_alpha, jnp.float32))
        learner = (
            actor_params,
            critic_params,
            critic_params,
            log_alpha,
            actor_tx.init(actor_params),
            critic_tx.init(critic_params),
            alpha_tx.init(log_alpha),
        )
        obs, env_state = v_reset(jax.random.split(reset_key, num_envs), env_params)
        buffer_state = buffer.init(
            {
                "obs": jnp.zeros(obs_shape),
                "action": jnp.zeros(action_dim),
                "reward": jnp.zeros(()),
                "terminated": jnp.zeros(()),
                "next_obs": jnp.zeros(obs_shape),
            }
        )

        def update(carry, _):
            learner, buffer_state, env_state, obs, ep_ret, step, key = carry
            key, rollout_key, learn_key = jax.random.split(key, 3)
            warming_up = step * steps_per_update < cfg.learning_starts

            def env_step(carry, _):
                env_state, obs, ep_ret, key = carry
                key, random_key, policy_key, step_key = jax.random.split(key, 4)
                random_action = jax.random.uniform(random_key, (num_envs, action_dim), minval=-1.0, maxval=1.0)
                policy_action, _ = sample_action(policy_key, *actor.apply(learner[0], obs))
                action = jnp.where(warming_up, random_action, policy_action)
                next_obs, env_state, reward, term, trunc, info = v_step(
                    jax.random.split(step_key, num_envs), env_state, to_env_action(action), env_params
                )
                done = term | trunc
                ep_ret = ep_ret + reward
                finished = jnp.where(done, ep_ret, 0.0)
                ep_ret = jnp.where(done, 0.0, ep_ret)
                transition = {
                    "obs": obs,
                    "action": action,
                    "reward": reward,
                    "terminated": term.astype(jnp.float32),
                    "next_obs": info["final_observation"],
                }
                return (env_state, next_obs, ep_ret, key), (transition, finished, done)

            (env_state, obs, ep_ret, _), (traj, finished, done) = jax.lax.scan(
                env_step, (env_state, obs, ep_ret, rollout_key), None, num_steps
            )
            # flashbax wants [envs, time, ...]
            buffer_state = buffer.add(buffer_state, jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), traj))
            step = step + 1

            def learn(learner):
                def gradient_step(learner, step_key):
                    sample_key, learner_key = jax.random.split(step_key)
                    # [batch, 1, ...] sequences of one transition
                    batch = jax.tree.map(lambda x: x[:, 0], buffer.sample(buffer_state, sample_key).experience)
                    return learner_step(learner, batch, learner_key), None

                return jax.lax.scan(gradient_step, learner, jax.random.split(learn_key, cfg.gradient_steps))[0]

            learning = (step * steps_per_update >= cfg.learning_starts) & buffer.can_sample(buffer_state)
            learner = jax.lax.cond(learning, learn, lambda learner: learner, learner)
            done_count = done.sum()
            mean_return = jnp.where(done_count > 0, finished.sum() / jnp.maximum(done_count, 1), jnp.nan)
            return (learner, buffer_state, env_state, obs, ep_ret, step, key), mean_return

        carry = (learner, buffer_state, env_state, obs, jnp.zeros(num_envs), jnp.zeros((), jnp.int32), key)
        _, returns = jax.lax.scan(update, carry, None, num_updates)
        return returns

    return train
