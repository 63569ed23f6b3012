"""Value functions trained by regression or by classification.

Farebrother et al. (2024), "Stop Regressing: Training Value Functions via Classification for
Scalable Deep RL": the network outputs logits over a fixed support of ``num_bins`` values, the
scalar target is turned into a histogram on that support, and the loss is the cross-entropy.
The value is the expectation of the predicted histogram.

* ``hl_gauss``: the histogram of a Gaussian centred on the target, sigma = ``sigma_ratio`` x the
  bin width (0.75 in the paper), i.e. the probability mass each bin's interval receives;
* ``two_hot``: the two neighbouring bin centres, weighted so that the mean is exactly the target;
* ``c51``: the categorical projection of Bellemare et al. (2017), "A Distributional Perspective on
  Reinforcement Learning". Given a *distribution* of targets (DQN's ``r + gamma z`` under the
  target network) it spreads every atom over its two neighbours; for a scalar target (a point
  mass, as in PQN's and PPO's lambda-returns) that is exactly ``two_hot``.

``ValueHead`` bundles the choice (``mse | huber | hl_gauss | two_hot | c51``) with the support so
the agents share one implementation: ``num_outputs`` for the network, ``value(out)`` for acting and
bootstrapping, ``loss(out, target)`` for training.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax

VALUE_LOSSES = ("mse", "huber", "hl_gauss", "two_hot", "c51")
CATEGORICAL = ("hl_gauss", "two_hot", "c51")


def support_centers(v_min: float, v_max: float, num_bins: int) -> jax.Array:
    """Bin centres (the atoms), evenly spaced from ``v_min`` to ``v_max`` inclusive."""
    return jnp.linspace(v_min, v_max, num_bins)


def two_hot(target: jax.Array, centers: jax.Array) -> jax.Array:
    """Probabilities on ``centers`` (shape [..., num_bins]) whose mean is ``target`` clipped to the
    support: the mass is split between the two neighbouring centres in proportion to closeness."""
    num_bins = centers.shape[0]
    width = centers[1] - centers[0]
    target = jnp.clip(target, centers[0], centers[-1])
    position = (target - centers[0]) / width
    lower = jnp.clip(jnp.floor(position), 0, num_bins - 2).astype(jnp.int32)
    upper_weight = position - lower
    return jax.nn.one_hot(lower, num_bins) * (1.0 - upper_weight)[..., None] + jax.nn.one_hot(
        lower + 1, num_bins
    ) * upper_weight[..., None]


def hl_gauss(target: jax.Array, centers: jax.Array, sigma_ratio: float = 0.75) -> jax.Array:
    """The histogram of N(target, sigma^2) on the bins around ``centers``: bin i receives
    Phi(upper_i) - Phi(lower_i), renormalised by the mass inside the support's outer edges.
    sigma = ``sigma_ratio`` x bin width."""
    width = centers[1] - centers[0]
    sigma = sigma_ratio * width
    edges = jnp.concatenate([centers - width / 2, centers[-1:] + width / 2])
    target = jnp.clip(target, centers[0], centers[-1])
    cdf = jax.scipy.special.ndtr((edges - target[..., None]) / sigma)
    mass = cdf[..., 1:] - cdf[..., :-1]
    return mass / (cdf[..., -1:] - cdf[..., :1])


def categorical_projection(atoms: jax.Array, probs: jax.Array, centers: jax.Array) -> jax.Array:
    """C51's projection: a distribution with ``probs`` on arbitrary ``atoms`` (shape [..., K]),
    e.g. ``r + gamma * z``, projected onto ``centers``: each atom is clipped to the support and
    split between its two neighbouring centres (the two-hot of the atom)."""
    return jnp.einsum("...k,...kb->...b", probs, two_hot(atoms, centers))


@dataclass(frozen=True)
class ValueHead:
    """How a value network's output becomes a value, and how it is trained towards a target."""

    kind: str = "mse"  # one of VALUE_LOSSES
    num_bins: int = 101
    v_min: float = -100.0
    v_max: float = 100.0
    sigma_ratio: float = 0.75

    @property
    def categorical(self) -> bool:
        return self.kind in CATEGORICAL

    @property
    def num_outputs(self) -> int:
        return self.num_bins if self.categorical else 1

    @property
    def centers(self) -> jax.Array:
        return support_centers(self.v_min, self.v_max, self.num_bins)

    def value(self, out: jax.Array) -> jax.Array:
        """Scalar values: ``out`` itself, or the mean of softmax(logits) over the support (the
        bin axis last)."""
        if not self.categorical:
            return out
        return jax.nn.softmax(out, axis=-1) @ self.centers

    def target_probs(self, target: jax.Array) -> jax.Array:
        """The histogram a scalar target is trained towards (c51: the projection of a point
        mass, which is the two-hot)."""
        if self.kind == "hl_gauss":
            return hl_gauss(target, self.centers, self.sigma_ratio)
        return two_hot(target, self.centers)

    def loss(self, out: jax.Array, target: jax.Array, huber_delta: float | jax.Array = 1.0) -> jax.Array:
        """Per-element loss (no reduction). mse is 0.5 x squared error; huber is optax's Huber
        loss with ``huber_delta``; the categorical kinds are the cross-entropy against
        ``target_probs(target)``, or against ``target`` itself when it already is a histogram
        (shape [..., num_bins], as C51's projected targets are)."""
        target = jax.lax.stop_gradient(jnp.asarray(target))
        if self.kind == "mse":
            return 0.5 * jnp.square(out - target)
        if self.kind == "huber":
            return optax.huber_loss(out, target, delta=huber_delta)
        probs = target if target.ndim == out.ndim else self.target_probs(target)
        return optax.softmax_cross_entropy(out, probs)


def value_head(config) -> ValueHead:
    """The ``ValueHead`` named by an agent config's ``value_loss``, ``num_bins``, ``v_min`` and
    ``v_max`` fields."""
    return ValueHead(config.value_loss, config.num_bins, config.v_min, config.v_max)


def check_value_head(config, require) -> None:
    """Config checks shared by every agent with a ``ValueHead``."""
    require(config.value_loss in VALUE_LOSSES, f"value_loss must be one of {', '.join(VALUE_LOSSES)}, got {config.value_loss!r}")
    require(config.num_bins >= 2, f"num_bins must be >= 2, got {config.num_bins}")
    require(config.v_min < config.v_max, f"v_min ({config.v_min}) must be below v_max ({config.v_max})")
