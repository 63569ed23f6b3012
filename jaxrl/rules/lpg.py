"""Update rules for the LPG agent (Oh et al. 2020, "Discovering Reinforcement Learning
Algorithms"): a rule maps a rollout of the agent to the targets of its update,

    rule(params, inputs) -> (pi_hat [T, B], y_hat [T, B, m])

and the agent (``jaxrl.rules.agent``) follows them: it descends

    -E[pi_hat * log pi(a|s)] + alpha_y * E[KL(y(s) || y_hat)]

so pi_hat says how much to raise the taken action's log-probability and y_hat what the agent's
categorical prediction y should become. ``RuleInputs`` holds what a rule sees: rewards, episode
ends, the discount, pi(a|s), y(s_t) and y(s_t+1) (all without gradient to the agent), and the
lifetime's progress n/N and length N.

Two rules:

* ``lpg``: the learned update network. A shared embedding phi (m -> 16 -> 1) of y(s_t) and
  y(s_t+1); per step the input [r, d, gamma, pi(a|s), phi(y_t), (1 - d) phi(y_t+1)] (d: the step
  terminated), and for the temporally-aware rule (TA-LPG, Jackson et al. 2024) also n/N and
  log(N) / 10 (both of order one; a public implementation fed the raw counts); an LSTM run
  backwards in time, its state cleared where an episode ended, so each step sees its own future
  only; then pi_hat (linear) and y_hat (softmax over m) from a ReLU of its output.
* ``a2c``: A2C written as an update rule, set by hand (the special case the learned one must
  contain): the value read out of y, v(s) = sum_i y_i(s) c_i over fixed bin centres c; pi_hat
  the GAE advantage of v minus ent_coef * log pi(a|s) (whose expected score-function gradient is
  the entropy's gradient); y_hat the lambda-return's histogram of a Gaussian (HL-Gauss, Farebrother
  et al. 2024) on the bins, smooth so that KL(y || y_hat) stays finite.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

from jaxrl.components.gae import gae
from jaxrl.components.value_losses import hl_gauss
from jaxrl.core.contract import ConfigError

LIFETIME_SCALE = 10.0  # log N / 10: N of 250-22,000 updates gives 0.55-1.0


@struct.dataclass
class RuleInputs:
    reward: jax.Array  # [T, B]
    terminated: jax.Array  # [T, B] bool: no bootstrap
    done: jax.Array  # [T, B] bool: the episode ended here (terminated or truncated)
    gamma: jax.Array  # scalar
    pi_a: jax.Array  # [T, B]: pi(a_t | s_t)
    log_pi_a: jax.Array  # [T, B]
    y: jax.Array  # [T, B, m]: y(s_t)
    y_next: jax.Array  # [T, B, m]: y(s_t+1), of the observation the step reached
    progress: jax.Array  # scalar n / N
    lifetime: jax.Array  # scalar N (agent updates)


def lifetime_features(progress: jax.Array, lifetime: jax.Array, shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """TA-LPG's two inputs at every step: n/N and log(N) / ``LIFETIME_SCALE``."""
    log_lifetime = jnp.log(jnp.maximum(jnp.asarray(lifetime, jnp.float32), 1.0)) / LIFETIME_SCALE
    return jnp.broadcast_to(progress, shape), jnp.broadcast_to(log_lifetime, shape)


class UpdateNetwork(nn.Module):
    """LPG's update network (see the module docstring); ``temporal`` adds n/N and log N."""

    num_bins: int = 30
    hidden_size: int = 256
    embedding_size: int = 16
    temporal: bool = False

    @nn.compact
    def __call__(self, x: RuleInputs) -> tuple[jax.Array, jax.Array]:
        phi = nn.Sequential([nn.Dense(self.embedding_size), nn.relu, nn.Dense(1)])
        terminated = x.terminated.astype(jnp.float32)
        features = [x.reward, terminated, jnp.broadcast_to(x.gamma, x.reward.shape), x.pi_a,
                    phi(x.y)[..., 0], (1.0 - terminated) * phi(x.y_next)[..., 0]]
        if self.temporal:
            features += list(lifetime_features(x.progress, x.lifetime, x.reward.shape))
        inputs = jnp.stack(features, -1).astype(jnp.float32)  # [T, B, F]
        cell = nn.OptimizedLSTMCell(self.hidden_size)
        batch = inputs.shape[1]
        carry = cell.initialize_carry(jax.random.PRNGKey(0), (batch, inputs.shape[-1]))

        # Backwards in time: the state arriving at step t comes from t+1, so it is cleared where
        # the episode ended at t (t+1 belongs to the next episode).
        def backward(module, carry, step):
            features, done = step
            carry = jax.tree.map(lambda c: jnp.where(done[:, None], 0.0, c), carry)
            carry, out = module(carry, features)
            return carry, out

        scan = nn.scan(backward, variable_broadcast="params", split_rngs={"params": False}, reverse=True)
        _, outputs = scan(cell, carry, (inputs, x.done))
        hidden = nn.relu(outputs)
        pi_hat = nn.Dense(1)(hidden)[..., 0]
        y_hat = jax.nn.softmax(nn.Dense(self.num_bins)(hidden), -1)
        return pi_hat, y_hat


def bin_centres(num_bins: int, v_min: float, v_max: float) -> jax.Array:
    return jnp.linspace(v_min, v_max, num_bins)


def a2c_rule(inputs: RuleInputs, *, gae_lambda: float, ent_coef: float, centres: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A2C as an update rule (module docstring): (pi_hat, y_hat)."""
    value = inputs.y @ centres
    next_value = inputs.y_next @ centres
    advantage, target = gae(inputs.reward, value, next_value, inputs.terminated, inputs.done, inputs.gamma, gae_lambda)
    pi_hat = advantage - ent_coef * inputs.log_pi_a
    return pi_hat, hl_gauss(target, centres)


Rule = Callable[[Any, RuleInputs], tuple[jax.Array, jax.Array]]
RULES = ("lpg", "ta-lpg", "a2c")


def make_rule(name: str, *, num_bins: int, hidden_size: int, v_min: float = -10.0,
              v_max: float = 10.0) -> tuple[Rule, Callable[[jax.Array], Any]]:
    """(rule(params, inputs), init(key) -> params) for ``name`` (``RULES``). The a2c rule's
    parameters are its two hyperparameters, ``{"gae_lambda": ..., "ent_coef": ...}``."""
    if name in ("lpg", "ta-lpg"):
        network = UpdateNetwork(num_bins=num_bins, hidden_size=hidden_size, temporal=name == "ta-lpg")

        def init(key: jax.Array) -> Any:
            t, b = 2, 1
            dummy = RuleInputs(jnp.zeros((t, b)), jnp.zeros((t, b), bool), jnp.zeros((t, b), bool), jnp.float32(0.99),
                               jnp.ones((t, b)), jnp.zeros((t, b)), jnp.full((t, b, num_bins), 1.0 / num_bins),
                               jnp.full((t, b, num_bins), 1.0 / num_bins), jnp.float32(0.0), jnp.float32(1.0))
            return network.init(key, dummy)

        return network.apply, init
    if name == "a2c":
        centres = bin_centres(num_bins, v_min, v_max)
        def rule(params, inputs):
            return a2c_rule(inputs, gae_lambda=params["gae_lambda"], ent_coef=params["ent_coef"], centres=centres)

        return rule, lambda key: {"gae_lambda": jnp.float32(0.95), "ent_coef": jnp.float32(0.0)}
    raise ConfigError(f"unknown update rule {name!r}; choose one of {', '.join(RULES)}")
