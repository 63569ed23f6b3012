"""The agent Disco103 trains (``jaxrl train disco --env Catch-bsuite --rule disco103:PATH``): on one
of the kit's torsos, policy logits and a prediction y [600]; per action (the torso's embedding
beside the action's one-hot, through a ReLU layer of ``action_hidden``) a prediction z [600], an
auxiliary one-step policy and categorical action values over 601 bins. A target network, the
moving average 0.9 old + 0.1 new of the agent's weights, gives the rule its target outputs.

Every update: a rollout of ``num_steps`` transitions from ``num_envs`` environments, the rule's
targets for it (``jaxrl.rules.disco``) with the lifetime meta-LSTM state and the normalisers
carried in the agent's state, and one step of Adam (0.9, 0.999, 1e-8), its update clipped to
[-1, 1] element-wise, times -lr. The data follow the reference's layout: the observation an
episode ended on is a state of its own, and the step from it to the next episode's first
observation is a transition the loss masks out (``ResetAsTransition``). A truncated episode is cut
like a terminated one (the rule knows only terminal steps), so no value crosses into the next episode.

Defaults are the reference colab's Catch setting where they apply (lr 1e-2, T = 28, an MLP torso of
512 x 512, heads initialised with std 1e-2), on-policy with 64 environments; the colab's replay is
``--set replay_capacity=28672 --set num_envs=2`` (1,024 sequences of 28 steps, a batch of 64
sequences every 2 x 28 steps, learning once 64 sequences' worth is stored).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

import envs
from envs.wrappers import Wrapper
from jaxrl.components.networks import Torso, torso_kind
from jaxrl.components.replay import Replay
from jaxrl.components.rollout import EnvCarry, env_reset, episode_metrics, per_env, rollout
from jaxrl.core.contract import Agent, Algorithm, check_batch, compose, register, require
from jaxrl.rules import disco


class ResetAsTransition(Wrapper):
    """An ended episode's last observation stays the next state; the step after it (any action,
    reward 0) leads to the next episode's first observation. ``state.pending`` marks that step.
    (The episode statistics outside count it as the next episode's first step: its length is one
    more than the environment's; its return is unchanged.)"""

    @staticmethod
    def _start(obs, state):
        return obs, {"inner": state, "pending": jnp.zeros((), bool), "next_obs": obs}

    def reset(self, key, params=None):
        return self._start(*self.env.reset(key, params))

    def reset_to_level(self, key, level, params=None):
        return self._start(*self.env.reset_to_level(key, level, params))

    def step(self, key, state, action, params=None):
        obs, inner, reward, terminated, truncated, info = self.env.step(key, state["inner"], action, params)
        final = info["final_observation"]
        ended = terminated | truncated
        pending = state["pending"]
        # On the pending step the environment stands still: the state already holds the next episode.
        inner = jax.tree.map(lambda old, new: jnp.where(pending, old, new), state["inner"], inner)
        out_obs = jnp.where(pending, state["next_obs"], jnp.where(ended, final, obs))
        reward = jnp.where(pending, 0.0, reward)
        terminated, truncated = terminated & ~pending, truncated & ~pending
        info = dict(info, final_observation=out_obs)
        new_state = {"inner": inner, "pending": ~pending & ended, "next_obs": jnp.where(pending, state["next_obs"], obs)}
        return out_obs, new_state, reward, terminated, truncated, info


@dataclass(frozen=True)
class DiscoConfig:
    total_steps: int = 500_000
    num_envs: int = 64
    num_steps: int = 28
    hidden_sizes: tuple[int, ...] = (512, 512)
    activation: str = "relu"
    action_hidden: int = 128
    replay_capacity: int = 0  # transitions kept (0: learn on each rollout as it comes); the colab's: 1024 x 28
    batch_size: int = 64  # sequences of num_steps transitions per update, from the replay


@struct.dataclass
class DiscoHParams:
    lr: Any = 1e-2
    max_abs_update: Any = 1.0
    rule_params: Any = None  # Disco103's weights, names with ":" for "/" (``to_hparam``)


@struct.dataclass
class DiscoState:
    params: Any
    target_params: Any
    opt_state: Any
    meta_state: Any  # the lifetime meta-LSTM's (h, c)
    adv_ema: Any
    td_ema: Any
    env: EnvCarry
    after_end: jax.Array  # [num_envs] bool: the next transition is a masked reset step
    key: jax.Array
    buffer: Any = None  # the replay (with replay_capacity > 0)


def scale_by_adam_sg_denominator(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> optax.GradientTransformation:
    """``optax.scale_by_adam`` (the same state, the same numbers) whose denominator sqrt(nu_hat) +
    eps is a constant to differentiation: the reference's agent optimiser, through which a
    meta-gradient passes by the first moment only."""
    def init(params):
        return optax.ScaleByAdamState(count=jnp.zeros([], jnp.int32), mu=optax.tree.zeros_like(params),
                                      nu=optax.tree.zeros_like(params))

    def update(updates, state, params=None):
        mu = optax.tree.update_moment(updates, state.mu, b1, 1)
        nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
        count = optax.safe_increment(state.count)
        mu_hat, nu_hat = optax.tree.bias_correction(mu, b1, count), optax.tree.bias_correction(nu, b2, count)
        updates = jax.tree.map(lambda m, v: m / jax.lax.stop_gradient(jnp.sqrt(v) + eps), mu_hat, nu_hat)
        return updates, optax.ScaleByAdamState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init, update)


def agent_optimiser(lr: Any, max_abs_update: Any = 1.0) -> optax.GradientTransformation:
    """Adam (0.9, 0.999, 1e-8; denominator held constant), clipped to [-max_abs_update,
    max_abs_update] element-wise, times -lr."""
    return optax.chain(scale_by_adam_sg_denominator(), optax.clip(max_abs_update), optax.scale(-lr))


def sequences(traj, after_end: jax.Array) -> dict[str, jax.Array]:
    """A rollout as the learner step takes it; ``after_end`` [num_envs]: the first transition is
    the reset step after an episode that ended in the previous rollout."""
    ended = traj.terminated | traj.truncated
    return {"obs": traj.obs, "action": traj.action, "reward": traj.reward, "terminated": traj.terminated,
            "truncated": traj.truncated, "next_obs": traj.next_obs, "logits": traj.extras["logits"],
            "masked": jnp.concatenate([after_end[None], ended[:-1]])}


def to_hparam(weights: dict[str, Any]) -> dict[str, Any]:
    """Weight names as hyperparameter keys ("/" is a path separator in checkpoints)."""
    return {name.replace("/", ":"): value for name, value in weights.items()}


class DiscoNet(nn.Module):
    num_actions: int
    torso: nn.Module
    action_hidden: int

    @nn.compact
    def __call__(self, obs):
        head = lambda size: nn.Dense(size, kernel_init=nn.initializers.normal(1e-2))  # noqa: E731
        embedding = self.torso(obs)
        actions = jnp.broadcast_to(jnp.eye(self.num_actions), embedding.shape[:-1] + (self.num_actions, self.num_actions))
        per_action = jnp.concatenate([jnp.broadcast_to(embedding[..., None, :], actions.shape[:-1] + embedding.shape[-1:]),
                                      actions], -1)
        hidden = nn.relu(nn.Dense(self.action_hidden)(per_action))
        return {"logits": head(self.num_actions)(embedding), "y": head(disco.Y_SIZE)(embedding),
                "z": head(disco.Y_SIZE)(hidden), "aux_pi": head(self.num_actions)(hidden), "q": head(disco.NUM_BINS)(hidden)}


def build(config: DiscoConfig, env: envs.Environment) -> Agent:
    env_params = env.default_params
    num_actions = envs.action_size(env.action_space(env_params))
    obs_shape = envs.observation_shape(env, env_params)
    torso = Torso(tuple(config.hidden_sizes), config.activation, torso_kind(obs_shape, "auto"), obs_ndim=len(obs_shape))
    net = DiscoNet(num_actions, torso, config.action_hidden)
    vec_env = envs.make_vector(ResetAsTransition(env), config.num_envs)
    batch = config.num_envs * config.num_steps
    num_updates = config.total_steps // batch
    replay = Replay(config.num_envs, config.replay_capacity, config.batch_size, config.num_steps) if config.replay_capacity else None

    def tx(hparams):
        return agent_optimiser(hparams.lr, hparams.max_abs_update)

    def init(key, hparams, env_params) -> DiscoState:
        key, net_key, env_key = jax.random.split(key, 3)
        params = net.init(net_key, jnp.zeros((1, *obs_shape), jnp.float32))
        zeros = jnp.zeros(disco.META_SIZE)
        fresh = (jnp.float32(0.0), jnp.float32(0.0), jnp.float32(1.0))
        carry = env_reset(vec_env, env_params, env_key)
        buffer = None
        if replay is not None:
            example = {"logits": jnp.zeros(num_actions), "masked": jnp.zeros((), bool)}
            buffer = replay.init(carry.obs[0], jnp.zeros((), jnp.int32), example)
        return DiscoState(params, params, tx(hparams).init(params), (zeros, zeros), fresh, fresh, carry,
                          jnp.zeros(config.num_envs, bool), key, buffer)

    def collect(state: DiscoState, hparams, step):
        key, rollout_key = jax.random.split(state.key)

        def policy(act_key, obs):
            logits = net.apply(state.params, obs)["logits"]
            return jax.random.categorical(act_key, logits), {"logits": logits}

        env_carry, traj = rollout(vec_env, policy, state.env, rollout_key, config.num_steps)
        return state.replace(env=env_carry, key=key), (traj, state.after_end)

    def learner_step(state: DiscoState, hparams, seq, backprop: bool = False):
        """One update on sequences [T, B] of transitions (obs, action, reward, terminated,
        truncated, next_obs, behaviour logits, masked: the reset step after an episode's end):
        (state, metrics, the rule's pi_hat, y_hat, z_hat [T, B, ...], the online and target
        networks' logits [T+1, B, A] and the rule's normalised advantages [T, B]). Differentiable in ``hparams.rule_params`` for
        meta-training (``jaxrl.rules.disco_meta``), which sets ``backprop`` (``disco.loss_per_step``).

        The rule's inputs carry no gradient except the online and target networks' y and z, as
        in the reference (its features of them are not stop-gradiented): a meta-gradient reaches
        an earlier update through them. Training never differentiates this step, so that
        changes nothing there."""
        weights = {name.replace(":", "/"): value for name, value in hparams.rule_params.items()}
        obs = jnp.concatenate([seq["obs"], seq["next_obs"][-1:]])  # T+1 states: each next is the last's successor
        ended = seq["terminated"] | seq["truncated"]
        mask = 1.0 - seq["masked"].astype(jnp.float32)
        online = net.apply(state.params, obs)
        target = net.apply(state.target_params, obs)
        sg = jax.lax.stop_gradient
        x = {"actions": jnp.concatenate([seq["action"], seq["action"][-1:]]), "rewards": seq["reward"], "is_terminal": ended,
             "behaviour_logits": sg(jnp.concatenate([seq["logits"], online["logits"][-1:]])),
             **{k: v if k in ("y", "z") else sg(v) for k, v in online.items()},
             **{f"target_{k}": target[k] if k in ("y", "z") else sg(target[k]) for k in ("logits", "y", "z", "q")}}
        val, out = disco.rule_outputs(weights, x, state.meta_state, state.adv_ema, state.td_ema)

        def loss_fn(params):
            terms = disco.loss_per_step(net.apply(params, obs), x, val, out, backprop=backprop)
            return disco.masked_mean(terms["total_loss"], mask), terms

        (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx(hparams).update(grads, state.opt_state, state.params)
        coeff = disco.SETTINGS["target_params_coeff"]
        target_params = jax.tree.map(lambda t, p: coeff * t + (1 - coeff) * p, state.target_params, state.params)
        state = state.replace(params=optax.apply_updates(state.params, updates), target_params=target_params, opt_state=opt_state,
                              meta_state=out["meta_state"], adv_ema=val["adv_ema"], td_ema=val["td_ema"])
        metrics = {"loss": loss, **{k: disco.masked_mean(v, mask) for k, v in terms.items() if k != "total_loss"},
                   "pi_hat_entropy": -jnp.mean(jnp.sum(jax.nn.softmax(out["pi_hat"]) * jax.nn.log_softmax(out["pi_hat"]), -1))}
        outputs = {"pi_hat": out["pi_hat"], "y_hat": out["y_hat"], "z_hat": out["z_hat"], "logits": sg(online["logits"]),
                   "target_logits": sg(target["logits"]), "normalized_adv": val["normalized_adv"]}
        return state, metrics, outputs

    def learn(state: DiscoState, hparams, batch_and_start, step):
        traj, after_end = batch_and_start
        ended = traj.terminated | traj.truncated
        seq = sequences(traj, after_end)
        if replay is None:
            new, metrics, _ = learner_step(state, hparams, seq)
        else:  # the colab's way: add the rollout, learn on a batch of stored sequences once enough are stored
            buffer = replay.add(state.buffer, traj, {"logits": seq["logits"], "masked": seq["masked"]})
            sample_key, key = jax.random.split(state.key)
            new, metrics, _ = learner_step(state.replace(key=key), hparams, replay.sample(buffer, sample_key))
            ready = replay.can_sample(buffer) & ((step + 1) * config.num_envs >= config.batch_size)
            # Only what the learner step changes is selected: the environment's parameters must stay
            # unbatched when seeds are vmapped (``ready`` is per seed).
            chosen = {f: jax.tree.map(lambda a, b: jnp.where(ready, a, b), getattr(new, f), getattr(state, f))
                      for f in ("params", "target_params", "opt_state", "meta_state", "adv_ema", "td_ema")}
            new = state.replace(key=key, buffer=buffer, **chosen)
            metrics = {k: jnp.where(ready, v, jnp.nan) for k, v in metrics.items()}
        metrics.update(episode_metrics(traj))
        metrics["per_env"] = per_env(traj)
        return new.replace(after_end=ended[-1]), metrics

    def policy_params(state: DiscoState):
        return {"net": state.params}

    def act(policy_params, obs, key, deterministic: bool = False):
        logits = net.apply(policy_params["net"], obs)["logits"]
        return jnp.where(deterministic, jnp.argmax(logits, -1), jax.random.categorical(key, logits))

    return DiscoAgent(init=init, update=compose(collect, learn), act=act, policy_params=policy_params, steps_per_update=batch,
                      num_updates=num_updates, collect=collect, learn=learn, learner_step=learner_step, net=net)


@dataclass(frozen=True)
class DiscoAgent(Agent):
    """The contract's ``Agent`` plus what meta-training needs: ``learner_step(state, hparams,
    seq, backprop)`` (see ``build``) and the network."""

    learner_step: Callable | None = None
    net: Any = None


def defaults(env_name: str, discrete: bool) -> tuple[DiscoConfig, DiscoHParams]:
    return DiscoConfig(), DiscoHParams()


def check(config: DiscoConfig, hparams: DiscoHParams, discrete: bool) -> None:
    require(config.num_envs >= 1 and config.num_steps >= 2, "num_envs must be >= 1 and num_steps >= 2")
    require(config.replay_capacity == 0 or config.replay_capacity >= config.num_envs * config.num_steps,
            "replay_capacity must be 0 (on-policy) or hold at least one rollout (num_envs x num_steps)")
    require(config.batch_size >= 1, "batch_size must be >= 1")
    check_batch(config.total_steps, config.num_envs * config.num_steps, "batch (num_envs x num_steps)")
    require(hparams.lr > 0 and hparams.max_abs_update > 0, "lr and max_abs_update must be positive")
    require(hparams.rule_params is not None, "disco needs the rule's weights: --rule disco103:PATH (or `jaxrl fetch-rule "
            "disco103` first, then --rule disco103)")
    names = {name.replace(":", "/") for name in hparams.rule_params}
    require(names == set(disco.WEIGHT_SHAPES), "rule_params are not Disco103's weights")


register(Algorithm(name="disco", summary="Disco103 (Oh et al. 2025): an agent trained by DiscoRL's published learned rule",
                   config_type=DiscoConfig, hparams_type=DiscoHParams, build=build, defaults=defaults, check=check,
                   continuous=False))
