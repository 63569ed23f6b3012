"""Advantage actor-critic (A2C: the synchronous variant of Mnih et al., 2016, "Asynchronous
Methods for Deep Reinforcement Learning", Algorithm S3): every ``num_steps`` steps of
``num_envs`` environments, one gradient step on the whole batch of the policy gradient
-log pi(a|s) A with n-step advantages (GAE with lambda = 1: the discounted rewards up to the
rollout's end plus the bootstrapped value, cut at terminations), the value's squared error to the
same n-step return and an entropy bonus, with RMSProp.

It is PPO's agent (the kit's one rollout, GAE and minibatch loop) with the plain policy gradient
as its objective (``objective="pg"``, ``jaxrl.components.objectives``), one epoch of one
minibatch, no value clipping and no advantage normalisation: one module owns the actor-critic,
so a fix there is a fix here. Learned update rules (``jaxrl.rules``) are measured against it.

Defaults (discrete actions): 8 envs x 5 steps, RMSProp lr 7e-4 (decay 0.99, eps 1e-5, as
Stable-Baselines3's A2C), gamma 0.99, entropy 0.0, value 0.5, max grad norm 0.5; on CartPole-v1
they reach a return near 500 in 500k steps (tests/test_a2c.py).
"""

from __future__ import annotations

import dataclasses

from jaxrl.algorithms import ppo
from jaxrl.core.contract import Algorithm, register, require


def defaults(env_name: str, discrete: bool) -> tuple[ppo.PPOConfig, ppo.PPOHParams]:
    config, hparams = ppo.defaults(env_name, discrete)
    config = dataclasses.replace(
        config, objective="pg", optimizer="rmsprop", num_envs=8, num_steps=5, update_epochs=1, num_minibatches=1,
        clip_value_loss=False, normalize_advantages=False, anneal_lr=False,
    )
    return config, hparams.replace(lr=7e-4, gae_lambda=1.0, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5, adam_eps=1e-5)


def check(config: ppo.PPOConfig, hparams: ppo.PPOHParams, discrete: bool) -> None:
    ppo.check(config, hparams, discrete)
    require(config.update_epochs == 1 and config.num_minibatches == 1,
            "a2c takes one gradient step a rollout (update_epochs=1, num_minibatches=1); for more, use ppo")


register(
    Algorithm(
        name="a2c",
        summary="A2C: synchronous advantage actor-critic (one policy-gradient step a rollout, n-step returns)",
        config_type=ppo.PPOConfig,
        hparams_type=ppo.PPOHParams,
        build=ppo.build,
        defaults=defaults,
        check=check,
    )
)
