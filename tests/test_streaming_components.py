"""Tests of the pure pieces of streaming deep RL in ``jaxrl.components.streaming`` (Elsayed,
Vasan and Mahmood, 2024): the ObGD optimiser and its overshooting bound, sparse initialisation,
parameter-free LayerNorm, Welford's running statistics, reward scaling by the running standard
deviation of the discounted return, the time-step feature, and the initialisation of StreamNet.
Every expected value is computed by hand or independently in numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.components.streaming import (
    ObGDState,
    RewardScale,
    StreamNet,
    Welford,
    layer_norm,
    obgd,
    obgd_step_size,
    scale_reward,
    sparse_init,
    time_feature,
    welford_normalize,
    welford_update,
    welford_var,
    pairwise_sum,
)

# --------------------------------------------------------------------------------------------
# ObGD.  Shared hand case: gamma * lam = 0.8 * 0.5 = 0.4, previous trace a=[1,-2], b=[0.5],
# grads a=[0.1,0.2], b=[-0.3]  ->  z = a=[0.5,-0.6], b=[-0.1], ||z||_1 = 1.2.
PREV = {"a": np.array([1.0, -2.0], np.float32), "b": np.array([0.5], np.float32)}
GRADS = {"a": np.array([0.1, 0.2], np.float32), "b": np.array([-0.3], np.float32)}
Z = {"a": np.array([0.5, -0.6]), "b": np.array([-0.1])}


def _obgd_update(lr, kappa, delta, reset=False, prev=PREV):
    tx = obgd(lr=lr, gamma=0.8, lam=0.5, kappa=kappa)
    state = ObGDState(trace=jax.tree.map(jnp.asarray, prev))
    return tx.update(jax.tree.map(jnp.asarray, GRADS), state, delta=jnp.float32(delta), reset=reset)


def _close(tree, expected, rtol=1e-5, atol=1e-7):
    for k, v in expected.items():
        np.testing.assert_allclose(np.asarray(tree[k]), v, rtol=rtol, atol=atol)


def test_obgd_bound_inactive_hand_computed():
    # bound = 0.1 * 2 * 3 * 1.2 = 0.72 < 1 -> step = lr = 0.1; updates = 0.1 * 3 * z
    updates, state = _obgd_update(lr=0.1, kappa=2.0, delta=3.0)
    _close(updates, {"a": [0.15, -0.18], "b": [-0.03]})
    _close(state.trace, Z)
    np.testing.assert_allclose(obgd_step_size(0.1, 2.0, 3.0, 1.2), 0.1, rtol=1e-6)


def test_obgd_from_init_two_updates():
    tx = obgd(lr=0.1, gamma=0.8, lam=0.5, kappa=2.0)
    state = tx.init({"a": jnp.ones(2), "b": jnp.ones(1)})
    _close(state.trace, {"a": [0.0, 0.0], "b": [0.0]})
    # First step with grads = PREV: z = PREV, ||z||_1 = 3.5, bound = 0.1*2*1*3.5 = 0.7 -> step 0.1.
    up1, state = tx.update(jax.tree.map(jnp.asarray, PREV), state, delta=jnp.float32(0.5), reset=False)
    _close(up1, {"a": [0.05, -0.1], "b": [0.025]})
    up2, state = tx.update(jax.tree.map(jnp.asarray, GRADS), state, delta=jnp.float32(3.0), reset=False)
    _close(up2, {"a": [0.15, -0.18], "b": [-0.03]})
    _close(state.trace, Z)


def test_obgd_bound_active():
    # bound = 1 * 2 * 4 * 1.2 = 9.6 -> step = 1/9.6 < lr; updates = (1/9.6)(-4) z = -z / 2.4
    updates, _ = _obgd_update(lr=1.0, kappa=2.0, delta=-4.0)
    _close(updates, {"a": [-0.5 / 2.4, 0.6 / 2.4], "b": [0.1 / 2.4]})
    step = float(obgd_step_size(1.0, 2.0, -4.0, 1.2))
    np.testing.assert_allclose(step, 1.0 / 9.6, rtol=1e-6)
    assert step < 1.0
    # |delta| = 0.5 < 1 counts as 1: bound = 1 * 2 * 1 * 1.2 = 2.4, updates = 0.5 z / 2.4
    updates, _ = _obgd_update(lr=1.0, kappa=2.0, delta=0.5)
    _close(updates, {"a": [0.25 / 2.4, -0.3 / 2.4], "b": [-0.05 / 2.4]})
    np.testing.assert_allclose(obgd_step_size(1.0, 2.0, 0.5, 1.2), 1.0 / 2.4, rtol=1e-6)
    np.testing.assert_allclose(obgd_step_size(1.0, 2.0, -0.01, 1.2), 1.0 / 2.4, rtol=1e-6)


def test_obgd_kappa_zero_is_sgd_with_traces():
    updates, _ = _obgd_update(lr=1.0, kappa=0.0, delta=-4.0)  # would be bounded with kappa > 0
    _close(updates, {"a": [-2.0, 2.4], "b": [0.4]})
    np.testing.assert_allclose(obgd_step_size(0.3, 0.0, 100.0, 1e6), 0.3, rtol=1e-6)


def test_obgd_reset():
    up_reset, st_reset = _obgd_update(lr=0.1, kappa=2.0, delta=3.0, reset=True)
    up_keep, st_keep = _obgd_update(lr=0.1, kappa=2.0, delta=3.0, reset=jnp.array(False))
    _close(up_reset, {"a": [0.15, -0.18], "b": [-0.03]})  # this step's gradient still counts
    _close(up_keep, {"a": [0.15, -0.18], "b": [-0.03]})
    _close(st_reset.trace, {"a": [0.0, 0.0], "b": [0.0]}, atol=0)
    _close(st_keep.trace, Z)


@pytest.mark.parametrize("seed", range(5))
def test_obgd_does_not_overshoot_linear_prediction(seed):
    rng = np.random.default_rng(seed)
    n = 8
    x = (rng.uniform(0.6, 1.0, n) * rng.choice([-1.0, 1.0], n)).astype(np.float32)  # ||x||^2 > 2
    w = rng.normal(size=n).astype(np.float32)
    for target in (float(w @ x) + rng.uniform(0.2, 5.0), float(w @ x) - rng.uniform(0.2, 5.0)):
        delta = target - float(w @ x)

        def new_delta(kappa):
            tx = obgd(lr=1.0, gamma=0.99, lam=0.8, kappa=kappa)
            updates, _ = tx.update(jnp.asarray(x), tx.init(jnp.asarray(w)), delta=jnp.float32(delta), reset=False)
            return target - float((w + np.asarray(updates)) @ x)

        for kappa in (1.0, 2.0):
            d = new_delta(kappa)
            assert np.sign(d) == np.sign(delta) and abs(d) < abs(delta), (kappa, delta, d)
        d_sgd = new_delta(0.0)  # delta' = delta (1 - ||x||^2): sign flips
        np.testing.assert_allclose(d_sgd, delta * (1 - float(x @ x)), rtol=1e-4, atol=1e-5)
        assert np.sign(d_sgd) == -np.sign(delta)


def test_obgd_jit_vmap_traced_hyperparameters():
    deltas = jnp.array([3.0, -4.0, 0.5, 0.0], jnp.float32)
    lrs = jnp.array([0.1, 1.0, 1.0, 0.5], jnp.float32)
    kappas = jnp.array([2.0, 2.0, 2.0, 3.0], jnp.float32)

    @jax.jit
    @jax.vmap
    def run(lr, kappa, delta):
        tx = obgd(lr=lr, gamma=0.8, lam=0.5, kappa=kappa)
        state = ObGDState(trace=jax.tree.map(jnp.asarray, PREV))
        return tx.update(jax.tree.map(jnp.asarray, GRADS), state, delta=delta, reset=delta == 0.0)

    updates, state = run(lrs, kappas, deltas)
    coef = np.array([0.3, -4.0 / 9.6, 0.5 / 2.4, 0.0])  # step * delta, per row (hand-computed)
    _close(updates, {k: coef[:, None] * v[None] for k, v in Z.items()})
    _close(state.trace, {k: np.stack([v, v, v, 0 * v]) for k, v in Z.items()})


# --------------------------------------------------------------------------------------------
# Sparse initialisation.

# (shape, sparsity, expected zeros per output unit = ceil(sparsity * fan_in), by hand)
SPARSE_CASES = [
    ((10, 7), 0.9, 9), ((4, 3), 0.9, 4), ((128, 32), 0.9, 116), ((3, 3, 4, 16), 0.9, 33),
    ((10, 7), 0.5, 5), ((4, 3), 0.5, 2), ((128, 32), 0.5, 64), ((3, 3, 4, 16), 0.5, 18),
]


@pytest.mark.parametrize("shape,sparsity,zeros", SPARSE_CASES)
def test_sparse_init_exact_zeros_and_bounds(shape, sparsity, zeros):
    fan_in = int(np.prod(shape[:-1]))
    k1 = np.asarray(sparse_init(sparsity)(jax.random.key(0), shape))
    k2 = np.asarray(sparse_init(sparsity)(jax.random.key(1), shape))
    assert k1.shape == shape and k1.dtype == np.float32
    flat1, flat2 = k1.reshape(fan_in, shape[-1]), k2.reshape(fan_in, shape[-1])
    np.testing.assert_array_equal((flat1 == 0).sum(axis=0), zeros)
    np.testing.assert_array_equal((flat2 == 0).sum(axis=0), zeros)
    nonzero = flat1[flat1 != 0]
    assert np.all(np.abs(nonzero) <= 1.0 / np.sqrt(fan_in) + 1e-7)
    if zeros < fan_in:  # (4, 3) at 0.9 zeroes all 4 inputs: ceil(3.6) = 4, as the paper's formula
        assert np.any((flat1 == 0) != (flat2 == 0))  # different keys, different patterns


def test_sparse_init_patterns_differ_per_unit_and_dense_at_zero():
    mask = np.asarray(sparse_init(0.5)(jax.random.key(3), (128, 32))) == 0
    assert len({tuple(col) for col in mask.T}) > 1  # each unit draws its own inputs
    dense = np.asarray(sparse_init(0.0)(jax.random.key(3), (128, 32)))
    assert np.count_nonzero(dense == 0) == 0
    assert np.all(np.abs(dense) <= 1.0 / np.sqrt(128) + 1e-7)
    assert dense.std() > 0.5 / np.sqrt(3 * 128)  # U(-b, b) has std b / sqrt(3)


@pytest.mark.parametrize("sparsity", [1.0, 1.5, -0.1])
def test_sparse_init_rejects_bad_sparsity(sparsity):
    with pytest.raises(ValueError):
        sparse_init(sparsity)


# --------------------------------------------------------------------------------------------
# LayerNorm without parameters.


def test_layer_norm_matches_numpy():
    x = np.random.default_rng(0).normal(2.0, 3.0, (2, 5, 6, 3)).astype(np.float32)
    mean = x.mean(-1, keepdims=True)
    ref = (x - mean) / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(np.asarray(layer_norm(jnp.asarray(x))), ref, rtol=1e-4, atol=1e-5)
    axes = (-3, -2, -1)
    mean = x.mean(axes, keepdims=True)
    ref = (x - mean) / np.sqrt(x.var(axes, keepdims=True) + 1e-5)
    out = np.asarray(layer_norm(jnp.asarray(x), axes))
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out.reshape(2, -1).mean(1), 0.0, atol=1e-5)  # per sample
    # No learned parameters: a constant input maps to zeros, whatever its scale.
    np.testing.assert_array_equal(np.asarray(layer_norm(jnp.full((2, 4), 7.0))), 0.0)


# --------------------------------------------------------------------------------------------
# Welford's running statistics.


def test_welford_stream_matches_numpy():
    xs = np.random.default_rng(1).normal([1.0, -3.0, 10.0], [0.5, 2.0, 4.0], (200, 3)).astype(np.float32)
    update = jax.jit(welford_update)
    stats = Welford.zeros((3,))
    np.testing.assert_array_equal(np.asarray(welford_var(stats)), 1.0)
    for n in range(1, 201):
        stats = update(stats, jnp.asarray(xs[n - 1]))
        if n == 1:
            np.testing.assert_allclose(np.asarray(stats.mean), xs[0], rtol=1e-6)
            np.testing.assert_array_equal(np.asarray(welford_var(stats)), 1.0)
        if n in (2, 3, 10, 57, 200):
            assert int(stats.count) == n
            np.testing.assert_allclose(np.asarray(stats.mean), xs[:n].mean(0), rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(np.asarray(welford_var(stats)), np.var(xs[:n], axis=0, ddof=1), rtol=1e-4)
    skipped = update(stats, jnp.asarray([1e3, 1e3, 1e3]), False)
    for a, b in zip(jax.tree.leaves(skipped), jax.tree.leaves(stats)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    x = xs[5] + 1.0
    ref = (x - xs.mean(0)) / np.sqrt(np.var(xs, axis=0, ddof=1) + 1e-8)
    np.testing.assert_allclose(np.asarray(welford_normalize(stats, jnp.asarray(x))), ref, rtol=1e-4, atol=1e-5)
    fresh = Welford.zeros((3,))
    np.testing.assert_allclose(np.asarray(welford_normalize(fresh, jnp.asarray(x))), x / np.sqrt(1 + 1e-8), rtol=1e-6)


# --------------------------------------------------------------------------------------------
# Reward scaling.


def test_scale_reward_hand_stream():
    gamma = 0.9
    rewards = [1.0, 2.0, -1.0, 3.0, 0.5, -2.0]
    dones = [False, False, True, False, False, False]
    # By hand: u = 1, 0.9*1+2 = 2.9, 0.9*2.9-1 = 1.61 (done: the next u starts from 0), 3, 3.2, 0.88
    us = np.array([1.0, 2.9, 1.61, 3.0, 3.2, 0.88])
    scale = RewardScale.zeros()
    for i, (r, d) in enumerate(zip(rewards, dones)):
        scale, scaled = scale_reward(scale, jnp.float32(r), jnp.asarray(d), gamma)
        var = 1.0 if i == 0 else np.var(us[: i + 1], ddof=1)
        np.testing.assert_allclose(float(scaled), r / np.sqrt(var + 1e-8), rtol=1e-5, err_msg=f"step {i}")
        np.testing.assert_allclose(float(scale.trace), 0.0 if d else us[i], rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Time feature.


def test_time_feature_batch():
    obs = jnp.arange(12, dtype=jnp.float32).reshape(4, 3)
    out = np.asarray(time_feature(obs, jnp.array([0, 50, 100, 25]), 100))
    assert out.shape == (4, 4)
    np.testing.assert_array_equal(out[:, :3], np.asarray(obs))
    np.testing.assert_allclose(out[:, 3], [-0.5, 0.0, 0.5, -0.25], rtol=1e-6)
    out = np.asarray(time_feature(obs, 10, 40))  # a scalar step for the whole batch
    np.testing.assert_allclose(out[:, 3], -0.25, rtol=1e-6)


# --------------------------------------------------------------------------------------------
# StreamNet initialisation.


def _check_sparse_params(params, expected_kernels):
    kernels = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        name = jax.tree_util.keystr(path)
        leaf = np.asarray(leaf)
        if "bias" in name:
            np.testing.assert_array_equal(leaf, 0.0)
        else:
            kernels[name] = leaf
    assert sorted(k.shape for k in kernels.values()) == sorted(s for s, _ in expected_kernels)
    for shape, zeros in expected_kernels:
        for kernel in (k for k in kernels.values() if k.shape == shape):
            counts = (kernel.reshape(-1, shape[-1]) == 0).sum(0)
            np.testing.assert_array_equal(counts, zeros, err_msg=str(shape))


def test_streamnet_dense_init():
    net = StreamNet(outputs=3, sparsity=0.9)
    params = net.init(jax.random.key(0), jnp.zeros((5, 8)))
    # fan_in 8 -> ceil(7.2) = 8 zeros; fan_in 32 -> ceil(28.8) = 29
    _check_sparse_params(params, [((8, 32), 8), ((32, 32), 29), ((32, 3), 29)])
    assert net.apply(params, jnp.ones((5, 8))).shape == (5, 3)


def test_streamnet_conv_init_and_shape():
    net = StreamNet(outputs=6, conv=True, sparsity=0.9, obs_ndim=3)
    obs = jax.random.normal(jax.random.key(1), (1, 10, 10, 4))
    params = net.init(jax.random.key(0), obs)
    # conv fan_in 3*3*4 = 36 -> 33 zeros; flattened 8*8*16 = 1024 -> ceil(921.6) = 922
    _check_sparse_params(params, [((3, 3, 4, 16), 33), ((1024, 32), 922), ((32, 32), 29), ((32, 6), 29)])
    conv_kernels = [v for k, v in jax.tree_util.tree_leaves_with_path(params) if "Conv" in jax.tree_util.keystr(k) and v.ndim == 4]
    assert [k.shape for k in conv_kernels] == [(3, 3, 4, 16)]
    assert net.apply(params, obs).shape == (1, 6)


def test_pairwise_sum_sums_the_last_axis_for_any_length():
    rng = np.random.default_rng(0)
    for length in (1, 2, 5, 7, 32, 33):
        x = rng.normal(size=(3, length)).astype(np.float32)
        np.testing.assert_allclose(np.asarray(pairwise_sum(jnp.asarray(x))), x.sum(axis=-1), rtol=1e-5, atol=1e-5)
    # The fixed tree adds halves: (a + c) + (b + d). In float32 that is (1e8 - 1e8) + (1 + 1) = 2, where
    # adding left to right loses both ones to rounding (1e8 + 1 == 1e8) and gives 1.
    x = jnp.asarray([[1e8, 1.0, -1e8, 1.0]], jnp.float32)
    assert float(pairwise_sum(x)[0]) == 2.0
    assert float(((np.float32(1e8) + np.float32(1.0)) + np.float32(-1e8)) + np.float32(1.0)) == 1.0
