"""Mirror-learning drifts (jaxrl.components.drifts): the learned drift meets the conditions for
any weights, a zero output layer is PPO exactly, DPO matches hand-computed values, and TA-LPO's
progress input is n/N."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl
from jaxrl.algorithms import lpo  # noqa: F401  (registers lpo, ta_lpo, dpo)
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


@pytest.mark.parametrize("temporal", [False, True])
def test_learned_drift_meets_the_mirror_learning_conditions_for_random_weights(temporal):
    r, a = jnp.meshgrid(RATIOS, ADVANTAGES)
    progress = jnp.float32(0.3) if temporal else None
    for seed in range(5):
        weights = _random_weights(jax.random.key(seed), temporal, scale=2.0)
        drift = learned_drift(weights, r, a, progress)
        assert bool(jnp.all(drift >= 0)), "the drift must be non-negative"
        assert float(drift.max()) > 1e-3, "random weights should give a drift that is not zero everywhere"
        at_one = learned_drift(weights, jnp.ones_like(ADVANTAGES), ADVANTAGES, progress)
        np.testing.assert_array_equal(at_one, 0.0)
        slope = jax.vmap(jax.grad(lambda x, adv: learned_drift(weights, x, adv, progress)))(jnp.ones_like(ADVANTAGES), ADVANTAGES)
        np.testing.assert_array_equal(slope, 0.0)


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
    loss, _ = get_objective("lpo_zero")(terms, _H(zero), progress)
    np.testing.assert_allclose(loss, -(terms.ratio * terms.advantage).mean(), rtol=1e-6)
    # The sign: a learned drift is a penalty, loss = PPO's loss + mean D_net (not minus).
    weights = _random_weights(jax.random.key(1), False)
    d_net = learned_drift(weights, terms.ratio, terms.advantage).mean()
    assert float(d_net) > 1e-3
    loss, _ = get_objective("lpo")(terms, _H(weights), progress)
    np.testing.assert_allclose(loss, ppo_loss + d_net, rtol=1e-5)
    # TA-LPO with zero output is PPO too, at any progress.
    loss, _ = get_objective("ta_lpo")(terms, _H(drift_weights(True)), progress)
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
    assert {"lpo", "ta_lpo", "dpo"} <= set(jaxrl.list_algorithms())
    with pytest.raises(ConfigError, match=r"objective ta_lpo needs drift weights \{'hidden': \[9, H\]"):
        jaxrl.make_train("lpo", "CartPole-v1", overrides={"objective": "ta_lpo"})
    with pytest.raises(ConfigError, match="objective dpo needs objective_params"):
        jaxrl.make_train("dpo", "CartPole-v1", overrides={"objective_params": {"alpha": np.float32(2.0)}})
