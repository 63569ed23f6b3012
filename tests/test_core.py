"""The pure layer: ``jaxrl.make_train`` is one pure function of (key, hyperparameters, environment
parameters) that composes under jit, vmap, grad and shard_map; its pieces (objective, optimizer,
targets) are swappable; collect and learn are the two halves of an update."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxrl
import learned_objective
from jaxrl.components.objectives import register_objective
from jaxrl.components.optim import register_optimizer

# Tiny PPO runs: 4 envs x 32 steps, 2 epochs of 2 minibatches, a 16x16 network, the learned
# objective of tests/learned_objective.py (PPO's clip when its weights are (1, 0)).
TINY = {"num_envs": 4, "num_steps": 32, "num_minibatches": 2, "update_epochs": 2, "hidden_sizes": (16, 16)}
WEIGHTED = {**TINY, "objective": "test-weighted", "objective_params": learned_objective.weights()}


def tiny(total_updates: int, log_every: int | None = None, **overrides) -> jaxrl.Train:
    return jaxrl.make_train("ppo", "CartPole-v1", total_steps=total_updates * 128, overrides={**WEIGHTED, **overrides}, log_every=log_every)


def test_train_logs_static_windows_and_masks_the_last_one():
    train = tiny(10, log_every=4)  # windows of 4, 4 and 2 updates
    assert (train.num_updates, train.num_logs, train.steps_per_update) == (10, 3, 128)
    np.testing.assert_array_equal(train.log_steps(), [4 * 128, 8 * 128, 10 * 128])
    state, metrics = jax.jit(train)(jax.random.key(0), train.default_hparams)
    assert {k: np.shape(v) for k, v in metrics.items()} == {**{k: (3,) for k in metrics if k != "final_return"}, "final_return": ()}
    # The annealed learning rate lr (1 - n / N) averaged over each window's updates: the last
    # window holds updates 8 and 9 only, the two past the end are skipped.
    lr = float(train.default_hparams.lr)
    expected = [lr * (1 - np.mean(updates) / 10) for updates in ([0, 1, 2, 3], [4, 5, 6, 7], [8, 9])]
    np.testing.assert_allclose(metrics["lr"], expected, rtol=1e-6)
    # The policy's parameters come out of the state as act needs them.
    act = jax.jit(lambda p, o: train.act(p, o, jax.random.key(1), True))
    assert act(train.policy_params(state), jnp.zeros((3, 4))).shape == (3,)


def test_windows_past_the_end_leave_the_state_as_it_is():
    # 6 updates in windows of 2 tile the run: no update is masked, whole windows past the end are
    # skipped (a driver chunk's tail), with or without the per-update mask of an untiled run.
    for log_every, num_logs in ((2, 3), (4, 2)):
        train = tiny(6, log_every=log_every)
        assert train.num_logs == num_logs
        state = jax.jit(train.init)(jax.random.key(0), train.default_hparams)
        run = jax.jit(train.run, static_argnums=3)
        exact, rows = run(state, train.default_hparams, 0, num_logs)
        longer, longer_rows = run(state, train.default_hparams, 0, num_logs + 2)
        data = lambda x: jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x  # noqa: E731
        for a, b in zip(jax.tree.leaves(exact), jax.tree.leaves(longer)):
            np.testing.assert_array_equal(data(a), data(b))
        np.testing.assert_array_equal(longer_rows["lr"][:num_logs], rows["lr"])
        np.testing.assert_array_equal(longer_rows["lr"][num_logs:], 0.0)
        assert np.isnan(longer_rows["episode_return"][num_logs:]).all()


def test_default_log_every_divides_the_run_where_it_can():
    from jaxrl.core.train import default_log_every

    assert [default_log_every(n) for n in (976, 20_000, 488, 97)] == [8, 200, 4, 1]
    assert default_log_every(4882) == 48  # 2 x 2441: no divisor near 48, so the last window is masked


def test_final_return_reads_the_final_sums_of_the_rows():
    from jaxrl.core.train import final_return

    rows = {"final_return_sum": jnp.asarray([[0.0, 3.0, 10.0], [0.0, 0.0, 0.0]]),
            "final_episode_count": jnp.asarray([[0.0, 1.0, 4.0], [0.0, 0.0, 0.0]])}
    np.testing.assert_allclose(final_return(rows), [13.0 / 5.0, np.nan])


def test_learning_curve_mean_weights_each_window_by_its_updates():
    from jaxrl.core.train import learning_curve_mean

    # Windows of 3, 3 and 1 updates (7 updates, log_every 3); the middle one saw no episode.
    train = jaxrl.make_train("ppo", "CartPole-v1", total_steps=7 * 128, overrides=WEIGHTED, log_every=3)
    assert list(train.window_updates()) == [3, 3, 1]
    returns = jnp.asarray([[10.0, np.nan, 40.0], [np.nan] * 3])
    np.testing.assert_allclose(learning_curve_mean(returns, train.window_updates()), [(10 * 3 + 40 * 1) / 4, np.nan])


def test_final_return_is_the_mean_over_the_final_fraction_whatever_log_every():
    # 20 updates; the last 20% are updates 16-19, which starts inside a window of 3 (15-17).
    def run(log_every):
        train = jaxrl.make_train("ppo", "CartPole-v1", total_steps=20 * 128, overrides=WEIGHTED, log_every=log_every,
                                 final_fraction=0.2)
        return jax.jit(train)(jax.random.key(0), train.default_hparams)[1]

    per_update = run(1)
    returns, counts = np.asarray(per_update["episode_return"]), np.asarray(per_update["episode_count"])
    assert counts[16:].sum() >= 8  # enough episodes that a wrong window would show
    by_hand = np.nansum(returns[16:] * counts[16:]) / counts[16:].sum()
    assert abs(by_hand - np.nansum(returns[15:] * counts[15:]) / counts[15:].sum()) > 1e-3  # the boundary matters
    for log_every in (1, 3, 20):
        np.testing.assert_allclose(float(run(log_every)["final_return"]), by_hand, rtol=1e-6)
    with pytest.raises(jaxrl.ConfigError, match="final_fraction"):
        jaxrl.make_train("ppo", "CartPole-v1", final_fraction=0.0)


def _probe(train, key):
    """A smooth function of the hyperparameters: a fixed random projection of the final actor."""

    def score(hparams):
        state, _ = train(key, hparams)
        leaves = jax.tree.leaves(state.params["actor"])
        directions = [jax.random.normal(jax.random.fold_in(jax.random.key(1), i), x.shape) for i, x in enumerate(leaves)]
        return sum(jnp.vdot(d, x) for d, x in zip(directions, leaves))

    return score


def test_grad_through_training_matches_forward_mode_finite_differences_and_remat():
    # Three PPO updates, differentiated in reverse mode with respect to two hyperparameters at
    # once: the learning rate and one leaf of the learned objective's weight pytree. Each partial
    # derivative is checked against forward mode and central differences; the rematerialised
    # update gives the same gradient. (One program per mode: XLA compiles dominate this test.)
    train = tiny(3, lr=1e-3)
    remat = jaxrl.make_train("ppo", "CartPole-v1", total_steps=3 * 128, overrides={**WEIGHTED, "lr": 1e-3}, remat=True)
    hparams = train.default_hparams

    def at(x):  # x = (lr, scale)
        return hparams.replace(lr=x[0], objective_params={**hparams.objective_params, "scale": jnp.reshape(x[1], (1,))})

    f = lambda x, t=train: _probe(t, jax.random.key(0))(at(x))  # noqa: E731
    x0 = jnp.stack([hparams.lr, hparams.objective_params["scale"][0]]).astype(jnp.float32)
    grad = np.asarray(jax.jit(jax.grad(f))(x0))
    np.testing.assert_allclose(np.asarray(jax.jit(jax.grad(lambda x: f(x, remat)))(x0)), grad, rtol=1e-5)
    directional = jax.jit(lambda x, v: jax.jvp(f, (x,), (v,))[1])
    value = jax.jit(f)
    for i, name in enumerate(("lr", "objective weight")):
        unit = jnp.zeros(2).at[i].set(1.0)
        tangent = float(directional(x0, unit))
        assert abs(grad[i] - tangent) <= 1e-4 * abs(grad[i]), (name, grad[i], tangent)
        # Central differences with a 10% step: float32 through sampled discrete actions makes
        # smaller steps noisier, not more accurate.
        step = 0.1 * float(x0[i])
        finite = float((value(x0 + step * unit) - value(x0 - step * unit)) / (2 * step))
        assert np.sign(finite) == np.sign(grad[i]) and abs(finite - grad[i]) <= 0.1 * abs(grad[i]), (name, grad[i], finite)


def _population(train, size: int) -> tuple:
    """``size`` settings of the learning rate and of the learned objective's weights."""
    hparams = train.default_hparams
    lrs = jnp.geomspace(1e-4, 3e-3, size).astype(jnp.float32)
    weights = {
        "scale": jnp.linspace(0.5, 2.0, size, dtype=jnp.float32)[:, None],
        "kl": {"coef": jnp.linspace(0.0, 1.0, size, dtype=jnp.float32)},
    }
    return hparams.replace(lr=lrs, objective_params=weights), train.hparams_axes(lr=0, objective_params=0)


def _member(population, index):
    return population.replace(lr=population.lr[index], objective_params=jax.tree.map(lambda x: x[index], population.objective_params))


def test_vmap_over_hyperparameters_and_weight_pytrees():
    train = tiny(6, log_every=2)
    population, axes = _population(train, 8)
    key = jax.random.key(0)
    run = jax.jit(jax.vmap(train, in_axes=(None, axes)))
    _, metrics = run(key, population)
    assert metrics["final_return"].shape == (8,) and metrics["policy_loss"].shape == (8, 3)
    assert len(np.unique(np.asarray(metrics["value_loss"])[:, -1])) == 8  # every setting trained its own way
    # A member computes the same bits whatever the other members and wherever it sits.
    order = np.asarray([7, 3, 0, 5, 1, 6, 2, 4])
    _, shuffled = run(key, population.replace(lr=population.lr[order], objective_params=jax.tree.map(lambda x: x[order], population.objective_params)))
    for name in metrics:
        np.testing.assert_array_equal(np.asarray(shuffled[name]), np.asarray(metrics[name])[order], err_msg=name)
    # Trained alone, a member agrees with its value in the population to float rounding, not bit
    # for bit: XLA:CPU vectorises reductions and multiply-adds across a batch of 8 differently
    # from a batch of 1 (README, "What is bit-identical").
    for index in (0, 5):
        _, alone = jax.jit(train)(key, _member(population, index))
        for name in ("value_loss", "entropy", "episode_return", "approx_kl"):
            np.testing.assert_allclose(np.asarray(alone[name]), np.asarray(metrics[name])[index], rtol=1e-4, atol=1e-6, err_msg=name)


def test_a_toy_evolution_loop_is_one_jitted_function():
    # Three generations of a tiny antithetic evolution strategy on the learned objective's
    # weights: perturb, train the population, move the weights up the fitness gradient.
    train = tiny(2, log_every=1, lr=1e-2)
    hparams = train.default_hparams
    axes = train.hparams_axes(objective_params=0)

    @jax.jit
    def evolve(key, weights):
        fitness_history = []
        for generation in range(3):
            key, noise_key, train_key = jax.random.split(key, 3)
            noise = jax.tree.map(lambda w: jax.random.normal(jax.random.fold_in(noise_key, w.size), (2, *w.shape)), weights)
            noise = jax.tree.map(lambda n: jnp.concatenate([n, -n]), noise)  # antithetic pairs
            members = jax.tree.map(lambda w, n: w + 0.5 * n, weights, noise)
            _, metrics = jax.vmap(train, in_axes=(None, axes))(train_key, hparams.replace(objective_params=members))
            # A continuous stand-in for the return, which two updates barely move: the last
            # window's policy entropy.
            fitness = metrics["entropy"][:, -1]
            centred = fitness - fitness.mean()
            weights = jax.tree.map(lambda w, n: w + 0.01 * jnp.tensordot(centred, n, axes=1) / 4, weights, noise)
            fitness_history.append(fitness)
        return weights, jnp.stack(fitness_history)

    weights, fitness = evolve(jax.random.key(0), hparams.objective_params)
    assert fitness.shape == (3, 4) and np.isfinite(np.asarray(fitness)).all()
    assert len(np.unique(np.asarray(fitness[0]))) == 4  # the members differ
    assert not np.array_equal(np.asarray(weights["scale"]), [1.0])  # and the weights moved


def test_env_params_per_run():
    train = tiny(4, log_every=2)
    key = jax.random.key(0)
    hparams = train.default_hparams
    default = train.default_env_params
    gravities = jnp.asarray([9.8, 5.0, 15.0])
    params = jax.tree.map(lambda x: jnp.broadcast_to(x, (3, *jnp.shape(x))), default).replace(gravity=gravities)
    states, metrics = jax.jit(jax.vmap(train, in_axes=(None, None, 0)))(key, hparams, params)
    # Each run keeps its own parameters in its state, one set per env copy.
    np.testing.assert_array_equal(np.asarray(states.env.params.gravity), np.repeat(gravities[:, None], 4, axis=1))
    losses = np.asarray(metrics["value_loss"])
    assert not np.array_equal(losses[1], losses[2]) and not np.array_equal(losses[0], losses[1])
    # Given the default parameters explicitly, a run is the ordinary run, bit for bit.
    _, ordinary = jax.jit(train)(key, hparams)
    _, explicit = jax.jit(train)(key, hparams, default)
    for name in ordinary:
        np.testing.assert_array_equal(np.asarray(explicit[name]), np.asarray(ordinary[name]), err_msg=name)
    # One set per env copy: copies may differ within a run.
    per_copy = jax.tree.map(lambda x: jnp.broadcast_to(x, (4, *jnp.shape(x))), default).replace(gravity=jnp.asarray([5.0, 8.0, 11.0, 14.0]))
    state = jax.jit(train.init)(key, hparams, per_copy)
    np.testing.assert_array_equal(np.asarray(state.env.params.gravity), [5.0, 8.0, 11.0, 14.0])


def test_shard_map_over_runs():
    train = tiny(2)
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:1]), ("runs",))
    runs = jax.sharding.PartitionSpec("runs")
    keys = jax.random.split(jax.random.key(0), 2)
    vmapped = jax.vmap(train, in_axes=(0, None))
    sharded = jax.shard_map(vmapped, mesh=mesh, in_specs=(runs, jax.sharding.PartitionSpec()), out_specs=runs, check_vma=False)
    _, a = jax.jit(sharded)(keys, train.default_hparams)
    _, b = jax.jit(vmapped)(keys, train.default_hparams)
    for name in a:
        np.testing.assert_array_equal(np.asarray(a[name]), np.asarray(b[name]), err_msg=name)


def test_collect_then_learn_is_one_update_and_reports_per_env_scores():
    train = tiny(2)
    agent, hparams = train.agent, train.default_hparams
    state = jax.jit(train.init)(jax.random.key(0), hparams)
    step = jnp.int32(0)
    updated, metrics = jax.jit(agent.update)(state, hparams, step)

    @jax.jit
    def halves(state):
        state, batch = agent.collect(state, hparams, step)
        return agent.learn(state, hparams, batch, step)

    again, halves_metrics = halves(state)
    for a, b in zip(jax.tree.leaves(jax.tree.map(jax.random.key_data, updated.key)), jax.tree.leaves(jax.tree.map(jax.random.key_data, again.key))):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(jax.tree.leaves(updated.params), jax.tree.leaves(again.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    per_env = metrics["per_env"]
    assert set(per_env) >= {"reward", "done", "episode_return", "value", "advantage", "target"}
    assert all(v.shape == (32, 4) for v in per_env.values())
    np.testing.assert_allclose(per_env["target"], per_env["advantage"] + per_env["value"], rtol=1e-6, atol=1e-6)


def test_the_weighted_objective_at_its_ppo_weights_is_ppo():
    # The learned objective's handcrafted special case: scale 1 and no KL term is PPO's clip.
    weighted = tiny(3)
    clip = jaxrl.make_train("ppo", "CartPole-v1", total_steps=3 * 128, overrides=TINY)
    _, a = jax.jit(weighted)(jax.random.key(0), weighted.default_hparams)
    _, b = jax.jit(clip)(jax.random.key(0), clip.default_hparams)
    for name in b:
        np.testing.assert_allclose(np.asarray(a[name]), np.asarray(b[name]), rtol=1e-6, atol=1e-7, err_msg=name)


# --------------------------------------------------------------------------------------------
# The examples of docs/guide.md: a user-written objective, and PPO with plain SGD


@register_objective("spo")
def simple_policy_optimisation(terms, hparams, progress):
    # Xie et al. 2024: a quadratic penalty on the ratio's distance from 1 instead of a clip.
    ratio, advantage = terms.ratio, terms.advantage
    return -(ratio * advantage - jnp.abs(advantage) / (2 * hparams.clip_eps) * (ratio - 1) ** 2).mean(), {}


@register_optimizer("sgd-momentum")
def sgd_momentum(args):
    return optax.sgd(args.lr, momentum=0.9)


@pytest.mark.parametrize("overrides", [{"objective": "spo"}, {"optimizer": "sgd-momentum", "lr": 0.01}, {"optimizer": "sgd", "lr": 0.05}])
def test_guide_examples_learn(overrides):
    result = jaxrl.train("ppo", "CartPole-v1", num_seeds=2, overrides={"total_steps": 40_960, **overrides})
    # Random play lasts about 22 steps; PPO's own defaults pass 100 at this budget.
    assert np.mean(result.final_returns) > 60, result.final_returns
    assert math.isfinite(result.metrics["policy_loss"][0, -1])
