"""QARL's temperature curriculum (jaxrl.components.temperature_curriculum): the Gamma density and KL
match scipy, the buffer appends in order and drops overflow, and the self-paced update respects
its trust region and performance constraint, holds still when it should, and vmaps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from jaxrl.components.temperature_curriculum import (
    add_episodes,
    annealed_temperature,
    gamma_kl,
    gamma_log_prob,
    init_curriculum,
    self_paced_update,
)

N = 30
RATE = 1000.0
K0 = 50.0
KL_BOUND = 0.5
update = jax.jit(self_paced_update, static_argnames="grid")


def _taus(k=K0, seed=0):
    return np.random.default_rng(seed).gamma(k, 1.0 / RATE, size=N).astype(np.float32)


def _full_state(tau, returns, k=K0):
    return add_episodes(init_curriculum(k, RATE, N), tau, returns, np.ones(N, bool))


def _weighted_return(k, k_old, tau, returns):
    """The importance-weighted return in float64, independently of the module."""
    tau, returns = np.asarray(tau, np.float64), np.asarray(returns, np.float64)
    log_ratio = stats.gamma.logpdf(tau, k, scale=1 / RATE) - stats.gamma.logpdf(tau, k_old, scale=1 / RATE)
    return float(np.mean(np.exp(log_ratio) * returns))


def _kl_numeric(k_p, rate_p, k_q, rate_q):
    p, q = stats.gamma(k_p, scale=1 / rate_p), stats.gamma(k_q, scale=1 / rate_q)
    integrand = lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x))  # noqa: E731
    value, _ = integrate.quad(integrand, p.ppf(1e-13), p.ppf(1 - 1e-13), limit=200)
    return value


@pytest.mark.parametrize("pair", [(2.0, 3.0, 5.0, 1.0), (50.0, 1000.0, 45.0, 1000.0), (1.5, 2.0, 0.8, 0.5)])
def test_gamma_kl_matches_numeric_integration(pair):
    np.testing.assert_allclose(float(gamma_kl(*pair)), _kl_numeric(*pair), rtol=1e-4, atol=1e-5)


def test_gamma_kl_zero_for_identical_and_log_prob_matches_scipy():
    assert abs(float(gamma_kl(50.0, 1000.0, 50.0, 1000.0))) < 1e-5
    x = np.array([1e-4, 0.01, 0.05, 0.2], np.float32)
    for k, rate in [(50.0, 1000.0), (1.0, 1000.0), (0.7, 2.0)]:
        expected = stats.gamma.logpdf(x.astype(np.float64), k, scale=1 / rate)
        np.testing.assert_allclose(np.asarray(gamma_log_prob(x, k, rate)), expected, rtol=1e-5, atol=1e-4)


def test_add_episodes_order_overflow_and_count():
    state = init_curriculum(K0, RATE, 4)
    state = add_episodes(state, jnp.array([1.0, 2.0, 3.0]), jnp.array([10.0, 20.0, 30.0]), jnp.array([True, False, True]))
    assert int(state.count) == 2
    np.testing.assert_array_equal(state.temperatures[:2], [1.0, 3.0])
    state = add_episodes(state, jnp.array([4.0, 5.0, 6.0]), jnp.array([40.0, 50.0, 60.0]), jnp.array([False, False, False]))
    assert int(state.count) == 2
    state = add_episodes(state, jnp.array([4.0, 5.0, 6.0]), jnp.array([40.0, 50.0, 60.0]), jnp.array([True, True, True]))
    assert int(state.count) == 4  # the third pair did not fit and was dropped
    np.testing.assert_array_equal(state.temperatures, [1.0, 3.0, 4.0, 5.0])
    np.testing.assert_array_equal(state.returns, [10.0, 30.0, 40.0, 50.0])
    state = add_episodes(state, jnp.array([7.0]), jnp.array([70.0]), jnp.array([True]))
    np.testing.assert_array_equal(state.temperatures, [1.0, 3.0, 4.0, 5.0])


def test_high_returns_step_to_the_trust_region_boundary():
    tau = _taus()
    new, info = update(_full_state(tau, np.full(N, 100.0)), 1.0, RATE, KL_BOUND, 10.0)
    k = float(new.concentration)
    assert k < K0 and bool(info["changed"])
    assert 0.9 * KL_BOUND <= float(info["kl_step"]) <= KL_BOUND + 1e-5
    assert _kl_numeric(k, RATE, K0, RATE) <= KL_BOUND + 1e-4  # the f64 value agrees
    assert int(new.count) == 0 and int(new.updates) == 1
    assert float(info["mean_return"]) == pytest.approx(100.0)


def test_low_mean_return_keeps_the_distribution_but_empties_the_buffer():
    new, info = update(_full_state(_taus(), np.full(N, 5.0)), 1.0, RATE, KL_BOUND, 10.0)
    assert float(new.concentration) == K0 and not bool(info["changed"])
    assert int(new.count) == 0 and int(new.updates) == 1


def test_performance_constraint_can_be_the_active_one():
    # Returns fall with the temperature (a more rational adversary hurts the protagonist), so
    # moving k toward the low target lowers the weighted return; with the threshold just under
    # the current mean, the threshold binds before the trust region does.
    tau = _taus()
    returns = 1.0 + 200.0 * tau
    threshold = 10.5
    assert returns.mean() > threshold
    new, info = update(_full_state(tau, returns), 1.0, RATE, KL_BOUND, threshold)
    k = float(new.concentration)
    assert k < K0
    assert _weighted_return(k, K0, tau, returns) >= threshold - 1e-4
    assert float(info["kl_step"]) < 0.9 * KL_BOUND  # not at the trust region's boundary
    further = k + 0.01 * (k - K0)
    violates_kl = _kl_numeric(further, RATE, K0, RATE) > KL_BOUND
    violates_threshold = _weighted_return(further, K0, tau, returns) < threshold
    assert violates_kl or violates_threshold


def test_not_full_changes_nothing():
    tau = _taus()
    ended = np.ones(N, bool)
    ended[-1] = False
    state = add_episodes(init_curriculum(K0, RATE, N), tau, np.full(N, 100.0), ended)
    new, info = update(state, 1.0, RATE, KL_BOUND, 10.0)
    assert float(new.concentration) == K0 and not bool(info["changed"])
    assert int(new.count) == N - 1 and int(new.updates) == 0


def test_target_reached_stays():
    new, _ = update(_full_state(_taus(k=1.0), np.full(N, 100.0), k=1.0), 1.0, RATE, KL_BOUND, 10.0)
    assert float(new.concentration) == pytest.approx(1.0, abs=1e-3)


def test_vmap_gives_per_state_answers():
    state = _full_state(_taus(), np.full(N, 20.0))
    thresholds = jnp.array([5.0, 50.0])
    batched = jax.tree.map(lambda x: jnp.stack([x, x]), state)
    new, info = jax.jit(jax.vmap(self_paced_update, in_axes=(0, None, None, None, 0)))(batched, 1.0, RATE, KL_BOUND, thresholds)
    for i in range(2):
        single, _ = update(state, 1.0, RATE, KL_BOUND, thresholds[i])
        assert float(new.concentration[i]) == pytest.approx(float(single.concentration), rel=1e-6)
    assert float(new.concentration[0]) < K0 and float(new.concentration[1]) == K0
    np.testing.assert_array_equal(info["changed"], [True, False])
    np.testing.assert_array_equal(new.count, [0, 0])


def test_annealed_temperature():
    values = [float(annealed_temperature(f, 0.05, 0.001, 2 / 3)) for f in (0.0, 1 / 3, 2 / 3, 1.0)]
    np.testing.assert_allclose(values, [0.05, 0.0255, 0.001, 0.001], rtol=1e-5)
