"""What the streaming agents (``stream-q``, ``stream-sarsa``, ``stream-ac``; Elsayed, Vasan and
Mahmood, 2024, "Streaming Deep Reinforcement Learning Finally Works") share: one environment
stream per learner, seen through the paper's normalisations, and the loop that learns from
every transition as it arrives.

A learner is tiny (one environment copy, one transition per step), so the way to run many is the
kit's usual one: seeds and hyperparameters are ``vmap`` axes of one program (``--seeds 64``, a
sweep), and every learner keeps its own normalisers and traces.

One ``update`` is ``num_steps`` environment steps, each followed by its learning step, scanned;
``num_steps`` only sets how often the runner logs and checkpoints: the learning is the same for
any chunking (up to the rounding of a differently compiled program).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

import envs
from jaxrl.components.networks import torso_kind
from jaxrl.components.rollout import EnvCarry, Transition, env_reset, episode_metrics, per_env
from jaxrl.components.streaming import (
    RewardScale,
    StreamNet,
    Welford,
    scale_reward,
    time_feature,
    welford_normalize,
    welford_update,
)
from jaxrl.core.contract import Agent, ConfigError, require


@dataclass(frozen=True)
class StreamConfig:
    total_steps: int = 500_000
    num_steps: int = 1_000  # environment steps (each with its update) per logged ``update``
    hidden_sizes: tuple[int, ...] = (32, 32)
    torso: str = "auto"  # auto | mlp | cnn (the paper's 16-channel 3x3 convolution first)
    sparsity: float = 0.9  # of each unit's inputs zeroed at initialisation; 0: dense
    layer_norm: bool = True  # without learned scale and shift, before every activation
    normalize_obs: bool = True  # Welford's running estimate, per learner
    scale_reward: bool = True  # by the running std of the discounted return
    time_feature: bool = True  # -0.5 + t / time limit appended (1-D observations only)


@struct.dataclass
class StreamHParams:
    lr: Any = 1.0
    gamma: Any = 0.99
    lam: Any = 0.8  # the traces' lambda
    kappa: Any = 2.0  # ObGD's overshooting bound (of the value, for stream-ac); 0: plain SGD


@struct.dataclass
class StreamEnv:
    """One learner's environment stream: the environment copy, the observation as the network
    sees it (normalised, with the time feature), and the normalisers' statistics."""

    carry: EnvCarry
    x: jax.Array  # [1, ...]
    obs_stats: Welford
    reward_scale: RewardScale
    t: jax.Array  # [1] int32: the time step of the current observation in its episode


@struct.dataclass
class StreamStep:
    """One transition as the learner sees it ([1, ...] leaves): ``x_final`` is the observation
    the transition reached (pre-reset: it bootstraps a truncated episode), ``x_next`` the one the
    next step starts from (the reset one after an episode ended)."""

    x: jax.Array
    reward: jax.Array  # scaled
    terminated: jax.Array
    truncated: jax.Array
    x_final: jax.Array
    x_next: jax.Array

    @property
    def done(self) -> jax.Array:
        return self.terminated | self.truncated


class Stream:
    """The environment side of a streaming learner, built once per (config, environment)."""

    def __init__(self, config: StreamConfig, env: envs.Environment):
        self.config = config
        self.vec_env = envs.make_vector(env, 1)
        self.obs_shape = envs.observation_shape(env, env.default_params)
        self.conv = torso_kind(self.obs_shape, config.torso) == "cnn"
        if config.time_feature and self.conv:
            raise ConfigError("time_feature is for the dense network (torso mlp); set time_feature=false")
        if config.time_feature and not hasattr(env.default_params, "max_steps_in_episode"):
            raise ConfigError("time_feature needs an episode limit (max_steps_in_episode) in the environment's parameters; set time_feature=false")

    def network(self, outputs: int) -> StreamNet:
        c = self.config
        return StreamNet(outputs, tuple(c.hidden_sizes), self.conv, c.sparsity, c.layer_norm, 3 if self.conv else 1)

    def features(self, stats: Welford | None, obs: jax.Array, t: jax.Array, limit: Any) -> jax.Array:
        """Observations [B, ...] as the network sees them: normalised with ``stats`` (None: as
        they are), with the time feature of steps ``t`` [B] under episode limits ``limit``."""
        x = obs.astype(jnp.float32)
        if stats is not None:
            x = welford_normalize(stats, x)
        if not self.conv:  # the dense network sees observations flat
            x = x.reshape(x.shape[:1] + (-1,))
        return time_feature(x, t, limit) if self.config.time_feature else x

    def limit(self, params: Any) -> Any:
        return params.max_steps_in_episode if self.config.time_feature else None

    def reset(self, key: jax.Array, env_params: Any) -> StreamEnv:
        key, own_key = jax.random.split(key)
        carry = env_reset(self.vec_env, _own(env_params, own_key), key)
        stats = welford_update(Welford.zeros(self.obs_shape), carry.obs[0].astype(jnp.float32))
        t = jnp.zeros((1,), jnp.int32)
        x = self.features(stats if self.config.normalize_obs else None, carry.obs, t, self.limit(carry.params))
        return StreamEnv(carry, x, stats, RewardScale.zeros(), t)

    def step(self, s: StreamEnv, action: jax.Array, key: jax.Array, gamma: jax.Array) -> tuple[StreamEnv, StreamStep, dict]:
        """One environment step. The observation statistics take the observation the step
        reached, then (after an episode end) the reset one, each before it is normalised, as
        the paper's wrapper does. Returns the new stream, the transition and the env's info."""
        c, carry = self.config, s.carry
        obs, env_state, reward, terminated, truncated, info = self.vec_env.step(key, carry.env_state, action, carry.params)
        done = terminated | truncated
        final = info["final_observation"].astype(jnp.float32)
        limit = self.limit(carry.params)
        stats = welford_update(s.obs_stats, final[0]) if c.normalize_obs else s.obs_stats
        x_final = self.features(stats if c.normalize_obs else None, final, s.t + 1, limit)
        if c.normalize_obs:
            stats = welford_update(stats, obs[0].astype(jnp.float32), done[0])
        t = jnp.where(done, 0, s.t + 1)
        x_next = self.features(stats if c.normalize_obs else None, obs, t, limit)
        reward_scale, scaled = s.reward_scale, reward
        if c.scale_reward:
            reward_scale, scaled = scale_reward(s.reward_scale, reward[0], done[0], gamma)
            scaled = scaled[None]
        stream = StreamEnv(EnvCarry(env_state, obs, carry.params), x_next, stats, reward_scale, t)
        return stream, StreamStep(s.x, scaled, terminated, truncated, x_final, x_next), info

    def policy_inputs(self, s: StreamEnv) -> dict[str, Any]:
        """What a saved policy needs besides its weights to see observations as in training."""
        limit = None
        if self.config.time_feature:  # one per learner, also where the state keeps one set of env parameters
            limit = jnp.broadcast_to(s.carry.params.max_steps_in_episode, s.t.shape)[..., 0]
        return {"obs_stats": s.obs_stats if self.config.normalize_obs else None, "time_limit": limit}

    def eval_features(self, policy_params: dict, obs: jax.Array, memory: Any) -> tuple[jax.Array, Any]:
        """``features`` with a saved policy's frozen statistics; the memory of a time-feature
        policy is the episode step [B] (zeroed by the evaluator when an episode ends)."""
        if not self.config.time_feature:
            return self.features(policy_params["obs_stats"], obs, None, None), None
        if memory is None:
            raise ValueError("a policy with the time feature needs its memory, the episode step (agent.initial_memory(batch))")
        return self.features(policy_params["obs_stats"], obs, memory, policy_params["time_limit"]), memory + 1

    def initial_memory(self) -> Callable[[int], Any] | None:
        return (lambda batch: jnp.zeros((batch,), jnp.int32)) if self.config.time_feature else None


def _own(env_params: Any, key: jax.Array) -> Any:
    """The same parameters, made this learner's own: + 0 x (a number drawn from its key) makes
    every floating-point leaf depend on the learner, so under ``vmap`` each learner holds its
    copy. With one shared copy, XLA rewrites an environment's division by a parameter (CartPole
    divides by its masses) into a multiplication by its reciprocal in the vmapped program only,
    which rounds differently; with a copy each, a learner vmapped equals it alone, bit for bit."""
    zero = 0.0 * jax.random.uniform(key)
    return jax.tree.map(lambda p: p + zero.astype(p.dtype) if jnp.issubdtype(jnp.asarray(p).dtype, jnp.floating) else p, env_params)


def stream_agent(stream: Stream, config: StreamConfig, init: Callable, learn_step: Callable, act: Callable, policy_params: Callable) -> Agent:
    """The ``Agent`` of a streaming learner whose ``learn_step(state, hparams, global_step) ->
    (state, transition, metrics)`` takes one environment step and learns from it; ``update``
    scans it ``num_steps`` times. ``act(policy_params, x, key, deterministic)`` acts on features."""
    num_updates = config.total_steps // config.num_steps

    def update(state: Any, hparams: Any, step: jax.Array) -> tuple[Any, dict[str, Any]]:
        def body(state, i):
            state, transition, metrics = learn_step(state, hparams, step * config.num_steps + i)
            return state, (transition, metrics)

        state, (transitions, metrics) = jax.lax.scan(body, state, jnp.arange(config.num_steps))
        td_error = metrics.pop("td_error")
        metrics = {name: value.mean() for name, value in metrics.items()}
        metrics["td_error_abs"] = jnp.abs(td_error).mean()
        metrics.update(episode_metrics(transitions))
        metrics["per_env"] = per_env(transitions, td_error=td_error[:, None])
        return state, metrics

    def eval_act(policy_params: Any, obs: jax.Array, key: jax.Array, deterministic: bool = False, memory: Any = None):
        x, memory = stream.eval_features(policy_params, obs, memory)
        action = act(policy_params, x, key, deterministic)
        return action if stream.initial_memory() is None else (action, memory)

    return Agent(
        init=init,
        update=update,
        act=eval_act,
        policy_params=policy_params,
        steps_per_update=config.num_steps,
        num_updates=num_updates,
        collect=_not_split,
        learn=_not_split,
        initial_memory=stream.initial_memory(),
    )


def transition_record(step: StreamStep, info: dict) -> Transition:
    """What the logs and curricula read about a step ([1] leaves; no observations kept)."""
    return Transition(
        obs=None, action=None, reward=step.reward, terminated=step.terminated, truncated=step.truncated,
        next_obs=None, extras={}, episode_done=info["episode_done"], episode_return=info["episode_return"],
        episode_length=info["episode_length"],
    )


def _not_split(*_: Any) -> Any:
    raise NotImplementedError("a streaming agent learns at every environment step; its update is not split into collect and learn")


def is_minatar(env_name: str) -> bool:
    return "MinAtar" in env_name


def check_stream(config: StreamConfig, hparams: StreamHParams) -> None:
    require(config.num_steps >= 1, f"num_steps must be >= 1, got {config.num_steps}")
    require(config.total_steps >= config.num_steps, f"total_steps={config.total_steps} is below one update of num_steps={config.num_steps}")
    require(config.torso in ("auto", "mlp", "cnn"), f"torso must be auto, mlp or cnn, got {config.torso!r}")
    require(len(config.hidden_sizes) >= 1 and min(config.hidden_sizes) >= 1, "hidden_sizes must be positive")
    require(0.0 <= config.sparsity < 1.0, f"sparsity must be in [0, 1), got {config.sparsity}")
    require(hparams.lr > 0, f"lr must be positive, got {hparams.lr}")
    require((hparams.gamma >= 0) & (hparams.gamma <= 1), f"gamma must be in [0, 1], got {hparams.gamma}")
    require((hparams.lam >= 0) & (hparams.lam <= 1), f"lam must be in [0, 1], got {hparams.lam}")
    require(hparams.kappa >= 0, f"kappa must be >= 0 (0 turns ObGD's bound off), got {hparams.kappa}")
