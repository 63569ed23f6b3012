"""DSAC-T, distributional soft actor-critic with three refinements (Duan et al., 2023/2025,
"Distributional Soft Actor-Critic with Three Refinements", arXiv:2310.05858).

The critic learns a Gaussian value distribution Z(s, a) ~ N(Q(s, a), sigma(s, a)^2) of the soft
return instead of its mean alone. The three refinements over DSAC-v1 are

a. expected value substitution: the mean is trained towards the expected target
   y_q = r + gamma (1 - terminated) (Q'(s', a') - alpha log pi(a'|s')), the standard deviation
   towards the sampled y_z = r + gamma (1 - terminated) (z' - alpha log pi(a'|s')), z' ~ Z'(s', a');
b. twin value distributions: two critics; the targets use the one whose mean is the smaller at
   (s', a'), and the policy maximises the smaller of the two means;
c. variance-based critic gradient adjustment: y_z is clipped to Q +- xi x std_bar and the
   critic gradient is scaled by (std_bar^2 + eps), std_bar being a moving average of the
   critic's sigma kept in the agent state.

The critic loss is ``jaxrl.losses.dsac_t_critic_loss``, the targets ``jaxrl.losses.dsac_t_targets``.
The policy and temperature are SAC's (tanh-squashed Gaussian, learned alpha); as in the paper,
the actor, the temperature and the target networks (critics and a target policy) are updated
every ``policy_delay`` critic steps.

Constants, as in the paper and the authors' released code: clip_xi 3, grad_eps 0.1, std_bar's
rate equal to the target rate (0.005) and std_bar started at the first batch's mean sigma; sigma
is the softplus of the critic's second output (plus MIN_STD here). One detail of that code is not
copied: it also clips the standard-normal draw of z' to +-3 before forming y_z; here y_z is left
unclipped until the loss clips it to Q +- 3 std_bar, which bounds it in any case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
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
from jaxrl.components.losses import dsac_t_critic_loss, dsac_t_targets
from jaxrl.components.networks import TanhGaussianActor
from jaxrl.components.off_policy import OffPolicyLoop, OffPolicyState
from jaxrl.components.optim import apply
from jaxrl.core.contract import Agent, Algorithm, compose, register, require

# sigma = softplus(raw) + MIN_STD: positive, and never exactly 0 in the sigma^3 denominators.
MIN_STD = 1e-3


@dataclass(frozen=True)
class DSACTConfig(OffPolicyConfig):
    policy_delay: int = 2  # critic steps per actor, temperature and target update


@struct.dataclass
class DSACTHParams:
    actor_lr: Any = 3e-4
    critic_lr: Any = 1e-3
    alpha_lr: Any = 1e-3
    gamma: Any = 0.99
    tau: Any = 0.005  # Polyak rate of the target critics and target policy
    std_tau: Any = 0.005  # rate of the moving average std_bar of the critics' sigma
    clip_xi: Any = 3.0  # y_z is clipped to Q +- clip_xi x std_bar
    grad_eps: Any = 0.1  # the eps of (std_bar^2 + eps) and of the sigma^2, sigma^3 denominators
    init_alpha: Any = 1.0
    target_entropy_scale: Any = 1.0  # target entropy -scale x action_dim
    optimizer_params: Any = None  # a learned optimizer's weights


@struct.dataclass
class DSACTLearner:
    actor: Any
    target_actor: Any
    critic: Any  # twin value distributions, stacked on a leading axis of 2
    target_critic: Any
    log_alpha: jax.Array
    actor_opt: Any
    critic_opt: Any
    alpha_opt: Any
    std_bar: jax.Array  # [2] moving averages of each critic's sigma over replayed batches


def build(config: DSACTConfig, env: envs.Environment) -> Agent:
    loop = OffPolicyLoop(config, env)
    actor = TanhGaussianActor(loop.action_dim, mlp_torso(config, loop.obs_shape, "auto"))
    critic = twin_critics(config, num_outputs=2)

    def value_distribution(params, obs, action):
        """Means and standard deviations of the twin distributions, each [2, B]."""
        out = critic.apply(params, obs, action)
        return out[..., 0], jax.nn.softplus(out[..., 1]) + MIN_STD

    def init(key: jax.Array, hparams: DSACTHParams, env_params: Any) -> OffPolicyState:
        key, actor_key, critic_key = jax.random.split(key, 3)
        zero = jnp.zeros((), jnp.int32)
        actor_params = actor.init(actor_key, loop.example_obs())
        critic_params = critic.init(critic_key, loop.example_obs(), loop.example_action())
        log_alpha = jnp.log(jnp.asarray(hparams.init_alpha, jnp.float32))
        learner = DSACTLearner(
            actor=actor_params,
            target_actor=actor_params,
            critic=critic_params,
            target_critic=critic_params,
            log_alpha=log_alpha,
            actor_opt=loop.optimizer(hparams, hparams.actor_lr, zero).init(actor_params),
            critic_opt=loop.optimizer(hparams, hparams.critic_lr, zero).init(critic_params),
            alpha_opt=loop.optimizer(hparams, hparams.alpha_lr, zero).init(log_alpha),
            std_bar=jnp.zeros((2,), jnp.float32),
        )
        return loop.init(key, learner, env_params)

    def learn_step(learner: DSACTLearner, batch, key, hparams: DSACTHParams, step, index):
        next_key, noise_key, actor_key = jax.random.split(key, 3)
        alpha = jnp.exp(learner.log_alpha)
        next_mean, next_log_std = actor.apply(learner.target_actor, batch["next_obs"])
        next_action, next_log_prob = tanh_gaussian_sample(next_key, next_mean, next_log_std)
        next_q, next_std = value_distribution(learner.target_critic, batch["next_obs"], next_action)
        discount = hparams.gamma * (1.0 - batch["terminated"].astype(jnp.float32))
        noise = jax.random.normal(noise_key, batch["reward"].shape)
        y_q, y_z = dsac_t_targets(batch["reward"], discount, next_q, next_std, alpha * next_log_prob, noise)

        def critic_loss(params):
            q, std = value_distribution(params, batch["obs"], batch["action"])
            batch_std = jax.lax.stop_gradient(std.mean(axis=-1))
            # The average starts at the first batch's sigma rather than at 0, which would clip
            # every sampled target onto the mean.
            std_bar = jnp.where(
                index == 0, batch_std, (1.0 - hparams.std_tau) * learner.std_bar + hparams.std_tau * batch_std
            )
            per_critic = jax.vmap(dsac_t_critic_loss, in_axes=(0, 0, None, None, 0, None, None))(
                q, std, y_q, y_z, std_bar, hparams.clip_xi, hparams.grad_eps
            )
            return per_critic.sum(), (q, std, std_bar)

        (q_loss, (q, std, std_bar)), grads = jax.value_and_grad(critic_loss, has_aux=True)(learner.critic)
        critic_params, critic_opt = apply(loop.optimizer(hparams, hparams.critic_lr, step), grads, learner.critic_opt, learner.critic)

        def actor_loss(params):
            mean, log_std = actor.apply(params, batch["obs"])
            action, log_prob = tanh_gaussian_sample(actor_key, mean, log_std)
            q_new = value_distribution(critic_params, batch["obs"], action)[0].min(axis=0)
            return (alpha * log_prob - q_new).mean(), -log_prob

        def delayed_update(_):
            (loss, entropy), grads = jax.value_and_grad(actor_loss, has_aux=True)(learner.actor)
            actor_params, actor_opt = apply(loop.optimizer(hparams, hparams.actor_lr, step), grads, learner.actor_opt, learner.actor)
            entropy_target = target_entropy(hparams.target_entropy_scale, loop.action_dim, False)
            alpha_grad = jax.grad(temperature_loss)(learner.log_alpha, entropy, entropy_target)
            log_alpha, alpha_opt = apply(loop.optimizer(hparams, hparams.alpha_lr, step), alpha_grad, learner.alpha_opt, learner.log_alpha)
            target_actor, target_critic = polyak(
                (actor_params, critic_params), (learner.target_actor, learner.target_critic), hparams.tau
            )
            return (actor_params, actor_opt, log_alpha, alpha_opt, target_actor, target_critic), (loss, entropy.mean())

        def hold(_):
            loss, entropy = actor_loss(learner.actor)
            kept = (learner.actor, learner.actor_opt, learner.log_alpha, learner.alpha_opt, learner.target_actor, learner.target_critic)
            return kept, (loss, entropy.mean())

        (actor_params, actor_opt, log_alpha, alpha_opt, target_actor, target_critic), (pi_loss, entropy) = jax.lax.cond(
            (index + 1) % config.policy_delay == 0, delayed_update, hold, None
        )
        new = DSACTLearner(
            actor=actor_params,
            target_actor=target_actor,
            critic=critic_params,
            target_critic=target_critic,
            log_alpha=log_alpha,
            actor_opt=actor_opt,
            critic_opt=critic_opt,
            alpha_opt=alpha_opt,
            std_bar=std_bar,
        )
        metrics = {
            "critic_loss": q_loss,
            "actor_loss": pi_loss,
            "q_value": q.mean(),
            "q_std": std.mean(),
            "std_bar": std_bar.mean(),
            "entropy": entropy,
            "alpha": alpha,
        }
        return new, metrics

    def explore(learner: DSACTLearner, key, obs, hparams, step):
        mean, log_std = actor.apply(learner.actor, obs)
        return tanh_gaussian_sample(key, mean, log_std)[0]

    def collect(state, hparams, step):
        return loop.collect(state, hparams, step, explore)

    def learn(state, hparams, batch, step):
        return loop.learn(state, hparams, batch, step, learn_step)

    def act(policy_params, obs: jax.Array, key: jax.Array, deterministic: bool = False) -> jax.Array:
        mean, log_std = actor.apply(policy_params["actor"], obs)
        return jnp.tanh(mean) if deterministic else tanh_gaussian_sample(key, mean, log_std)[0]

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


def defaults(env_name: str, discrete: bool) -> tuple[DSACTConfig, DSACTHParams]:
    return default_config(DSACTConfig, env_name), DSACTHParams()


def check(config: DSACTConfig, hparams: DSACTHParams, discrete: bool) -> None:
    check_off_policy(config, hparams)
    require(config.policy_delay >= 1, f"policy_delay must be >= 1, got {config.policy_delay}")
    require((hparams.std_tau > 0) & (hparams.std_tau <= 1), f"std_tau must be in (0, 1], got {hparams.std_tau}")
    require(hparams.clip_xi > 0, f"clip_xi must be positive, got {hparams.clip_xi}")
    require(hparams.grad_eps > 0, f"grad_eps must be positive, got {hparams.grad_eps}")
    require(hparams.init_alpha > 0, f"init_alpha must be positive, got {hparams.init_alpha}")
    check_target_entropy_scale(hparams.target_entropy_scale, discrete)


DSACT = register(
    Algorithm(
        name="dsac-t",
        summary="DSAC-T: distributional SAC with a Gaussian value distribution and three refinements",
        config_type=DSACTConfig,
        hparams_type=DSACTHParams,
        build=build,
        defaults=defaults,
        check=check,
        discrete=False,
    )
)
