"""PQN, parallelised Q-learning (Gallici et al., 2024, "Simplifying Deep Temporal Difference
Learning"): no replay and no target network. Many environments are stepped in parallel with an
epsilon-greedy policy, Q(lambda) returns are computed over the rollout, and a LayerNorm network
regresses onto them for a few epochs of minibatches, as PPO does with its value targets.

Q(lambda) here is the lambda-return with greedy bootstraps, G_t = r_t + gamma (1 - term_t)
[max_a Q(s'_t, a) + lambda (1 - done_t) (G_{t+1} - max_a Q(s'_t, a))], which is exactly what
``jaxrl.components.gae`` computes (as advantages + v_t) with v_t = max_a Q(s_t, a) and
v_tp1 = max_a Q(s'_t, a), s'_t the pre-reset observation the transition reached: inside an
episode s'_t = s_{t+1}, so the two recursions coincide, and at a truncation the return is cut and
bootstrapped from the final observation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

import envs
from jaxrl.components.gae import gae
from jaxrl.components.optim import check_optimizer
from jaxrl.components.qlearning import build_q_network, check_q_config, epsilon_greedy, greedy_act, linear_schedule, q_optimizer
from jaxrl.components.rollout import EnvCarry, Transition, env_reset, episode_metrics, per_env, rollout
from jaxrl.components.sgd import minibatch_epochs
from jaxrl.core.contract import Agent, Algorithm, Progress, check_batch, compose, register, require


@dataclass(frozen=True)
class PQNConfig:
    total_steps: int = 500_000
    num_envs: int = 32
    num_steps: int = 64
    update_epochs: int = 4
    num_minibatches: int = 16
    # Annealed to 0 (with lr 2e-4): the final policy stays at 500 on CartPole where a constant 1e-4
    # let 1-2 of 8 seeds collapse late in training (experiments/value_based/README.md).
    anneal_lr: bool = True
    value_loss: str = "mse"  # mse | huber | hl_gauss | two_hot | c51 (c51 is two_hot for these scalar targets)
    num_bins: int = 101
    v_min: float = -100.0
    v_max: float = 100.0
    hidden_sizes: tuple[int, ...] = (128, 128)
    activation: str = "relu"
    layer_norm: bool = True
    torso: str = "auto"  # auto | mlp | cnn
    optimizer: str = "adam"  # jaxrl.components.optim


@struct.dataclass
class PQNHParams:
    lr: Any = 2e-4
    gamma: Any = 0.99
    q_lambda: Any = 0.95
    eps_start: Any = 1.0
    eps_end: Any = 0.05
    eps_fraction: Any = 0.2  # of total_steps over which epsilon decays
    max_grad_norm: Any = 10.0
    huber_delta: Any = 1.0
    adam_eps: Any = 1e-8
    optimizer_params: Any = None  # a learned optimizer's weights


@struct.dataclass
class PQNState:
    params: Any
    opt_state: Any
    env: EnvCarry
    key: jax.Array


@struct.dataclass
class PQNBatch:
    """What ``collect`` hands to ``learn``: the rollout, the greedy values of the observations
    its transitions reached, and the key for shuffling minibatches."""

    traj: Transition
    next_q_max: jax.Array
    key: jax.Array


def build(config: PQNConfig, env: envs.Environment) -> Agent:
    network, head, obs_shape = build_q_network(config, env)
    vec_env = envs.make_vector(env, config.num_envs)
    batch_size = config.num_envs * config.num_steps
    num_updates = config.total_steps // batch_size

    def q_values(params, obs):
        return head.value(network.apply(params, obs))

    def init(key: jax.Array, hparams: PQNHParams, env_params: Any) -> PQNState:
        key, net_key, env_key = jax.random.split(key, 3)
        params = network.init(net_key, jnp.zeros((1, *obs_shape), jnp.float32))
        opt_state = q_optimizer(config, hparams, Progress(jnp.zeros((), jnp.int32), num_updates)).init(params)
        return PQNState(params, opt_state, env_reset(vec_env, env_params, env_key), key)

    def loss_fn(params, batch, hparams: PQNHParams):
        obs, actions, targets = batch
        out = network.apply(params, obs)
        out_taken = out[jnp.arange(obs.shape[0]), actions]
        loss = head.loss(out_taken, targets, hparams.huber_delta).mean()
        return loss, {"q_loss": loss, "q_value": head.value(out_taken).mean()}

    def epsilon(hparams: PQNHParams, step: jax.Array) -> jax.Array:
        return linear_schedule(hparams.eps_start, hparams.eps_end, hparams.eps_fraction * config.total_steps, step * batch_size)

    def collect(state: PQNState, hparams: PQNHParams, step: jax.Array) -> tuple[PQNState, PQNBatch]:
        key, rollout_key, shuffle_key = jax.random.split(state.key, 3)

        def policy(act_key, obs):
            q = q_values(state.params, obs)
            return epsilon_greedy(act_key, q, epsilon(hparams, step)), {"q_max": q.max(axis=-1)}

        env_carry, traj = rollout(vec_env, policy, state.env, rollout_key, config.num_steps)
        next_q_max = q_values(state.params, traj.next_obs).max(axis=-1)
        return state.replace(env=env_carry, key=key), PQNBatch(traj, next_q_max, shuffle_key)

    def learn(state: PQNState, hparams: PQNHParams, batch: PQNBatch, step: jax.Array) -> tuple[PQNState, dict[str, Any]]:
        traj = batch.traj
        advantages, targets = gae(traj.reward, traj.extras["q_max"], batch.next_q_max, traj.terminated, traj.done, hparams.gamma, hparams.q_lambda)
        flat = jax.tree.map(lambda x: x.reshape((batch_size,) + x.shape[2:]), (traj.obs, traj.action, targets))
        params, opt_state, metrics = minibatch_epochs(
            lambda p, b: loss_fn(p, b, hparams),
            q_optimizer(config, hparams, Progress(step, num_updates)),
            state.params,
            state.opt_state,
            flat,
            batch.key,
            config.update_epochs,
            config.num_minibatches,
        )
        metrics.update(episode_metrics(traj))
        metrics["epsilon"] = jnp.asarray(epsilon(hparams, step), jnp.float32)
        metrics["per_env"] = per_env(traj, value=traj.extras["q_max"], advantage=advantages, target=targets)
        return state.replace(params=params, opt_state=opt_state), metrics

    return Agent(
        init=init,
        update=compose(collect, learn),
        act=greedy_act(q_values),
        policy_params=lambda state: {"q": state.params},
        steps_per_update=batch_size,
        num_updates=num_updates,
        collect=collect,
        learn=learn,
    )


def defaults(env_name: str, discrete: bool) -> tuple[PQNConfig, PQNHParams]:
    if "MinAtar" in env_name:
        # Image observations (the CNN torso): more envs, shorter rollouts, faster exploration decay.
        # Breakout-MinAtar: 11.0 +- 0.5 after 500k steps (2 seeds, 7 min on one core; random: 0.4).
        return (
            PQNConfig(total_steps=500_000, num_envs=128, num_steps=32, update_epochs=2, num_minibatches=32, anneal_lr=False),
            PQNHParams(lr=2.5e-4, eps_fraction=0.1),
        )
    return PQNConfig(), PQNHParams()


def check(config: PQNConfig, hparams: PQNHParams, discrete: bool) -> None:
    check_q_config(config, hparams)
    check_optimizer(config.optimizer, hparams.optimizer_params)
    require(config.update_epochs >= 1, f"update_epochs must be >= 1, got {config.update_epochs}")
    batch = config.num_envs * config.num_steps
    require(
        config.num_minibatches >= 1 and batch % config.num_minibatches == 0,
        f"num_minibatches={config.num_minibatches} does not divide the batch of {batch} (num_envs x num_steps)",
    )
    check_batch(config.total_steps, batch, "batch (num_envs x num_steps)")
    require((hparams.q_lambda >= 0) & (hparams.q_lambda <= 1), f"q_lambda must be in [0, 1], got {hparams.q_lambda}")


PQN = register(
    Algorithm(
        name="pqn",
        summary="PQN: parallel Q(lambda) with LayerNorm, no replay or target network",
        config_type=PQNConfig,
        hparams_type=PQNHParams,
        build=build,
        defaults=defaults,
        check=check,
        continuous=False,
    )
)
