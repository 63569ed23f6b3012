"""Networks shared by the agents: MLP and MinAtar-sized CNN torsos, policy heads and critics.

Separate actor and critic networks (no shared torso) as in the standard PPO configuration; the
orthogonal initialisation with small policy-head scale follows Andrychowicz et al. (2021),
"What Matters in On-Policy Reinforcement Learning?".
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.components.action_dists import Categorical, DiagNormal, Distribution

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "gelu": nn.gelu, "silu": nn.silu}


def _dense(features: int, scale: float) -> nn.Dense:
    return nn.Dense(features, kernel_init=nn.initializers.orthogonal(scale), bias_init=nn.initializers.zeros)


class Torso(nn.Module):
    """MLP on flattened observations, or a small CNN (one 3x3 conv of 16 channels, as in the
    MinAtar paper) for image observations with a trailing channel axis, or ``maze_conv``: JaxUED's
    maze embedding for the kit's flat maze observation (its V x V x 2 view, then a direction
    one-hot of 4): the same 3x3 conv of 16 channels on the view, the direction through a linear
    layer of 5, both concatenated (then ``hidden_sizes``, none in JaxUED's network)."""

    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    kind: str = "mlp"  # "mlp" | "cnn" | "maze_conv"
    layer_norm: bool = False
    obs_ndim: int = 1  # trailing observation axes; leading ones are batch axes

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        x = obs
        if self.kind == "maze_conv":
            x = _maze_embedding(obs)
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


def _maze_embedding(obs: jax.Array) -> jax.Array:
    """JaxUED's maze embedding (see ``Torso``) of flat maze observations [..., V*V*2 + 4]."""
    view = int(round(np.sqrt((obs.shape[-1] - 4) / 2)))
    if view * view * 2 + 4 != obs.shape[-1]:
        raise ValueError(f"torso maze_conv needs the maze's observation (V*V*2 + 4 numbers), got {obs.shape[-1]}")
    image = obs[..., : view * view * 2].reshape(obs.shape[:-1] + (view, view, 2))
    image = nn.Conv(16, kernel_size=(3, 3), padding="VALID", kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(image)
    image = nn.relu(image).reshape(obs.shape[:-1] + (-1,))
    direction = _dense(5, np.sqrt(2))(obs[..., view * view * 2:])
    return jnp.concatenate([image, direction], axis=-1)


class Actor(nn.Module):
    """Categorical policy over ``action_dim`` actions, or a diagonal Gaussian whose log standard
    deviation is a state-independent parameter."""

    action_dim: int
    discrete: bool
    torso: Torso

    @nn.compact
    def __call__(self, obs: jax.Array) -> Distribution:
        x = self.torso(obs)
        out = _dense(self.action_dim, 0.01)(x)
        if self.discrete:
            return Categorical.from_logits(out)
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return DiagNormal(out, jnp.broadcast_to(jnp.exp(log_std), out.shape))


class Critic(nn.Module):
    """State value V(s); ``num_outputs > 1`` gives logits over value bins."""

    torso: Torso
    num_outputs: int = 1

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        out = _dense(self.num_outputs, 1.0)(self.torso(obs))
        return out.squeeze(-1) if self.num_outputs == 1 else out


class QNetwork(nn.Module):
    """Action values Q(s, .): shape [..., num_actions], or [..., num_actions, num_outputs] logits
    over value bins when ``num_outputs > 1``."""

    torso: Torso
    num_actions: int
    num_outputs: int = 1

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        out = _dense(self.num_actions * self.num_outputs, 1.0)(self.torso(obs))
        if self.num_outputs == 1:
            return out
        return out.reshape(out.shape[:-1] + (self.num_actions, self.num_outputs))


def _is_layer(module: nn.Module, _name: str) -> bool:
    return isinstance(module, (nn.Dense, nn.Conv))


def apply_with_context(module: nn.Module, params: Any, obs: jax.Array, activation: str) -> tuple[Any, dict[str, Any]]:
    """``module.apply(params, obs)`` and what a learned optimizer reads about ``module``'s
    weights (``jaxrl.components.learned_optim``): pytrees shaped like ``params`` (broadcastable
    leaves) of each weight's ``layer`` position, 0 (the first layer) to 1 (the output layer),
    and the ``dormancy`` of the neuron it feeds: the neuron's mean |activation| over this batch
    divided by the mean of that over its layer (Sokar et al., 2023; 0 is a dead neuron, 1
    average). It knows this file's layout: a ``torso`` (a ReLU conv, then Dense layers followed
    by ``activation``) before linear output layers; a weight that is not a layer's (a
    state-independent log std) counts as the output layer's, with dormancy 1."""
    out, captured = module.apply(params, obs, capture_intermediates=_is_layer, mutable=["intermediates"])
    outputs, weights = captured["intermediates"], params["params"]
    order = lambda name: (not name.startswith("Conv"), int(name.rsplit("_", 1)[1]))  # noqa: E731
    layers = [("torso", n) for n in sorted(weights.get("torso", {}), key=order)]
    layers += [(n,) for n in sorted((n for n in weights if n != "torso" and isinstance(weights[n], dict)), key=order)]
    dormancy = jax.tree.map(lambda _: jnp.ones(()), weights)
    position = jax.tree.map(lambda _: jnp.ones(()), weights)
    for index, path in enumerate(layers):
        value, dormant, place = outputs, dormancy, position
        for name in path[:-1]:
            value, dormant, place = value[name], dormant[name], place[name]
        value = value[path[-1]]["__call__"][0]
        if path[0] == "torso":
            value = nn.relu(value) if path[-1].startswith("Conv") else ACTIVATIONS[activation](value)
        score = jnp.abs(value).reshape(-1, value.shape[-1]).mean(axis=0)
        score = jax.lax.stop_gradient(score / (score.mean() + 1e-8))
        dormant[path[-1]] = {leaf: score for leaf in dormant[path[-1]]}
        place[path[-1]] = {leaf: jnp.asarray(index / max(len(layers) - 1, 1), jnp.float32) for leaf in place[path[-1]]}
    return out, {"dormancy": {"params": dormancy}, "layer": {"params": position}}


def torso_kind(obs_shape: Sequence[int], requested: str = "auto") -> str:
    """"cnn" for (H, W, C) image observations when asked for "auto", else "mlp"."""
    if requested != "auto":
        return requested
    return "cnn" if len(obs_shape) == 3 else "mlp"


# --------------------------------------------------------------------------------------------
# Off-policy actor-critic networks (SAC, TD3, DSAC-T). Actions are in [-1, 1]^d: the training
# stack (``envs.make_vector``) rescales them to the environment's bounds.


class ContinuousQ(nn.Module):
    """Q(s, a) of a continuous action: the torso sees the flattened observation concatenated
    with the action. ``num_outputs > 1`` gives several numbers per pair (DSAC-T: a mean and a
    raw standard deviation)."""

    torso: Torso
    num_outputs: int = 1

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        flat = obs.reshape(action.shape[:-1] + (-1,))
        out = _dense(self.num_outputs, 1.0)(self.torso(jnp.concatenate([flat, action], axis=-1)))
        return out.squeeze(-1) if self.num_outputs == 1 else out


def ensemble(module_type: type[nn.Module], size: int, **fields) -> nn.Module:
    """``size`` independently initialised copies of ``module_type(**fields)``, evaluated on the
    same inputs with one vmapped call; every output gains a leading ensemble axis. Twin critics
    are ``ensemble(ContinuousQ, 2, ...)``: one set of stacked weights, one matmul per layer."""
    stacked = nn.vmap(
        module_type,
        variable_axes={"params": 0},
        split_rngs={"params": True},
        in_axes=None,
        out_axes=0,
        axis_size=size,
    )
    return stacked(**fields)


class TanhGaussianActor(nn.Module):
    """The mean and log standard deviation of a diagonal Gaussian whose samples are squashed by
    tanh into [-1, 1] (SAC, Haarnoja et al., 2018, appendix C). The log standard deviation is
    state dependent and clipped to [log_std_min, log_std_max] so that the policy neither
    collapses to a point nor spreads so wide that tanh saturates everywhere."""

    action_dim: int
    torso: Torso
    log_std_min: float = -5.0
    log_std_max: float = 2.0

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = self.torso(obs)
        mean = _dense(self.action_dim, 0.01)(x)
        log_std = _dense(self.action_dim, 0.01)(x)
        return mean, jnp.clip(log_std, self.log_std_min, self.log_std_max)


class DeterministicActor(nn.Module):
    """A deterministic policy mu(s) in [-1, 1]^d (DDPG/TD3)."""

    action_dim: int
    torso: Torso

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        return jnp.tanh(_dense(self.action_dim, 0.01)(self.torso(obs)))


# --------------------------------------------------------------------------------------------
# Recurrent policies and critics (recurrent PPO): a torso, then a GRU or LSTM whose state the
# rollout carries, then the head. They run on sequences, time leading: ``obs`` [T, B, ...] and
# ``resets`` [T, B] (True where a new episode starts, so the state is zeroed before that step),
# from ``memory`` [B, memory_size]; one step of acting is T = 1.


def _over_time(cell: nn.Module, apply, memory: jax.Array, features: jax.Array, resets: jax.Array):
    """``apply(cell, memory, x) -> (memory, out)`` scanned over time, the memory zeroed before
    each step where ``resets`` is True; one step (acting) runs without a loop around it, with the
    same parameters."""
    def step(cell, m, inputs):
        x, reset = inputs
        return apply(cell, jnp.where(reset[..., None], jnp.zeros_like(m), m), x)

    if features.shape[0] == 1:
        memory, out = step(cell, memory, (features[0], resets[0]))
        return memory, out[None]
    scan = nn.scan(step, variable_broadcast="params", split_rngs={"params": False})
    return scan(cell, memory, (features, resets))


class GRUCore(nn.Module):
    """A GRU (Cho et al., 2014) scanned over time, its state zeroed where ``resets`` is True."""

    size: int

    @nn.compact
    def __call__(self, memory: jax.Array, features: jax.Array, resets: jax.Array) -> tuple[jax.Array, jax.Array]:
        return _over_time(nn.GRUCell(self.size, name="gru"), lambda cell, h, x: cell(h, x), memory, features, resets)


class LSTMCore(nn.Module):
    """An LSTM (Hochreiter and Schmidhuber, 1997) scanned over time like ``GRUCore``; its memory
    is one array [B, 2 * size], the cell state then the hidden state, so that everything that
    carries, resets and stores memory treats it like a GRU's."""

    size: int

    @nn.compact
    def __call__(self, memory: jax.Array, features: jax.Array, resets: jax.Array) -> tuple[jax.Array, jax.Array]:
        def apply(cell, m, x):
            (c, h), out = cell((m[..., : self.size], m[..., self.size:]), x)
            return jnp.concatenate([c, h], axis=-1), out

        return _over_time(nn.OptimizedLSTMCell(self.size, name="lstm"), apply, memory, features, resets)


def recurrent_core(cell: str, size: int) -> nn.Module:
    """The memory between torso and head: ``gru`` or ``lstm`` (whose memory is 2 * size wide)."""
    return LSTMCore(size) if cell == "lstm" else GRUCore(size)


def _head_layers(x: jax.Array, sizes: Sequence[int]) -> jax.Array:
    """ReLU layers between the memory and an output (JaxUED's maze network: one of 32)."""
    for size in sizes:
        x = nn.relu(_dense(size, np.sqrt(2))(x))
    return x


class RecurrentActor(nn.Module):
    """``Actor`` with a GRU or LSTM between torso and head: ``(memory, obs, resets) -> (memory, dist)``."""

    action_dim: int
    discrete: bool
    torso: Torso
    memory_size: int = 128
    cell: str = "gru"
    head_sizes: Sequence[int] = ()

    @nn.compact
    def __call__(self, memory, obs, resets):
        memory, x = recurrent_core(self.cell, self.memory_size)(memory, self.torso(obs), resets)
        out = _dense(self.action_dim, 0.01)(_head_layers(x, self.head_sizes))
        if self.discrete:
            return memory, Categorical.from_logits(out)
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return memory, DiagNormal(out, jnp.broadcast_to(jnp.exp(log_std), out.shape))


class RecurrentCritic(nn.Module):
    """``Critic`` with a GRU or LSTM between torso and head: ``(memory, obs, resets) -> (memory, out)``."""

    torso: Torso
    memory_size: int = 128
    num_outputs: int = 1
    cell: str = "gru"
    head_sizes: Sequence[int] = ()

    @nn.compact
    def __call__(self, memory, obs, resets):
        memory, x = recurrent_core(self.cell, self.memory_size)(memory, self.torso(obs), resets)
        out = _dense(self.num_outputs, 1.0)(_head_layers(x, self.head_sizes))
        return memory, (out.squeeze(-1) if self.num_outputs == 1 else out)
