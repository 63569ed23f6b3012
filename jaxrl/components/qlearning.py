"""Pieces shared by the action-value agents (DQN, PQN): exploration, n-step returns and the
greedy bootstrap, as pure functions (rlax style, time on the leading axis)."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

import envs
from jaxrl.components.networks import ACTIVATIONS, QNetwork, Torso, torso_kind
from jaxrl.components.optim import optimizer
from jaxrl.components.value_losses import ValueHead, check_value_head, value_head
from jaxrl.core.contract import Progress, require


def linear_schedule(start: jax.Array, end: jax.Array, duration: jax.Array, step: jax.Array) -> jax.Array:
    """``start`` moving linearly to ``end`` over ``duration`` steps, then ``end``."""
    fraction = jnp.clip(step / jnp.maximum(duration, 1.0), 0.0, 1.0)
    return start + fraction * (end - start)


def epsilon_greedy(key: jax.Array, q_values: jax.Array, epsilon: jax.Array) -> jax.Array:
    """argmax of ``q_values`` [..., num_actions], replaced by a uniformly random action with
    probability ``epsilon``."""
    explore_key, action_key = jax.random.split(key)
    greedy = jnp.argmax(q_values, axis=-1)
    random_action = jax.random.randint(action_key, greedy.shape, 0, q_values.shape[-1])
    explore = jax.random.uniform(explore_key, greedy.shape) < epsilon
    return jnp.where(explore, random_action, greedy)


def bootstrap_action(q_tp1_online: jax.Array, q_tp1_target: jax.Array, double: bool) -> jax.Array:
    """The action whose target-network value bootstraps the target: argmax of the target network
    (DQN, Mnih et al. 2015) or of the online network (Double DQN, van Hasselt et al. 2016)."""
    return jnp.argmax(q_tp1_online if double else q_tp1_target, axis=-1)


def n_step_return(
    r_t: jax.Array, terminated_t: jax.Array, done_t: jax.Array, gamma: jax.Array | float
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The n-step return of a sequence of n transitions [n, ...] starting at its first one.

    The sum stops at the first transition that ends the episode (terminated or truncated). The
    caller bootstraps from the observation that transition reached (``next_obs[last]``, the
    pre-reset one), scaled by ``discount``, which is 0 after a termination.

    Returns:
      (partial_return, discount, last): sum_{k <= last} gamma^k r_k, gamma^(last+1) x
      (1 - terminated_last), and the index ``last`` of the transition to bootstrap from.
    """
    n = r_t.shape[0]
    done = done_t.astype(jnp.int32)
    # Transition k counts if no earlier one ended the episode.
    ended_before = jnp.cumsum(done, axis=0) - done
    counts = (ended_before == 0).astype(r_t.dtype)
    powers = jnp.asarray(gamma, r_t.dtype) ** jnp.arange(n, dtype=r_t.dtype).reshape((n,) + (1,) * (r_t.ndim - 1))
    partial_return = (powers * counts * r_t).sum(axis=0)
    last = (counts.sum(axis=0) - 1).astype(jnp.int32)
    terminated_last = jnp.take_along_axis(terminated_t, last[None], axis=0)[0]
    discount = jnp.asarray(gamma, r_t.dtype) ** (last + 1).astype(r_t.dtype) * (1.0 - terminated_last.astype(r_t.dtype))
    return partial_return, discount, last


# --------------------------------------------------------------------------------------------
# Construction and checks shared by the Q-learning agents (their configs share these fields:
# num_envs, num_steps, hidden_sizes, activation, layer_norm, torso, value_loss, num_bins,
# v_min, v_max; their hyperparameters: lr, gamma, eps_*, max_grad_norm, huber_delta, adam_eps).


def build_q_network(config: Any, env: Any) -> tuple[QNetwork, ValueHead, tuple[int, ...]]:
    """The Q-network and value head a config asks for, and the observation shape."""
    env_params = env.default_params
    obs_shape = envs.observation_shape(env, env_params)
    torso = Torso(
        hidden_sizes=tuple(config.hidden_sizes),
        activation=config.activation,
        kind=torso_kind(obs_shape, config.torso),
        layer_norm=config.layer_norm,
        obs_ndim=len(obs_shape),
    )
    head = value_head(config)
    return QNetwork(torso, envs.action_size(env.action_space(env_params)), head.num_outputs), head, obs_shape


def q_optimizer(config: Any, hparams: Any, progress: Progress) -> optax.GradientTransformation:
    """The Q-learners' optimizer at this point of training: ``config.optimizer`` with gradients
    clipped to ``max_grad_norm`` and the learning rate annealed when ``anneal_lr``."""
    return optimizer(
        config.optimizer, lr=hparams.lr, progress=progress, anneal=config.anneal_lr,
        max_grad_norm=hparams.max_grad_norm, eps=hparams.adam_eps, params=hparams.optimizer_params,
    )


# Evaluation with deterministic=False keeps a little exploration, as is usual for Q-learners.
EVAL_EPSILON = 0.05


def greedy_act(q_values: Callable[[Any, jax.Array], jax.Array]) -> Callable:
    """``act(policy_params, obs, key, deterministic)``: greedy, or epsilon-greedy with
    ``EVAL_EPSILON``."""

    def act(policy_params: Any, obs: jax.Array, key: jax.Array, deterministic: bool = False) -> jax.Array:
        q = q_values(policy_params["q"], obs)
        return jnp.argmax(q, axis=-1) if deterministic else epsilon_greedy(key, q, EVAL_EPSILON)

    return act


def check_q_config(config: Any, hparams: Any) -> None:
    require(config.num_envs >= 1, f"num_envs must be >= 1, got {config.num_envs}")
    require(config.num_steps >= 1, f"num_steps must be >= 1, got {config.num_steps}")
    require(config.activation in ACTIVATIONS, f"unknown activation {config.activation!r}; choose from {', '.join(ACTIVATIONS)}")
    require(config.torso in ("auto", "mlp", "cnn"), f"torso must be auto, mlp or cnn, got {config.torso!r}")
    require(len(config.hidden_sizes) >= 1 and min(config.hidden_sizes) >= 1, "hidden_sizes must be positive")
    check_value_head(config, require)
    require(hparams.lr > 0, f"lr must be positive, got {hparams.lr}")
    require((hparams.gamma >= 0) & (hparams.gamma <= 1), f"gamma must be in [0, 1], got {hparams.gamma}")
    for name in ("eps_start", "eps_end", "eps_fraction"):
        value = getattr(hparams, name)
        require((value >= 0) & (value <= 1), f"{name} must be in [0, 1], got {value}")
    require(hparams.max_grad_norm > 0, f"max_grad_norm must be positive, got {hparams.max_grad_norm}")
    require(hparams.huber_delta > 0, f"huber_delta must be positive, got {hparams.huber_delta}")
    require(hparams.adam_eps > 0, f"adam_eps must be positive, got {hparams.adam_eps}")
