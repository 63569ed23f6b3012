"""Pieces shared by the off-policy actor-critic agents (SAC, TD3, DSAC-T): the training loop
around a replay buffer, Polyak target updates, the tanh-squashed Gaussian policy and the
entropy temperature.

Every agent's ``update`` is ``OffPolicyLoop.update``: step ``num_envs`` environments
``num_steps`` times (uniformly random actions for the first ``learning_starts`` environment
steps, then the agent's exploration policy), add the transitions to the replay and, once
``learning_starts`` steps have been collected, take ``gradient_steps`` learner steps on sampled
minibatches. An agent supplies only its learner state (networks, targets, optimiser states,
temperature) and two pure functions, ``explore`` and ``learn_step``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

import envs
from jaxrl.algorithms.base import check_batch, require
from jaxrl.networks import ACTIVATIONS, ContinuousQ, Torso, ensemble, torso_kind
from jaxrl.replay import Replay
from jaxrl.rollout import EnvCarry, env_reset, episode_metrics, rollout

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


# --------------------------------------------------------------------------------------------
# The shared training loop


@struct.dataclass
class OffPolicyState:
    learner: Any  # networks, target networks, optimiser states, temperature: what learn_step updates
    replay: Any
    env: EnvCarry
    key: jax.Array
    update_step: jax.Array


# explore(learner, key, obs, hparams) -> actions for a batch of observations
Explore = Callable[[Any, jax.Array, jax.Array, Any], jax.Array]
# learn_step(learner, batch, key, hparams) -> (learner, metrics); batch leaves are [batch_size, ...]
LearnStep = Callable[[Any, dict[str, jax.Array], jax.Array, Any], tuple[Any, dict[str, jax.Array]]]


class OffPolicyLoop:
    """The environments, the replay and the update skeleton of one off-policy agent."""

    def __init__(self, config: OffPolicyConfig, env: envs.Environment, env_params: Any):
        self.config = config
        self.env_params = env_params
        self.vec_env = envs.make_vector(env, config.num_envs)
        space = env.action_space(env_params)
        self.discrete = envs.is_discrete(space)
        self.action_dim = envs.action_size(space)  # number of actions when discrete
        self.obs_shape = envs.observation_shape(env, env_params)
        self.replay = Replay(config.num_envs, config.buffer_size, config.batch_size)
        self.steps_per_update = config.num_envs * config.num_steps

    def example_obs(self) -> jax.Array:
        return jnp.zeros((1, *self.obs_shape), jnp.float32)

    def example_action(self) -> jax.Array:
        """A batch of one action, as the networks take them."""
        if self.discrete:
            return jnp.zeros((1,), jnp.int32)
        return jnp.zeros((1, self.action_dim), jnp.float32)

    def init(self, key: jax.Array, learner: Any) -> OffPolicyState:
        key, env_key = jax.random.split(key)
        env_carry = env_reset(self.vec_env, self.env_params, env_key)
        replay_state = self.replay.init(env_carry.obs[0], self.example_action()[0])
        return OffPolicyState(learner, replay_state, env_carry, key, jnp.zeros((), jnp.int32))

    def random_action(self, key: jax.Array, num: int) -> jax.Array:
        if self.discrete:
            return jax.random.randint(key, (num,), 0, self.action_dim)
        return jax.random.uniform(key, (num, self.action_dim), minval=-1.0, maxval=1.0)

    def update(self, state: OffPolicyState, hparams: Any, explore: Explore, learn_step: LearnStep) -> tuple[OffPolicyState, dict[str, jax.Array]]:
        config = self.config
        key, rollout_key, learn_key = jax.random.split(state.key, 3)
        env_steps = state.update_step * self.steps_per_update
        warming_up = env_steps < config.learning_starts

        def policy(act_key, obs):
            random_key, policy_key = jax.random.split(act_key)
            random = self.random_action(random_key, obs.shape[0])
            return jnp.where(warming_up, random, explore(state.learner, policy_key, obs, hparams)), {}

        env_carry, traj = rollout(self.vec_env, self.env_params, policy, state.env, rollout_key, config.num_steps)
        replay_state = self.replay.add(state.replay, traj)

        def learn(learner):
            def step(learner, step_key):
                sample_key, learner_key = jax.random.split(step_key)
                batch = jax.tree.map(lambda x: x[0], self.replay.sample(replay_state, sample_key))
                return learn_step(learner, batch, learner_key, hparams)

            learner, metrics = jax.lax.scan(step, learner, jax.random.split(learn_key, config.gradient_steps))
            return learner, jax.tree.map(jnp.mean, metrics)

        metric_shapes = jax.eval_shape(lambda learner: learn(learner)[1], state.learner)

        def wait(learner):
            return learner, jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), metric_shapes)

        learning = (env_steps + self.steps_per_update >= config.learning_starts) & self.replay.can_sample(replay_state)
        learner, metrics = jax.lax.cond(learning, learn, wait, state.learner)
        metrics.update(episode_metrics(traj))
        return OffPolicyState(learner, replay_state, env_carry, key, state.update_step + 1), metrics
