"""Off-policy Mirror Descent Policy Optimization (Tomar et al., 2022, "Mirror Descent Policy
Optimization", section 5.2), continuous actions.

SAC's learner (``jaxrl.algorithms.sac``: twin soft critics, Polyak targets, a learned entropy
temperature, the tanh-squashed Gaussian policy) with the actor's step made a mirror-descent
step: the actor minimises

    E_s[ E_{a ~ pi_theta}[alpha log pi_theta(a|s) - min_i Q_i(s, a)] + KL(pi_theta(.|s) || pi_old(.|s)) / t_k ]

where pi_old is a frozen copy of the actor refreshed every ``kl_refresh_every`` actor steps
(the paper's m SGD steps per mirror-descent iteration), the KL is estimated from the same
reparameterised samples a ~ pi_theta as log pi_theta(a|s) - log pi_old(a|s), and
t_k = 1 - k / K is annealed over the K mirror-descent iterations of the run (``mdpo_step_size``),
so the proximity term's weight grows from 1 to K.

The training loop (replay, random warm-up actions, gradient steps) is
``jaxrl.components.off_policy.OffPolicyLoop``; the critic and temperature steps are SAC's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

import envs
from jaxrl.algorithms.sac import SACHParams, SACLearner, finish_step, soft_critic_step
from jaxrl.components.actor_critic import (
    OffPolicyConfig,
    check_off_policy,
    check_target_entropy_scale,
    default_config,
    mlp_torso,
    tanh_gaussian_log_prob,
    tanh_gaussian_sample,
    twin_critics,
)
from jaxrl.components.losses import mdpo_step_size
from jaxrl.components.networks import TanhGaussianActor
from jaxrl.components.off_policy import OffPolicyLoop, OffPolicyState
from jaxrl.components.optim import apply
from jaxrl.core.contract import Agent, Algorithm, compose, register, require


@dataclass(frozen=True)
class MDPOOffConfig(OffPolicyConfig):
    # actor steps per mirror-descent iteration (m): pi_old is refreshed to pi_theta this often
    kl_refresh_every: int = 1000


@struct.dataclass
class MDPOOffHParams(SACHParams):
    pass


@struct.dataclass
class MDPOOffLearner:
    sac: SACLearner
    old_actor: Any  # pi_old's parameters, frozen for kl_refresh_every actor steps


def tanh_gaussian_kl_estimate(
    u: jax.Array, mean: jax.Array, log_std: jax.Array, old_mean: jax.Array, old_log_std: jax.Array
) -> jax.Array:
    """A one-sample estimate of KL(pi || pi_old) between tanh-squashed diagonal Gaussians at one
    state: log pi(tanh(u)) - log pi_old(tanh(u)), with u ~ N(mean, exp(log_std)^2) the pre-squash
    sample (reparameterised, so the estimate is differentiable in mean and log_std). Unbiased;
    its expectation is >= 0 and 0 only where pi = pi_old, where every sample gives exactly 0.
    The tanh Jacobian cancels between the two log-probabilities but is kept so that both are
    the policies' true log-densities. Shapes: [..., action_dim] in, [...] out."""
    return tanh_gaussian_log_prob(u, mean, log_std) - tanh_gaussian_log_prob(u, old_mean, old_log_std)


def build(config: MDPOOffConfig, env: envs.Environment) -> Agent:
    loop = OffPolicyLoop(config, env)
    actor = TanhGaussianActor(loop.action_dim, mlp_torso(config, loop.obs_shape))
    critic = twin_critics(config)
    # One actor step per learner step, over the updates that learn.
    total_actor_steps = max(1, loop.learning_updates()) * config.gradient_steps
    num_iterations = max(1, math.ceil(total_actor_steps / config.kl_refresh_every))

    def tx_at(hparams: MDPOOffHParams, step: jax.Array):
        return lambda lr: loop.optimizer(hparams, lr, step)

    def init(key: jax.Array, hparams: MDPOOffHParams, env_params: Any) -> OffPolicyState:
        key, actor_key, critic_key = jax.random.split(key, 3)
        make_tx = tx_at(hparams, jnp.zeros((), jnp.int32))
        actor_params = actor.init(actor_key, loop.example_obs())
        critic_params = critic.init(critic_key, loop.example_obs(), loop.example_action())
        log_alpha = jnp.log(jnp.asarray(hparams.init_alpha, jnp.float32))
        sac = SACLearner(
            actor=actor_params,
            critic=critic_params,
            target_critic=critic_params,
            log_alpha=log_alpha,
            actor_opt=make_tx(hparams.actor_lr).init(actor_params),
            critic_opt=make_tx(hparams.critic_lr).init(critic_params),
            alpha_opt=make_tx(hparams.alpha_lr).init(log_alpha),
        )
        return loop.init(key, MDPOOffLearner(sac, actor_params), env_params)

    def learn_step(learner: MDPOOffLearner, batch, key, hparams: MDPOOffHParams, step, index):
        # ``index`` counts the actor steps before this one (one per learner step).
        make_tx = tx_at(hparams, step)
        critic_key, actor_key = jax.random.split(key)
        sac = learner.sac
        alpha = jnp.exp(sac.log_alpha)
        critic_params, critic_opt, q_loss, q = soft_critic_step(actor, critic, sac, batch, critic_key, hparams, make_tx)
        old_mean, old_log_std = jax.lax.stop_gradient(actor.apply(learner.old_actor, batch["obs"]))
        iteration = index // config.kl_refresh_every
        step_size = mdpo_step_size(iteration, num_iterations)

        def actor_loss(params):
            mean, log_std = actor.apply(params, batch["obs"])
            u = mean + jnp.exp(log_std) * jax.random.normal(actor_key, mean.shape, mean.dtype)
            action = jnp.tanh(u)
            log_prob = tanh_gaussian_log_prob(u, mean, log_std)
            kl = tanh_gaussian_kl_estimate(u, mean, log_std, old_mean, old_log_std)
            q_new = critic.apply(critic_params, batch["obs"], action).min(axis=0)
            soft_loss = (alpha * log_prob - q_new).mean()
            return soft_loss + kl.mean() / step_size, (-log_prob, kl.mean(), soft_loss)

        (pi_loss, (entropy, kl, soft_loss)), grads = jax.value_and_grad(actor_loss, has_aux=True)(sac.actor)
        actor_params, actor_opt = apply(make_tx(hparams.actor_lr), grads, sac.actor_opt, sac.actor)
        sac = finish_step(sac, critic_params, critic_opt, actor_params, actor_opt, entropy, hparams, loop.action_dim, False, make_tx)
        # A new mirror-descent iteration starts from the current policy.
        refresh = (index + 1) % config.kl_refresh_every == 0
        old_actor = jax.lax.cond(refresh, lambda: actor_params, lambda: learner.old_actor)
        metrics = {
            "critic_loss": q_loss,
            "actor_loss": pi_loss,
            "soft_actor_loss": soft_loss,
            "kl": kl,
            "mdpo_step_size": step_size,
            "q_value": q.mean(),
            "entropy": entropy.mean(),
            "alpha": alpha,
        }
        return MDPOOffLearner(sac, old_actor), metrics

    def sample_action(actor_params, obs, key):
        mean, log_std = actor.apply(actor_params, obs)
        return tanh_gaussian_sample(key, mean, log_std)[0]

    def explore(learner: MDPOOffLearner, key, obs, hparams, step):
        return sample_action(learner.sac.actor, obs, key)

    def collect(state, hparams, step):
        return loop.collect(state, hparams, step, explore)

    def learn(state, hparams, batch, step):
        return loop.learn(state, hparams, batch, step, learn_step)

    def act(policy_params, obs: jax.Array, key: jax.Array, deterministic: bool = False) -> jax.Array:
        if deterministic:
            return jnp.tanh(actor.apply(policy_params["actor"], obs)[0])
        return sample_action(policy_params["actor"], obs, key)

    return Agent(
        init=init,
        update=compose(collect, learn),
        act=act,
        policy_params=lambda state: {"actor": state.learner.sac.actor},
        steps_per_update=loop.steps_per_update,
        num_updates=loop.num_updates,
        collect=collect,
        learn=learn,
    )


def defaults(env_name: str, discrete: bool) -> tuple[MDPOOffConfig, MDPOOffHParams]:
    return default_config(MDPOOffConfig, env_name), MDPOOffHParams()


def check(config: MDPOOffConfig, hparams: MDPOOffHParams, discrete: bool) -> None:
    check_off_policy(config, hparams)
    require(config.kl_refresh_every >= 1, f"kl_refresh_every must be >= 1, got {config.kl_refresh_every}")
    require(hparams.init_alpha > 0, f"init_alpha must be positive, got {hparams.init_alpha}")
    check_target_entropy_scale(hparams.target_entropy_scale, discrete)


MDPO_OFF = register(
    Algorithm(
        name="mdpo-off",
        summary="Off-policy Mirror Descent Policy Optimization: SAC's learner with a KL step to the previous policy",
        config_type=MDPOOffConfig,
        hparams_type=MDPOOffHParams,
        build=build,
        defaults=defaults,
        check=check,
        discrete=False,
    )
)
