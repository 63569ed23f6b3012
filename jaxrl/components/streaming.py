"""The pieces of streaming deep RL (Elsayed, Vasan and Mahmood, 2024, "Streaming Deep
Reinforcement Learning Finally Works"), each a pure function: the overshooting-bounded step
(ObGD) with eligibility traces, sparse initialisation, LayerNorm without learned parameters,
observation normalisation by Welford's running estimate, reward scaling by the running standard
deviation of the discounted return, and the time-step feature of truncated tasks.

They are what makes learning from one transition at a time, with no replay, no batches and no
target network, stable; ``jaxrl.algorithms.stream_q`` and ``stream_ac`` are built from them,
and any other agent may use them (see the README's streaming section).

Example (TD(lambda) on a value network, one transition)::

    tx = obgd(lr=1.0, gamma=0.99, lam=0.8, kappa=2.0)
    opt_state = tx.init(params)
    v, grads = jax.value_and_grad(value_fn)(params, obs)      # gradients of the prediction
    delta = reward + 0.99 * (1 - terminated) * value_fn(params, next_obs) - v
    updates, opt_state = tx.update(grads, opt_state, delta=delta, reset=done)
    params = optax.apply_updates(params, updates)
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

__all__ = [
    "ObGDState",
    "RewardScale",
    "StreamNet",
    "Welford",
    "layer_norm",
    "obgd",
    "obgd_step_size",
    "pairwise_sum",
    "scale_reward",
    "sparse_init",
    "time_feature",
    "welford_normalize",
    "welford_update",
    "welford_var",
]


# --------------------------------------------------------------------------------------------
# ObGD: eligibility traces and the overshooting-bounded step size (the paper's Algorithm 3).


class ObGDState(NamedTuple):
    trace: Any  # eligibility traces, shaped like the parameters


def obgd_step_size(lr: jax.Array, kappa: jax.Array, delta: jax.Array, trace_l1: jax.Array) -> jax.Array:
    """alpha / max(alpha kappa max(|delta|, 1) ||z||_1, 1): the step that cannot overshoot the
    TD target (for kappa >= 1 on a linear prediction). kappa = 0 turns the bound off, which
    leaves plain stochastic gradient descent with traces (the paper's "stream barrier")."""
    bound = lr * kappa * jnp.maximum(jnp.abs(delta), 1.0) * trace_l1
    return lr / jnp.maximum(bound, 1.0)


def pairwise_sum(x: jax.Array) -> jax.Array:
    """The sum over the last axis as a fixed tree of elementwise additions of halves.

    XLA's CPU backend emits a reduction (and a dot product whose result is one number, which it
    turns into a reduction) differently for an array and for the same array with a vmapped axis
    added, and their partial sums round differently; elementwise additions are the same whatever
    the batch. Used wherever a streaming learner sums to one number, it makes a learner in a
    vmapped population equal the learner run alone, bit for bit (tested)."""
    while x.shape[-1] > 1:
        half = x.shape[-1] // 2
        paired = x[..., :half] + x[..., half : 2 * half]
        x = jnp.concatenate([paired, x[..., 2 * half :]], axis=-1) if x.shape[-1] % 2 else paired
    return x[..., 0]


def obgd(lr: Any, gamma: Any, lam: Any, kappa: Any) -> optax.GradientTransformationExtraArgs:
    """ObGD as an optax transformation whose ``update`` takes the TD error ``delta`` and ``reset``
    (end the traces after this step: an episode ended, or Q(lambda) took an exploratory action).

    ``grads`` are the gradients of the prediction (a value, or a log-probability), not of a loss:
    z <- gamma lambda z + grads; the returned updates are step_size x delta x z, to be added
    (``optax.apply_updates``). The traces of every parameter share one step size, computed from
    their joint L1 norm. All arguments may be traced (hyperparameters of a vmapped sweep)."""

    def init(params: Any) -> ObGDState:
        return ObGDState(jax.tree.map(jnp.zeros_like, params))

    def update(grads: Any, state: ObGDState, params: Any = None, *, delta: jax.Array, reset: jax.Array, **extra: Any):
        del params, extra
        trace = jax.tree.map(lambda z, g: gamma * lam * z + g, state.trace, grads)
        trace_l1 = sum(pairwise_sum(jnp.abs(z).reshape(-1)) for z in jax.tree.leaves(trace))
        step = obgd_step_size(lr, kappa, delta, trace_l1)
        updates = jax.tree.map(lambda z: (step * delta * z).astype(z.dtype), trace)
        trace = jax.tree.map(lambda z: jnp.where(reset, jnp.zeros_like(z), z), trace)
        return updates, ObGDState(trace)

    return optax.GradientTransformationExtraArgs(init, update)


# --------------------------------------------------------------------------------------------
# Sparse initialisation and LayerNorm without learned parameters (the paper's network).


def sparse_init(sparsity: float = 0.9):
    """A flax kernel initialiser: LeCun-uniform weights U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
    exactly ceil(sparsity x fan_in) of each output unit's inputs set to zero, chosen at random
    per unit. Dense kernels are [fan_in, out], convolution kernels [..., in, out] with fan_in the
    product of all but the last axis."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")

    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        fan_in = math.prod(shape[:-1])
        num_zeros = math.ceil(sparsity * fan_in)
        weight_key, mask_key = jax.random.split(key)
        bound = 1.0 / math.sqrt(fan_in)
        weights = jax.random.uniform(weight_key, (fan_in, shape[-1]), dtype, -bound, bound)
        # The ranks of i.i.d. uniforms are a uniformly random permutation of each unit's inputs:
        # the inputs ranked below num_zeros are dropped, exactly num_zeros of them.
        ranks = jnp.argsort(jnp.argsort(jax.random.uniform(mask_key, (fan_in, shape[-1])), axis=0), axis=0)
        return jnp.where(ranks < num_zeros, jnp.zeros((), dtype), weights).reshape(shape)

    return init


def layer_norm(x: jax.Array, axes: tuple[int, ...] = (-1,), eps: float = 1e-5) -> jax.Array:
    """(x - mean) / sqrt(var + eps) over ``axes``: LayerNorm with no learned scale or shift (for a
    convolution's output, over its height, width and channels together, as the paper does)."""
    axes = sorted(a % x.ndim for a in axes)
    kept = [a for a in range(x.ndim) if a not in axes]
    count = math.prod(x.shape[a] for a in axes)

    def mean(y):  # over ``axes``, keeping them (see pairwise_sum)
        flat = jnp.transpose(y, kept + axes).reshape(tuple(y.shape[a] for a in kept) + (count,))
        total = pairwise_sum(flat) * (1.0 / count)
        return jnp.expand_dims(total, axes)

    centred = x - mean(x)
    return centred * jax.lax.rsqrt(mean(jnp.square(centred)) + eps)


class StreamNet(nn.Module):
    """The paper's network: for image observations [..., H, W, C] one 3x3 convolution of 16
    channels (no padding), then dense layers of ``hidden_sizes``; every hidden layer is followed
    by ``layer_norm`` (over all of its units) and a leaky ReLU. Every weight is sparsely
    initialised (``sparsity`` 0 gives dense LeCun-uniform weights), every bias is zero.
    ``obs_ndim`` is the number of trailing observation axes (leading ones are batch axes)."""

    outputs: int
    hidden_sizes: tuple[int, ...] = (32, 32)
    conv: bool = False
    sparsity: float = 0.9
    normalize: bool = True  # the LayerNorm; False for the "stream barrier" comparison
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        kernel_init, zeros = sparse_init(self.sparsity), nn.initializers.zeros
        batch_shape = obs.shape[: obs.ndim - self.obs_ndim]
        x = obs
        if self.conv:
            x = nn.Conv(16, kernel_size=(3, 3), padding="VALID", kernel_init=kernel_init, bias_init=zeros)(x)
            x = nn.leaky_relu(layer_norm(x, (-3, -2, -1)) if self.normalize else x)
        x = x.reshape(batch_shape + (-1,))
        for size in self.hidden_sizes:
            x = nn.Dense(size, kernel_init=kernel_init, bias_init=zeros)(x)
            x = nn.leaky_relu(layer_norm(x) if self.normalize else x)
        if self.outputs > 1:
            return nn.Dense(self.outputs, kernel_init=kernel_init, bias_init=zeros)(x)
        # One output: a dot product XLA would turn into a reduction (see pairwise_sum).
        kernel = self.param("kernel", kernel_init, (x.shape[-1], 1))
        return pairwise_sum(x * kernel[:, 0])[..., None] + self.param("bias", zeros, (1,))



# --------------------------------------------------------------------------------------------
# Normalisation of observations and rewards, one sample at a time.
#
# The kit's ``envs.RunningMeanStd`` merges whole batches shared by many environment copies and
# starts from a small prior count; a streaming learner needs the paper's exact per-sample
# estimator instead (the first sample is the mean, the sample variance, and a variance of 1
# until there are two samples), one per learner. So this is a second, small estimator.


@struct.dataclass
class Welford:
    """Welford's running mean and sum of squared deviations (``m2``) of a stream."""

    mean: jax.Array
    m2: jax.Array
    count: jax.Array  # int32

    @classmethod
    def zeros(cls, shape: tuple[int, ...] = ()) -> "Welford":
        return cls(jnp.zeros(shape, jnp.float32), jnp.zeros(shape, jnp.float32), jnp.zeros((), jnp.int32))


def welford_update(stats: Welford, x: jax.Array, weight: jax.Array | bool = True) -> Welford:
    """``stats`` after one more sample ``x``; unchanged where ``weight`` is False (a traced
    condition, so an update can be skipped without a branch)."""
    weight = jnp.asarray(weight)
    count = stats.count + weight.astype(jnp.int32)
    delta = x - stats.mean
    # Multiplications by reciprocals, not divisions: under ``vmap`` the count is shared by every
    # learner, and XLA rewrites a division by a shared scalar into this multiplication, which
    # rounds differently; written so here, a learner computes the same bits alone or vmapped.
    mean = stats.mean + jnp.where(weight, delta * (1.0 / jnp.maximum(count, 1).astype(jnp.float32)), 0.0)
    m2 = stats.m2 + jnp.where(weight, delta * (x - mean), 0.0)
    return Welford(mean, m2, count)


def welford_var(stats: Welford) -> jax.Array:
    """The sample variance m2 / (n - 1); 1 until there are two samples."""
    return jnp.where(stats.count < 2, jnp.ones_like(stats.m2), stats.m2 * (1.0 / jnp.maximum(stats.count - 1, 1).astype(jnp.float32)))


def welford_normalize(stats: Welford, x: jax.Array, eps: float = 1e-8) -> jax.Array:
    return (x - stats.mean) / jnp.sqrt(welford_var(stats) + eps)


@struct.dataclass
class RewardScale:
    """The discounted return so far (``trace``) and Welford's statistics of it."""

    trace: jax.Array
    stats: Welford

    @classmethod
    def zeros(cls) -> "RewardScale":
        return cls(jnp.zeros((), jnp.float32), Welford.zeros())


def scale_reward(scale: RewardScale, reward: jax.Array, done: jax.Array, gamma: jax.Array) -> tuple[RewardScale, jax.Array]:
    """The reward divided by the running standard deviation of the discounted return u <- gamma u
    + r (statistics updated with this step's u first). u restarts after an episode ends
    (terminated or truncated); the paper's code restarts it one reward earlier, which leaves an
    episode's last reward out of its own return, so here the last reward counts."""
    trace = gamma * scale.trace + reward
    stats = welford_update(scale.stats, trace)
    scaled = reward / jnp.sqrt(welford_var(stats) + 1e-8)
    return RewardScale(jnp.where(done, 0.0, trace), stats), scaled


def time_feature(obs: jax.Array, t: jax.Array, limit: jax.Array) -> jax.Array:
    """``obs`` [..., d] with -0.5 + t / limit appended: the episode's time step, which makes a
    time-limited task Markov (the paper adds it on classic control and MuJoCo)."""
    feature = -0.5 + jnp.asarray(t, jnp.float32) * (1.0 / jnp.asarray(limit, jnp.float32))  # see welford_update
    return jnp.concatenate([obs, jnp.broadcast_to(feature, obs.shape[:-1])[..., None].astype(obs.dtype)], axis=-1)
