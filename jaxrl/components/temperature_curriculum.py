"""A self-paced curriculum over an adversary's entropy temperature, as in QARL: "Robust Adversarial
Reinforcement Learning via Bounded Rationality Curricula" (Reddi et al., ICLR 2024).

The adversary is a SAC agent whose temperature tau is drawn per episode from Gamma(k, beta), with
concentration k and a fixed rate beta (reference: beta = 1000, k = 50 at first, so E[tau] = 0.05,
annealed toward the target Gamma(1, 1000), E[tau] = 0.001: a more and more rational adversary).
Every time ``num_samples`` pairs (tau_i, J_i) are held, J_i the protagonist's discounted return of
the episode played at tau_i, k is updated by

    min_k  KL(Gamma(k, beta) || Gamma(k_target, beta_target))
    s.t.   KL(Gamma(k, beta) || Gamma(k_old, beta)) <= epsilon                    (trust region)
           mean_i[p_k(tau_i) / p_k_old(tau_i) * J_i] >= xi                         (performance)
           k >= k_min,

and not at all when the plain mean return mean_i J_i is below xi.

The reference solves this with scipy's trust-constr; here it runs inside a compiled program. The
problem is one-dimensional, so it is solved by enumeration: the trust region's endpoints
[k_lo, k_hi] come from bisection (KL(Gamma(k) || Gamma(k_old)) has derivative (k - k_old) psi'(k),
so it is monotone on each side of k_old), then a geometric grid of G candidates over [k_lo, k_hi]
plus k_old and k_target is filtered for feasibility and the best one kept, and a second grid of G
points around it refines the answer. Unlike an iterative constrained solver this is exact to the
grid's resolution (about (range / G)^2 after the refinement), cannot fail to converge or return an
infeasible point (k_old is feasible whenever mean_i J_i >= xi, the only case an update happens),
needs no gradients, costs a fixed amount of work, and traces, jits and vmaps like any array code.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from jax.scipy.special import digamma, gammaln, xlogy

__all__ = [
    "CurriculumState",
    "add_episodes",
    "annealed_temperature",
    "gamma_kl",
    "gamma_log_prob",
    "init_curriculum",
    "self_paced_update",
]

MIN_CONCENTRATION = 1e-3
# The trust region's upper end is searched up to this multiple of k_old; KL(Gamma(k)||Gamma(k_old))
# grows without bound in k, so any bound epsilon of interest is crossed long before.
UPPER_FACTOR = 1e4
BISECTION_STEPS = 40  # halves a log-range of ln(1e4) ~ 9 to below f32 resolution
# Candidates whose KL exceeds the bound by less than f32 rounding of the closed form stay feasible,
# so the bisected endpoints (KL = epsilon up to rounding) are not thrown out.
KL_SLACK = 1e-6


def gamma_log_prob(x: jax.Array, concentration: jax.Array, rate: jax.Array) -> jax.Array:
    """log density of Gamma(concentration, rate) (rate = 1 / scale) at x > 0."""
    # xlogy keeps x = 0 with concentration 1 (the exponential) finite, where (k-1) log x is 0 * -inf.
    return concentration * jnp.log(rate) + xlogy(concentration - 1.0, x) - rate * x - gammaln(concentration)


def gamma_kl(k_p: jax.Array, rate_p: jax.Array, k_q: jax.Array, rate_q: jax.Array) -> jax.Array:
    """KL(Gamma(k_p, rate_p) || Gamma(k_q, rate_q)) in closed form."""
    return (
        (k_p - k_q) * digamma(k_p)
        - gammaln(k_p)
        + gammaln(k_q)
        + k_q * (jnp.log(rate_p) - jnp.log(rate_q))
        + k_p * (rate_q - rate_p) / rate_p
    )


@struct.dataclass
class CurriculumState:
    """Gamma(concentration, rate) over the temperature, and the (tau, J) pairs gathered since the
    last update: entries [0, count) of ``temperatures`` and ``returns`` are valid, the rest stale."""

    concentration: jax.Array  # f32 scalar
    rate: jax.Array  # f32 scalar, fixed
    temperatures: jax.Array  # [N] f32
    returns: jax.Array  # [N] f32
    count: jax.Array  # int32 scalar, 0..N
    updates: jax.Array  # int32 scalar, full buffers consumed so far


def init_curriculum(concentration: float, rate: float, num_samples: int) -> CurriculumState:
    """An empty buffer of ``num_samples`` pairs and the initial Gamma(concentration, rate)."""
    return CurriculumState(
        concentration=jnp.asarray(concentration, jnp.float32),
        rate=jnp.asarray(rate, jnp.float32),
        temperatures=jnp.zeros((num_samples,), jnp.float32),
        returns=jnp.zeros((num_samples,), jnp.float32),
        count=jnp.zeros((), jnp.int32),
        updates=jnp.zeros((), jnp.int32),
    )


def add_episodes(state: CurriculumState, temperatures: jax.Array, returns: jax.Array, ended: jax.Array) -> CurriculumState:
    """Appends the pairs [M] whose ``ended`` is True, in order, at positions count, count + 1, ...

    Pairs that do not fit (the buffer holds N) are dropped, not kept for the next round: the
    update consumes exactly N pairs, and the following episodes are played at the new temperature
    distribution anyway, which is what the importance weights of the next update assume."""
    capacity = state.temperatures.shape[0]
    ended = jnp.asarray(ended, bool)
    position = state.count + jnp.cumsum(ended.astype(jnp.int32)) - 1
    # Entries that did not end are sent out of range too, so mode="drop" discards them with the overflow.
    position = jnp.where(ended, position, capacity)
    return state.replace(
        temperatures=state.temperatures.at[position].set(jnp.asarray(temperatures, jnp.float32), mode="drop"),
        returns=state.returns.at[position].set(jnp.asarray(returns, jnp.float32), mode="drop"),
        count=jnp.minimum(state.count + jnp.sum(ended, dtype=jnp.int32), capacity),
    )


def _log_ratio(k: jax.Array, k_old: jax.Array, rate: jax.Array, tau: jax.Array) -> jax.Array:
    """log p_k(tau) - log p_k_old(tau) for one rate. Written out so the large, equal terms
    k log(rate) and rate * tau cancel exactly instead of through f32 rounding."""
    # tau from a Gamma sample with small k can underflow to 0, where both densities' log x terms
    # are infinite; the smallest normal float keeps the ratio finite.
    tau = jnp.maximum(tau, jnp.finfo(jnp.float32).tiny)
    return (k - k_old) * jnp.log(rate * tau) - (gammaln(k) - gammaln(k_old))


def _bisect_log(kl_at, inside: jax.Array, outside: jax.Array, bound: jax.Array) -> jax.Array:
    """The point between ``inside`` (kl_at <= bound) and ``outside`` where kl_at crosses ``bound``,
    bisected in log k (k spans orders of magnitude); ``outside`` itself when kl_at(outside) <= bound.
    Returns the end known to satisfy the bound."""

    def step(_, ends):
        lo, hi = ends  # lo: log k inside, hi: log k outside
        mid = 0.5 * (lo + hi)
        ok = kl_at(jnp.exp(mid)) <= bound
        return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid)

    inside_log, _ = jax.lax.fori_loop(0, BISECTION_STEPS, step, (jnp.log(inside), jnp.log(outside)))
    return jnp.where(kl_at(outside) <= bound, outside, jnp.exp(inside_log))


def self_paced_update(
    state: CurriculumState,
    target_concentration: jax.Array,
    target_rate: jax.Array,
    kl_bound: jax.Array,
    threshold: jax.Array,
    grid: int = 1025,
    min_concentration: jax.Array = MIN_CONCENTRATION,
) -> tuple[CurriculumState, dict[str, jax.Array]]:
    """One self-paced step of QARL's temperature curriculum when the buffer is full, else nothing.

    A full buffer is always consumed (count -> 0, updates + 1); its concentration changes only when
    the mean return reaches ``threshold``. Every branch is computed and selected with jnp.where, so
    the hyperparameters may be traced and the function vmaps (per-state decisions). ``grid`` is
    static: the number of candidates in each of the two enumeration passes."""
    k_old, rate = state.concentration, state.rate
    k_min = jnp.asarray(min_concentration, jnp.float32)
    tau, returns = state.temperatures, state.returns
    capacity = tau.shape[0]
    full = state.count >= capacity
    valid = jnp.arange(capacity) < state.count
    mean_return = jnp.sum(jnp.where(valid, returns, 0.0)) / jnp.maximum(state.count, 1)

    def trust_kl(k):
        return gamma_kl(k, rate, k_old, rate)

    k_lo = _bisect_log(trust_kl, k_old, jnp.minimum(k_min, k_old), kl_bound)
    k_hi = _bisect_log(trust_kl, k_old, UPPER_FACTOR * k_old, kl_bound)

    def weighted_return(k):
        return jnp.mean(jnp.exp(_log_ratio(k, k_old, rate, tau)) * returns)

    def best_of(candidates):
        objective = gamma_kl(candidates, rate, target_concentration, target_rate)
        feasible = (
            (trust_kl(candidates) <= kl_bound + KL_SLACK)
            & (jax.vmap(weighted_return)(candidates) >= threshold)
            & (candidates >= k_min)
        )
        # NaN objectives (should a candidate overflow) must never win the argmin.
        score = jnp.where(feasible & ~jnp.isnan(objective), objective, jnp.inf)
        index = jnp.argmin(score)
        return candidates[index], jnp.isfinite(score[index])

    log_lo, log_hi = jnp.log(k_lo), jnp.log(k_hi)
    coarse = jnp.exp(jnp.linspace(log_lo, log_hi, grid))
    # The exact endpoints, not exp(log(.)) of them, so rounding cannot push them out of the region.
    coarse = coarse.at[0].set(k_lo).at[-1].set(k_hi)
    best, found = best_of(jnp.concatenate([coarse, jnp.stack([k_old, jnp.asarray(target_concentration, jnp.float32)])]))
    # Refine between the coarse neighbours of the winner; the winner stays a candidate, so the
    # refinement can only improve it.
    spacing = (log_hi - log_lo) / (grid - 1)
    window = jnp.exp(jnp.linspace(jnp.maximum(jnp.log(best) - spacing, log_lo), jnp.minimum(jnp.log(best) + spacing, log_hi), grid))
    refined, refined_found = best_of(jnp.concatenate([window, best[None]]))
    best = jnp.where(refined_found, refined, best)

    move = full & (mean_return >= threshold) & found
    k_new = jnp.where(move, best, k_old)
    info = {
        "concentration_before": k_old,
        "kl_step": trust_kl(k_new),
        "weighted_return": weighted_return(k_new),
        "mean_return": mean_return,
        "changed": k_new != k_old,
    }
    new_state = state.replace(
        concentration=k_new,
        count=jnp.where(full, 0, state.count),
        updates=state.updates + full.astype(jnp.int32),
    )
    return new_state, info


def annealed_temperature(fraction: jax.Array, start: jax.Array, end: jax.Array, end_fraction: jax.Array) -> jax.Array:
    """QARL's non-curriculum baseline: tau linear from ``start`` at training fraction 0 to ``end``
    at ``end_fraction`` (reference: 0.05 -> 0.001 at 2/3 of training), then ``end``."""
    progress = jnp.clip(jnp.asarray(fraction, jnp.float32) / end_fraction, 0.0, 1.0)
    return start + (end - start) * progress
