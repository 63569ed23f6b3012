"""Networks shared by the agents: MLP and MinAtar-sized CNN torsos, policy heads and critics.

Separate actor and critic networks (no shared torso) as in the standard PPO configuration; the
orthogonal initialisation with small policy-head scale follows Andrychowicz et al. (2021),
"What Matters in On-Policy Reinforcement Learning?".
"""

from __future__ import annotations

from typing import Sequence

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "gelu": nn.gelu, "silu": nn.silu}


def _dense(features: int, scale: float) -> nn.Dense:
    return nn.Dense(features, kernel_init=nn.initializers.orthogonal(scale), bias_init=nn.initializers.zeros)


class Torso(nn.Module):
    """MLP on flattened observations, or a small CNN (one 3x3 conv of 16 channels, as in the
    MinAtar paper) for image observations with a trailing channel axis."""

    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    kind: str = "mlp"  # "mlp" | "cnn"
    layer_norm: bool = False
    obs_ndim: int = 1  # trailing observation axes; leading ones are batch axes

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        x = obs
        if self.kind == "cnn":
            x = nn.Conv(16, kernel_size=(3, 3), padding="VALID", kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(x)
            x = nn.relu(x)
        x = x.reshape(x.shape[: obs.ndim - self.obs_ndim] + (-1,))
        for size in self.hidden_sizes:
            x = _dense(size, np.sqrt(2))(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = act(x)
        return x


class Actor(nn.Module):
    """Categorical policy over ``action_dim`` actions, or a diagonal Gaussian whose log standard
    deviation is a state-independent parameter."""

    action_dim: int
    discrete: bool
    torso: Torso

    @nn.compact
    def __call__(self, obs: jax.Array) -> distrax.Distribution:
        x = self.torso(obs)
        out = _dense(self.action_dim, 0.01)(x)
        if self.discrete:
            return distrax.Categorical(logits=out)
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return distrax.MultivariateNormalDiag(out, jnp.exp(log_std))


class Critic(nn.Module):
    """State value V(s); ``num_outputs > 1`` gives logits over value bins."""

    torso: Torso
    num_outputs: int = 1

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        out = _dense(self.num_outputs, 1.0)(self.torso(obs))
        return out.squeeze(-1) if self.num_outputs == 1 else out


def torso_kind(obs_shape: Sequence[int], requested: str = "auto") -> str:
    """"cnn" for (H, W, C) image observations when asked for "auto", else "mlp"."""
    if requested != "auto":
        return requested
    return "cnn" if len(obs_shape) == 3 else "mlp"
