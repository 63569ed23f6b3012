"""Learned optimizers (jaxrl.components.learned_optim, OPEN's): the hand-set network is Signum less
its mean exactly, whatever the schedule; every variant trains a quadratic; initial updates are
finite and sign-equivariant, and every update of a real PPO run sums to zero over the parameters;
its inputs are the ones named, normalised as OPEN's; PPO learns with it, weights saved by meta-training come back
through --optimizer learned:DIR with the same updates, and bad input is one line, exit 2."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxrl
from jaxrl.cli import main
from jaxrl.components import learned_optim as lo
from jaxrl.components.networks import Actor, Torso, apply_with_context
from jaxrl.components.optim import optimizer
from jaxrl.components.sgd import minibatch_epochs
from jaxrl.core.contract import Progress
from jaxrl.driver.checkpoint import CheckpointStore
from jaxrl.meta.run import load_optimizer, meta_train

PROGRESS = Progress(jnp.int32(3), 10)
INNER = {"num_envs": 2, "num_steps": 32, "hidden_sizes": (8,), "num_minibatches": 2, "update_epochs": 1}
INNER_ARGS = [a for k, v in INNER.items() for a in ("--set", f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}")]


def _tx(name, weights, lr=0.01, anneal=False):
    return optimizer(name, lr=jnp.float32(lr), progress=PROGRESS, params=weights, anneal=anneal)


def _grads(i, params):
    return jax.tree.map(lambda p: jax.random.normal(jax.random.key(i), p.shape), params)


@pytest.mark.parametrize("anneal", [False, True])
def test_hand_set_weights_are_signum_less_its_mean_exactly(anneal):
    # The step scale is the lr as set: annealing (at n/N = 0.3 here) does not multiply it.
    tx = _tx("learned_mlp", lo.signum_weights(), anneal=anneal)
    reference = optax.chain(optax.trace(0.9), optax.scale_by_sign(), optax.scale(-0.01))
    params = {"a": jnp.ones((3, 4)), "b": jnp.zeros(5)}
    state, ref_state = tx.init(params), reference.init(params)
    for i in range(20):
        grads = _grads(i, params)
        updates, state = tx.update(grads, state, params)
        expected, ref_state = reference.update(grads, ref_state, params)
        expected = jax.tree.map(np.asarray, expected)
        mean = np.concatenate([e.ravel() for e in jax.tree.leaves(expected)]).astype(np.float64).mean()
        for a, b in zip(jax.tree.leaves(updates), jax.tree.leaves(expected)):
            np.testing.assert_allclose(a, b - mean, rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", sorted(lo.KINDS))
def test_every_variant_trains_a_quadratic(name):
    tx = _tx(name, lo.default_weights(name))
    target = jnp.linspace(-1, 1, 50)
    loss = lambda x: jnp.sum((x["x"] - target) ** 2)  # noqa: E731

    def step(carry, key):
        x, state = carry
        updates, state = tx.update(jax.grad(loss)(x), state, x, key=key)
        return (optax.apply_updates(x, updates), state), None

    # The update sums to zero over the parameters, so the start has the target's sum (0).
    start = {"x": -2.0 * target}
    (x, _), _ = jax.jit(lambda c: jax.lax.scan(step, c, jax.random.split(jax.random.key(0), 600)))((start, tx.init(start)))
    assert float(loss(x)) < 1e-3 * float(loss(start))


@pytest.mark.parametrize("name", ["learned_mlp", "learned_gru"])
def test_initial_updates_are_finite_and_sign_equivariant(name):
    tx = _tx(name, lo.default_weights(name))
    params = {"w": jax.random.normal(jax.random.key(1), (100, 100))}
    flipped_params = jax.tree.map(jnp.negative, params)
    state, flipped = tx.init(params), tx.init(params)
    for i in range(5):
        grads = _grads(10 + i, params)
        updates, state = tx.update(grads, state, params)
        negated, flipped = tx.update(jax.tree.map(jnp.negative, grads), flipped, flipped_params)
    u = updates["w"]
    assert bool(jnp.all(jnp.isfinite(u))) and float(jnp.std(u)) > 0
    # Flipping the signs of the gradients' history and of the parameters flips the update.
    np.testing.assert_allclose(negated["w"], -u, rtol=0, atol=1e-6 * float(jnp.abs(u).max()))


@pytest.mark.parametrize("name", ["learned_mlp", "learned_gru_noise"])
def test_updates_of_a_real_training_run_sum_to_zero(name):
    # PPO on CartPole with the search's starting weights: every update (4 x 2 minibatch steps)
    # moves the actor's and critic's parameters by a change that sums to zero over them all.
    train = jaxrl.make_train("ppo", "CartPole-v1", total_steps=8 * 256, overrides={
        "optimizer": name, "num_envs": 4, "num_steps": 64, "num_minibatches": 2})
    hparams = train.default_hparams
    state = train.init(jax.random.key(0), hparams)
    update = jax.jit(train.agent.update)
    for step in range(train.num_updates):
        new, _ = update(state, hparams, jnp.int32(step))
        change = np.concatenate([np.ravel(b - a) for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(new.params))])
        assert np.all(np.isfinite(change)) and np.abs(change).max() > 0
        assert abs(change.astype(np.float64).sum()) < 1e-4 * np.abs(change).sum(), (step, change.sum())
        state = new


def test_inputs_are_the_momenta_and_progress_named():
    assert lo.MOMENTA == (0.1, 0.5, 0.9, 0.99, 0.999, 0.9999)
    assert lo.FEATURES[-4:] == ("training_progress", "batch_progress", "layer", "dormancy")
    tx = _tx("learned_mlp", lo.default_weights("learned_mlp"))
    params = {"w": jnp.ones(7)}
    state = tx.init(params)
    grads = [np.random.default_rng(i).normal(size=7).astype(np.float32) for i in range(4)]
    for g in grads:
        _, state = tx.update({"w": jnp.asarray(g)}, state, params)
    for index, beta in enumerate(lo.MOMENTA):  # each an EMA of the gradient at its timescale
        m = np.zeros(7, np.float32)
        for g in grads:
            m = np.float32(beta) * m + (np.float32(1) - np.float32(beta)) * g
        np.testing.assert_allclose(state.momenta["w"][index], m, rtol=1e-6)
    # Training progress n / N over a run, and batch progress k / K over an update's steps.
    column = lo.FEATURES.index("training_progress")
    seen = [float(lo.features(jnp.asarray(grads[0]), state.momenta["w"], params["w"], Progress(jnp.int32(n), 10).fraction, 0.5, 1.0, 0.0)[0][0, column])
            for n in range(10)]
    assert seen == [float(np.float32(n) / np.float32(10)) for n in range(10)] and 0 <= min(seen) and max(seen) < 1
    x, s = lo.features(jnp.asarray(grads[0]), state.momenta["w"], jnp.linspace(-2, 3, 7), 0.5, 0.5, 1.0, 0.0)
    assert x.shape == (7, lo.NUM_FEATURES)
    assert set(np.unique(np.asarray(s))) <= {-1.0, 1.0}
    # OPEN's input normalisation: every magnitude column has a second moment of 1 over the tensor.
    assert [lo.FEATURES[i] for i in lo.NORMALISED] == ["log|g|", *(f"log|m{b}|" for b in lo.MOMENTA), "p*s"]
    np.testing.assert_allclose(np.mean(np.square(np.asarray(x)[:, list(lo.NORMALISED)]), axis=0), 1.0, rtol=1e-4)
    np.testing.assert_allclose(x[:, lo.FEATURES.index("p*s")] * np.sqrt(np.mean(np.linspace(-2, 3, 7) ** 2)),
                               np.linspace(-2, 3, 7) * np.asarray(s), rtol=1e-4)
    loss = lambda p, b: ((p["w"] * b).sum(), {"optimizer_context": {"dormancy": None, "layer": None}})  # noqa: E731
    progress = []

    def record_update(updates, state, params=None, *, batch_progress, **_):
        jax.debug.callback(lambda v: progress.append(float(v)), batch_progress)
        return jax.tree.map(jnp.zeros_like, updates), state

    record = optax.GradientTransformationExtraArgs(lambda p: optax.EmptyState(), record_update)
    out = minibatch_epochs(loss, record, {"w": jnp.ones(1)}, optax.EmptyState(), jnp.ones((6, 1)), jax.random.key(0), 2, 3, learned_optimizer=True)
    jax.block_until_ready(out)
    np.testing.assert_allclose(progress, [k / 6 for k in range(6)], rtol=1e-6)  # k / K, in order


def test_layer_positions_and_dormancy_of_an_actor():
    actor = Actor(2, True, Torso((8, 8), "relu"))
    params = actor.init(jax.random.key(0), jnp.zeros((1, 4)))
    # Kill hidden neuron 3 of the first layer: no weights in, no bias, relu -> always 0.
    params["params"]["torso"]["Dense_0"]["kernel"] = params["params"]["torso"]["Dense_0"]["kernel"].at[:, 3].set(0.0)
    obs = jax.random.normal(jax.random.key(1), (64, 4))
    _, context = apply_with_context(actor, params, obs, "relu")
    layer, dormancy = context["layer"]["params"], context["dormancy"]["params"]
    assert [float(layer["torso"]["Dense_0"]["kernel"]), float(layer["torso"]["Dense_1"]["bias"]), float(layer["Dense_0"]["kernel"])] == [0.0, 0.5, 1.0]
    first = dormancy["torso"]["Dense_0"]["kernel"]
    assert first.shape == (8,) and float(first[3]) == 0.0
    np.testing.assert_allclose(float(first.mean()), 1.0, rtol=1e-5)  # scores relative to the layer's mean


def test_ppo_learns_cartpole_with_the_learned_optimizer():
    train = jaxrl.make_train("ppo", "CartPole-v1", total_steps=100_000, overrides={"optimizer": "learned_mlp"})
    _, metrics = jax.jit(jax.vmap(train, in_axes=(0, None)))(jax.random.split(jax.random.key(0), 2), train.default_hparams)
    assert float(np.mean(metrics["final_return"])) > 150, metrics["final_return"]  # random: about 22


@pytest.fixture(scope="module")
def meta_optimizer(tmp_path_factory):
    out = tmp_path_factory.mktemp("lopt") / "m"
    result = meta_train("ppo", "CartPole-v1", out, field="optimizer_params", generations=2, population=4,
                        inner_steps=1024, overrides={**INNER, "optimizer": "learned_mlp", "lr": 1e-3}, progress=False,
                        noise_every=0)
    return out, result


def test_saved_optimizer_loads_and_gives_the_same_updates(meta_optimizer, tmp_path):
    out, result = meta_optimizer
    weights, name = load_optimizer(out)
    assert name == "learned_mlp"
    params = {"w": jnp.linspace(-1, 1, 9)}
    grads = {"w": jnp.cos(jnp.arange(9.0))}
    mean = jax.tree.map(np.asarray, result.objective)
    assert not np.array_equal(mean["params"]["out"]["kernel"], lo.default_weights(name)["params"]["out"]["kernel"])
    by_meta = _tx(name, mean).update(grads, _tx(name, mean).init(params), params)[0]
    by_dir = _tx(name, weights).update(grads, _tx(name, weights).init(params), params)[0]
    np.testing.assert_array_equal(by_meta["w"], by_dir["w"])
    run = tmp_path / "t"
    assert main(["train", "ppo", "--env", "CartPole-v1", "--optimizer", f"learned:{out}", "--total-steps", "1024",
                 "--quiet", "--out", str(run), *INNER_ARGS]) == 0
    saved = json.loads((run / "config.json").read_text())
    assert saved["config"]["optimizer"] == "learned_mlp" and "optimizer_params" in saved["hparams"]
    assert saved["hparams"]["lr"] == 1e-3  # the step scale the weights were evolved at (default 2.5e-4)
    assert main(["train", "ppo", "--env", "CartPole-v1", "--optimizer", f"learned:{out}", "--set", "lr=0.002",
                 "--total-steps", "1024", "--quiet", "--out", str(tmp_path / "u"), *INNER_ARGS]) == 0
    assert json.loads((tmp_path / "u" / "config.json").read_text())["hparams"]["lr"] == 0.002  # the user's, when given


def _reshaped_dir(meta_optimizer, tmp_path):
    """A meta-training directory whose learned_mlp weights have another hidden width."""
    out, _ = meta_optimizer
    with CheckpointStore(out / "objective") as saved:
        metadata = saved.read_metadata()
    weights = jax.tree.map(lambda x: np.zeros(x.shape[:-1] + (x.shape[-1] + 1,), np.float32), lo.default_weights("learned_mlp"))
    target = tmp_path / "reshaped"
    from jaxrl.driver.spec import arrays_spec

    with CheckpointStore(target / "objective", writable=True) as store:
        store.save(1, weights, {**metadata, "objective": arrays_spec(weights)})
        store.wait()
    return target


@pytest.mark.parametrize("case, message", [
    ("missing", "no such directory"),
    ("empty", "needs a directory"),
    ("reshaped", "do not fit the learned_mlp optimizer"),
    ("unknown", "unknown optimizer 'adamw2'"),
    ("dqn", "only ppo, mdpo, lpo, ta-lpo, dpo give it"),
])
def test_bad_optimizer_is_one_line_and_exit_2(meta_optimizer, tmp_path, capsys, case, message):
    value = {"missing": f"learned:{tmp_path / 'nope'}", "empty": "learned:", "unknown": "adamw2", "dqn": "learned_mlp",
             "reshaped": f"learned:{_reshaped_dir(meta_optimizer, tmp_path)}" if case == "reshaped" else ""}[case]
    algorithm = "dqn" if case == "dqn" else "ppo"
    assert main(["train", algorithm, "--env", "CartPole-v1", "--optimizer", value, "--quiet", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "r").exists()


def test_meta_training_a_built_in_optimizer_is_refused(tmp_path, capsys):
    assert main(["meta-train", "optimizer", "--optimizer", "adam", "--env", "CartPole-v1", "--quiet", "--out", str(tmp_path / "m")]) == 2
    assert "has no weights to meta-train" in capsys.readouterr().err
