"""Mirror-learning drifts: PPO's, DPO's closed form and a learned one (LPO, TA-LPO), as policy
objectives of PPO's agent (``jaxrl.components.objectives``).

Mirror learning (Kuba et al., 2022) writes a policy update as maximising E[r A] - E[D(r, A)] with a
drift D >= 0 that is 0, with zero gradient, at r = 1; any such drift gives monotonic improvement in
the idealised setting. PPO's clipped surrogate is one: min(rA, clip(r)A) = rA - relu((r - clip(r))A).

* ``lpo``: "Discovered Policy Optimisation" (Lu et al., 2022). D = D_ppo + D_net, so a zero network
  is PPO exactly; ``lpo-zero`` starts from D = D_net alone (a zero network is the unconstrained
  surrogate E[r A]). D_net(r, A) = relu(g(r)) with g(r) = f(r) - f(1) - (r - 1) f'(1), where f is
  a tanh MLP without biases of x = [r-1, log r, (r-1)^2, (log r)^2] and the same times A (the
  same A and progress throughout). g is f's remainder after its first-order Taylor expansion
  around r = 1, so g(1) = g'(1) = 0, and relu(g) is >= 0, 0 at r = 1 and has zero derivative
  there for any weights: the conditions hold by construction, not by training. D_net is linear in
  the output layer, so a perturbation of the weights changes the objective at first order.
* ``ta-lpo`` / ``ta-lpo-zero``: "Discovering Temporally-Aware Reinforcement Learning Algorithms"
  (Jackson et al., 2024): f also sees the training progress n/N in [0, 1).
* ``dpo``: the drift LPO discovered, in closed form (Lu et al., 2022, eq. 9): for A >= 0,
  relu((r-1)A - alpha tanh((r-1)A / alpha)), for A < 0, relu(log(r)A - beta tanh(log(r)A / beta)),
  alpha = 2, beta = 0.6 (``objective_params = {"alpha": 2.0, "beta": 0.6}``).

The learned drift's weights are ``hparams.objective_params = {"hidden": [F, H], "out": [H]}``, a
hyperparameter an evolution strategy perturbs (``jaxrl.meta``); F = 8, or 9 with progress.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.components.objectives import PolicyTerms, register_objective
from jaxrl.core.contract import ConfigError, Progress, canonical_name

DRIFT_FEATURES = 8
DRIFT_WIDTH = 32
DPO_PARAMS = {"alpha": 2.0, "beta": 0.6}
# The learned-drift objectives: name -> (adds PPO's drift, sees progress n/N).
LEARNED_DRIFTS = {"lpo": (True, False), "lpo-zero": (False, False), "ta-lpo": (True, True), "ta-lpo-zero": (False, True)}
# Ratios are clamped to this range inside the drifts: exp(log_ratio) may underflow to 0 or
# overflow, and log(0) or inf - inf in the features would make the loss NaN.
RATIO_RANGE = (1e-6, 1e6)


def drift_weights(temporal: bool = False, width: int = DRIFT_WIDTH, seed: int = 0) -> dict[str, np.ndarray]:
    """A drift network whose output layer is zero (so D_net = 0) and whose hidden layer is drawn
    at scale 1/sqrt(inputs): the mean an evolution strategy starts from. With a zero hidden layer
    too, a perturbation would change D only at second order (out x hidden), and the strategy
    would see no signal at first."""
    features = DRIFT_FEATURES + int(temporal)
    hidden = np.random.default_rng(seed).normal(size=(features, width)) / np.sqrt(features)
    return {"hidden": hidden.astype(np.float32), "out": np.zeros((width,), np.float32)}


def drift_features(ratio: jax.Array, advantage: jax.Array, progress: jax.Array | None = None) -> jax.Array:
    """[..., 8] (or [..., 9] with the progress n/N appended): LPO's inputs."""
    ratio = jnp.clip(ratio, *RATIO_RANGE)
    log_ratio = jnp.log(ratio)
    base = jnp.stack([ratio - 1.0, log_ratio, (ratio - 1.0) ** 2, log_ratio**2], axis=-1)
    features = jnp.concatenate([base, base * advantage[..., None]], axis=-1)
    if progress is not None:
        features = jnp.concatenate([features, jnp.broadcast_to(progress, advantage.shape)[..., None]], axis=-1)
    return features


def _mlp(weights: dict[str, jax.Array], features: jax.Array) -> jax.Array:
    return jnp.tanh(features @ weights["hidden"]) @ weights["out"]


def learned_drift(weights: dict[str, jax.Array], ratio: jax.Array, advantage: jax.Array, progress: jax.Array | None = None) -> jax.Array:
    """D_net(r, A[, n/N]) >= 0, 0 with zero derivative in r at r = 1, for any weights: the relu of
    f's remainder after its first-order Taylor expansion in r around r = 1."""
    temporal = weights["hidden"].shape[0] == DRIFT_FEATURES + 1
    if temporal != (progress is not None):
        raise ValueError(
            f"drift weights with {weights['hidden'].shape[0]} inputs "
            f"{'need' if temporal else 'take no'} training progress"
        )

    def f(r):
        return _mlp(weights, drift_features(r, advantage, progress))

    ones = jnp.ones_like(ratio)
    at_one, slope_at_one = jax.jvp(f, (ones,), (ones,))
    return jax.nn.relu(f(ratio) - at_one - (ratio - 1.0) * slope_at_one)


def ppo_drift(ratio: jax.Array, advantage: jax.Array, clip_eps: jax.Array | float) -> jax.Array:
    """relu((r - clip(r, 1 - eps, 1 + eps)) A): rA minus PPO's clipped surrogate."""
    return jax.nn.relu((ratio - jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)) * advantage)


def dpo_drift(ratio: jax.Array, advantage: jax.Array, alpha: jax.Array | float, beta: jax.Array | float) -> jax.Array:
    """The discovered drift in closed form (Lu et al., 2022, eq. 9)."""
    ratio = jnp.clip(ratio, *RATIO_RANGE)
    positive = (ratio - 1.0) * advantage
    negative = jnp.log(ratio) * advantage
    return jnp.where(
        advantage >= 0,
        jax.nn.relu(positive - alpha * jnp.tanh(positive / alpha)),
        jax.nn.relu(negative - beta * jnp.tanh(negative / beta)),
    )


def check_objective_params(objective: str, weights: Any) -> None:
    """``ConfigError`` unless ``weights`` (``hparams.objective_params``) fit ``objective``, for the
    drift objectives (others are not checked here). Trailing axes: a sweep checks a stack at once."""
    objective = canonical_name(objective)
    if objective in LEARNED_DRIFTS:
        expected = DRIFT_FEATURES + int(LEARNED_DRIFTS[objective][1])
        hidden = np.shape(weights.get("hidden")) if isinstance(weights, dict) else ()
        out = np.shape(weights.get("out")) if isinstance(weights, dict) else ()
        if not isinstance(weights, dict) or sorted(weights) != ["hidden", "out"] or len(hidden) < 2 or hidden[-2] != expected or out[-1:] != hidden[-1:]:
            raise ConfigError(f"objective {objective} needs drift weights {{'hidden': [{expected}, H], 'out': [H]}} "
                              f"in objective_params (the lpo and ta-lpo algorithms have them), got {_shapes(weights)}")
    elif objective == "dpo" and (not isinstance(weights, dict) or sorted(weights) != ["alpha", "beta"]):
        raise ConfigError(f"objective dpo needs objective_params {{'alpha', 'beta'}} (the dpo algorithm has them), got {_shapes(weights)}")


def _shapes(weights: Any) -> str:
    if not isinstance(weights, dict):
        return "None" if weights is None else f"a {type(weights).__name__}"
    return "{" + ", ".join(f"'{k}': {list(np.shape(v))}" for k, v in sorted(weights.items())) + "}"


def _drift_objective(name: str, from_ppo: bool, temporal: bool) -> None:
    def objective(terms: PolicyTerms, hparams: Any, progress: Progress) -> tuple[jax.Array, dict[str, jax.Array]]:
        ratio, advantage = terms.ratio, terms.advantage
        learned = learned_drift(hparams.objective_params, ratio, advantage, progress.fraction if temporal else None)
        drift = learned + (ppo_drift(ratio, advantage, hparams.clip_eps) if from_ppo else 0.0)
        return -(ratio * advantage - drift).mean(), {"drift": drift.mean(), "learned_drift": learned.mean()}

    objective.__doc__ = (f"{'TA-' if temporal else ''}LPO{' from zero' if not from_ppo else ''}: E[r A] minus "
                         f"{'PPO' + chr(39) + 's clipping drift plus ' if from_ppo else ''}a learned drift"
                         f"{' that also sees n/N' if temporal else ''}.")
    objective.__name__ = name
    register_objective(name)(objective)


for _name, (_from_ppo, _temporal) in LEARNED_DRIFTS.items():
    _drift_objective(_name, _from_ppo, _temporal)


@register_objective("dpo")
def dpo(terms: PolicyTerms, hparams: Any, progress: Progress) -> tuple[jax.Array, dict[str, jax.Array]]:
    """DPO: E[r A] minus the closed-form discovered drift, ``hparams.objective_params`` alpha, beta."""
    ratio, advantage = terms.ratio, terms.advantage
    params = hparams.objective_params
    drift = dpo_drift(ratio, advantage, params["alpha"], params["beta"])
    return -(ratio * advantage - drift).mean(), {"drift": drift.mean()}
