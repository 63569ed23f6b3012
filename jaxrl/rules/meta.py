"""Meta-training a learned update rule by meta-gradients (LPG, Oh et al. 2020, Section 3), as one
compiled program per meta-step.

A population of ``num_agents`` agents lives on grid-world levels (``envs.gridworld``), each on its
own level with ``num_envs`` copies of it. A meta-step, for every agent at once (vmapped):

1. ``inner_updates`` (K) updates of the agent by the rule, each on a fresh rollout of
   ``num_steps`` steps, differentiated through (``remat`` recomputes them in the backward pass);
2. a fresh rollout of the updated agent, on which the meta-objective is the policy gradient with
   advantages from the agent's own critic (GAE, normalised; the critic is a value table or network
   trained here on every rollout of the segment towards its GAE targets from the start of the
   segment, outside the meta-gradient), plus LPG's regularisers: entropies
   of pi and y (raised, beta0 and beta1) and the squares of pi_hat and y_hat (lowered, beta2 and
   beta3);
3. the gradient of the mean over agents with respect to the rule's weights, clipped to a global
   norm of ``meta_max_grad_norm``, one Adam step.

Agents persist across meta-steps (truncated backpropagation inside a lifetime); one whose lifetime
(the level's, in agent updates, rounded up to a multiple of K) has ended starts again: a new level,
new weights, a new critic and new hyperparameters (lr and alpha_y each scaled by 2^u, u uniform in
[-1, 1], around the settings; LPG drew them per lifetime too). The lifetime inputs of TA-LPG are the
agent's n/N and N.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

import envs
from envs.gridworld import SPACES
from jaxrl.components.gae import gae
from jaxrl.core.contract import Progress, require
from jaxrl.curricula.buffer import empty_buffer, insert, replay_probabilities, sample
from jaxrl.rules.agent import Head, LPGConfig, LPGHParams, build, initial_rule_params
from jaxrl.rules.lifetimes import level_return, on_level


@dataclass(frozen=True)
class MetaConfig:
    rule: str = "lpg"  # lpg | ta-lpg
    levels: str = "small"  # a level space of envs.gridworld.SPACES
    curator: str = "uniform"  # uniform (LPG: levels drawn from the space) | groove (GROOVE's curator)
    num_agents: int = 32
    num_envs: int = 16
    num_steps: int = 20
    inner_updates: int = 5  # K
    hidden_size: int = 256  # the update network's LSTM width (LPG: 256)
    num_bins: int = 30  # m (LPG: 30)
    remat: bool = False
    meta_lr: float = 1e-4
    meta_max_grad_norm: float = 0.5
    beta_pi_entropy: float = 0.05  # beta0
    beta_y_entropy: float = 1e-3  # beta1
    beta_pi_hat: float = 5e-3  # beta2
    beta_y_hat: float = 1e-3  # beta3
    lr: float = 40.0  # the agents' (tables, SGD), scaled per lifetime
    alpha_y: float = 0.5
    gamma: float = 0.99
    critic_lr: float = 0.05  # Adam's: SGD at the tables' lr 40 diverges where a state fills the batch
    critic_lambda: float = 0.95
    # GROOVE's curator: a PLR buffer of levels scored by algorithmic regret (A2C's return minus the
    # LPG agent's, once at the end of each lifetime), replayed with replay_prob by rank (temperature
    # beta), the rest new levels; replay starts once min_fill levels are scored.
    buffer_size: int = 1000
    replay_prob: float = 0.5
    temperature: float = 1.0
    staleness: float = 0.0
    min_fill: int = 32
    antagonist_lr: float = 40.0
    antagonist_ent_coef: float = 0.01

    def check(self) -> None:
        require(self.rule in ("lpg", "ta-lpg"), f"rule must be lpg or ta-lpg, got {self.rule!r}")
        require(self.curator in ("uniform", "groove"), f"curator must be uniform or groove, got {self.curator!r}")
        require(0 <= self.replay_prob <= 1 and 0 <= self.staleness <= 1, "replay_prob and staleness must be in [0, 1]")
        require(1 <= self.min_fill <= self.buffer_size and self.temperature > 0,
                "need 1 <= min_fill <= buffer_size and a positive temperature")
        require(0 <= self.gamma <= 1 and 0 <= self.critic_lambda <= 1, "gamma and critic_lambda must be in [0, 1]")
        require(min(self.beta_pi_entropy, self.beta_y_entropy, self.beta_pi_hat, self.beta_y_hat) >= 0,
                "the beta_* regularisers must be >= 0")
        require(self.antagonist_lr > 0 and self.antagonist_ent_coef >= 0, "antagonist_lr must be positive, antagonist_ent_coef >= 0")
        for name in ("num_agents", "num_envs", "num_steps", "inner_updates", "hidden_size", "num_bins"):
            require(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("meta_lr", "meta_max_grad_norm", "lr", "alpha_y", "critic_lr"):
            require(getattr(self, name) > 0, f"{name} must be positive, got {getattr(self, name)}")


class Critic(nn.Module):
    """The meta-objective's value function: a table on one-hot observations, else an MLP."""

    num_states: int  # > 0: a table of this many rows

    @nn.compact
    def __call__(self, obs):
        return Head(1, self.num_states)(obs if self.num_states else nn.relu(nn.Dense(64)(obs)))[..., 0]


@struct.dataclass
class Slot:
    """One agent of the population and its lifetime."""

    agent: Any  # LPGState
    critic: Any
    critic_opt: Any
    hparams: LPGHParams  # lr and alpha_y of this lifetime (rule_params filled in at the meta-step)
    level: Any
    n: jax.Array  # updates done in this lifetime
    lifetime: jax.Array  # N, a multiple of K
    antagonist: Any = None  # GROOVE: an A2C agent on the same level, updated in lockstep


@struct.dataclass
class MetaState:
    rule_params: Any
    opt_state: Any
    slots: Slot  # batched over agents
    key: jax.Array
    step: jax.Array
    buffer: Any = None  # GROOVE: the scored levels (jaxrl.curricula.buffer.LevelBuffer)


class MetaGradient:
    """``init(key) -> MetaState`` and ``step(state) -> (state, row)``, both pure and jitted."""

    def __init__(self, config: MetaConfig):
        config.check()
        self.config = config
        self.env, self.env_params = envs.make("gridworld", levels=config.levels)
        self.agent_config = LPGConfig(num_envs=config.num_envs, num_steps=config.num_steps, rule=config.rule,
                                      num_bins=config.num_bins, rule_hidden=config.hidden_size, total_steps=10**9)
        self.agent = build(self.agent_config, self.env)
        self.groove = config.curator == "groove"
        if self.groove:
            self.antagonist = build(replace(self.agent_config, rule="a2c"), self.env)
            self.antagonist_hparams = LPGHParams(lr=config.antagonist_lr, gamma=config.gamma,
                                                 ent_coef=config.antagonist_ent_coef)
            self.eval_steps = int(SPACES[config.levels][2].max_steps)  # the space's longest episode
        self.critic = Critic(self.agent.net.num_states)
        self.meta_tx = optax.chain(optax.clip_by_global_norm(config.meta_max_grad_norm), optax.adam(config.meta_lr))
        self.critic_tx = optax.adam(config.critic_lr)
        self.init = jax.jit(self._init)
        self.step = jax.jit(self._step, donate_argnums=0)

    # ------------------------------------------------------------------ lifetimes
    def _new_slot(self, key: jax.Array, level: Any) -> Slot:
        c = self.config
        lr_key, alpha_key, agent_key, restart_key, critic_key, antagonist_key = jax.random.split(key, 6)
        scale = lambda k: 2.0 ** jax.random.uniform(k, minval=-1.0, maxval=1.0)  # noqa: E731
        hparams = LPGHParams(lr=c.lr * scale(lr_key), alpha_y=c.alpha_y * scale(alpha_key), gamma=jnp.float32(c.gamma))
        agent = on_level(self.agent, self.agent.init(agent_key, hparams, self.env_params), level, restart_key)
        critic = self.critic.init(critic_key, agent.env.obs[:1])
        k = c.inner_updates
        lifetime = (jnp.maximum(level.lifetime, 1) + k - 1) // k * k
        antagonist = None
        if self.groove:
            init_key, level_key = jax.random.split(antagonist_key)
            antagonist = on_level(self.antagonist, self.antagonist.init(init_key, self.antagonist_hparams, self.env_params),
                                  level, level_key)
        return Slot(agent, critic, self.critic_tx.init(critic), hparams, level, jnp.int32(0), lifetime.astype(jnp.int32),
                    antagonist)

    def _random_levels(self, key: jax.Array) -> Any:
        return jax.vmap(self.env.sample_level, in_axes=(0, None))(jax.random.split(key, self.config.num_agents), self.env_params)

    def _init(self, key: jax.Array) -> MetaState:
        rule_key, level_key, slots_key, key = jax.random.split(key, 4)
        rule_params = initial_rule_params(self.agent_config, rule_key)
        levels = self._random_levels(level_key)
        slots = jax.vmap(self._new_slot)(jax.random.split(slots_key, self.config.num_agents), levels)
        buffer = None
        if self.groove:
            buffer = empty_buffer(jax.tree.map(lambda x: x[0], levels), self.config.buffer_size)
        return MetaState(rule_params, self.meta_tx.init(rule_params), slots, key, jnp.int32(0), buffer)

    # ------------------------------------------------------------------ one agent's segment
    def _critic_targets(self, critic, traj):
        value = self.critic.apply(critic, traj.obs)
        next_value = self.critic.apply(critic, traj.next_obs)
        return gae(traj.reward, value, next_value, traj.terminated, traj.done, self.config.gamma, self.config.critic_lambda)

    def _segment(self, rule_params, slot: Slot):
        """K updates, a fresh rollout and the meta-objective of one agent: (loss, (slot, metrics))."""
        c = self.config
        hparams = slot.hparams.replace(rule_params=rule_params)

        def inner(state, k):
            state, traj = self.agent.collect(state, hparams, slot.n + k)
            progress = Progress(jnp.minimum(slot.n + k, slot.lifetime), slot.lifetime)
            state, metrics = self.agent.rule_update(state, hparams, traj, progress, slot.lifetime)
            return state, (traj, metrics)

        if c.remat:
            inner = jax.checkpoint(inner)
        state, (trajs, metrics) = jax.lax.scan(inner, slot.agent, jnp.arange(c.inner_updates))
        state, fresh = self.agent.collect(state, hparams, slot.n + c.inner_updates)
        # The critic's targets on every rollout of the segment at once, from the critic it started
        # with (one GAE over K + 1 rollouts instead of K + 1 in turn): the advantages of the fresh one,
        # then K + 1 steps of the critic on them, outside the meta-gradient.
        rollouts = jax.lax.stop_gradient(jax.tree.map(lambda t, f: jnp.concatenate([t, f[None]]), trajs, fresh))
        advantages, targets = jax.vmap(self._critic_targets, in_axes=(None, 0))(slot.critic, rollouts)
        advantage = jax.lax.stop_gradient((advantages[-1] - advantages[-1].mean()) / (advantages[-1].std() + 1e-8))
        logits, y_logits = self.agent.net.apply(state.params, fresh.obs)
        log_pi = jax.nn.log_softmax(logits)
        log_pi_a = jnp.take_along_axis(log_pi, fresh.action[..., None], -1)[..., 0]
        pi_entropy = -jnp.sum(jnp.exp(log_pi) * log_pi, -1).mean()
        log_y = jax.nn.log_softmax(y_logits)
        y_entropy = -jnp.sum(jnp.exp(log_y) * log_y, -1).mean()
        policy_gradient = -jnp.mean(log_pi_a * advantage)
        loss = (policy_gradient - c.beta_pi_entropy * pi_entropy - c.beta_y_entropy * y_entropy
                + c.beta_pi_hat * metrics["pi_hat_sq"].mean() + c.beta_y_hat * metrics["y_hat_sq"].mean())
        critic_error = lambda p, i: 0.5 * jnp.mean((self.critic.apply(p, rollouts.obs[i]) - targets[i]) ** 2)  # noqa: E731
        critic, critic_opt = slot.critic, slot.critic_opt
        for i in range(c.inner_updates + 1):
            updates, critic_opt = self.critic_tx.update(jax.grad(critic_error)(critic, i), critic_opt, critic)
            critic = optax.apply_updates(critic, updates)
        ended = fresh.episode_done
        out = {
            "meta_loss": loss, "policy_gradient": policy_gradient, "pi_entropy": pi_entropy, "y_entropy": y_entropy,
            "pi_hat_sq": metrics["pi_hat_sq"].mean(), "y_hat_sq": metrics["y_hat_sq"].mean(),
            "pi_hat_mean": metrics["pi_hat_mean"].mean(),
            # On the fresh rollout, towards its targets: before and after the critic's updates.
            "critic_loss": critic_error(slot.critic, -1), "critic_loss_after": critic_error(critic, -1),
            "return_sum": jnp.sum(jnp.where(ended, fresh.episode_return, 0.0)), "episodes": ended.sum(),
        }
        slot = slot.replace(agent=jax.lax.stop_gradient(state), critic=critic, critic_opt=critic_opt,
                            n=slot.n + c.inner_updates)
        return loss, (slot, out)

    # ------------------------------------------------------------------ the meta-step
    def _step(self, state: MetaState) -> tuple[MetaState, dict[str, jax.Array]]:
        def population_loss(rule_params):
            losses, (slots, out) = jax.vmap(self._segment, in_axes=(None, 0))(rule_params, state.slots)
            return losses.mean(), (slots, out)

        (loss, (slots, out)), grads = jax.value_and_grad(population_loss, has_aux=True)(state.rule_params)
        updates, opt_state = self.meta_tx.update(grads, state.opt_state, state.rule_params)
        rule_params = optax.apply_updates(state.rule_params, updates)
        key, reset_key, level_key, curator_key = jax.random.split(state.key, 4)
        ended = slots.n >= slots.lifetime
        levels, buffer, curated = self._random_levels(level_key), state.buffer, {}
        if self.groove:
            slots = slots.replace(antagonist=jax.vmap(self._antagonist_updates)(slots))
            levels, buffer, curated = self._curate(curator_key, slots, ended, levels, buffer, state.step)
        fresh = jax.vmap(self._new_slot)(jax.random.split(reset_key, self.config.num_agents), levels)
        slots = jax.tree.map(lambda new, old: jnp.where(ended.reshape(ended.shape + (1,) * (old.ndim - 1)), new, old),
                             fresh, slots)
        row = {k: v.mean() for k, v in out.items() if k not in ("return_sum", "episodes")}
        row.update(curated)
        row["mean_return"] = out["return_sum"].sum() / jnp.maximum(out["episodes"].sum(), 1)
        row["grad_norm"] = optax.global_norm(grads)
        row["lifetimes_ended"] = ended.sum()
        return MetaState(rule_params, opt_state, slots, key, state.step + 1, buffer), row

    # ------------------------------------------------------------------ GROOVE
    def _antagonist_updates(self, slot: Slot):
        """K updates of the A2C antagonist on the slot's level (no meta-gradient)."""
        def body(state, k):
            state, traj = self.antagonist.collect(state, self.antagonist_hparams, slot.n + k)
            return self.antagonist.learn(state, self.antagonist_hparams, traj, slot.n + k)[0], None

        return jax.lax.scan(body, slot.antagonist, jnp.arange(self.config.inner_updates))[0]

    def regret(self, key: jax.Array, slot: Slot) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Algorithmic regret on the slot's level: (A2C's return - the LPG agent's, both returns),
        each the mean first-episode return of every environment copy."""
        lpg_key, a2c_key = jax.random.split(key)
        lpg = level_return(self.agent, slot.agent.params, slot.agent.env, slot.level, lpg_key, self.eval_steps)
        a2c = level_return(self.antagonist, slot.antagonist.params, slot.antagonist.env, slot.level, a2c_key, self.eval_steps)
        return a2c - lpg, a2c, lpg

    def _curate(self, key, slots: Slot, ended, random_levels, buffer, now):
        """GROOVE's curator at a meta-step: the ended lifetimes' levels scored by regret (computed
        only at a meta-step where some lifetime ended) and inserted (a replayed level gets its new
        score), then each ended agent's next level: replayed from the buffer with ``replay_prob``
        once ``min_fill`` levels are scored, else ``random_levels``. Never-scored levels are never
        in the buffer, so they cannot be replayed as if scored."""
        c = self.config
        regret_key, coin_key, sample_key = jax.random.split(key, 3)

        def scored(_):
            regrets, a2c, lpg = jax.vmap(self.regret)(jax.random.split(regret_key, c.num_agents), slots)
            return regrets, a2c, lpg, insert(buffer, slots.level, regrets, a2c, now, accept=ended)

        zeros = jnp.zeros(c.num_agents)
        regrets, a2c, lpg, buffer = jax.lax.cond(ended.any(), scored, lambda _: (zeros, zeros, zeros, buffer), None)
        probabilities = replay_probabilities(buffer, now, c.temperature, c.staleness)
        _, replayed_levels = sample(sample_key, buffer, c.num_agents, probabilities)
        replay = (jax.random.uniform(coin_key, (c.num_agents,)) < c.replay_prob) & (buffer.size >= c.min_fill)
        levels = jax.tree.map(lambda r, n: jnp.where(replay.reshape(replay.shape + (1,) * (r.ndim - 1)), r, n),
                              replayed_levels, random_levels)
        count = jnp.maximum(ended.sum(), 1)
        mean = lambda x: jnp.where(ended.any(), jnp.sum(jnp.where(ended, x, 0.0)) / count, jnp.nan)  # noqa: E731
        return levels, buffer, {"regret": mean(regrets), "a2c_return": mean(a2c), "lpg_return": mean(lpg),
                                "buffer_size": buffer.size, "replayed": jnp.sum(ended & replay)}

