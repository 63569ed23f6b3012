"""Proximal Policy Optimization (Schulman et al., 2017, "Proximal Policy Optimization
Algorithms"), clipped-surrogate variant, for discrete and continuous actions; and on-policy
Mirror Descent Policy Optimization (Tomar et al., 2022, "Mirror Descent Policy Optimization"),
registered as ``mdpo``, which is the same agent with another policy objective (``objective="mdpo"``,
``jaxrl.components.objectives``): the unclipped surrogate E[rho A] minus KL(pi_theta || pi_rollout) / t_k, the KL in closed form
from the rollout policy's stored distribution parameters, t_k = 1 - k / K annealed over the
K updates.

Defaults on discrete environments are the standard configuration (CleanRL / PureJaxRL CartPole):
4 envs x 128 steps, 4 epochs x 4 minibatches, lr 2.5e-4 annealed, gamma 0.99, lambda 0.95,
clip 0.2, entropy 0.01, value 0.5, max grad norm 0.5, 500k steps.

Recurrent PPO (``memory="gru"`` or ``"lstm"``): actor and critic each get a GRU or LSTM between torso and head, whose
state the rollout carries and zeroes at episode ends; learning replays every environment's whole
rollout through the GRU from the state it started with (minibatches are sets of environments,
not shuffled transitions), as in recurrent PPO for partially observable environments (e.g. the
UED maze; Jiang et al., 2021). Its ``act`` takes and returns the memory.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

import envs
from jaxrl.components.action_dists import Categorical, DiagNormal, Distribution
from jaxrl.components.losses import normalize, value_loss
from jaxrl.components.drifts import check_objective_params
from jaxrl.components.networks import (
    ACTIVATIONS, Actor, Critic, RecurrentActor, RecurrentCritic, Torso, apply_with_context, torso_kind,
)
from jaxrl.components.objectives import PolicyTerms, get_objective
from jaxrl.components.optim import check_optimizer, is_learned, optimizer, scheduled_lr
from jaxrl.components.rollout import EnvCarry, Transition, env_reset, episode_metrics, per_env, rollout
from jaxrl.components.sgd import minibatch_epochs
from jaxrl.components.targets import get_targets
from jaxrl.components.value_losses import check_value_head, value_head
from jaxrl.core.contract import Agent, Algorithm, Progress, canonical_name, check_batch, compose, register, require


@dataclass(frozen=True)
class PPOConfig:
    total_steps: int = 500_000
    num_envs: int = 4
    num_steps: int = 128
    update_epochs: int = 4
    num_minibatches: int = 4
    anneal_lr: bool = True
    normalize_advantages: bool = True
    clip_value_loss: bool = True
    normalize_obs: bool = False
    normalize_reward: bool = False
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    torso: str = "auto"  # auto | mlp | cnn
    # Critic loss (jaxrl.components.value_losses): mse (clipped if clip_value_loss) | huber |
    # hl_gauss | two_hot | c51 (for these scalar targets, c51 is two_hot); support for the categorical ones.
    value_loss: str = "mse"
    num_bins: int = 101
    v_min: float = -100.0
    v_max: float = 100.0
    # The pieces, by name (jaxrl.components.objectives / optim / targets): the policy objective
    # (clip: PPO's clipped surrogate; mdpo: MDPO's KL-regularised one, where clip_eps only clips
    # the value loss), the optimizer and the value targets.
    objective: str = "clip"
    optimizer: str = "adam"
    targets: str = "gae"
    memory: str = "none"  # none | gru | lstm: a recurrent actor and critic (see the module docstring)
    memory_size: int = 128
    head_sizes: tuple[int, ...] = ()  # a recurrent agent's ReLU layers between memory and outputs

    def __post_init__(self):
        # The objective's name in its hyphenated spelling (lpo_zero -> lpo-zero), however the
        # config was made: by --set, from an older run's metadata, or in code.
        if isinstance(self.objective, str):
            object.__setattr__(self, "objective", canonical_name(self.objective))


@struct.dataclass
class PPOHParams:
    lr: Any = 2.5e-4
    gamma: Any = 0.99
    gae_lambda: Any = 0.95
    clip_eps: Any = 0.2
    ent_coef: Any = 0.01
    vf_coef: Any = 0.5
    max_grad_norm: Any = 0.5
    adam_eps: Any = 1e-5
    objective_params: Any = None  # a learned objective's weights (a pytree), read by the objective
    optimizer_params: Any = None  # a learned optimizer's weights, read by the optimizer


@struct.dataclass
class PPOState:
    params: Any  # {"actor": ..., "critic": ...}
    opt_state: Any
    env: EnvCarry
    key: jax.Array


@struct.dataclass
class PPOBatch:
    """What ``collect`` hands to ``learn``: a rollout, the values of the observations its
    transitions reached, and the key the learning step shuffles minibatches with."""

    traj: Transition
    next_value: jax.Array
    key: jax.Array
    memory: Any = None  # a recurrent agent's memory when the rollout started


def build(config: PPOConfig, env: envs.Environment) -> Agent:
    env_params = env.default_params
    action_space = env.action_space(env_params)
    discrete = envs.is_discrete(action_space)
    obs_shape = envs.observation_shape(env, env_params)
    torso = Torso(
        hidden_sizes=tuple(config.hidden_sizes),
        activation=config.activation,
        kind=torso_kind(obs_shape, config.torso),
        obs_ndim=len(obs_shape),
    )
    head = value_head(config)
    recurrent = config.memory in ("gru", "lstm")
    if recurrent:
        layers = tuple(config.head_sizes)
        actor = RecurrentActor(envs.action_size(action_space), discrete, torso, config.memory_size, config.memory, layers)
        critic = RecurrentCritic(torso, config.memory_size, head.num_outputs, config.memory, layers)
    else:
        actor = Actor(envs.action_size(action_space), discrete, torso)
        critic = Critic(torso, head.num_outputs)
    objective = get_objective(config.objective)
    targets_fn = get_targets(config.targets)

    def value_fn(params, obs):
        return head.value(critic.apply(params, obs))

    def zero_memory(batch: int) -> jax.Array:
        width = config.memory_size * (2 if config.memory == "lstm" else 1)  # an LSTM's cell and hidden state
        return jnp.zeros((batch, width), jnp.float32)

    def step_recurrent(net, params, memory, obs):
        """One step of a recurrent network on a batch [B, ...]: (memory, output)."""
        memory, out = net.apply(params, memory, obs[None], jnp.zeros((1, obs.shape[0]), bool))
        return memory, jax.tree.map(lambda x: x[0], out)

    # The gamma of the reward normaliser is static (a wrapper setting), not the traced one.
    vec_env = envs.make_vector(
        env,
        config.num_envs,
        normalize_obs=config.normalize_obs,
        normalize_reward=config.normalize_reward,
    )
    batch_size = config.num_envs * config.num_steps
    num_updates = config.total_steps // batch_size

    def dist_params(dist: Distribution) -> Any:
        """What rebuilds the rollout policy's distribution at a state (for a KL to it)."""
        return dist.logits if discrete else (dist.loc, dist.scale_diag)

    def dist_from_params(params: Any) -> Distribution:
        return Categorical.from_logits(params) if discrete else DiagNormal(*params)

    def tx(hparams: PPOHParams, progress: Progress):
        return optimizer(
            config.optimizer, lr=hparams.lr, progress=progress, anneal=config.anneal_lr,
            max_grad_norm=hparams.max_grad_norm, eps=hparams.adam_eps, params=hparams.optimizer_params,
        )

    def init(key: jax.Array, hparams: PPOHParams, env_params: Any) -> PPOState:
        key, actor_key, critic_key, env_key = jax.random.split(key, 4)
        dummy = jnp.zeros((1, *obs_shape), jnp.float32)
        if recurrent:
            args = (zero_memory(1), dummy[None], jnp.zeros((1, 1), bool))
            params = {"actor": actor.init(actor_key, *args), "critic": critic.init(critic_key, *args)}
        else:
            params = {"actor": actor.init(actor_key, dummy), "critic": critic.init(critic_key, dummy)}
        opt_state = tx(hparams, Progress(jnp.zeros((), jnp.int32), num_updates)).init(params)
        env_carry = env_reset(vec_env, env_params, env_key)
        if recurrent:
            env_carry = env_carry.replace(memory={"actor": zero_memory(config.num_envs), "critic": zero_memory(config.num_envs)})
        return PPOState(params, opt_state, env_carry, key)

    learned_opt = is_learned(config.optimizer)

    def loss_fn(params, batch, hparams: PPOHParams, progress: Progress):
        if recurrent:  # [envs, T, ...] minibatches of whole rollouts, replayed time-major
            memory, resets = batch.pop("memory"), batch.pop("resets")
            batch = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), batch)
            resets = jnp.swapaxes(resets, 0, 1)
        obs, actions, old_log_probs, old_values, advantages, targets, old_dist_params = (
            batch[k] for k in ("obs", "action", "log_prob", "value", "advantage", "target", "dist_params")
        )
        context = {}
        if recurrent:
            _, dist = actor.apply(params["actor"], memory["actor"], obs, resets)
            _, critic_out = critic.apply(params["critic"], memory["critic"], obs, resets)
        elif learned_opt:  # the same forward passes, also giving the learned optimizer its context
            dist, context["actor"] = apply_with_context(actor, params["actor"], obs, config.activation)
            critic_out, context["critic"] = apply_with_context(critic, params["critic"], obs, config.activation)
            context = {name: {net: context[net][name] for net in context} for name in ("dormancy", "layer")}
        else:
            dist = actor.apply(params["actor"], obs)
            critic_out = critic.apply(params["critic"], obs)
        log_probs = dist.log_prob(actions)
        if config.normalize_advantages:
            advantages = normalize(advantages)
        terms = PolicyTerms(log_probs, old_log_probs, advantages, dist, dist_from_params(old_dist_params))
        policy_loss, objective_metrics = objective(terms, hparams, progress)
        if head.kind == "mse" and config.clip_value_loss:
            critic_loss = value_loss(critic_out, targets, old_values, hparams.clip_eps)
        else:
            critic_loss = head.loss(critic_out, targets).mean()
        entropy = dist.entropy().mean()
        total = policy_loss + hparams.vf_coef * critic_loss - hparams.ent_coef * entropy
        log_ratio = log_probs - old_log_probs
        return total, {
            "policy_loss": policy_loss,
            "value_loss": critic_loss,
            "entropy": entropy,
            # k3 estimator of KL(old || new) (Schulman, "Approximating KL Divergence", 2020)
            "approx_kl": (jnp.exp(log_ratio) - 1.0 - log_ratio).mean(),
            "clip_fraction": (jnp.abs(jnp.exp(log_ratio) - 1.0) > hparams.clip_eps).mean(),
            **objective_metrics,
            **({"optimizer_context": context} if learned_opt else {}),
        }

    def collect(state: PPOState, hparams: PPOHParams, step: jax.Array) -> tuple[PPOState, PPOBatch]:
        key, rollout_key, shuffle_key = jax.random.split(state.key, 3)

        def policy(act_key, obs):
            dist = actor.apply(state.params["actor"], obs)
            action, log_prob = dist.sample_and_log_prob(seed=act_key)
            return action, {"log_prob": log_prob, "value": value_fn(state.params["critic"], obs), "dist_params": dist_params(dist)}

        def recurrent_policy(act_key, obs, memory):
            actor_memory, dist = step_recurrent(actor, state.params["actor"], memory["actor"], obs)
            critic_memory, critic_out = step_recurrent(critic, state.params["critic"], memory["critic"], obs)
            action, log_prob = dist.sample_and_log_prob(seed=act_key)
            extras = {"log_prob": log_prob, "value": head.value(critic_out), "dist_params": dist_params(dist),
                      "critic_memory": critic_memory}  # after this step, before an episode-end reset
            return action, extras, {"actor": actor_memory, "critic": critic_memory}

        env_carry, traj = rollout(vec_env, recurrent_policy if recurrent else policy, state.env, rollout_key, config.num_steps)
        if recurrent:  # the value of each reached observation, from the memory that saw the step
            flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
            _, out = step_recurrent(critic, state.params["critic"], flat(traj.extras.pop("critic_memory")), flat(traj.next_obs))
            next_value = head.value(out).reshape(traj.reward.shape)
        else:
            next_value = value_fn(state.params["critic"], traj.next_obs)
        return state.replace(env=env_carry, key=key), PPOBatch(traj, next_value, shuffle_key, state.env.memory)

    def learn(state: PPOState, hparams: PPOHParams, batch: PPOBatch, step: jax.Array) -> tuple[PPOState, dict[str, Any]]:
        progress = Progress(step, num_updates)
        traj = batch.traj
        advantages, targets = targets_fn(traj, traj.extras["value"], batch.next_value, hparams, progress)
        data = {
            "obs": traj.obs, "action": traj.action, "log_prob": traj.extras["log_prob"], "value": traj.extras["value"],
            "advantage": advantages, "target": targets, "dist_params": traj.extras["dist_params"],
        }
        if recurrent:  # environment-major: a minibatch is a set of whole rollouts
            flat = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), data)
            # A step starts an episode where the previous one ended; the first starts from ``memory``.
            flat["resets"] = jnp.swapaxes(jnp.concatenate([jnp.zeros_like(traj.done[:1]), traj.done[:-1]]), 0, 1)
            flat["memory"] = batch.memory
        else:
            flat = jax.tree.map(lambda x: x.reshape((batch_size,) + x.shape[2:]), data)
        params, opt_state, metrics = minibatch_epochs(
            lambda p, b: loss_fn(p, b, hparams, progress),
            tx(hparams, progress),
            state.params,
            state.opt_state,
            flat,
            batch.key,
            config.update_epochs,
            config.num_minibatches,
            learned_optimizer=learned_opt,
        )
        metrics.update(episode_metrics(traj))
        metrics["lr"] = jnp.asarray(scheduled_lr(config.optimizer, hparams.lr, progress, config.anneal_lr), jnp.float32)
        metrics["per_env"] = per_env(traj, value=traj.extras["value"], advantage=advantages, target=targets)
        return state.replace(params=params, opt_state=opt_state), metrics

    def policy_params(state: PPOState) -> dict[str, Any]:
        return {"actor": state.params["actor"], "obs_stats": envs.find_observation_stats(state.env.env_state)}

    def act(policy_params, obs: jax.Array, key: jax.Array, deterministic: bool = False, memory: Any = None):
        """The action for ``obs``; a recurrent agent's takes its ``memory`` ([B, memory_size]
        for obs [B, ...], from ``initial_memory(B)``) and returns ``(action, memory)``."""
        if policy_params["obs_stats"] is not None:
            obs = envs.normalize_observation(policy_params["obs_stats"], obs)
        if recurrent:
            if memory is None:
                raise ValueError("a recurrent policy's act needs its memory (agent.initial_memory(batch))")
            memory, dist = step_recurrent(actor, policy_params["actor"], memory, obs)
        else:
            dist = actor.apply(policy_params["actor"], obs)
        action = dist.mode() if deterministic else dist.sample(seed=key)
        return (action, memory) if recurrent else action

    return Agent(
        init=init,
        update=compose(collect, learn),
        act=act,
        policy_params=policy_params,
        steps_per_update=batch_size,
        num_updates=num_updates,
        collect=collect,
        learn=learn,
        initial_memory=zero_memory if recurrent else None,
    )


def defaults(env_name: str, discrete: bool) -> tuple[PPOConfig, PPOHParams]:
    if discrete:
        return PPOConfig(), PPOHParams()
    # Continuous control: observation and reward normalisation, more data per update, no
    # entropy bonus. On Pendulum-v1 (4 seeds) it reaches about -185 after 50k steps and -155
    # after 500k (random: about -1200); see tests/test_ppo.py. gamma 0.95 there (200-step
    # episodes), 0.99 on brax (1000-step episodes): on brax/inverted_pendulum 0.95 left 1 of 5
    # seeds (PPO) and 2 of 5 (MDPO) stuck near 150 after 150k steps, 0.99 reaches 1000 on 5 of 5
    # for both (experiments/continuous/README.md).
    gamma = 0.99 if env_name.startswith("brax/") else 0.95
    return (
        PPOConfig(
            total_steps=500_000,
            num_envs=16,
            num_steps=64,
            update_epochs=10,
            num_minibatches=8,
            normalize_obs=True,
            normalize_reward=True,
        ),
        PPOHParams(lr=1e-3, gamma=gamma, gae_lambda=0.95, ent_coef=0.0, max_grad_norm=0.5),
    )


def check(config: PPOConfig, hparams: PPOHParams, discrete: bool) -> None:
    require(config.num_envs >= 1, f"num_envs must be >= 1, got {config.num_envs}")
    require(config.num_steps >= 1, f"num_steps must be >= 1, got {config.num_steps}")
    require(config.update_epochs >= 1, f"update_epochs must be >= 1, got {config.update_epochs}")
    batch = config.num_envs * config.num_steps
    require(
        config.num_minibatches >= 1 and batch % config.num_minibatches == 0,
        f"num_minibatches={config.num_minibatches} does not divide the batch of {batch} (num_envs x num_steps)",
    )
    check_batch(config.total_steps, batch, "batch (num_envs x num_steps)")
    require(config.activation in ACTIVATIONS, f"unknown activation {config.activation!r}; choose from {', '.join(ACTIVATIONS)}")
    require(config.torso in ("auto", "mlp", "cnn", "maze_conv"), f"torso must be auto, mlp, cnn or maze_conv, got {config.torso!r}")
    get_objective(config.objective)
    check_objective_params(config.objective, hparams.objective_params)
    get_targets(config.targets)
    check_optimizer(config.optimizer, hparams.optimizer_params, context=True)
    require(config.memory in ("none", "gru", "lstm"), f"memory must be none, gru or lstm, got {config.memory!r}")
    require(not config.head_sizes or config.memory != "none", "head_sizes is for recurrent agents (memory=gru or lstm)")
    require(all(size >= 1 for size in config.head_sizes), "head_sizes must be positive")
    if config.memory != "none":
        require(config.memory_size >= 1, f"memory_size must be >= 1, got {config.memory_size}")
        require(config.num_envs % config.num_minibatches == 0,
                f"a recurrent agent's minibatches are sets of environments: num_minibatches={config.num_minibatches} "
                f"must divide num_envs={config.num_envs}")
        require(not is_learned(config.optimizer), "learned optimizers do not support recurrent agents (memory=gru or lstm) yet")
    require((len(config.hidden_sizes) >= 1 or config.torso == "maze_conv") and min(config.hidden_sizes, default=1) >= 1,
            "hidden_sizes must be positive")
    check_value_head(config, require)
    require(hparams.lr > 0, f"lr must be positive, got {hparams.lr}")
    require((hparams.gamma >= 0) & (hparams.gamma <= 1), f"gamma must be in [0, 1], got {hparams.gamma}")
    require((hparams.gae_lambda >= 0) & (hparams.gae_lambda <= 1), f"gae_lambda must be in [0, 1], got {hparams.gae_lambda}")
    require(hparams.clip_eps > 0, f"clip_eps must be positive, got {hparams.clip_eps}")
    require(hparams.ent_coef >= 0, f"ent_coef must be >= 0, got {hparams.ent_coef}")
    require(hparams.vf_coef >= 0, f"vf_coef must be >= 0, got {hparams.vf_coef}")
    require(hparams.max_grad_norm > 0, f"max_grad_norm must be positive, got {hparams.max_grad_norm}")
    require(hparams.adam_eps > 0, f"adam_eps must be positive, got {hparams.adam_eps}")


PPO = register(
    Algorithm(
        name="ppo",
        summary="Proximal Policy Optimization (clipped), discrete and continuous",
        config_type=PPOConfig,
        hparams_type=PPOHParams,
        build=build,
        defaults=defaults,
        check=check,
    )
)


def mdpo_defaults(env_name: str, discrete: bool) -> tuple[PPOConfig, PPOHParams]:
    """PPO's defaults with MDPO's policy loss, and lr 3e-4 on gymnax's continuous control.

    MDPO has no ratio clip, so at PPO's lr 1e-3 (10 epochs of 8 minibatches) a seed can fall
    from a swung-up pendulum to -400..-600 in one stretch of updates; its KL weight 1 / t_k grows
    to K over the run, so late in training the policy barely moves and such a seed stays where it
    fell (Pendulum-v1, 500k steps, 4 seeds: greedy -158, -399, -178, -96). At 3e-4 every seed
    improves steadily (-163, -131, -174, -89); experiments/continuous/README.md has the study."""
    config, hparams = defaults(env_name, discrete)
    if not discrete and not env_name.startswith("brax/"):
        hparams = hparams.replace(lr=3e-4)
    return dataclasses.replace(config, objective="mdpo"), hparams


MDPO = register(
    Algorithm(
        name="mdpo",
        summary="On-policy Mirror Descent Policy Optimization (PPO's agent, KL-regularised loss), discrete and continuous",
        config_type=PPOConfig,
        hparams_type=PPOHParams,
        build=build,
        defaults=mdpo_defaults,
        check=check,
    )
)
