"""Stream Q(lambda) and stream SARSA(lambda) (Elsayed, Vasan and Mahmood, 2024, "Streaming Deep
Reinforcement Learning Finally Works", Algorithms 5 and 6): an action-value network learns from
each transition as it arrives, with eligibility traces and the overshooting-bounded step (ObGD),
no replay, no batches, no target network.

Q(lambda) (Watkins's): delta = r + gamma (1 - terminated) max_a Q(s', a) - Q(s, a); the traces
end at an episode's end and after an exploratory action (a random action other than the greedy
one). SARSA(lambda): delta = r + gamma (1 - terminated) Q(s', a') - Q(s, a) with a' the
epsilon-greedy action at s', the one the learner then takes; its traces end only with an
episode. A truncated episode bootstraps from the observation it reached (the paper's code treats
truncation as termination; the kit does not).
"""

from __future__ import annotations

import dataclasses
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
from jaxrl.components.qlearning import epsilon_greedy, greedy_act, linear_schedule
from jaxrl.components.streaming import obgd
from jaxrl.core.contract import Agent, Algorithm, register, require


@dataclass(frozen=True)
class StreamQConfig(StreamConfig):
    sarsa: bool = False  # stream SARSA(lambda) instead of Q(lambda) (the ``stream-sarsa`` name)


@struct.dataclass
class StreamQHParams(StreamHParams):
    eps_start: Any = 1.0
    eps_end: Any = 0.01
    eps_fraction: Any = 0.05  # of total_steps over which epsilon decays linearly


@struct.dataclass
class StreamQState:
    params: Any
    opt_state: Any  # ObGD's traces
    stream: StreamEnv
    action: jax.Array  # [1] the action SARSA takes next (chosen at the last step); Q(lambda) ignores it
    key: jax.Array


def build(config: StreamQConfig, env: envs.Environment) -> Agent:
    stream = Stream(config, env)
    num_actions = envs.action_size(env.action_space(env.default_params))
    network = stream.network(num_actions)

    def q_fn(params, x):
        return network.apply(params, x)

    def tx(hparams: StreamQHParams):
        return obgd(hparams.lr, hparams.gamma, hparams.lam, hparams.kappa)

    def epsilon(hparams: StreamQHParams, global_step: jax.Array) -> jax.Array:
        return linear_schedule(hparams.eps_start, hparams.eps_end, hparams.eps_fraction * config.total_steps, global_step)

    def init(key: jax.Array, hparams: StreamQHParams, env_params: Any) -> StreamQState:
        key, net_key, env_key, act_key = jax.random.split(key, 4)
        s = stream.reset(env_key, env_params)
        params = network.init(net_key, s.x)
        action = epsilon_greedy(act_key, q_fn(params, s.x), epsilon(hparams, jnp.zeros((), jnp.int32)))
        return StreamQState(params, tx(hparams).init(params), s, action, key)

    def learn_step(state: StreamQState, hparams: StreamQHParams, global_step: jax.Array):
        key, act_key, env_key, boot_key, next_key = jax.random.split(state.key, 5)
        eps = epsilon(hparams, global_step)
        q_x, q_vjp = jax.vjp(lambda p: q_fn(p, state.stream.x), state.params)
        action = state.action if config.sarsa else epsilon_greedy(act_key, q_x, eps)
        exploratory = action != jnp.argmax(q_x, axis=-1)
        stream_env, step, info = stream.step(state.stream, action, env_key, hparams.gamma)
        (grads,) = q_vjp(jax.nn.one_hot(action, num_actions, dtype=q_x.dtype))
        q_sa = jnp.take_along_axis(q_x, action[:, None], axis=-1)[:, 0]
        q_final = q_fn(state.params, step.x_final)
        if config.sarsa:
            boot_action = epsilon_greedy(boot_key, q_final, eps)
            bootstrap = jnp.take_along_axis(q_final, boot_action[:, None], axis=-1)[:, 0]
            # After an episode ended the next action is chosen at the reset observation.
            restart_action = epsilon_greedy(next_key, q_fn(state.params, step.x_next), eps)
            next_action = jnp.where(step.done, restart_action, boot_action)
            reset = step.done
        else:
            bootstrap = q_final.max(axis=-1)
            next_action = state.action
            reset = step.done | exploratory
        delta = (step.reward + hparams.gamma * (1.0 - step.terminated) * bootstrap - q_sa)[0]
        updates, opt_state = tx(hparams).update(grads, state.opt_state, delta=delta, reset=reset[0])
        params = optax.apply_updates(state.params, updates)
        metrics = {"td_error": delta, "epsilon": eps, "q_value": q_sa[0], "exploratory": exploratory[0].astype(jnp.float32)}
        new_state = StreamQState(params, opt_state, stream_env, next_action, key)
        return new_state, transition_record(step, info), metrics

    def policy_params(state: StreamQState) -> dict[str, Any]:
        return {"q": state.params, **stream.policy_inputs(state.stream)}

    return stream_agent(stream, config, init, learn_step, greedy_act(q_fn), policy_params)


def defaults(env_name: str, discrete: bool) -> tuple[StreamQConfig, StreamQHParams]:
    """The paper's settings: lr 1, gamma 0.99, lambda 0.8, kappa 2, epsilon 1 -> 0.01; classic
    control: two layers of 32 units, the time feature, epsilon decayed over 5% of 500k steps;
    MinAtar: the 16-channel convolution and 128 units, epsilon over 20% (the paper runs 5M
    steps there; the default here is 1M, a CPU budget)."""
    if is_minatar(env_name):
        return StreamQConfig(total_steps=1_000_000, hidden_sizes=(128,), torso="cnn", time_feature=False), StreamQHParams(eps_fraction=0.2)
    return StreamQConfig(), StreamQHParams()


def sarsa_defaults(env_name: str, discrete: bool) -> tuple[StreamQConfig, StreamQHParams]:
    config, hparams = defaults(env_name, discrete)
    return dataclasses.replace(config, sarsa=True), hparams


def check(config: StreamQConfig, hparams: StreamQHParams, discrete: bool) -> None:
    check_stream(config, hparams)
    for name in ("eps_start", "eps_end", "eps_fraction"):
        value = getattr(hparams, name)
        require((value >= 0) & (value <= 1), f"{name} must be in [0, 1], got {value}")


for _name, _summary, _defaults in (
    ("stream-q", "Stream Q(lambda): online Q-learning from one transition at a time with ObGD", defaults),
    ("stream-sarsa", "Stream SARSA(lambda): online SARSA from one transition at a time with ObGD", sarsa_defaults),
):
    register(
        Algorithm(
            name=_name,
            summary=_summary,
            config_type=StreamQConfig,
            hparams_type=StreamQHParams,
            build=build,
            defaults=_defaults,
            check=check,
            continuous=False,
        )
    )
