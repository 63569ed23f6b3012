"""Gaussian mixtures with full covariances, fitted by EM inside a compiled JAX program.

The ALP-GMM teacher (Portelas et al. 2019) refits a mixture for k = 2..10 every few episodes and keeps
the k with the lowest AIC. The reference does this with scikit-learn's
``GaussianMixture(covariance_type='full')``, which runs on the host in numpy; here the teacher is part of
the compiled training program (jit/vmap over runs, no host round trip), so the fit is written in JAX with
static shapes: a fit with k components is padded to ``max_components`` with inactive ones and ``k`` may be
traced. It follows scikit-learn's defaults (k-means initialisation, ``tol=1e-3``, ``reg_covar=1e-6``,
``max_iter=100``) in float32; tests/test_gmm.py checks it against scikit-learn.
"""

import math

import jax
import jax.numpy as jnp
from flax import struct
from jax.scipy.linalg import solve_triangular

_EPS = 10 * float(jnp.finfo(jnp.float32).eps)  # added to the component counts, as scikit-learn does


@struct.dataclass
class Mixture:
    weights: jax.Array  # [K] mixing weights, 0 for inactive components
    means: jax.Array  # [K, D]
    covariances: jax.Array  # [K, D, D]
    active: jax.Array  # [K] bool: the components in use (a fit with k < K pads with inactive ones)


def empty_mixture(max_components: int, dim: int) -> Mixture:
    """A mixture with no active component: zero weights and means, identity covariances."""
    return Mixture(weights=jnp.zeros(max_components), means=jnp.zeros((max_components, dim)),
                   covariances=jnp.tile(jnp.eye(dim), (max_components, 1, 1)),
                   active=jnp.zeros(max_components, bool))


def _m_step(x: jax.Array, resp: jax.Array, active: jax.Array, reg_covar: float) -> Mixture:
    """Weights, means and covariances from responsibilities ``resp`` [N, K] (scikit-learn's M-step)."""
    resp = jnp.where(active, resp, 0.0)
    nk = resp.sum(0) + _EPS
    means = resp.T @ x / nk[:, None]
    diff = x[None] - means[:, None]  # [K, N, D]
    cov = jnp.einsum("nk,knd,kne->kde", resp, diff, diff) / nk[:, None, None]
    eye = jnp.eye(x.shape[1])
    cov = 0.5 * (cov + jnp.swapaxes(cov, 1, 2)) + reg_covar * eye
    weights = jnp.where(active, nk, 0.0)
    return Mixture(weights=weights / weights.sum(), means=jnp.where(active[:, None], means, 0.0),
                   covariances=jnp.where(active[:, None, None], cov, eye), active=active)


def _weighted_log_prob(mixture: Mixture, x: jax.Array) -> jax.Array:
    """log w_k + log N(x_n | mu_k, Sigma_k) as [N, K]; -inf for inactive components."""
    chol = jnp.linalg.cholesky(mixture.covariances)  # [K, D, D]
    diff = x[None] - mixture.means[:, None]  # [K, N, D]
    z = jax.vmap(lambda c, d: solve_triangular(c, d.T, lower=True))(chol, diff)  # [K, D, N]
    log_det = jnp.log(jnp.diagonal(chol, axis1=1, axis2=2)).sum(-1)  # half the log-determinant
    log_gauss = -0.5 * (x.shape[1] * math.log(2 * math.pi) + (z**2).sum(1)) - log_det[:, None]
    log_w = jnp.where(mixture.active, jnp.log(jnp.where(mixture.active, mixture.weights, 1.0)), -jnp.inf)
    return (log_gauss + log_w[:, None]).T


def log_likelihood(mixture: Mixture, x: jax.Array) -> jax.Array:
    """log p(x_n) under the mixture, [N]."""
    return jax.nn.logsumexp(_weighted_log_prob(mixture, x), axis=1)


def kmeans_init(key: jax.Array, x: jax.Array, k, max_components: int, iterations: int = 10,
                reg_covar: float = 1e-6) -> Mixture:
    """scikit-learn's ``init_params='kmeans'``: greedy k-means++ seeding, ``iterations`` Lloyd steps (a fixed
    number; scikit-learn's KMeans runs to convergence), then the M-step on the hard (one-hot) k-means labels.
    ``k`` may be traced: components k..K-1 are inactive, so one compiled function serves every k."""
    n = x.shape[0]
    active = jnp.arange(max_components) < k

    def sq_dist(centers):  # [N, K], inf to inactive centers
        d = ((x[:, None] - centers[None]) ** 2).sum(-1)
        return jnp.where(active, d, jnp.inf)

    # Greedy k-means++ (scikit-learn's): each new center is the best, by the resulting inertia, of
    # 2 + floor(log k) candidates drawn with probability proportional to the squared distance D^2.
    n_trials = 2 + int(math.log(max_components))
    trials = 2 + jnp.floor(jnp.log(jnp.asarray(k, jnp.float32))).astype(jnp.int32)

    def seed(j, carry):
        centers, closest, key = carry
        key, draw = jax.random.split(key)
        cand = jax.random.categorical(draw, jnp.log(jnp.maximum(closest, 1e-30)), shape=(n_trials,))
        dist = jnp.minimum(closest, ((x[cand][:, None] - x[None]) ** 2).sum(-1))  # [trials, N]
        best = jnp.argmin(jnp.where(jnp.arange(n_trials) < trials, dist.sum(1), jnp.inf))
        keep = j < k
        return (jnp.where(keep, centers.at[j].set(x[cand[best]]), centers),
                jnp.where(keep, dist[best], closest), key)

    first, key = jax.random.split(key)
    x0 = x[jax.random.randint(first, (), 0, n)]
    centers = jnp.zeros((max_components, x.shape[1]), x.dtype).at[0].set(x0)
    carry = (centers, ((x - x0) ** 2).sum(-1), key)
    centers, _, _ = jax.lax.fori_loop(1, max_components, seed, carry)

    def lloyd(_, centers):
        onehot = jax.nn.one_hot(sq_dist(centers).argmin(1), max_components)
        counts = onehot.sum(0)
        new = onehot.T @ x / jnp.maximum(counts, 1.0)[:, None]
        return jnp.where((counts > 0)[:, None], new, centers)  # an empty cluster keeps its center

    centers = jax.lax.fori_loop(0, iterations, lloyd, centers)
    labels = sq_dist(centers).argmin(1)
    return _m_step(x, jax.nn.one_hot(labels, max_components), active, reg_covar)


def em(x: jax.Array, init: Mixture, *, max_iter: int = 100, tol: float = 1e-3,
       reg_covar: float = 1e-6) -> tuple[Mixture, jax.Array, jax.Array]:
    """EM from ``init`` as scikit-learn runs it: each iteration an E-step then an M-step, stopping once the
    mean log-likelihood per sample (the E-step's, so of the parameters before that M-step) changes by less
    than ``tol``, or after ``max_iter`` iterations.

    Returns the mixture after the last M-step, the last lower bound (scikit-learn's ``lower_bound_``) and
    the number of iterations (``n_iter_``).
    """

    def body(carry):
        mixture, lower_bound, _, n_iter = carry
        log_prob = _weighted_log_prob(mixture, x)
        log_norm = jax.nn.logsumexp(log_prob, axis=1)
        resp = jnp.exp(log_prob - log_norm[:, None])
        new_bound = log_norm.mean()
        converged = jnp.abs(new_bound - lower_bound) < tol
        return _m_step(x, resp, mixture.active, reg_covar), new_bound, converged, n_iter + 1

    def cond(carry):
        return (carry[3] < max_iter) & ~carry[2]

    start = (init, jnp.array(-jnp.inf, jnp.float32), jnp.array(False), jnp.array(0, jnp.int32))
    mixture, lower_bound, _, n_iter = jax.lax.while_loop(cond, body, start)
    return mixture, lower_bound, n_iter


def num_parameters(k, dim: int):
    """Free parameters of a k-component full-covariance mixture in ``dim`` dimensions (scikit-learn's
    ``_n_parameters``); ``k`` may be an int or an integer array."""
    return k * dim * (dim + 1) // 2 + k * dim + k - 1


def aic(mixture: Mixture, x: jax.Array) -> jax.Array:
    """Akaike information criterion of the mixture on ``x``, counting its active components."""
    k = mixture.active.sum()
    return -2 * log_likelihood(mixture, x).sum() + 2 * num_parameters(k, x.shape[1])


def fit_best(key: jax.Array, x: jax.Array, *, min_components: int = 2, max_components: int = 10,
             max_iter: int = 100, tol: float = 1e-3, reg_covar: float = 1e-6) -> tuple[Mixture, jax.Array]:
    """Fit every k in [min_components, max_components] (k-means init with its own key, then EM, all
    vmapped over k) and return the lowest-AIC mixture, padded to ``max_components``, and its k."""
    ks = jnp.arange(min_components, max_components + 1)
    keys = jax.random.split(key, len(ks))

    def fit(key, k):
        init = kmeans_init(key, x, k, max_components, reg_covar=reg_covar)
        mixture, _, _ = em(x, init, max_iter=max_iter, tol=tol, reg_covar=reg_covar)
        return mixture, aic(mixture, x)

    mixtures, aics = jax.vmap(fit)(keys, ks)
    best = jnp.argmin(jnp.where(jnp.isnan(aics), jnp.inf, aics))  # a fit that broke down is never chosen
    return jax.tree.map(lambda a: a[best], mixtures), ks[best]
