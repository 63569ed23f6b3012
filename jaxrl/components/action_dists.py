"""The two policy distributions the agents use: a categorical over discrete actions and a
Gaussian with a diagonal covariance over continuous ones.

Written here rather than taken from distrax, which the kit used before: importing distrax pulls
in TensorFlow Probability's JAX substrate, half a second of every process (0.53 s of ``python
-X importtime``, against a 5 s goal for a newcomer's whole first command), for two
distributions and six methods. The method names and signatures are distrax's
(``sample(seed=)``, ``sample_and_log_prob(seed=)``, ``log_prob``, ``entropy``, ``mode``,
``kl_divergence``; ``logits``, ``loc``, ``scale_diag``), so objectives written against
distrax's interface keep working, and tests/test_action_dists.py checks every method against
distrax's values.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Categorical:
    """pi(a) = softmax(logits)[a] over the last axis; the other axes are batch axes."""

    logits: jax.Array  # normalised: log pi over the actions

    @classmethod
    def from_logits(cls, logits: jax.Array) -> Categorical:
        return cls(jax.nn.log_softmax(logits, axis=-1))

    @property
    def probs(self) -> jax.Array:
        return jnp.exp(self.logits)

    def log_prob(self, action: jax.Array) -> jax.Array:
        return jnp.take_along_axis(self.logits, action[..., None].astype(jnp.int32), axis=-1)[..., 0]

    def sample(self, *, seed: jax.Array) -> jax.Array:
        return jax.random.categorical(seed, self.logits, axis=-1)

    def sample_and_log_prob(self, *, seed: jax.Array) -> tuple[jax.Array, jax.Array]:
        action = self.sample(seed=seed)
        return action, self.log_prob(action)

    def mode(self) -> jax.Array:
        return jnp.argmax(self.logits, axis=-1)

    def _where_possible(self, x: jax.Array) -> jax.Array:
        # An action of probability 0 (logit -inf) adds 0, not 0 * -inf, and the zero is taken
        # before the product, so that its gradient is 0 too rather than NaN.
        return jnp.where(self.probs > 0, x, 0.0)

    def entropy(self) -> jax.Array:
        return -jnp.sum(self.probs * self._where_possible(self.logits), axis=-1)

    def kl_divergence(self, other: Categorical) -> jax.Array:
        """KL(self || other) per batch element."""
        return jnp.sum(self.probs * self._where_possible(self.logits - other.logits), axis=-1)


_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@struct.dataclass
class DiagNormal:
    """A Gaussian over the last axis with independent dimensions: N(loc, diag(scale_diag^2))."""

    loc: jax.Array
    scale_diag: jax.Array

    def log_prob(self, action: jax.Array) -> jax.Array:
        z = (action - self.loc) / self.scale_diag
        return jnp.sum(-0.5 * jnp.square(z) - jnp.log(self.scale_diag) - _HALF_LOG_2PI, axis=-1)

    def sample(self, *, seed: jax.Array) -> jax.Array:
        shape = jnp.broadcast_shapes(self.loc.shape, self.scale_diag.shape)
        return self.loc + self.scale_diag * jax.random.normal(seed, shape, self.loc.dtype)

    def sample_and_log_prob(self, *, seed: jax.Array) -> tuple[jax.Array, jax.Array]:
        action = self.sample(seed=seed)
        return action, self.log_prob(action)

    def mode(self) -> jax.Array:
        return jnp.broadcast_to(self.loc, jnp.broadcast_shapes(self.loc.shape, self.scale_diag.shape))

    def entropy(self) -> jax.Array:
        log_scale = jnp.broadcast_to(jnp.log(self.scale_diag), jnp.broadcast_shapes(self.loc.shape, self.scale_diag.shape))
        return jnp.sum(0.5 + _HALF_LOG_2PI + log_scale, axis=-1)

    def kl_divergence(self, other: DiagNormal) -> jax.Array:
        """KL(self || other) per batch element, in closed form."""
        ratio = jnp.square(self.scale_diag / other.scale_diag)
        mean_term = jnp.square((self.loc - other.loc) / other.scale_diag)
        return jnp.sum(0.5 * (ratio + mean_term - 1.0 - jnp.log(ratio)), axis=-1)


Distribution = Categorical | DiagNormal
