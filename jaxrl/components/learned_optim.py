"""Learned optimizers as OPEN defines them (Goldie et al., 2024, "Can Learned Optimization Make
Reinforcement Learning Less Difficult?"): a small network applied to every parameter on its own,
reading its gradient, momenta at OPEN's six timescales (0.1 to 0.9999), the parameter itself,
training progress, batch progress, the layer's position and the dormancy of the neuron the
parameter feeds, and writing that parameter's update. As in OPEN:

* the magnitude inputs (log |g|, log |m| at each timescale, the parameter) are normalised per
  tensor by their second moment (x / sqrt(mean(x^2) + 1e-5) over the tensor's entries);
* the step scale is fixed (``lr``, not the agent's schedule: ``anneal_lr`` does not apply to a
  learned optimizer), and the schedule reaches the network as an input, training progress n / N;
* the mean of the update over all the agent's parameters is subtracted, so every step's update
  sums to zero over the parameters (OPEN's "globally zero" update);
* the noisy variants add learned Gaussian noise to the actor's updates only.

Where we differ, and why: sign inputs are taken relative to s = sign(g) (below), which needs the
parameter as p * s rather than p, and makes sign(g) itself a constant that is left out; the sign
inputs (already +-1) are not normalised, and there is no LayerNorm in the hidden layer, so that
the hand-set Signum network below stays exactly Signum.

Four optimizers are registered with the optimizer factory (``--set optimizer=NAME``, or
``--optimizer learned:META_DIR`` for meta-trained weights):

* ``learned_mlp``: a feed-forward network (one hidden layer), cheap enough for CPU budgets;
* ``learned_gru``: a GRU per parameter (its hidden state lives in the optimizer state) before the
  same head, as OPEN's;
* ``learned_mlp_noise``, ``learned_gru_noise``: the same, with learned Gaussian noise added to the
  actor's updates (OPEN's learned stochasticity; the critic's updates stay deterministic).

The weights are ``hparams.optimizer_params`` (traced: a population of learned optimizers is one
vmapped program). ``jaxrl meta-train optimizer --algo ppo`` evolves them.

Why our own and not learned_optimization's: that library is pinned to an old JAX and its
optimizers are not optax transformations of traced weights; OPEN's code builds on it.

**Sign equivariance.** Every sign input is taken relative to s = sign(g) (with sign(0) = +1), and
the update is -lr * s * d * exp(m) for the network's outputs (d, m), less its mean. Flipping the
signs of the parameters and of the gradients' whole history flips the update.

**The handcrafted special case.** ``signum_weights`` sets d = sign(m_0.9) * s and m = 0, so the
update is -lr * (sign(m_0.9) - mean(sign(m_0.9))): Signum (Bernstein et al., 2018) less its mean
over the parameters, which a test pins to optax's ``chain(trace(0.9), scale_by_sign(),
scale(-lr))`` with that mean subtracted. The default weights (the search's start) are that plus
small random terms: a working optimizer that evolution can improve.

Context from the agent comes as optax extra arguments of ``update``: ``batch_progress`` (k / K
over the K minibatch steps of an update), ``dormancy`` and ``layer`` (pytrees shaped like the
parameters: ``jaxrl.components.networks.network_context``), and ``key`` for the noisy variants.
Used as a plain optax transformation without them, the batch progress is 0, every neuron counts
as active (dormancy 1) and every layer as the first (position 0); the noisy variants need ``key``.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxrl.components.optim import OptimizerArgs, register_optimizer
from jaxrl.core.contract import ConfigError

MOMENTA = (0.1, 0.5, 0.9, 0.99, 0.999, 0.9999)  # EMA timescales of the gradient, OPEN's six
FEATURES = (
    "log|g|",
    *(f"sign(m{b})*s" for b in MOMENTA),
    *(f"log|m{b}|" for b in MOMENTA),
    "p*s",
    "training_progress",  # n / N in [0, 1)
    "batch_progress",  # k / K in [0, 1)
    "layer",  # the layer's position in its network, 0 (first) to 1 (output)
    "dormancy",  # the fed neuron's mean |activation| over its layer's mean (0: dormant)
)
NUM_FEATURES = len(FEATURES)
# The columns normalised per tensor by their second moment (OPEN's input normalisation).
NORMALISED = tuple(i for i, f in enumerate(FEATURES) if f.startswith("log|") or f == "p*s")
_LOG_EPS, _NORM_EPS = 1e-8, 1e-5
_SIGNUM_MOMENTUM = MOMENTA.index(0.9)
_MAX_MAGNITUDE = 10.0  # exp(m) is clipped to e^+-10 so that a wild search member stays finite
_NOISE_OFFSET = -3.0  # the noise's std is lr * exp(n - 3): small until evolution raises it
KINDS = {"learned_mlp": ("mlp", False), "learned_gru": ("gru", False),
         "learned_mlp_noise": ("mlp", True), "learned_gru_noise": ("gru", True)}
HIDDEN, GRU_HIDDEN = 16, 8


class UpdateNet(nn.Module):
    """Per-parameter features [n, F] (and a GRU state [n, GRU_HIDDEN]) to outputs [n, 3]:
    direction d, log-magnitude m and noise log-scale."""

    kind: str  # "mlp" | "gru"

    @nn.compact
    def __call__(self, x: jax.Array, carry: jax.Array | None) -> tuple[jax.Array, jax.Array | None]:
        if self.kind == "gru":
            carry, memory = nn.GRUCell(GRU_HIDDEN, name="gru")(carry, x)
            x = jnp.concatenate([x, memory], axis=-1)
        hidden = nn.relu(nn.Dense(HIDDEN, name="hidden")(x))
        return nn.Dense(3, name="out")(hidden), carry


@functools.lru_cache(maxsize=None)
def _template(kind: str) -> Any:
    carry = jnp.zeros((1, GRU_HIDDEN)) if kind == "gru" else None
    return UpdateNet(kind).init(jax.random.key(0), jnp.zeros((1, NUM_FEATURES)), carry)


def signum_weights(name: str = "learned_mlp") -> Any:
    """The handcrafted special case: weights whose update is exactly -lr * sign(m_0.9), less its
    mean over the parameters."""
    kind = KINDS[name][0]
    weights = jax.tree.map(jnp.zeros_like, _template(kind))
    sign_m = FEATURES.index(f"sign(m{MOMENTA[_SIGNUM_MOMENTUM]})*s")
    p = weights["params"]
    # Two hidden units carry relu(x) and relu(-x) of the relative sign of m_0.9; d is their
    # difference, x itself. Every other weight is zero: m = 0, no noise, no memory.
    p["hidden"]["kernel"] = p["hidden"]["kernel"].at[sign_m, 0].set(1.0).at[sign_m, 1].set(-1.0)
    p["out"]["kernel"] = p["out"]["kernel"].at[0, 0].set(1.0).at[1, 0].set(-1.0)
    return weights


def default_weights(name: str, seed: int = 0) -> Any:
    """Where meta-training starts: Signum plus small random terms (the other hidden units get
    LeCun-normal input weights and output weights of scale 0.01; the GRU a random init)."""
    return jax.tree.map(np.array, _default_weights(name, seed))  # a copy: the cache stays as it is


@functools.lru_cache(maxsize=None)
def _default_weights(name: str, seed: int) -> Any:
    kind = KINDS[name][0]
    random = _template(kind)
    keys = iter(jax.random.split(jax.random.key(seed), 8))
    weights = signum_weights(name)
    p, r = weights["params"], random["params"]
    free = jnp.arange(HIDDEN) >= 2  # hidden units 0 and 1 are Signum's
    p["hidden"]["kernel"] = jnp.where(free, r["hidden"]["kernel"], p["hidden"]["kernel"])
    p["out"]["kernel"] = p["out"]["kernel"] + 0.01 * jax.random.normal(next(keys), p["out"]["kernel"].shape) * free[: HIDDEN, None]
    if kind == "gru":
        p["gru"] = r["gru"]
    return jax.tree.map(lambda x: np.asarray(x, np.float32), weights)


class LearnedState(NamedTuple):
    momenta: Any  # per leaf [len(MOMENTA), *shape]: EMAs of the gradient
    memory: Any  # per leaf [size, GRU_HIDDEN] (GRU variants), else None


def _log_magnitude(x: jax.Array) -> jax.Array:
    return jnp.log(jnp.abs(x) + _LOG_EPS)


def _normalise(x: jax.Array) -> jax.Array:
    """OPEN's second-moment normaliser over a tensor's entries: x / sqrt(mean(x^2) + 1e-5)."""
    return x * jax.lax.rsqrt(_NORM_EPS + jnp.mean(jnp.square(x)))


def features(grad, momenta, param, training_progress, batch_progress, layer, dormancy) -> tuple[jax.Array, jax.Array]:
    """The inputs [size, NUM_FEATURES] of one leaf (in ``FEATURES``' order) and s = sign(g)."""
    size = grad.size
    s = jnp.where(grad < 0, -1.0, 1.0).reshape(size)
    flat = lambda x: jnp.broadcast_to(jnp.asarray(x, jnp.float32), grad.shape).reshape(size)  # noqa: E731
    columns = [_normalise(_log_magnitude(flat(grad)))]
    columns += [jnp.sign(flat(m)) * s for m in momenta]
    columns += [_normalise(_log_magnitude(flat(m))) for m in momenta]
    columns += [_normalise(flat(param) * s)]
    columns += [flat(training_progress), flat(batch_progress), flat(layer), flat(dormancy)]
    return jnp.stack(columns, axis=-1), s


def learned(args: OptimizerArgs, name: str) -> optax.GradientTransformationExtraArgs:
    """The learned optimizer ``name`` with weights ``args.params`` and step scale ``args.lr`` (the
    unscheduled learning rate: the schedule is the input n / N)."""
    kind, noisy = KINDS[name]
    net = UpdateNet(kind)
    decays = jnp.asarray(MOMENTA, jnp.float32)

    def init(params):
        momenta = jax.tree.map(lambda p: jnp.zeros((len(MOMENTA), *p.shape), jnp.float32), params)
        memory = jax.tree.map(lambda p: jnp.zeros((p.size, GRU_HIDDEN), jnp.float32), params) if kind == "gru" else None
        return LearnedState(momenta, memory)

    def update(grads, state, params=None, *, batch_progress=0.0, dormancy=None, layer=None, key=None, **_):
        if params is None:
            raise ValueError("the learned optimizer reads the parameters: call update(grads, state, params)")
        if noisy and key is None:
            raise ValueError(f"{name} adds noise to the actor's updates and needs update(..., key=...)")
        treedef = jax.tree.structure(grads)
        leaves = treedef.flatten_up_to(grads)
        momenta = [decays.reshape((-1,) + (1,) * g.ndim) * m + (1 - decays.reshape((-1,) + (1,) * g.ndim)) * g
                   for g, m in zip(leaves, treedef.flatten_up_to(state.momenta))]
        n_leaves = len(leaves)
        dormancy = treedef.flatten_up_to(dormancy) if dormancy is not None else [1.0] * n_leaves
        layer = treedef.flatten_up_to(layer) if layer is not None else [0.0] * n_leaves
        memory = treedef.flatten_up_to(state.memory) if kind == "gru" else [None] * n_leaves
        actor = _actor_mask(grads)
        noise_keys = jax.random.split(key, n_leaves) if noisy else [None] * n_leaves
        updates, new_memory = [], []
        for g, m, p, dorm, lay, mem, is_actor, noise_key in zip(
            leaves, momenta, treedef.flatten_up_to(params), dormancy, layer, memory, actor, noise_keys
        ):
            x, s = features(g, m, p, args.progress.fraction, batch_progress, lay, dorm)
            out, mem = net.apply(args.params, x, mem)
            step = -args.lr * s * out[:, 0] * jnp.exp(jnp.clip(out[:, 1], -_MAX_MAGNITUDE, _MAX_MAGNITUDE))
            if noisy and is_actor:
                scale = args.lr * jnp.exp(jnp.clip(out[:, 2] + _NOISE_OFFSET, -_MAX_MAGNITUDE, _MAX_MAGNITUDE))
                step = step + scale * jax.random.normal(noise_key, step.shape)
            updates.append(step)
            new_memory.append(mem)
        # OPEN's globally zero update: the mean over every parameter of every leaf is subtracted.
        mean = sum(u.sum() for u in updates) / sum(u.size for u in updates)
        updates = [(u - mean).reshape(g.shape).astype(g.dtype) for u, g in zip(updates, leaves)]
        memory = treedef.unflatten(new_memory) if kind == "gru" else None
        return treedef.unflatten(updates), LearnedState(treedef.unflatten(momenta), memory)

    return optax.GradientTransformationExtraArgs(init, update)


def _actor_mask(tree: Any) -> list[bool]:
    """Per leaf: whether it lies under a top-level ``"actor"`` key (the policy's weights). With
    no such key (a single network, a plain optax use) every leaf counts as the actor's."""
    paths = [path for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
    has_actor = any(path and getattr(path[0], "key", None) == "actor" for path in paths)
    return [not has_actor or getattr(path[0], "key", None) == "actor" for path in paths]


def check_weights(name: str, weights: Any) -> None:
    """``ConfigError`` unless ``weights`` have the shapes of ``name``'s network."""
    expected = jax.tree.map(jnp.shape, _template(KINDS[name][0]))
    try:
        given = jax.tree.map(np.shape, weights)
        fits = jax.tree.structure(given, is_leaf=_is_shape) == jax.tree.structure(expected, is_leaf=_is_shape) and all(
            # trailing axes: a sweep or a population checks a stack at once
            len(g) >= len(e) and g[len(g) - len(e):] == e
            for g, e in zip(jax.tree.leaves(given, is_leaf=_is_shape), jax.tree.leaves(expected, is_leaf=_is_shape)))
    except (TypeError, ValueError):
        given, fits = type(weights).__name__, False
    if not fits:
        raise ConfigError(f"optimizer_params do not fit the {name} optimizer (weights shaped for another network): "
                          f"it takes {_shapes(expected)}, got {_shapes(given)}")


def _is_shape(x: Any) -> bool:
    return isinstance(x, tuple)


def _shapes(tree: Any) -> str:
    if not isinstance(tree, dict):
        return str(tree)
    flat = jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_shape)[0]
    return ", ".join(f"{'/'.join(str(getattr(k, 'key', k)) for k in path)} {tuple(shape)}" for path, shape in flat)


for _name in KINDS:
    register_optimizer(
        _name,
        scheduled=False,
        default_params=lambda _name=_name: default_weights(_name),
        check_params=lambda weights, _name=_name: check_weights(_name, weights),
    )(lambda args, _name=_name: learned(args, _name))
