"""The JAX Gaussian mixture (jaxrl/curricula/gmm.py) against scikit-learn's GaussianMixture started from
the same initialisation, plus model selection, sampling, padding and batching."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.mixture import GaussianMixture

from jaxrl.curricula import gmm

K_MAX = 10


def _clusters(seed, centers=((0, 0, 0), (4, 4, 0), (0, 4, 4)), scale=0.5, sizes=(100, 90, 60)):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(c, scale, size=(n, 3)) for c, n in zip(centers, sizes)])


def _sklearn_from(init: gmm.Mixture, x: np.ndarray) -> GaussianMixture:
    """scikit-learn's default full-covariance fit (float64) started from our initialisation."""
    k = int(init.active.sum())
    weights = np.asarray(init.weights[:k], np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning for a fit that needs all 100 iterations
        return GaussianMixture(
            k, covariance_type="full", weights_init=weights / weights.sum(),
            means_init=np.asarray(init.means[:k], np.float64),
            precisions_init=np.linalg.inv(np.asarray(init.covariances[:k], np.float64)),
            max_iter=100, tol=1e-3, reg_covar=1e-6).fit(x)


@jax.jit
def _aic_curve(key, x):
    """Our AIC for k = 2..K_MAX with the keys fit_best uses, and the inits."""
    def fit(key, k):
        init = gmm.kmeans_init(key, x, k, K_MAX)
        mixture, _, _ = gmm.em(x, init)
        return gmm.aic(mixture, x), init

    return jax.vmap(fit)(jax.random.split(key, K_MAX - 1), jnp.arange(2, K_MAX + 1))


def test_em_matches_sklearn_from_the_same_init():
    x = _clusters(0, centers=((0, 0, 0), (3, 3, 0), (0, 3, 3)), scale=(0.5, 0.3, 0.7))
    xj = jnp.asarray(x, jnp.float32)
    init = jax.jit(gmm.kmeans_init, static_argnums=(2, 3))(jax.random.key(1), xj, 3, 3)
    mixture, lower_bound, n_iter = jax.jit(gmm.em)(xj, init)
    ref = _sklearn_from(init, x)
    assert int(n_iter) == ref.n_iter_
    np.testing.assert_allclose(mixture.weights, ref.weights_, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(mixture.means, ref.means_, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(mixture.covariances, ref.covariances_, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(lower_bound, ref.lower_bound_, rtol=1e-5)
    np.testing.assert_allclose(gmm.log_likelihood(mixture, xj).mean(), ref.score(x), rtol=1e-5)
    np.testing.assert_allclose(gmm.aic(mixture, xj), ref.aic(x), rtol=1e-5)
    np.testing.assert_allclose(gmm.log_likelihood(mixture, xj), ref.score_samples(x), rtol=1e-4, atol=1e-4)


def test_fit_best_picks_the_aic_minimum_sklearn_finds_from_the_same_inits():
    x = _clusters(1)
    xj = jnp.asarray(x, jnp.float32)
    key = jax.random.key(0)
    ours, inits = _aic_curve(key, xj)
    theirs = [_sklearn_from(jax.tree.map(lambda a: a[i], inits), x).aic(x) for i in range(K_MAX - 1)]
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    mixture, k = jax.jit(gmm.fit_best)(key, xj)
    assert int(k) == int(np.argmin(theirs)) + 2 == 3
    assert int(mixture.active.sum()) == 3 and mixture.weights.shape == (K_MAX,)
    np.testing.assert_allclose(gmm.aic(mixture, xj), min(theirs), rtol=1e-4)


@pytest.mark.parametrize("k, dim", [(1, 1), (2, 3), (5, 2), (10, 4)])
def test_num_parameters_matches_sklearn(k, dim):
    ref = GaussianMixture(k, covariance_type="full")
    ref.means_ = np.zeros((k, dim))
    assert gmm.num_parameters(k, dim) == ref._n_parameters()
    assert int(gmm.num_parameters(jnp.asarray(k), dim)) == ref._n_parameters()


def test_padding_and_empty_components_stay_finite():
    empty = gmm.empty_mixture(K_MAX, 3)
    assert not empty.active.any() and float(empty.weights.sum()) == 0.0
    np.testing.assert_array_equal(empty.covariances, np.tile(np.eye(3), (K_MAX, 1, 1)))

    xj = jnp.asarray(_clusters(2), jnp.float32)
    init = gmm.kmeans_init(jax.random.key(0), xj, jnp.asarray(2), K_MAX)  # a traced-style k
    mixture, lower_bound, _ = jax.jit(gmm.em)(xj, init)
    np.testing.assert_array_equal(mixture.active, [True, True] + [False] * (K_MAX - 2))
    np.testing.assert_allclose(mixture.weights.sum(), 1.0, rtol=1e-6)
    assert (mixture.weights[2:] == 0).all()
    assert all(np.isfinite(a).all() for a in jax.tree.leaves(mixture)) and np.isfinite(lower_bound)

    # A component started far from every point gets no responsibility: tiny weight, finite parameters.
    weights = init.weights.at[2].set(0.2)
    far = init.replace(weights=weights / weights.sum(), means=init.means.at[2].set(1e3),
                       active=init.active.at[2].set(True))
    mixture, lower_bound, _ = gmm.em(xj, far)
    assert float(mixture.weights[2]) < 1e-6 and int(mixture.active.sum()) == 3
    assert all(np.isfinite(a).all() for a in jax.tree.leaves(mixture)) and np.isfinite(lower_bound)

    # Four distinct points and ten clusters: k-means leaves clusters empty; no NaN anywhere.
    dup = jnp.asarray(np.repeat(np.eye(4, 3), 60, axis=0), jnp.float32)
    mixture, k = jax.jit(gmm.fit_best)(jax.random.key(3), dup)
    assert 2 <= int(k) <= K_MAX and np.isfinite(gmm.aic(mixture, dup))
    assert all(np.isfinite(a).all() for a in jax.tree.leaves(mixture))


def test_jit_vmap_over_datasets_matches_unbatched():
    xs = jnp.asarray(np.stack([_clusters(s) for s in (1, 4, 5)]), jnp.float32)
    keys = jax.random.split(jax.random.key(7), 3)
    fit = jax.jit(gmm.fit_best)
    batched, ks = jax.jit(jax.vmap(gmm.fit_best))(keys, xs)
    for i in range(3):
        single, k = fit(keys[i], xs[i])
        assert int(ks[i]) == int(k)
        for a, b in zip(jax.tree.leaves(single), jax.tree.leaves(batched)):
            np.testing.assert_allclose(a, b[i], rtol=1e-3, atol=1e-4)
