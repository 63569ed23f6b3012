"""Evolved policies (jaxrl.algorithms.evolution): a GA genome rebuilt from its seeds is
bit-identical to the weights evolution carried, the elite survives unmutated, truncation 0 is
random search, OpenAI-ES improves a toy quadratic (sign test over seeds), both learn CartPole,
sigma is traced, runs resume exactly from a checkpoint, and bad settings are one line, exit 2."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl
from jaxrl.algorithms.evolution import Policies, rebuild
from jaxrl.analysis.evaluation import load_run
from jaxrl.cli import main
from jaxrl.core import train as core_train
from jaxrl.meta.es import make_strategy

TINY = {"population": 8, "truncation": 3, "elite_candidates": 3, "elite_episodes": 2, "episode_steps": 40,
        "hidden_sizes": (8,), "total_steps": 40 * (8 + 6) * 6}


def _ga(**overrides):
    train = jaxrl.make_train("ga", "CartPole-v1", overrides={**TINY, **overrides})
    return train, train.agent, train.default_hparams


def _same(a, b) -> bool:
    data = lambda x: np.asarray(jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x)  # noqa: E731
    return all(jax.tree.leaves(jax.tree.map(lambda x, y: np.array_equal(data(x), data(y)), a, b)))


def _member(tree, index):
    return jax.tree.map(lambda x: x[index], tree)


def test_genomes_rebuilt_from_their_seeds_are_bit_identical():
    train, agent, hparams = _ga()
    state, _ = jax.jit(train)(jax.random.key(0), hparams)
    assert int(state.lengths.max()) > 2  # some members carry several mutations
    init = Policies(train.config, train.env).init
    rebuilt = jax.jit(jax.vmap(lambda g, n: rebuild(init, g, n, hparams.sigma)))(state.genomes, state.lengths)
    assert _same(rebuilt, state.params)


def test_the_elite_survives_unmutated_and_the_children_are_mutated_parents():
    train, agent, hparams = _ga()
    state = jax.jit(train.init)(jax.random.key(1), hparams)
    state, _ = jax.jit(lambda s: agent.update(s, hparams, jnp.int32(0)))(state)  # one generation first
    before, batch = jax.jit(lambda s: agent.collect(s, hparams, jnp.int32(1)))(state)
    fitness, elite, _ = batch
    assert float(fitness[elite]) >= np.sort(np.asarray(fitness))[-TINY["elite_candidates"]]  # one of the candidates
    after, metrics = jax.jit(lambda s, b: agent.learn(s, hparams, b, jnp.int32(1)))(before, batch)
    assert _same(_member(after.params, 0), _member(before.params, int(elite)))
    np.testing.assert_array_equal(after.genomes[0], before.genomes[int(elite)])
    assert float(metrics["elite_fitness"]) == float(fitness[elite])
    # Every child is one parent from the top T plus one mutation: one more seed than it.
    top = np.argsort(-np.asarray(fitness))[: TINY["truncation"]]
    for child in range(1, TINY["population"]):
        length = int(after.lengths[child])
        parents = [int(p) for p in top if np.array_equal(np.asarray(before.genomes[p][: length - 1]), np.asarray(after.genomes[child][: length - 1]))
                   and int(before.lengths[p]) == length - 1]
        assert parents, f"child {child} descends from no parent of the top {TINY['truncation']}"
        assert not _same(_member(after.params, child), _member(before.params, parents[0]))


def test_truncation_zero_is_random_search():
    train, agent, hparams = _ga(truncation=0)
    init = Policies(train.config, train.env).init
    state, _ = jax.jit(train)(jax.random.key(2), hparams)
    assert np.asarray(state.lengths[1:]).tolist() == [1] * (TINY["population"] - 1)
    for child in range(1, TINY["population"]):
        assert _same(_member(state.params, child), init(jax.random.key(state.genomes[child, 0])))


def test_open_es_improves_a_toy_quadratic_on_most_seeds():
    """Sign test: with no effect, each seed improves with probability 1/2."""
    target = jnp.linspace(-1.0, 1.0, 10)
    es = make_strategy("open_es", {"x": jnp.zeros(10)}, population=16, sigma=0.1, lr=0.05, traced=True)

    def run(key):
        def generation(state, key):
            ask_key, tell_key = jax.random.split(key)
            members, state = es.ask(ask_key, es.set_hyperparams(state, 0.1, 0.05))
            returns = -jax.vmap(lambda m: jnp.sum((m["x"] - target) ** 2))(members)
            return es.tell(tell_key, members, returns, state)[0], None

        init_key, key = jax.random.split(key)
        state = es.init(init_key, {"x": jnp.zeros(10)})
        state, _ = jax.lax.scan(generation, state, jax.random.split(key, 30))
        return -jnp.sum((es.mean(state)["x"] - target) ** 2)

    finals = np.asarray(jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(0), 20)))
    improved = int((finals > -float(jnp.sum(target**2))).sum())
    p_value = sum(math.comb(20, k) for k in range(improved, 21)) / 2**20
    assert p_value < 1e-3, (improved, finals)


@pytest.mark.parametrize("algorithm, steps, threshold", [("es", 800_000, 300.0), ("ga", 1_000_000, 150.0)])
def test_evolved_policies_learn_cartpole(algorithm, steps, threshold):
    result = jaxrl.train(algorithm, "CartPole-v1", overrides={"total_steps": steps}, num_seeds=2)
    assert float(np.mean(result.final_returns)) > threshold, result.final_returns  # random: about 22


def test_sigma_is_traced_not_compiled_in():
    jaxrl.train("ga", "CartPole-v1", overrides=TINY)
    before = core_train.trace_count()
    jaxrl.train("ga", "CartPole-v1", overrides={**TINY, "sigma": 0.2})
    assert core_train.trace_count() == before


@pytest.mark.parametrize("algorithm, overrides", [
    ("ga", TINY),
    ("es", {"population": 8, "episode_steps": 40, "hidden_sizes": (8,), "total_steps": 40 * 8 * 6}),
])
def test_evolved_policies_resume_exactly_from_a_checkpoint(tmp_path, algorithm, overrides):
    steps_per_generation = overrides["total_steps"] // 6
    full = jaxrl.train_run(algorithm, "CartPole-v1", tmp_path / "run", overrides=overrides, num_seeds=2,
                           checkpoint_every=3 * steps_per_generation, log_every=1)
    middle = load_run(tmp_path / "run", step=3 * steps_per_generation)
    resumed = jaxrl.train(algorithm, "CartPole-v1", num_seeds=2, overrides=overrides, state=middle.state,
                          start_window=middle.metadata["windows_done"], log_every=1)
    assert _same(resumed.state, full.state)
    np.testing.assert_array_equal(resumed.metrics["episode_return"], full.metrics["episode_return"][:, 3:])
    assert main(["eval", str(tmp_path / "run"), "--episodes", "2"]) == 0  # the policy (ES's mean, GA's elite) loads and acts


@pytest.mark.parametrize("argv, message", [
    (["ga", "--set", "population=8", "--set", "truncation=9"], "truncation must be in [0, population=8]"),
    (["es", "--set", "population=7"], "population must be even"),
    (["ga", "--set", "sigma=-1"], "sigma must be positive"),
    (["es", "--total-steps", "100"], "is below one generation"),
])
def test_bad_settings_are_one_line_and_exit_2(tmp_path, capsys, argv, message):
    assert main(["train", *argv, "--env", "CartPole-v1", "--quiet", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
