"""Stream AC(lambda) (Elsayed, Vasan and Mahmood, 2024, "Streaming Deep Reinforcement Learning
Finally Works", Algorithm 4): an actor-critic that learns from each transition as it arrives,
for discrete and continuous actions.

delta = r + gamma (1 - terminated) V(s') - V(s) (a truncated episode bootstraps from the
observation it reached). The critic follows ObGD on the traces of grad V(s) with its own kappa;
the actor follows ObGD on the traces of grad [log pi(a|s) + entropy_coef sign(delta) H(pi(.|s))]
with ``kappa_policy``, so the entropy bonus always pushes towards more entropy (delta x sign
(delta) = |delta|). Both traces end with the episode. Separate actor and critic networks; a
continuous policy is a Gaussian with mean and softplus standard deviation heads, sampled
unclipped (the environment clips).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

import envs
from jaxrl.algorithms.stream_base import (
    Stream,
    StreamConfig,
    StreamEnv,
    StreamHParams,
    check_stream,
    is_minatar,
    stream_agent,
    transition_record,
)
from jaxrl.components.action_dists import Categorical, DiagNormal
from jaxrl.components.streaming import obgd, pairwise_sum
from jaxrl.core.contract import Agent, Algorithm, register, require

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
# Keeps a softplus standard deviation that underflowed from making log-probabilities infinite.
_MIN_STD = 1e-6


@dataclass(frozen=True)
class StreamACConfig(StreamConfig):
    pass


@struct.dataclass
class StreamACHParams(StreamHParams):
    kappa_policy: Any = 3.0  # ObGD's bound for the actor (``kappa`` is the critic's)
    entropy_coef: Any = 0.01


@struct.dataclass
class StreamACState:
    params: Any  # {"actor", "critic"}
    opt_state: Any  # ObGD's traces, {"actor", "critic"}
    stream: StreamEnv
    key: jax.Array


def build(config: StreamACConfig, env: envs.Environment) -> Agent:
    stream = Stream(config, env)
    space = env.action_space(env.default_params)
    discrete = envs.is_discrete(space)
    action_dim = envs.action_size(space)
    actor = stream.network(action_dim if discrete else 2 * action_dim)
    critic = stream.network(1)

    def dist_of(out: jax.Array):
        if discrete:
            return Categorical.from_logits(out)
        loc, pre_std = jnp.split(out, 2, axis=-1)
        return DiagNormal(loc, jax.nn.softplus(pre_std) + _MIN_STD)

    def log_prob_and_entropy(out: jax.Array, action: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``dist_of(out)``'s log-probability of ``action`` and entropy, with the sums over
        actions as ``pairwise_sum``s (a learner vmapped then equals it alone, bit for bit)."""
        dist = dist_of(out)
        if discrete:
            return dist.log_prob(action), dist.entropy()
        log_scale = jnp.log(dist.scale_diag)
        z = (action - dist.loc) / dist.scale_diag
        log_prob = pairwise_sum(-0.5 * jnp.square(z) - log_scale - _HALF_LOG_2PI)
        return log_prob, pairwise_sum(0.5 + _HALF_LOG_2PI + log_scale)

    def value(params, x):
        return critic.apply(params, x)[..., 0]

    def txs(hparams: StreamACHParams):
        return {
            "actor": obgd(hparams.lr, hparams.gamma, hparams.lam, hparams.kappa_policy),
            "critic": obgd(hparams.lr, hparams.gamma, hparams.lam, hparams.kappa),
        }

    def init(key: jax.Array, hparams: StreamACHParams, env_params: Any) -> StreamACState:
        key, actor_key, critic_key, env_key = jax.random.split(key, 4)
        s = stream.reset(env_key, env_params)
        params = {"actor": actor.init(actor_key, s.x), "critic": critic.init(critic_key, s.x)}
        opt_state = {name: tx.init(params[name]) for name, tx in txs(hparams).items()}
        return StreamACState(params, opt_state, s, key)

    def learn_step(state: StreamACState, hparams: StreamACHParams, global_step: jax.Array):
        del global_step
        key, act_key, env_key = jax.random.split(state.key, 3)
        params = state.params
        out, actor_vjp = jax.vjp(lambda p: actor.apply(p, state.stream.x), params["actor"])
        action = dist_of(out).sample(seed=act_key)
        stream_env, step, info = stream.step(state.stream, action, env_key, hparams.gamma)
        v, critic_vjp = jax.vjp(lambda p: value(p, step.x), params["critic"])
        v_final = value(params["critic"], step.x_final)
        delta = (step.reward + hparams.gamma * (1.0 - step.terminated) * v_final - v)[0]

        def policy_objective(out):
            log_prob, entropy = log_prob_and_entropy(out, action)
            return (log_prob + hparams.entropy_coef * jnp.sign(delta) * entropy).sum()

        (actor_grads,) = actor_vjp(jax.grad(policy_objective)(out))
        (critic_grads,) = critic_vjp(jnp.ones_like(v))
        grads = {"actor": actor_grads, "critic": critic_grads}
        new_params, opt_state = {}, {}
        for name, tx in txs(hparams).items():
            updates, opt_state[name] = tx.update(grads[name], state.opt_state[name], delta=delta, reset=step.done[0])
            new_params[name] = optax.apply_updates(params[name], updates)
        metrics = {"td_error": delta, "value": v[0], "entropy": log_prob_and_entropy(out, action)[1][0]}
        return StreamACState(new_params, opt_state, stream_env, key), transition_record(step, info), metrics

    def act(policy_params: Any, x: jax.Array, key: jax.Array, deterministic: bool = False) -> jax.Array:
        dist = dist_of(actor.apply(policy_params["actor"], x))
        return dist.mode() if deterministic else dist.sample(seed=key)

    def policy_params(state: StreamACState) -> dict[str, Any]:
        return {"actor": state.params["actor"], **stream.policy_inputs(state.stream)}

    return stream_agent(stream, config, init, learn_step, act, policy_params)


def defaults(env_name: str, discrete: bool) -> tuple[StreamACConfig, StreamACHParams]:
    """The paper's settings: lr 1, gamma 0.99, lambda 0.8, kappa 2 (critic) and 3 (actor),
    entropy 0.01; classic control: two layers of 32 units and the time feature; MinAtar: the
    16-channel convolution and 128 units (the paper runs 10M steps; 1M here); continuous
    control: two layers of 128 units and the time feature (the paper runs 2M steps; 1M here)."""
    if is_minatar(env_name):
        return StreamACConfig(total_steps=1_000_000, hidden_sizes=(128,), torso="cnn", time_feature=False), StreamACHParams()
    if not discrete:
        return StreamACConfig(total_steps=1_000_000, hidden_sizes=(128, 128)), StreamACHParams()
    return StreamACConfig(), StreamACHParams()


def check(config: StreamACConfig, hparams: StreamACHParams, discrete: bool) -> None:
    check_stream(config, hparams)
    require(hparams.kappa_policy >= 0, f"kappa_policy must be >= 0 (0 turns ObGD's bound off), got {hparams.kappa_policy}")
    require(hparams.entropy_coef >= 0, f"entropy_coef must be >= 0, got {hparams.entropy_coef}")


STREAM_AC = register(
    Algorithm(
        name="stream-ac",
        summary="Stream AC(lambda): online actor-critic from one transition at a time with ObGD",
        config_type=StreamACConfig,
        hparams_type=StreamACHParams,
        build=build,
        defaults=defaults,
        check=check,
    )
)
