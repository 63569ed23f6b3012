"""Soft Actor-Critic (Haarnoja et al., 2018, "Soft Actor-Critic Algorithms and Applications"):
twin critics with Polyak-averaged targets, a tanh-squashed diagonal Gaussian policy with a
state-dependent (clipped) log standard deviation, and an entropy temperature alpha learned
towards a target entropy (-action_dim by default).

On a discrete action space the same algorithm becomes discrete SAC (Christodoulou, 2019,
"Soft Actor-Critic for Discrete Action Settings"): a categorical policy, critics that output
Q(s, .) for every action, and exact expectations over actions in the soft value target, the
policy loss and the temperature loss; the target entropy is a fraction of log(num_actions).

The training loop (replay, random warm-up actions, gradient steps) is
``jaxrl.components.off_policy.OffPolicyLoop``; this file holds the learner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from typing import Callable

import jax
import jax.numpy as jnp
import optax
from flax import struct

import envs
from jaxrl.components.actor_critic import (
    OffPolicyConfig,
    check_off_policy,
    check_target_entropy_scale,
    default_config,
    mlp_torso,
    polyak,
    tanh_gaussian_sample,
    target_entropy,
    temperature_loss,
    twin_critics,
)
from jaxrl.components.networks import Actor, QNetwork, TanhGaussianActor, ensemble
from jaxrl.components.off_policy import OffPolicyLoop, OffPolicyState
from jaxrl.components.optim import apply
from jaxrl.core.contract import Agent, Algorithm, compose, register, require

# make_tx(lr) -> the optimizer of one network with learning rate lr, at this point of training
MakeTx = Callable[[jax.Array], optax.GradientTransformation]


@dataclass(frozen=True)
class SACConfig(OffPolicyConfig):
    torso: str = "auto"  # auto | mlp | cnn: the torso of discrete SAC's networks (image observations)


@struct.dataclass
class SACHParams:
    actor_lr: Any = 3e-4
    critic_lr: Any = 1e-3
    alpha_lr: Any = 1e-3
    gamma: Any = 0.99
    tau: Any = 0.005  # Polyak rate of the target critics
    init_alpha: Any = 1.0
    # target entropy: -scale x action_dim (continuous) or scale x log(num_actions) (discrete)
    target_entropy_scale: Any = 1.0
    optimizer_params: Any = None  # a learned optimizer's weights


@struct.dataclass
class SACLearner:
    actor: Any
    critic: Any  # twin critics, stacked on a leading axis of 2
    target_critic: Any
    log_alpha: jax.Array
    actor_opt: Any
    critic_opt: Any
    alpha_opt: Any


def soft_critic_step(actor: Any, critic: Any, learner: SACLearner, batch: dict[str, jax.Array], key: jax.Array, hparams: Any, make_tx: MakeTx,
                     alpha: jax.Array | None = None):
    """One step of the twin critics of continuous SAC towards the soft target with clipped
    double Q, y = r + gamma (1 - terminated) (min_i Q'_i(s', a') - alpha log pi(a'|s')),
    a' ~ pi(s'). Returns (critic params, critic optimiser state, loss, Q(s, a) [2, B]). Shared
    with the agents built on SAC's learner (``mdpo-off``, ``rarl``/``qarl``). ``alpha``: the
    learner's temperature unless given (a fixed one, or one per sample [B], QARL's adversary)."""
    alpha = jnp.exp(learner.log_alpha) if alpha is None else alpha
    next_mean, next_log_std = actor.apply(learner.actor, batch["next_obs"])
    next_action, next_log_prob = tanh_gaussian_sample(key, next_mean, next_log_std)
    next_q = critic.apply(learner.target_critic, batch["next_obs"], next_action).min(axis=0)
    discount = hparams.gamma * (1.0 - batch["terminated"].astype(jnp.float32))
    target = jax.lax.stop_gradient(batch["reward"] + discount * (next_q - alpha * next_log_prob))

    def critic_loss(params):
        q = critic.apply(params, batch["obs"], batch["action"])
        return 0.5 * jnp.square(q - target).mean(axis=-1).sum(), q

    (q_loss, q), grads = jax.value_and_grad(critic_loss, has_aux=True)(learner.critic)
    critic_params, critic_opt = apply(make_tx(hparams.critic_lr), grads, learner.critic_opt, learner.critic)
    return critic_params, critic_opt, q_loss, q


def finish_step(
    learner: SACLearner, critic_params, critic_opt, actor_params, actor_opt, entropy, hparams: Any, action_dim: int, discrete: bool,
    make_tx: MakeTx,
) -> SACLearner:
    """Temperature step and target update after the critic and actor steps, the same for both
    action spaces."""
    entropy_target = target_entropy(hparams.target_entropy_scale, action_dim, discrete)
    alpha_grad = jax.grad(temperature_loss)(learner.log_alpha, entropy, entropy_target)
    log_alpha, alpha_opt = apply(make_tx(hparams.alpha_lr), alpha_grad, learner.alpha_opt, learner.log_alpha)
    return SACLearner(
        actor=actor_params,
        critic=critic_params,
        target_critic=polyak(critic_params, learner.target_critic, hparams.tau),
        log_alpha=log_alpha,
        actor_opt=actor_opt,
        critic_opt=critic_opt,
        alpha_opt=alpha_opt,
    )


def build(config: SACConfig, env: envs.Environment) -> Agent:
    loop = OffPolicyLoop(config, env)
    discrete = loop.discrete
    actor_torso = mlp_torso(config, loop.obs_shape, config.torso)
    if discrete:
        actor = Actor(loop.action_dim, True, actor_torso)
        critic = ensemble(QNetwork, 2, torso=mlp_torso(config, loop.obs_shape, config.torso), num_actions=loop.action_dim)
    else:
        actor = TanhGaussianActor(loop.action_dim, actor_torso)
        critic = twin_critics(config)

    def tx_at(hparams: SACHParams, step: jax.Array) -> MakeTx:
        return lambda lr: loop.optimizer(hparams, lr, step)

    def init(key: jax.Array, hparams: SACHParams, env_params: Any) -> OffPolicyState:
        key, actor_key, critic_key = jax.random.split(key, 3)
        make_tx = tx_at(hparams, jnp.zeros((), jnp.int32))
        obs = loop.example_obs()
        actor_params = actor.init(actor_key, obs)
        critic_params = critic.init(critic_key, obs) if discrete else critic.init(critic_key, obs, loop.example_action())
        log_alpha = jnp.log(jnp.asarray(hparams.init_alpha, jnp.float32))
        learner = SACLearner(
            actor=actor_params,
            critic=critic_params,
            target_critic=critic_params,
            log_alpha=log_alpha,
            actor_opt=make_tx(hparams.actor_lr).init(actor_params),
            critic_opt=make_tx(hparams.critic_lr).init(critic_params),
            alpha_opt=make_tx(hparams.alpha_lr).init(log_alpha),
        )
        return loop.init(key, learner, env_params)

    def sample_action(actor_params, obs, key):
        if discrete:
            logits = actor.apply(actor_params, obs).logits
            return jax.random.categorical(key, logits)
        mean, log_std = actor.apply(actor_params, obs)
        return tanh_gaussian_sample(key, mean, log_std)[0]

    def continuous_step(learner: SACLearner, batch, key, hparams: SACHParams, step, index):
        make_tx = tx_at(hparams, step)
        next_key, actor_key = jax.random.split(key)
        alpha = jnp.exp(learner.log_alpha)
        critic_params, critic_opt, q_loss, q = soft_critic_step(actor, critic, learner, batch, next_key, hparams, make_tx)

        def actor_loss(params):
            mean, log_std = actor.apply(params, batch["obs"])
            action, log_prob = tanh_gaussian_sample(actor_key, mean, log_std)
            q_new = critic.apply(critic_params, batch["obs"], action).min(axis=0)
            return (alpha * log_prob - q_new).mean(), -log_prob

        (pi_loss, entropy), grads = jax.value_and_grad(actor_loss, has_aux=True)(learner.actor)
        actor_params, actor_opt = apply(make_tx(hparams.actor_lr), grads, learner.actor_opt, learner.actor)
        new = finish_step(learner, critic_params, critic_opt, actor_params, actor_opt, entropy, hparams, loop.action_dim, False, make_tx)
        metrics = {"critic_loss": q_loss, "actor_loss": pi_loss, "q_value": q.mean(), "entropy": entropy.mean(), "alpha": alpha}
        return new, metrics

    def discrete_step(learner: SACLearner, batch, key, hparams: SACHParams, step, index):
        make_tx = tx_at(hparams, step)
        alpha = jnp.exp(learner.log_alpha)
        # The soft state value is an exact expectation over the categorical policy:
        # V(s') = sum_a pi(a|s') (min_i Q'_i(s', a) - alpha log pi(a|s')).
        next_log_pi = jax.nn.log_softmax(actor.apply(learner.actor, batch["next_obs"]).logits)
        next_q = critic.apply(learner.target_critic, batch["next_obs"]).min(axis=0)
        next_v = (jnp.exp(next_log_pi) * (next_q - alpha * next_log_pi)).sum(axis=-1)
        discount = hparams.gamma * (1.0 - batch["terminated"].astype(jnp.float32))
        target = jax.lax.stop_gradient(batch["reward"] + discount * next_v)

        def critic_loss(params):
            q_all = critic.apply(params, batch["obs"])  # [2, B, A]
            q = jnp.take_along_axis(q_all, batch["action"][None, :, None], axis=-1)[..., 0]
            return 0.5 * jnp.square(q - target).mean(axis=-1).sum(), q

        (q_loss, q), grads = jax.value_and_grad(critic_loss, has_aux=True)(learner.critic)
        critic_params, critic_opt = apply(make_tx(hparams.critic_lr), grads, learner.critic_opt, learner.critic)
        q_new = jax.lax.stop_gradient(critic.apply(critic_params, batch["obs"]).min(axis=0))

        def actor_loss(params):
            log_pi = jax.nn.log_softmax(actor.apply(params, batch["obs"]).logits)
            pi = jnp.exp(log_pi)
            entropy = -(pi * log_pi).sum(axis=-1)
            return (pi * (alpha * log_pi - q_new)).sum(axis=-1).mean(), entropy

        (pi_loss, entropy), grads = jax.value_and_grad(actor_loss, has_aux=True)(learner.actor)
        actor_params, actor_opt = apply(make_tx(hparams.actor_lr), grads, learner.actor_opt, learner.actor)
        new = finish_step(learner, critic_params, critic_opt, actor_params, actor_opt, entropy, hparams, loop.action_dim, True, make_tx)
        metrics = {"critic_loss": q_loss, "actor_loss": pi_loss, "q_value": q.mean(), "entropy": entropy.mean(), "alpha": alpha}
        return new, metrics

    learn_step = discrete_step if discrete else continuous_step

    def explore(learner: SACLearner, key, obs, hparams, step):
        return sample_action(learner.actor, obs, key)

    def collect(state, hparams, step):
        return loop.collect(state, hparams, step, explore)

    def learn(state, hparams, batch, step):
        return loop.learn(state, hparams, batch, step, learn_step)

    def act(policy_params, obs: jax.Array, key: jax.Array, deterministic: bool = False) -> jax.Array:
        if not deterministic:
            return sample_action(policy_params["actor"], obs, key)
        if discrete:
            return jnp.argmax(actor.apply(policy_params["actor"], obs).logits, axis=-1)
        return jnp.tanh(actor.apply(policy_params["actor"], obs)[0])

    return Agent(
        init=init,
        update=compose(collect, learn),
        act=act,
        policy_params=lambda state: {"actor": state.learner.actor},
        steps_per_update=loop.steps_per_update,
        num_updates=loop.num_updates,
        collect=collect,
        learn=learn,
    )


def defaults(env_name: str, discrete: bool) -> tuple[SACConfig, SACHParams]:
    if discrete:
        return default_config(SACConfig, env_name), SACHParams(target_entropy_scale=0.5)
    return default_config(SACConfig, env_name), SACHParams()


def check(config: SACConfig, hparams: SACHParams, discrete: bool) -> None:
    check_off_policy(config, hparams)
    require(config.torso in ("auto", "mlp", "cnn"), f"torso must be auto, mlp or cnn, got {config.torso!r}")
    require(hparams.init_alpha > 0, f"init_alpha must be positive, got {hparams.init_alpha}")
    check_target_entropy_scale(hparams.target_entropy_scale, discrete)


SAC = register(
    Algorithm(
        name="sac",
        summary="Soft Actor-Critic with twin critics and a learned temperature; discrete SAC on discrete actions",
        config_type=SACConfig,
        hparams_type=SACHParams,
        build=build,
        defaults=defaults,
        check=check,
    )
)
