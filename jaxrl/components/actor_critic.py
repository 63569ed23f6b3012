"""Pieces shared by the off-policy actor-critic agents (SAC, TD3, DSAC-T, off-policy MDPO):
Polyak target updates, the tanh-squashed Gaussian policy, the entropy temperature, their shared
configuration and networks. Their training loop is ``jaxrl.components.off_policy``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from jaxrl.components.networks import ACTIVATIONS, ContinuousQ, Torso, ensemble, torso_kind
from jaxrl.components.optim import check_optimizer
from jaxrl.core.contract import check_batch, require

# --------------------------------------------------------------------------------------------
# Pure pieces


def polyak(online: Any, target: Any, tau: jax.Array | float) -> Any:
    """target <- tau x online + (1 - tau) x target, leaf by leaf (Lillicrap et al., 2016)."""
    return jax.tree.map(lambda o, t: tau * o + (1.0 - tau) * t, online, target)


def tanh_log_det_jacobian(u: jax.Array) -> jax.Array:
    """log(d tanh(u) / du) = log(1 - tanh(u)^2), elementwise, in the form
    2 (log 2 - u - softplus(-2u)), which stays finite where tanh(u) rounds to +-1."""
    return 2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u))


def tanh_gaussian_log_prob(u: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """log pi(tanh(u)) of the action a = tanh(u), u ~ N(mean, exp(log_std)^2) diagonal, from the
    pre-squash sample u (Haarnoja et al., 2018, appendix C): the Gaussian log-density of u
    minus the log-Jacobian of tanh, summed over the last (action) axis."""
    z = (u - mean) * jnp.exp(-log_std)
    gaussian = -0.5 * jnp.square(z) - log_std - 0.5 * math.log(2.0 * math.pi)
    return (gaussian - tanh_log_det_jacobian(u)).sum(axis=-1)


def tanh_gaussian_sample(key: jax.Array, mean: jax.Array, log_std: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A reparameterised action tanh(mean + std x noise) and its log-probability."""
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)
    return jnp.tanh(u), tanh_gaussian_log_prob(u, mean, log_std)


def temperature_loss(log_alpha: jax.Array, entropy: jax.Array, target_entropy: jax.Array | float) -> jax.Array:
    """The entropy temperature's objective J(alpha) = E[alpha (H(pi(.|s)) - H_target)]
    (Haarnoja et al., 2018, "Soft Actor-Critic Algorithms and Applications", eq. 18), taken
    in log alpha as the original implementation does, so its gradient E[H - H_target] does not
    shrink with alpha. ``entropy`` is -log pi(a|s) of sampled actions (continuous) or the exact
    entropy of the categorical policy (discrete)."""
    return log_alpha * jax.lax.stop_gradient(entropy - target_entropy).mean()


def target_entropy(scale: jax.Array | float, action_dim: int, discrete: bool) -> jax.Array:
    """-scale x action_dim for a continuous policy (Haarnoja et al. 2018: scale 1), and
    scale x log(num_actions), a fraction of the uniform policy's entropy, for a categorical one
    (Christodoulou, 2019)."""
    if discrete:
        return scale * math.log(action_dim)
    return -scale * action_dim


def check_target_entropy_scale(scale: Any, discrete: bool) -> None:
    """Raises unless ``target_entropy_scale`` is sensible for the action space."""
    if discrete:
        require((scale > 0) & (scale < 1), f"target_entropy_scale must be in (0, 1) for discrete actions, got {scale}")
    else:
        require(scale > 0, f"target_entropy_scale must be positive, got {scale}")


# --------------------------------------------------------------------------------------------
# Configuration shared by the three agents (each subclasses it and adds its own fields)


@dataclass(frozen=True)
class OffPolicyConfig:
    total_steps: int = 30_000
    num_envs: int = 4
    num_steps: int = 1  # environment steps per env per update
    gradient_steps: int = 4  # learner steps per update (4: one per environment step with 4 envs x 1 step)
    buffer_size: int = 100_000  # transitions, over all envs
    batch_size: int = 256
    learning_starts: int = 1_000  # environment steps of uniformly random actions before learning
    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    layer_norm: bool = False
    optimizer: str = "adam"  # of every network and the temperature (jaxrl.components.optim)


def default_config(config_type: type, env_name: str) -> Any:
    """The defaults are CPU-sized: 64x64 networks instead of the papers' 256x256 (the
    dataclass default; ``--set hidden_sizes=256,256``), which learn as fast per environment
    step on Pendulum-v1 (swung up within about 5k steps either way) and on
    brax/inverted_pendulum (1000 within 60k steps) at about a ninth of the compute. Brax tasks
    get 60k steps, the rest 30k (an agent may ask for more: TD3 takes 100k on brax)."""
    total_steps = 60_000 if env_name.startswith("brax/") else 30_000
    return config_type(total_steps=total_steps, hidden_sizes=(64, 64))


def check_off_policy(config: OffPolicyConfig, hparams: Any) -> None:
    require(config.num_envs >= 1, f"num_envs must be >= 1, got {config.num_envs}")
    require(config.num_steps >= 1, f"num_steps must be >= 1, got {config.num_steps}")
    require(config.gradient_steps >= 1, f"gradient_steps must be >= 1, got {config.gradient_steps}")
    require(config.batch_size >= 1, f"batch_size must be >= 1, got {config.batch_size}")
    require(config.learning_starts >= 0, f"learning_starts must be >= 0, got {config.learning_starts}")
    per_env = config.buffer_size // config.num_envs
    require(
        per_env >= config.num_steps + 1,
        f"buffer_size={config.buffer_size} leaves {per_env} transitions per env; need more than num_steps",
    )
    require(config.activation in ACTIVATIONS, f"unknown activation {config.activation!r}; choose from {', '.join(ACTIVATIONS)}")
    require(len(config.hidden_sizes) >= 1 and min(config.hidden_sizes) >= 1, "hidden_sizes must be positive")
    check_batch(config.total_steps, config.num_envs * config.num_steps, "update (num_envs x num_steps)")
    check_optimizer(config.optimizer, hparams.optimizer_params)
    for name in ("actor_lr", "critic_lr", "alpha_lr"):
        if hasattr(hparams, name):
            require(getattr(hparams, name) > 0, f"{name} must be positive, got {getattr(hparams, name)}")
    require((hparams.gamma >= 0) & (hparams.gamma <= 1), f"gamma must be in [0, 1], got {hparams.gamma}")
    require((hparams.tau > 0) & (hparams.tau <= 1), f"tau must be in (0, 1], got {hparams.tau}")


def mlp_torso(config: OffPolicyConfig, obs_shape: tuple[int, ...] = (1,), kind: str = "mlp") -> Torso:
    return Torso(
        hidden_sizes=tuple(config.hidden_sizes),
        activation=config.activation,
        kind=torso_kind(obs_shape, kind),
        layer_norm=config.layer_norm,
        obs_ndim=len(obs_shape),
    )


def twin_critics(config: OffPolicyConfig, num_outputs: int = 1):
    """Two independently initialised Q(s, a) networks in one vmapped module; outputs [2, ...]
    (clipped double Q-learning, Fujimoto et al., 2018)."""
    return ensemble(ContinuousQ, 2, torso=mlp_torso(config), num_outputs=num_outputs)

