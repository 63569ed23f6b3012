"""The agent a learned update rule trains (Oh et al. 2020): a policy pi(a|s) and a categorical
prediction y(s) over ``num_bins`` outcomes whose meaning the rule decides, both heads on one torso
(none for tabular observations: then each head is a table, LPG's tabular agent). Every
``num_steps`` steps of ``num_envs`` environments it asks its rule (``jaxrl.rules.lpg``) for
pi_hat and y_hat and takes one step of

    -E[pi_hat * log pi(a|s)] + alpha_y * E[KL(y(s) || y_hat)]

with SGD (lr 40 for tables, LPG's and GROOVE's) or the optimizer set. Registered as:

* ``lpg``: the learned rule, its weights in the hyperparameter ``rule_params`` (from a
  ``jaxrl meta-train lpg`` run with ``jaxrl train lpg --rule RUN_DIR``; untrained weights are
  random);
* ``ta-lpg``: the temporally-aware rule (also sees n/N and log N of the run);
* ``--set rule=a2c``: the hand-set A2C rule (the baseline the learned ones are measured against).

The rule's inputs carry no gradient to the agent, but the update is a function of
``rule_params``, so a meta-gradient flows through it (``jaxrl.rules.meta``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

import envs
from envs.wrappers import one_hot_index
from jaxrl.components.networks import Torso, torso_kind
from jaxrl.components.optim import apply, check_optimizer, optimizer
from jaxrl.components.rollout import EnvCarry, env_reset, episode_metrics, per_env, rollout
from jaxrl.core.contract import Agent, Algorithm, ConfigError, Progress, check_batch, compose, register, require
from jaxrl.rules.lpg import RULES, RuleInputs, make_rule

SMOOTHING = 1e-3  # y_hat mixed with the uniform distribution: KL(y || y_hat) stays finite


@dataclass(frozen=True)
class LPGConfig:
    total_steps: int = 500_000
    num_envs: int = 16
    num_steps: int = 20
    rule: str = "lpg"  # lpg | ta-lpg | a2c
    num_bins: int = 30  # m, the size of y (LPG: 30)
    rule_hidden: int = 256  # the update network's LSTM width (LPG: 256; experiments/lpg uses 64)
    hidden_sizes: tuple[int, ...] = ()  # the agent's torso: () is tabular (a linear table on the one-hot)
    activation: str = "relu"
    optimizer: str = "sgd"
    v_min: float = -10.0  # the a2c rule's bins for y
    v_max: float = 10.0


@struct.dataclass
class LPGHParams:
    lr: Any = 40.0
    alpha_y: Any = 0.5
    gamma: Any = 0.99
    gae_lambda: Any = 0.95  # the a2c rule's
    ent_coef: Any = 0.01  # the a2c rule's
    max_grad_norm: Any = 0.5
    rule_params: Any = None  # the learned rule's weights (None: the untrained rule's, seed 0)


@struct.dataclass
class LPGState:
    params: Any
    opt_state: Any
    env: EnvCarry
    key: jax.Array


class Head(nn.Module):
    """A linear head; with ``num_states`` (one-hot observations) a table of that many rows, the
    same weights as a bias-free linear layer on the one-hot, read by the state's index: from the
    one-hot itself, or given as an array of shape (1,) (``envs.OneHotIndex``, how the agent's own
    rollouts store them)."""

    size: int
    num_states: int = 0

    @nn.compact
    def __call__(self, x):
        if self.num_states:
            kernel = self.param("kernel", nn.initializers.zeros, (self.num_states, self.size))
            if x.shape[-1] not in (1, self.num_states):
                raise ValueError(f"a table of {self.num_states} states reads one-hots of that length or indices of shape (1,), "
                                 f"got observations of shape {x.shape}")
            index = one_hot_index(x) if x.shape[-1] == self.num_states else x[..., 0]
            return kernel[index.astype(jnp.int32)]
        return nn.Dense(self.size, kernel_init=nn.initializers.zeros)(x)


class PolicyAndPrediction(nn.Module):
    """Policy logits and y's logits (the ``policy`` and ``prediction`` heads), both starting
    uniform. A table has no bias: one shared by every state would take the whole batch's
    gradient while each row gets its share."""

    num_actions: int
    num_bins: int
    torso: nn.Module
    num_states: int = 0  # > 0: tables of this many rows (``Head``)

    @nn.compact
    def __call__(self, obs):
        x = self.torso(obs)
        return (Head(self.num_actions, self.num_states, name="policy")(x),
                Head(self.num_bins, self.num_states, name="prediction")(x))


def build(config: LPGConfig, env: envs.Environment) -> Agent:
    env_params = env.default_params
    num_actions = envs.action_size(env.action_space(env_params))
    obs_shape = envs.observation_shape(env, env_params)
    torso = Torso(tuple(config.hidden_sizes), config.activation, torso_kind(obs_shape, "auto"), obs_ndim=len(obs_shape))
    # Tables where the observations are one-hot (grid worlds, chains) and there is no torso.
    table = not config.hidden_sizes and bool(getattr(env, "one_hot_observation", False))
    if not config.hidden_sizes and not table:
        raise ConfigError(f"{env.name}'s observations are not one-hot, so a table (hidden_sizes=()) does not fit them; "
                          "give a torso, e.g. --set hidden_sizes=64 --set optimizer=adam --set lr=1e-3")
    net = PolicyAndPrediction(num_actions, config.num_bins, torso, num_states=obs_shape[-1] if table else 0)
    vec_env = envs.make_vector(envs.OneHotIndex(env) if table else env, config.num_envs)
    batch_size = config.num_envs * config.num_steps
    num_updates = config.total_steps // batch_size
    rule, rule_init = make_rule(config.rule, num_bins=config.num_bins, hidden_size=config.rule_hidden,
                                v_min=config.v_min, v_max=config.v_max)

    def tx(hparams):
        return optimizer(config.optimizer, lr=hparams.lr, progress=Progress(jnp.int32(0), num_updates),
                         max_grad_norm=hparams.max_grad_norm)

    def init(key, hparams, env_params) -> LPGState:
        key, net_key, env_key = jax.random.split(key, 3)
        params = net.init(net_key, jnp.zeros((1, *obs_shape), jnp.float32))
        return LPGState(params, tx(hparams).init(params), env_reset(vec_env, env_params, env_key), key)

    def collect(state: LPGState, hparams, step):
        key, rollout_key = jax.random.split(state.key)
        acting = jax.lax.stop_gradient(state.params)  # the data is not differentiated through

        def policy(act_key, obs):
            logits, _ = net.apply(acting, obs)
            return jax.random.categorical(act_key, logits), {}

        env_carry, traj = rollout(vec_env, policy, state.env, rollout_key, config.num_steps)
        return state.replace(env=env_carry, key=key), traj

    def rule_inputs(params, traj, hparams, progress: Progress, lifetime) -> RuleInputs:
        logits, y_logits = net.apply(params, traj.obs)
        _, y_next_logits = net.apply(params, traj.next_obs)
        log_pi = jax.nn.log_softmax(logits)
        log_pi_a = jnp.take_along_axis(log_pi, traj.action[..., None], -1)[..., 0]
        inputs = RuleInputs(traj.reward, traj.terminated, traj.done, jnp.asarray(hparams.gamma, jnp.float32),
                            jnp.exp(log_pi_a), log_pi_a, jax.nn.softmax(y_logits), jax.nn.softmax(y_next_logits),
                            progress.step / progress.num_updates, jnp.asarray(lifetime, jnp.float32))
        return jax.lax.stop_gradient(inputs)

    def update(state: LPGState, hparams, traj, progress: Progress, lifetime):
        """One update of the agent by its rule: (state, metrics); differentiable in hparams."""
        inputs = rule_inputs(state.params, traj, hparams, progress, lifetime)
        if config.rule == "a2c":  # the hand-set rule's parameters are its hyperparameters
            weights = {"gae_lambda": hparams.gae_lambda, "ent_coef": hparams.ent_coef}
        else:  # no weights given: the untrained rule's (seed 0), as ``initial_rule_params`` gives them
            weights = rule_init(jax.random.PRNGKey(0)) if hparams.rule_params is None else hparams.rule_params
        # Recomputed in a backward pass rather than stored: a meta-gradient through K updates would
        # otherwise keep every LSTM step's gates of every update (7% faster meta-steps, bench README).
        pi_hat, y_hat = jax.checkpoint(rule)(weights, inputs)
        log_y_hat = jnp.log((1.0 - SMOOTHING) * y_hat + SMOOTHING / config.num_bins)

        def loss_fn(params):
            logits, y_logits = net.apply(params, traj.obs)
            log_pi_a = jnp.take_along_axis(jax.nn.log_softmax(logits), traj.action[..., None], -1)[..., 0]
            log_y = jax.nn.log_softmax(y_logits)
            kl = jnp.sum(jnp.exp(log_y) * (log_y - log_y_hat), -1)
            return -jnp.mean(pi_hat * log_pi_a) + hparams.alpha_y * jnp.mean(kl), kl.mean()

        grads, kl = jax.grad(loss_fn, has_aux=True)(state.params)
        params, opt_state = apply(tx(hparams), grads, state.opt_state, state.params)
        entropy = lambda p: -jnp.sum(p * jnp.log(jnp.maximum(p, 1e-12)), -1).mean()  # noqa: E731
        metrics = {
            "pi_hat_mean": pi_hat.mean(), "pi_hat_sq": jnp.mean(pi_hat**2), "y_hat_sq": jnp.mean(jnp.sum(y_hat**2, -1)),
            "y_kl": kl, "pi_entropy": -jnp.mean(inputs.log_pi_a), "y_entropy": entropy(inputs.y),
        }
        return state.replace(params=params, opt_state=opt_state), metrics

    def learn(state: LPGState, hparams, traj, step):
        progress = Progress(step, num_updates)
        state, metrics = update(state, hparams, traj, progress, num_updates)
        metrics.update(episode_metrics(traj))
        metrics["per_env"] = per_env(traj)
        return state, metrics

    def policy_params(state: LPGState):
        return {"net": state.params}

    def act(policy_params, obs, key, deterministic: bool = False):
        logits, _ = net.apply(policy_params["net"], obs)
        return jnp.where(deterministic, jnp.argmax(logits, -1), jax.random.categorical(key, logits))

    return RuleAgent(init=init, update=compose(collect, learn), act=act, policy_params=policy_params,
                     steps_per_update=batch_size, num_updates=num_updates, collect=collect, learn=learn,
                     rule_update=update, rule_inputs=rule_inputs, net=net, vec_env=vec_env)


@dataclass(frozen=True)
class RuleAgent(Agent):
    """The contract's ``Agent`` plus what meta-training needs: ``rule_update(state, hparams, traj,
    progress, lifetime)``, one update differentiable in ``hparams``; ``rule_inputs`` and the network."""

    rule_update: Callable | None = None
    rule_inputs: Callable | None = None
    net: Any = None
    vec_env: Any = None


def defaults(env_name: str, discrete: bool, rule: str = "lpg") -> tuple[LPGConfig, LPGHParams]:
    """Tabular observations (one-hots: the grid worlds, the chains) get tables and SGD at lr 40
    (LPG's); anything else a hidden layer of 64 and Adam at 1e-3."""
    env, params = envs.make(env_name)
    obs = np.asarray(env.reset(jax.random.PRNGKey(0), params)[0])
    one_hot = obs.ndim == 1 and set(np.unique(obs)) <= {0.0, 1.0} and obs.sum() == 1
    if one_hot:
        return LPGConfig(rule=rule), LPGHParams()
    return LPGConfig(rule=rule, hidden_sizes=(64,), optimizer="adam"), LPGHParams(lr=1e-3)


def check(config: LPGConfig, hparams: LPGHParams, discrete: bool) -> None:
    require(config.rule in RULES, f"rule must be one of {', '.join(RULES)}, got {config.rule!r}")
    require(config.num_envs >= 1 and config.num_steps >= 1, "num_envs and num_steps must be >= 1")
    check_batch(config.total_steps, config.num_envs * config.num_steps, "batch (num_envs x num_steps)")
    require(config.num_bins >= 2, f"num_bins must be >= 2, got {config.num_bins}")
    require(config.rule_hidden >= 1, f"rule_hidden must be >= 1, got {config.rule_hidden}")
    require(config.v_min < config.v_max, "v_min must be below v_max")
    check_optimizer(config.optimizer)
    require(hparams.lr > 0, f"lr must be positive, got {hparams.lr}")
    require(hparams.alpha_y >= 0, f"alpha_y must be >= 0, got {hparams.alpha_y}")
    require((hparams.gamma >= 0) & (hparams.gamma <= 1), f"gamma must be in [0, 1], got {hparams.gamma}")
    check_rule_params(config, hparams.rule_params)


def initial_rule_params(config: LPGConfig, key: jax.Array) -> Any:
    """Fresh weights of ``config``'s rule (the start of a meta-training)."""
    return make_rule(config.rule, num_bins=config.num_bins, hidden_size=config.rule_hidden)[1](key)


def check_rule_params(config: LPGConfig, rule_params: Any) -> None:
    """``ConfigError`` unless ``rule_params`` (if given) fit ``config``'s learned rule."""
    if rule_params is None:
        return
    require(config.rule != "a2c", "the a2c rule is set by hand (gae_lambda, ent_coef); it takes no rule_params")
    expected = jax.eval_shape(lambda: initial_rule_params(config, jax.random.PRNGKey(0)))
    shapes = lambda tree: jax.tree.map(lambda x: tuple(np.shape(x)), tree)  # noqa: E731
    try:
        same = jax.tree.structure(expected) == jax.tree.structure(rule_params) and shapes(expected) == shapes(rule_params)
    except Exception:  # noqa: BLE001 - anything unlike a pytree of arrays
        same = False
    require(same, f"rule_params do not fit rule {config.rule} with num_bins={config.num_bins}, rule_hidden={config.rule_hidden}")


for _name, _summary in (
    ("lpg", "Learned Policy Gradient: an agent trained by a learned update rule (meta-train it with `jaxrl meta-train lpg`)"),
    ("ta-lpg", "Temporally-aware LPG: the learned rule also sees the run's progress n/N and length log N"),
):
    register(Algorithm(name=_name, summary=_summary, config_type=LPGConfig, hparams_type=LPGHParams, build=build,
                       defaults=lambda env_name, discrete, rule=_name: defaults(env_name, discrete, rule), check=check,
                       continuous=False))
