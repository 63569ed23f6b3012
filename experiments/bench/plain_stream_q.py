"""Stream Q(lambda) (Elsayed, Vasan and Mahmood, 2024, "Streaming Deep RL Finally Works") on
CartPole written "the plain way": one file, one ``make_train`` closure, one learner with one
environment copy learning from every transition as it arrives, the whole run as a single
``lax.scan`` (of logging windows of 1,000 steps), gymnax stepped directly. It is the baseline that
``streaming_speed.py`` compares the kit's ``stream-q`` against, vmapped over seeds.

Written independently of ``jaxrl.components.streaming`` and the kit's agent; only the numbers are
read from the kit's defaults (``StreamQConfig()``, ``StreamQHParams()``). Per step: epsilon-greedy
on Q(x) (epsilon 1 -> 0.01 linearly over 5% of the run); the env step (gymnax auto-resets; its
``final_observation`` is the pre-reset one, which bootstraps a truncation); observation
normalisation by a per-sample Welford estimate (updated with the reached observation, then with
the reset one after an episode end); the reward divided by the running std of the discounted
return; the time feature -0.5 + t / 500; then Watkins's Q(lambda) with eligibility traces and
ObGD's overshooting-bounded step. The network: two LayerNorm (no scale or shift) + leaky ReLU
layers of 32, sparsely initialised (90% of each unit's inputs zeroed), zero biases.
"""

from __future__ import annotations

import math

import flax.linen as nn
import gymnax
import jax
import jax.numpy as jnp

from jaxrl.algorithms.stream_q import StreamQConfig, StreamQHParams

WINDOW = 1_000  # env steps per returned entry (the kit's num_steps: one logged update)


def sparse_uniform(sparsity: float):
    """LeCun-uniform [fan_in, out] kernels with ceil(sparsity * fan_in) inputs of every output
    unit set to zero (a random choice per unit)."""

    def init(key, shape, dtype=jnp.float32):
        fan_in, out = shape
        w_key, m_key = jax.random.split(key)
        bound = 1.0 / math.sqrt(fan_in)
        w = jax.random.uniform(w_key, shape, dtype, -bound, bound)
        zero_rows = jax.vmap(lambda k: jax.random.permutation(k, fan_in))(jax.random.split(m_key, out)).T  # [fan_in, out]
        return jnp.where(zero_rows < math.ceil(sparsity * fan_in), 0.0, w)

    return init


class QNet(nn.Module):
    num_actions: int
    hidden: tuple[int, ...]
    sparsity: float

    @nn.compact
    def __call__(self, x):
        init, zeros = sparse_uniform(self.sparsity), nn.initializers.zeros
        for size in self.hidden:
            x = nn.Dense(size, kernel_init=init, bias_init=zeros)(x)
            x = nn.LayerNorm(epsilon=1e-5, use_scale=False, use_bias=False, use_fast_variance=False)(x)
            x = nn.leaky_relu(x)
        return nn.Dense(self.num_actions, kernel_init=init, bias_init=zeros)(x)


def welford(stats, x, weight=True):
    """(mean, m2, count) after sample ``x`` (unchanged where ``weight`` is False)."""
    mean, m2, count = stats
    new_count = count + jnp.asarray(weight, jnp.int32)
    d = x - mean
    new_mean = mean + jnp.where(weight, d / jnp.maximum(new_count, 1), 0.0)
    return new_mean, m2 + jnp.where(weight, d * (x - new_mean), 0.0), new_count


def variance(stats):
    _, m2, count = stats
    return jnp.where(count < 2, 1.0, m2 / jnp.maximum(count - 1, 1))


def make_train(total_steps: int, config: StreamQConfig | None = None, hparams: StreamQHParams | None = None):
    """``train(key) -> mean return of the episodes finished in each window of 1,000 steps (NaN if none)``."""
    cfg, hp = config or StreamQConfig(), hparams or StreamQHParams()
    if cfg.sarsa or not (cfg.layer_norm and cfg.normalize_obs and cfg.scale_reward and cfg.time_feature):
        raise NotImplementedError("plain_stream_q writes the default stream Q(lambda) only")
    env, env_params = gymnax.make("CartPole-v1")
    num_actions = env.num_actions
    obs_dim = env.observation_space(env_params).shape[0]
    limit = env_params.max_steps_in_episode
    net = QNet(num_actions, tuple(cfg.hidden_sizes), cfg.sparsity)
    num_windows = total_steps // WINDOW
    eps_steps = max(hp.eps_fraction * total_steps, 1.0)
    gamma, lam, lr, kappa = hp.gamma, hp.lam, hp.lr, hp.kappa

    def features(stats, obs, t):
        x = (obs - stats[0]) / jnp.sqrt(variance(stats) + 1e-8)
        return jnp.append(x, -0.5 + t / limit)

    def train(key):
        key, init_key, reset_key = jax.random.split(key, 3)
        obs, env_state = env.reset(reset_key, env_params)
        obs_stats = welford((jnp.zeros(obs_dim), jnp.zeros(obs_dim), jnp.zeros((), jnp.int32)), obs)
        x = features(obs_stats, obs, 0)
        params = net.init(init_key, x)
        trace = jax.tree.map(jnp.zeros_like, params)
        ret_stats = (jnp.zeros(()), jnp.zeros(()), jnp.zeros((), jnp.int32))

        def step(carry, i):
            params, trace, env_state, x, obs_stats, u, ret_stats, t, ep_ret, key = carry
            key, explore_key, random_key, step_key = jax.random.split(key, 4)
            q, q_vjp = jax.vjp(lambda p: net.apply(p, x), params)
            greedy = jnp.argmax(q)
            epsilon = hp.eps_start + jnp.clip(i / eps_steps, 0.0, 1.0) * (hp.eps_end - hp.eps_start)
            random_action = jax.random.randint(random_key, (), 0, num_actions)
            action = jnp.where(jax.random.uniform(explore_key) < epsilon, random_action, greedy)
            obs, env_state, reward, term, trunc, info = env.step(step_key, env_state, action, env_params)
            done = term | trunc
            # Observation statistics: the reached observation, then (after an episode end) the reset one.
            obs_stats = welford(obs_stats, info["final_observation"])
            x_final = features(obs_stats, info["final_observation"], t + 1)
            obs_stats = welford(obs_stats, obs, done)
            t = jnp.where(done, 0, t + 1)
            x_next = features(obs_stats, obs, t)
            # Reward scaling by the running std of the discounted return u.
            u = gamma * u + reward
            ret_stats = welford(ret_stats, u)
            scaled = reward / jnp.sqrt(variance(ret_stats) + 1e-8)
            u = jnp.where(done, 0.0, u)
            # Q(lambda) with ObGD.
            (grads,) = q_vjp(jax.nn.one_hot(action, num_actions))
            target = scaled + gamma * (1.0 - term) * net.apply(params, x_final).max()
            delta = target - q[action]
            trace = jax.tree.map(lambda z, g: gamma * lam * z + g, trace, grads)
            l1 = sum(jnp.abs(z).sum() for z in jax.tree.leaves(trace))
            step_size = lr / jnp.maximum(lr * kappa * jnp.maximum(jnp.abs(delta), 1.0) * l1, 1.0)
            params = jax.tree.map(lambda p, z: p + step_size * delta * z, params, trace)
            reset = done | (action != greedy)
            trace = jax.tree.map(lambda z: jnp.where(reset, 0.0, z), trace)
            ep_ret = ep_ret + reward
            finished = jnp.where(done, ep_ret, 0.0)
            ep_ret = jnp.where(done, 0.0, ep_ret)
            return (params, trace, env_state, x_next, obs_stats, u, ret_stats, t, ep_ret, key), (done, finished)

        def window(carry, w):
            carry, (done, finished) = jax.lax.scan(step, carry, w * WINDOW + jnp.arange(WINDOW))
            count = done.sum()
            return carry, jnp.where(count > 0, finished.sum() / jnp.maximum(count, 1), jnp.nan)

        carry = (params, trace, env_state, x, obs_stats, jnp.zeros(()), ret_stats, jnp.zeros((), jnp.int32), jnp.zeros(()), key)
        _, returns = jax.lax.scan(window, carry, jnp.arange(num_windows))
        return returns

    return train
