"""Mirror-learning drifts (jaxrl.components.drifts): the learned drift meets the conditions for
any weights, a zero output layer is PPO exactly, DPO matches hand-computed values, and TA-LPO's
progress input is n/N."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl
from jaxrl.algorithms import lpo  # noqa: F401  (registers lpo, ta-lpo, dpo)
from jaxrl.components.drifts import DRIFT_FEATURES, dpo_drift, drift_features, drift_weights, learned_drift
from jaxrl.components.losses import clipped_surrogate_loss
from jaxrl.components.objectives import PolicyTerms, get_objective, register_objective
from jaxrl.core.contract import ConfigError, Progress

RATIOS = jnp.linspace(0.2, 3.0, 57)
ADVANTAGES = jnp.linspace(-3.0, 3.0, 13)


def _random_weights(key, temporal, scale=1.0):
    weights = drift_weights(temporal, width=16)
    k1, k2 = jax.random.split(key)
    return {"hidden": scale * jax.random.normal(k1, weights["hidden"].shape), "out": scale * jax.random.normal(k2, weights["out"].shape)}


def _one_sided_quotients(drift, h):
    """(D(1 + h) - D(1)) / h and (D(1 - h) - D(1)) / h for every advantage. ``jax.grad`` cannot
    check the slope at r = 1: relu's derivative at exactly 0 is 0, so any relu(f(r) - f(1)) has a
    zero gradient there whatever its one-sided slopes."""
    at_one = drift(jnp.ones_like(ADVANTAGES))
    return jnp.stack([(drift(jnp.full_like(ADVANTAGES, 1.0 + h)) - at_one) / h,
                      (drift(jnp.full_like(ADVANTAGES, 1.0 - h)) - at_one) / h])


def _zero_value_and_slope_at_one(drift) -> bool:
    """D(1) = 0 and both one-sided slopes at r = 1 are 0: a remainder of order (r - 1)^2 gives
    quotients of order h, which shrink tenfold from h = 1e-2 to 1e-3 (float32 rounding allows 1e-2);
    a drift with a one-sided slope s keeps quotients near s."""
    at_one = drift(jnp.ones_like(ADVANTAGES))
    coarse, fine = (float(jnp.abs(_one_sided_quotients(drift, h)).max()) for h in (1e-2, 1e-3))
    return bool(jnp.all(at_one == 0.0)) and fine <= 0.2 * coarse + 1e-2


def _without_taylor_term(weights, ratio, advantage, progress):
    """A broken drift: relu(f(r) - f(1)), without the first-order term; 0 at r = 1 with a zero
    relu gradient there, but a one-sided slope of |f'(1)|."""
    f = lambda r: jnp.tanh(drift_features(r, advantage, progress) @ weights["hidden"]) @ weights["out"]  # noqa: E731
    return jax.nn.relu(f(ratio) - f(jnp.ones_like(ratio)))


@pytest.mark.parametrize("temporal", [False, True])
def test_learned_drift_meets_the_mirror_learning_conditions_for_random_weights(temporal):
    r, a = jnp.meshgrid(RATIOS, ADVANTAGES)
    progress = jnp.float32(0.3) if temporal else None
    for seed in range(5):
        weights = _random_weights(jax.random.key(seed), temporal, scale=2.0)
        drift = learned_drift(weights, r, a, progress)
        assert bool(jnp.all(drift >= 0)), "the drift must be non-negative"
        assert float(drift.max()) > 1e-3, "random weights should give a drift that is not zero everywhere"
        assert _zero_value_and_slope_at_one(lambda x: learned_drift(weights, x, ADVANTAGES, progress))
        # The check fails on the drift without the Taylor term, whose gradient at r = 1 is also 0.
        broken = lambda x: _without_taylor_term(weights, x, ADVANTAGES, progress)  # noqa: E731
        np.testing.assert_array_equal(jax.vmap(jax.grad(lambda x, adv: _without_taylor_term(weights, x, adv, progress)))(
            jnp.ones_like(ADVANTAGES), ADVANTAGES), 0.0)
        assert not _zero_value_and_slope_at_one(broken)
        # ... and on one that is not 0 at r = 1.
        assert not _zero_value_and_slope_at_one(lambda x: learned_drift(weights, x, ADVANTAGES, progress) + 1e-3)


def _terms(key, n=256):
    k1, k2, k3 = jax.random.split(key, 3)
    log_prob = 0.3 * jax.random.normal(k1, (n,))
    old_log_prob = 0.3 * jax.random.normal(k2, (n,))
    advantage = jax.random.normal(k3, (n,))
    return PolicyTerms(log_prob, old_log_prob, advantage, None, None)


class _H:
    def __init__(self, objective_params, clip_eps=0.2):
        self.objective_params, self.clip_eps = objective_params, clip_eps


def test_zero_output_network_from_ppo_is_ppos_clipped_objective_and_the_drift_is_subtracted():
    terms = _terms(jax.random.key(0))
    progress = Progress(jnp.int32(3), 10)
    ppo_loss = clipped_surrogate_loss(terms.log_prob, terms.old_log_prob, terms.advantage, 0.2)
    zero = drift_weights()
    loss, _ = get_objective("lpo")(terms, _H(zero), progress)
    np.testing.assert_allclose(loss, ppo_loss, rtol=1e-6, atol=1e-7)
    # From zero, a zero network is the unclipped surrogate E[r A]:
    loss, _ = get_objective("lpo-zero")(terms, _H(zero), progress)
    np.testing.assert_allclose(loss, -(terms.ratio * terms.advantage).mean(), rtol=1e-6)
    # The sign: a learned drift is a penalty, loss = PPO's loss + mean D_net (not minus).
    weights = _random_weights(jax.random.key(1), False)
    d_net = learned_drift(weights, terms.ratio, terms.advantage).mean()
    assert float(d_net) > 1e-3
    loss, _ = get_objective("lpo")(terms, _H(weights), progress)
    np.testing.assert_allclose(loss, ppo_loss + d_net, rtol=1e-5)
    # TA-LPO with zero output is PPO too, at any progress.
    loss, _ = get_objective("ta-lpo")(terms, _H(drift_weights(True)), progress)
    np.testing.assert_allclose(loss, ppo_loss, rtol=1e-6, atol=1e-7)


def test_dpo_drift_against_hand_computed_values():
    # (r, A) -> relu((r-1)A - 2 tanh((r-1)A / 2)) for A >= 0, relu(log(r)A - 0.6 tanh(log(r)A / 0.6)) for A < 0,
    # evaluated with Python's math module.
    cases = [(1.5, 1.0, 0.010162675192581738), (3.0, 2.0, 2.071944839848366), (0.5, -1.0, 0.20145660369376672),
             (2.0, -0.5, 0.0), (1.0, 3.0, 0.0), (0.8, 0.7, 0.0)]
    r, a, expected = (jnp.asarray(c, jnp.float32) for c in zip(*cases))
    np.testing.assert_allclose(dpo_drift(r, a, 2.0, 0.6), expected, rtol=1e-5, atol=1e-7)
    terms = PolicyTerms(jnp.log(r), jnp.zeros_like(r), a, None, None)
    loss, _ = get_objective("dpo")(terms, _H({"alpha": 2.0, "beta": 0.6}), Progress(jnp.int32(0), 1))
    np.testing.assert_allclose(loss, -(r * a - expected).mean(), rtol=1e-5)


def test_ta_lpo_sees_training_progress_as_n_over_N():
    features = drift_features(jnp.full(3, 1.2), jnp.ones(3), jnp.float32(0.25))
    assert features.shape == (3, DRIFT_FEATURES + 1)
    np.testing.assert_array_equal(features[:, -1], 0.25)
    with pytest.raises(ValueError, match="need training progress"):
        learned_drift(drift_weights(True), jnp.ones(3), jnp.ones(3))

    # What the agent hands the objective: n/N of its update, normalised (0 at the first update).
    @register_objective("test-progress")
    def probe(terms, hparams, progress):
        return get_objective("clip")(terms, hparams, progress)[0], {"progress_input": progress.fraction}

    train = jaxrl.make_train("ppo", "CartPole-v1", total_steps=8 * 64, log_every=4, overrides={
        "objective": "test-progress", "num_envs": 2, "num_steps": 32, "num_minibatches": 1, "update_epochs": 1, "hidden_sizes": (8,)})
    _, metrics = jax.jit(train)(jax.random.key(0), train.default_hparams)
    np.testing.assert_allclose(metrics["progress_input"], [np.mean([0, 1, 2, 3]) / 8, np.mean([4, 5, 6, 7]) / 8], rtol=1e-6)


def test_lpo_algorithms_train_and_refuse_weights_of_the_wrong_shape():
    assert {"lpo", "ta-lpo", "dpo"} <= set(jaxrl.list_algorithms())
    with pytest.raises(ConfigError, match=r"objective ta-lpo needs drift weights \{'hidden': \[9, H\]"):
        jaxrl.make_train("lpo", "CartPole-v1", overrides={"objective": "ta-lpo"})
    with pytest.raises(ConfigError, match="objective dpo needs objective_params"):
        jaxrl.make_train("dpo", "CartPole-v1", overrides={"objective_params": {"alpha": np.float32(2.0)}})


def test_names_are_hyphenated_and_the_underscored_spelling_is_an_alias():
    from jaxrl.core.contract import get_algorithm, list_algorithms
    from jaxrl.driver.spec import canonical_metadata

    assert {"ta-lpo", "dsac-t", "mdpo-off", "robust-plr"} <= set(list_algorithms())
    assert not [name for name in list_algorithms() if "_" in name]
    assert get_algorithm("ta_lpo") is get_algorithm("ta-lpo")
    assert get_objective("lpo_zero") is get_objective("lpo-zero") and get_objective("ta_lpo_zero") is get_objective("ta-lpo-zero")
    old = jaxrl.make_train("ta_lpo", "CartPole-v1", overrides={"objective": "ta_lpo_zero"})
    new = jaxrl.make_train("ta-lpo", "CartPole-v1", overrides={"objective": "ta-lpo-zero"})
    assert (old.algorithm.name, old.config.objective) == ("ta-lpo", "ta-lpo-zero") and old.config == new.config
    # The metadata of a run written with the old names compares equal to today's spec.
    saved = {"algorithm": "ta_lpo", "config": {"objective": "lpo_zero", "lr": 1}, "seed": 0}
    assert canonical_metadata(saved) == {"algorithm": "ta-lpo", "config": {"objective": "lpo-zero", "lr": 1}, "seed": 0}
