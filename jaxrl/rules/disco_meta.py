"""Meta-training a Disco rule of one's own by meta-gradient (``jaxrl meta-train disco``): the
Disco103 architecture (``jaxrl.rules.disco``), randomly initialised as the reference draws it
(``disco.init_weights``), trained as DeepMind's disco_rl colab ``meta_train.ipynb`` trains it (our
reading of it: ``experiments/discorl/meta_training_notes.md``, section 1 and 4(b)). One compiled
program per meta-step; ``jaxrl.rules.run`` drives it (progress, checkpoints, resume, the plot).

A population of ``num_agents`` Disco agents (``jaxrl.rules.disco_agent``), each with
``num_envs`` environments of its own. A meta-step, for every agent at once (vmapped):

1. with the agent's current weights theta_0: ``inner_steps`` (K) training rollouts of
   ``num_steps`` transitions, then a validation rollout of ``valid_steps``, one stream of
   environment steps;
2. K learner steps of the agent on the training rollouts in turn (``learner_step`` with
   ``backprop``: the stop-gradient on the rule's pi_hat, y_hat and z_hat in the agent's loss is
   lifted, and no other), differentiated through: through the Adam / clip / lr update (Adam's
   denominator held constant), through theta_k as the input of step k + 1 (the rule reads the
   agent's y and z without a stop-gradient) and through the lifetime meta-LSTM state step 1
   hands to step 2. After each learner step one update of a separate "domain" value function
   on the same rollout (outside the meta-gradient);
3. the meta-objective on the validation rollout with theta_K: the policy gradient with the
   stop-gradient, moving-average-normalised V-trace advantage of the domain value function,
   - 1e-2 x the policy's entropy, - 1e-3 x the entropies of softmax(y) and softmax(z[a]), + 1e-3 x
   the square of each of pi_hat's, y_hat's and z_hat's mean over an update (centering: the
   rule's logits have a free offset), + 1e-2 x KL(target network's policy || pi_hat); every mean
   unmasked;
4. the mean of the agents' meta-gradients, one step of Adam (5e-4), no clipping.

Agents and their value functions persist across meta-steps (no lifetime resets); the
meta-gradient is truncated at each meta-step.

The domain value function: the observation flattened, an MLP of 256, ReLU, 256 (no activation
after it), a linear output o with weights of std 1e-2; the value is h^-1(o) with the signed
hyperbolic h (``disco.decompress``). V-trace (gamma 0.99, lambda 0.96, rho clipped at 1, pi the
agent's policy before the update, mu the behaviour's); advantages r + gamma (lambda v_s' + (1 -
lambda) V') - V times min(1, rho), normalised by their moving average (decay 0.99); its loss
0.5 (o - sg(o + td / rms(td)))^2, one step of the agents' optimiser at lr 1e-3 per learner step.

Where this differs from the colab (its sizes are the defaults):

* the environment: the kit's ``Catch-bsuite`` (10 rows x 5 columns, the observation of the
  ended episode a state of its own followed by a masked reset step, ``ResetAsTransition``), not
  the colab's 5 x 5 jittable Catch: the kit's Catch takes no size (``--set env=NAME`` takes any
  discrete environment of the kit). A random policy catches 1 ball in 5 (return -0.6) on both;
* the agent: the kit's Disco network (an MLP torso with a ReLU after each layer; per action a
  ReLU layer of ``action_hidden`` = 256 on [embedding, one-hot(a)]) instead of the reference's
  one-step LSTM action model (L = H = 256), and flax's initialisers for the torso;
* the rollouts: 15 transitions each (the colab's rollout_len 16 records 16 states, 15
  transitions, and loses the transition across rollouts), the validation rollout 31;
* the domain value function's reward alignment is the usual one (a transition's reward and its
  end with the transition), not the reference's shifted one (notes, fact 13); its hidden layers
  use flax's default initialisers;
* one device: no pmean over devices (the colab's agents on a TPU v2-8 each had 8 x 32 envs).
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

import envs
from jaxrl.core.contract import require
from jaxrl.core.values import ConfigError, coerce
from jaxrl.rules import disco
from jaxrl.rules.disco_agent import DiscoConfig, DiscoHParams, agent_optimiser, build, sequences, to_hparam


@dataclass(frozen=True)
class DiscoMetaConfig:
    env: str = "Catch-bsuite"
    num_agents: int = 2
    num_envs: int = 32
    num_steps: int = 15  # transitions per training rollout
    inner_steps: int = 2  # K, learner steps differentiated through
    valid_steps: int = 31  # transitions of the validation rollout
    hidden_sizes: tuple[int, ...] = (512, 512)  # the agent's torso
    action_hidden: int = 256
    lr: float = 5e-4  # the agents'
    max_abs_update: float = 1.0
    meta_lr: float = 5e-4
    value_hidden: tuple[int, ...] = (256, 256)
    value_lr: float = 1e-3
    value_gamma: float = 0.99
    value_lambda: float = 0.96
    entropy_cost: float = 1e-2
    prediction_entropy_cost: float = 1e-3  # y's and z[a]'s entropies
    centering_cost: float = 1e-3
    target_kl_cost: float = 1e-2

    def check(self) -> None:
        for name in ("num_agents", "num_envs", "inner_steps", "action_hidden"):
            require(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        require(self.num_steps >= 2 and self.valid_steps >= 2, "num_steps and valid_steps must be >= 2")
        require(all(s >= 1 for s in self.hidden_sizes + self.value_hidden) and self.value_hidden,
                "hidden_sizes and value_hidden must be sizes >= 1 (value_hidden at least one)")
        for name in ("lr", "max_abs_update", "meta_lr", "value_lr"):
            require(getattr(self, name) > 0, f"{name} must be positive, got {getattr(self, name)}")
        require(0 <= self.value_gamma <= 1 and 0 <= self.value_lambda <= 1, "value_gamma and value_lambda must be in [0, 1]")
        require(min(self.entropy_cost, self.prediction_entropy_cost, self.centering_cost, self.target_kl_cost) >= 0,
                "the meta-objective's costs must be >= 0")


def disco_meta_config(settings: Mapping[str, Any]) -> DiscoMetaConfig:
    """``DiscoMetaConfig`` with ``settings`` (text from ``--set``, e.g. hidden_sizes=64x64, or
    values), each parsed by its field's type and checked; the environment must exist and be discrete."""
    hints = typing.get_type_hints(DiscoMetaConfig)
    values = {}
    for name, value in settings.items():
        if name not in hints:
            close = difflib.get_close_matches(name, sorted(hints), n=2, cutoff=0.5)
            raise ConfigError(f"meta-train disco has no setting {name!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
        values[name] = coerce(value, hints[name], f"meta-train disco: {name}")
    config = DiscoMetaConfig(**values)
    config.check()
    env, params = envs.make(config.env)
    require(envs.is_discrete(env.action_space(params)), f"meta-train disco needs discrete actions; {config.env}'s are not")
    return config


class DomainValue(nn.Module):
    """The meta-objective's state-value function: o(s), a raw output (the value is h^-1(o))."""

    hidden_sizes: tuple[int, ...]
    obs_ndim: int

    @nn.compact
    def __call__(self, obs):
        x = obs.reshape(obs.shape[:obs.ndim - self.obs_ndim] + (-1,))
        for i, size in enumerate(self.hidden_sizes):
            x = nn.Dense(size)(x)
            x = nn.relu(x) if i + 1 < len(self.hidden_sizes) else x  # an MLP with no activation after its last layer
        return nn.Dense(1, kernel_init=nn.initializers.truncated_normal(1e-2))(x)[..., 0]


@struct.dataclass
class ValueState:
    params: Any
    opt_state: Any
    adv_ema: Any  # (m1, m2, decay product) as ``disco.ema_update`` keeps them
    td_ema: Any


@struct.dataclass
class DiscoMetaState:
    rule_params: Any  # the rule's weights, names with ":" for "/" (``to_hparam``)
    opt_state: Any
    agents: Any  # DiscoState, batched over agents
    values: ValueState  # batched over agents
    step: jax.Array


def vtrace(values, rewards, discounts, rho, lam):
    """V-trace on state values [T+1, B] for rewards, discounts and importance weights [T, B]: the
    targets v_s [T, B] and the policy-gradient advantages [T, B] (rho clipped at 1 in both)."""
    rho = jnp.minimum(1.0, rho)
    v_now, v_next = values[:-1], values[1:]
    td = rho * (rewards + discounts * v_next - v_now)

    def backward(later, step):
        td_t, discount, c = step
        error = td_t + discount * c * later
        return error, error

    _, errors = jax.lax.scan(backward, jnp.zeros_like(v_now[0]), (td, discounts, lam * rho), reverse=True)
    targets = errors + v_now
    bootstrap = jnp.concatenate([lam * targets[1:] + (1 - lam) * v_now[1:], v_next[-1:]])
    return targets, rho * (rewards + discounts * bootstrap - v_now)


def entropy(logits):
    log_p = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.exp(log_p) * log_p, -1)


class DiscoMetaGradient:
    """``init(key) -> DiscoMetaState`` and ``step(state) -> (state, row)``, both pure and jitted."""

    def __init__(self, config: DiscoMetaConfig):
        config.check()
        self.config = c = config
        self.env, self.env_params = envs.make(c.env)
        agent_config = DiscoConfig(num_envs=c.num_envs, num_steps=c.num_steps, hidden_sizes=tuple(c.hidden_sizes),
                                   action_hidden=c.action_hidden, total_steps=10**9)
        self.agent = build(agent_config, self.env)
        # The same network and environments, a longer rollout: the validation data.
        self.valid_agent = build(dataclasses.replace(agent_config, num_steps=c.valid_steps), self.env)
        self.obs_shape = envs.observation_shape(self.env, self.env_params)
        self.value_net = DomainValue(tuple(c.value_hidden), len(self.obs_shape))
        self.value_tx = agent_optimiser(c.value_lr, c.max_abs_update)
        self.meta_tx = optax.adam(c.meta_lr)
        self.env_steps = c.num_agents * c.num_envs * (c.inner_steps * c.num_steps + c.valid_steps)  # per meta-step
        self.init = jax.jit(self._init)
        self.step = jax.jit(self._step, donate_argnums=0)

    def hparams(self, rule_params) -> DiscoHParams:
        return DiscoHParams(lr=self.config.lr, max_abs_update=self.config.max_abs_update, rule_params=rule_params)

    # ------------------------------------------------------------------ state
    def _init(self, key: jax.Array) -> DiscoMetaState:
        rule_key, agents_key, values_key = jax.random.split(key, 3)
        rule_params = to_hparam(disco.init_weights(rule_key))
        n = self.config.num_agents
        # One agent at a time, not vmapped: a vmapped orthogonal initialiser is a batched LAPACK QR
        # that splits its batch over XLA's thread pool and blocks, and two of them at once deadlock
        # a 2-core machine (seen here at the torso of 512; jaxrl/_platform.py).
        agents = [self.agent.init(k, self.hparams(None), self.env_params) for k in jax.random.split(agents_key, n)]
        agents = jax.tree.map(lambda *leaves: jnp.stack(leaves), *agents)
        values = jax.vmap(self._value_init)(jax.random.split(values_key, n))
        return DiscoMetaState(rule_params, self.meta_tx.init(rule_params), agents, values, jnp.int32(0))

    def _value_init(self, key: jax.Array) -> ValueState:
        params = self.value_net.init(key, jnp.zeros((1, *self.obs_shape), jnp.float32))
        fresh = (jnp.float32(0.0), jnp.float32(0.0), jnp.float32(1.0))
        return ValueState(params, self.value_tx.init(params), fresh, fresh)

    # ------------------------------------------------------------------ data
    def _collect(self, agent, state):
        """One rollout with the agent's current weights: (state, (sequences, statistics))."""
        state, (traj, after_end) = agent.collect(state, None, 0)  # a Disco agent's collect reads neither
        ended = traj.terminated | traj.truncated
        stats = {"return_sum": jnp.sum(jnp.where(traj.episode_done, traj.episode_return, 0.0)),
                 "episodes": traj.episode_done.sum(), "pos_rewards": (traj.reward > 0).sum(), "neg_rewards": (traj.reward < 0).sum()}
        return state.replace(after_end=ended[-1]), (sequences(traj, after_end), stats)

    def _gather(self, state):
        """The K training rollouts [K, T, B] and the validation rollout, all with theta_0."""
        state, (train, train_stats) = jax.lax.scan(lambda s, _: self._collect(self.agent, s), state, None,
                                                   length=self.config.inner_steps)
        state, (valid, valid_stats) = self._collect(self.valid_agent, state)
        return state, train, valid, {"train": train_stats, "valid": valid_stats}

    # ------------------------------------------------------------------ the domain value function
    def _value_outs(self, params, value: ValueState, seq, pi_logits):
        """(raw outputs o [T+1, B], advantages, normalised advantages, normalised TD errors, the
        updated moving averages) on ``seq`` for the policy ``pi_logits`` [T+1, B, A]."""
        c = self.config
        states = jnp.concatenate([seq["obs"], seq["next_obs"][-1:]])
        raw = self.value_net.apply(params, states)
        actions = seq["action"][..., None]
        log_pi = jnp.take_along_axis(jax.nn.log_softmax(pi_logits[:-1]), actions, -1)[..., 0]
        log_mu = jnp.take_along_axis(jax.nn.log_softmax(seq["logits"]), actions, -1)[..., 0]
        rho = jax.lax.stop_gradient(jnp.exp(log_pi - log_mu))
        discounts = c.value_gamma * (1.0 - (seq["terminated"] | seq["truncated"]).astype(jnp.float32))
        v = disco.decompress(raw)
        targets, adv = vtrace(v, seq["reward"], discounts, rho, c.value_lambda)
        td = targets - v[:-1]
        decay = disco.SETTINGS["ema_decay"]
        adv_ema, td_ema = disco.ema_update(value.adv_ema, adv, decay), disco.ema_update(value.td_ema, td, decay)
        return raw, adv, disco.ema_normalise(adv_ema, adv), disco.ema_normalise(td_ema, td, subtract_mean=False), adv_ema, td_ema

    def _value_update(self, value: ValueState, seq, pi_logits):
        def loss(params):
            raw, _, _, normalized_td, adv_ema, td_ema = self._value_outs(params, value, seq, pi_logits)
            # Its gradient in o is -td / rms(td): the TD error, normalised, pushed into the raw output.
            target = jax.lax.stop_gradient(raw[:-1] + normalized_td)
            return jnp.mean(0.5 * (raw[:-1] - target) ** 2), (adv_ema, td_ema)

        seq, pi_logits = jax.lax.stop_gradient((seq, pi_logits))
        (error, (adv_ema, td_ema)), grads = jax.value_and_grad(loss, has_aux=True)(value.params)
        updates, opt_state = self.value_tx.update(grads, value.opt_state, value.params)
        return ValueState(optax.apply_updates(value.params, updates), opt_state, adv_ema, td_ema), error

    # ------------------------------------------------------------------ one agent's meta-objective
    def _segment(self, rule_params, agent, value: ValueState, train, valid, backprop: bool = True):
        """K learner steps, the value function's updates and the meta-objective of one agent:
        (loss, (agent, value, terms)). ``backprop=False`` keeps the rule's stop-gradient (a check)."""
        c = self.config
        hparams = self.hparams(rule_params)

        def inner(carry, seq):
            agent, value = carry
            new, metrics, outputs = self.agent.learner_step(agent, hparams, seq, backprop)
            value, value_loss = self._value_update(value, seq, outputs["logits"])  # pi: the weights before the step
            return (new, value), ({**metrics, "value_loss": value_loss}, outputs)

        (agent, value), (metrics, outputs) = jax.lax.scan(inner, (agent, value), train)
        states = jnp.concatenate([valid["obs"], valid["next_obs"][-1:]])
        out = self.agent.net.apply(agent.params, states)  # theta_K on the validation states
        _, adv, normalized_adv, _, _, _ = self._value_outs(value.params, value, valid, out["logits"])  # its averages' update dropped
        log_pi = jax.nn.log_softmax(out["logits"][:-1])
        log_pi_a = jnp.take_along_axis(log_pi, valid["action"][..., None], -1)[..., 0]
        terms = {"policy_gradient": -jnp.mean(log_pi_a * jax.lax.stop_gradient(normalized_adv)),
                 "pi_entropy": jnp.mean(entropy(out["logits"][:-1])), "y_entropy": jnp.mean(entropy(out["y"])),
                 "z_entropy": jnp.mean(entropy(disco.select(out["z"][:-1], valid["action"])))}
        centre = lambda x: jnp.mean(jnp.mean(x, axis=tuple(range(1, x.ndim))) ** 2)  # noqa: E731  per update, then over K
        terms["centering"] = centre(outputs["pi_hat"]) + centre(outputs["y_hat"]) + centre(outputs["z_hat"])
        terms["target_kl"] = jnp.mean(disco.kl(jax.lax.stop_gradient(outputs["target_logits"][:, :-1]), outputs["pi_hat"]))
        # The part on the validation rollout: it reaches the rule only through theta_K.
        terms["validation_loss"] = (terms["policy_gradient"] - c.entropy_cost * terms["pi_entropy"]
                                    - c.prediction_entropy_cost * (terms["y_entropy"] + terms["z_entropy"]))
        loss = terms["validation_loss"] + c.centering_cost * terms["centering"] + c.target_kl_cost * terms["target_kl"]
        terms.update(meta_loss=loss, advantage=jnp.mean(adv), agent_loss=jnp.mean(metrics["loss"]),
                     pi_hat_entropy=jnp.mean(metrics["pi_hat_entropy"]), critic_loss=jnp.mean(metrics["value_loss"]))
        return loss, (jax.lax.stop_gradient(agent), value, terms)

    # ------------------------------------------------------------------ the meta-step
    def population_loss(self, rule_params, agents, values, train, valid, backprop: bool = True):
        segment = lambda *args: self._segment(*args, backprop=backprop)  # noqa: E731
        losses, aux = jax.vmap(segment, in_axes=(None, 0, 0, 0, 0))(rule_params, agents, values, train, valid)
        return losses.mean(), aux  # the gradient of the mean: the mean of the agents' meta-gradients

    def _step(self, state: DiscoMetaState) -> tuple[DiscoMetaState, dict[str, jax.Array]]:
        agents, train, valid, stats = jax.vmap(self._gather)(state.agents)
        (_, (agents, values, terms)), grads = jax.value_and_grad(self.population_loss, has_aux=True)(
            state.rule_params, agents, state.values, train, valid)
        updates, opt_state = self.meta_tx.update(grads, state.opt_state, state.rule_params)
        rule_params = optax.apply_updates(state.rule_params, updates)
        row = {k: v.mean() for k, v in terms.items()}
        both = jax.tree.map(lambda a, b: a.sum() + b.sum(), stats["train"], stats["valid"])
        row["mean_return"] = both["return_sum"] / jnp.maximum(both["episodes"], 1)  # episodes ended in every rollout
        # The colab's counts: +1 and -1 rewards in one agent's training rollouts.
        row["pos_rewards"] = stats["train"]["pos_rewards"].sum() / self.config.num_agents
        row["neg_rewards"] = stats["train"]["neg_rewards"].sum() / self.config.num_agents
        row["grad_norm"], row["update_norm"] = optax.global_norm(grads), optax.global_norm(updates)
        return DiscoMetaState(rule_params, opt_state, agents, values, state.step + 1), row
