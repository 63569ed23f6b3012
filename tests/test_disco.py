"""Disco103: every array of the reference's golden file, the weight loader's refusals, the
lifetime interaction, Retrace by hand, the value bins' round trip, the gradients' closed form at
other sizes."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.core.values import ConfigError
from jaxrl.rules import disco

SHARED = Path(__file__).resolve().parents[2] / "shared" / "disco103"
WEIGHTS, GOLDEN = SHARED / "disco_103.npz", SHARED / "golden_small.npz"
needs_shared = pytest.mark.skipif(not (WEIGHTS.exists() and GOLDEN.exists()),
                                  reason=f"the published Disco103 weights and golden file are not in {SHARED}")


@needs_shared
def test_golden_file_is_matched_within_its_tolerance():
    golden = dict(np.load(GOLDEN, allow_pickle=False))
    inputs = {k: v for k, v in golden.items() if k.startswith(("in_", "hp_"))}
    out = disco.golden_outputs(WEIGHTS, inputs)
    expected = [k for k in golden if k.startswith(("out_", "grad_", "dbg_", "fresh_"))]
    assert len(expected) == 52 and not set(expected) - set(out)
    for name in expected:
        reference = golden[name].astype(np.float64)
        tolerance = 2e-4 * max(1.0, float(np.abs(reference).max()))
        assert out[name].shape == reference.shape, name
        assert float(np.abs(out[name] - reference).max()) <= tolerance, name


def write_npz(path, arrays):
    np.savez(path, **arrays)
    return path


@needs_shared
def test_loader_refuses_missing_misshaped_and_corrupt_files(tmp_path):
    weights = dict(np.load(WEIGHTS))
    missing = dict(weights)
    missing.pop("lstm/linear/w")
    misshaped = dict(weights, **{"lstm/linear_4/w": np.zeros((16, 2), np.float32)})
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(WEIGHTS.read_bytes()[:1000])
    for path, message in [(write_npz(tmp_path / "missing.npz", missing), "missing lstm/linear/w"),
                          (write_npz(tmp_path / "misshaped.npz", misshaped), "lstm/linear_4/w has shape (16, 2)"),
                          (corrupt, "cannot read Disco weights"), (tmp_path / "absent.npz", "cannot read Disco weights")]:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
            disco.load_weights(path)
        assert "\n" not in str(error.value)
    assert len(disco.load_weights(WEIGHTS)) == 42


def random_batch(key, t=5, b=3, a=4):
    keys = iter(jax.random.split(key, 16))
    normal = lambda *shape: jax.random.normal(next(keys), shape)  # noqa: E731
    terminal = jnp.zeros((t, b), bool).at[2, 0].set(True).at[t - 1, 1].set(True)
    return {"actions": jax.random.randint(next(keys), (t + 1, b), 0, a), "rewards": normal(t, b), "is_terminal": terminal,
            "logits": normal(t + 1, b, a), "y": normal(t + 1, b, 600), "z": normal(t + 1, b, a, 600),
            "aux_pi": normal(t + 1, b, a, a), "q": normal(t + 1, b, a, 601), "behaviour_logits": normal(t + 1, b, a),
            "target_logits": normal(t + 1, b, a), "target_y": normal(t + 1, b, 600), "target_z": normal(t + 1, b, a, 600),
            "target_q": normal(t + 1, b, a, 601)}


FRESH = ((jnp.zeros(128), jnp.zeros(128)), (0.0, 0.0, 1.0), (0.0, 0.0, 1.0))


def test_lifetime_state_changes_and_its_interaction_is_applied():
    weights = disco.init_weights(jax.random.PRNGKey(0))
    x = random_batch(jax.random.PRNGKey(1))
    _, out = disco.rule_outputs(weights, x, *FRESH)
    _, again = disco.rule_outputs(weights, x, out["meta_state"], *FRESH[1:])
    assert not np.allclose(out["meta_state"][0], 0) and not np.allclose(again["meta_state"][0], out["meta_state"][0])
    assert not np.allclose(again["pi_hat"], out["pi_hat"])  # the next update reads the new lifetime state
    # x * (h W + b): with W = 0 and b = 2, the heads see twice the backward LSTM's output
    doubled = dict(weights, **{"lstm/linear/w": jnp.zeros((128, 256)), "lstm/linear/b": jnp.full(256, 2.0)})
    _, scaled = disco.rule_outputs(doubled, x, out["meta_state"], *FRESH[1:])
    expected = disco.linear(weights, "lstm/linear_2", 2.0 * scaled["bwd_lstm_out"])
    np.testing.assert_allclose(scaled["y_hat"], expected, rtol=1e-5, atol=1e-5)


def test_retrace_two_steps_by_hand():
    r, gamma, c = np.array([[1.0], [2.0]]), np.array([[0.9], [0.8]]), np.array([[0.5], [0.25]])
    q_a, v = np.array([[3.0], [4.0]]), np.array([[10.0], [20.0], [30.0]])
    g1 = 2.0 + 0.8 * 30.0
    g0 = 1.0 + 0.9 * (20.0 - 0.25 * 4.0 + 0.25 * g1)
    np.testing.assert_allclose(disco.retrace(*(jnp.asarray(x) for x in (r, gamma, c, q_a, v))), [[g0], [g1]], rtol=1e-6)


def test_value_bins_round_trip():
    values = jnp.array([-5000.0, -100.0, -3.7, -0.01, 0.0, 0.5, 2.0, 41.3, 999.0, 8000.0])
    probs = disco.two_hot(disco.compress(values))
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert ((probs > 0).sum(-1) <= 2).all()
    decoded = disco.decode(jnp.log(probs + 1e-30))
    np.testing.assert_allclose(decoded, values, rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(disco.decompress(disco.compress(values)), values, rtol=1e-4, atol=1e-4)


def test_gradients_have_the_closed_form_at_other_sizes():
    weights = disco.init_weights(jax.random.PRNGKey(2))
    x = random_batch(jax.random.PRNGKey(3), t=6, b=2, a=5)
    mask = jnp.ones((6, 2)).at[3, 0].set(0.0)
    val, out, terms, loss, grads = disco._one_update(weights, x, mask, *FRESH, disco.SETTINGS)
    w = mask / (mask.sum() + 1e-8)
    expected = w[..., None] * (jax.nn.softmax(x["logits"][:-1]) - jax.nn.softmax(out["pi_hat"]))
    np.testing.assert_allclose(grads["logits"][:-1], expected, atol=1e-6)
    np.testing.assert_allclose(grads["y"][:-1], w[..., None] * (jax.nn.softmax(x["y"][:-1]) - jax.nn.softmax(out["y_hat"])), atol=1e-6)
    for name in ("logits", "y", "z", "aux_pi", "q"):
        assert float(jnp.abs(grads[name][-1]).max()) == 0.0  # the last state only bootstraps
    untaken = jax.nn.one_hot(x["actions"][:-1], 5) == 0
    assert float(jnp.abs(jnp.where(untaken[..., None], grads["q"][:-1], 0.0)).max()) == 0.0
    assert float(loss) == pytest.approx(float((mask * terms["total_loss"]).sum() / (mask.sum() + 1e-8)), rel=1e-6)
    assert val["target"].shape == (6, 2) and out["pi_hat"].shape == (6, 2, 5)
