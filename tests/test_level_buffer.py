"""The PLR level buffer against hand-computed values: rank prioritisation with the
temperature as a power, top-k as a softmax within the k best, staleness, their mixture, guarded ranks (empty slots never sampled),
insertion into empty slots, replacement of the lowest score only by a higher one, the
duplicate check, and sampling frequencies."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.curricula import buffer as lb
from jaxrl.curricula.scores import level_scores


def _buffer(scores, filled, last_seen=None):
    capacity = len(scores)
    buffer = lb.empty_buffer(jnp.zeros(2), capacity)
    return buffer.replace(
        levels=jnp.arange(capacity * 2, dtype=jnp.float32).reshape(capacity, 2),
        scores=jnp.asarray(scores, jnp.float32),
        filled=jnp.asarray(filled),
        last_seen=jnp.asarray(last_seen if last_seen is not None else [0] * capacity, jnp.int32),
    )


def test_rank_prioritisation_with_temperature():
    b = _buffer([3.0, 1.0, 2.0, 9.0], [True, True, True, False])  # slot 3 is empty: ignored though high
    p = lb.score_weights(b.scores, b.filled, 1.0, "rank", 1)
    np.testing.assert_allclose(p, np.array([1, 1 / 3, 1 / 2, 0]) / (11 / 6), rtol=1e-6)
    p = lb.score_weights(b.scores, b.filled, 0.5, "rank", 1)  # h^(1/beta) = h^2
    np.testing.assert_allclose(p, np.array([36, 4, 9, 0]) / 49, rtol=1e-6)


def test_topk_prioritisation_is_a_softmax_of_scores_within_the_top_k():
    b = _buffer([3.0, 1.0, 2.0, 9.0, 2.5], [True, True, True, False, True])  # slot 3 empty
    e3, e2, e25 = np.exp(3.0), np.exp(2.0), np.exp(2.5)
    p = lb.score_weights(b.scores, b.filled, 0.3, "topk", 2)  # the top 2 filled: 3.0 and 2.5
    np.testing.assert_allclose(p, [e3 / (e3 + e25), 0, 0, 0, e25 / (e3 + e25)], rtol=1e-6)
    p = lb.score_weights(b.scores, b.filled, 0.3, "topk", 3)  # the temperature is rank's only
    np.testing.assert_allclose(p, np.array([e3, 0, e2, 0, e25]) / (e3 + e2 + e25), rtol=1e-6)
    p = lb.score_weights(b.scores, b.filled, 1.0, "topk", 10)  # k above the filled count: all filled
    np.testing.assert_allclose(p, np.array([e3, np.exp(1.0), e2, 0, e25]) / (e3 + np.exp(1.0) + e2 + e25), rtol=1e-6)


def test_a_level_replayed_in_several_envs_gets_the_mean_of_their_scores():
    b = _buffer([3.0, 1.0, 2.0], [True, True, True], last_seen=[1, 1, 1])
    b = lb.update_seen(b, jnp.array([2, 0, 2, 2]), jnp.array([0.3, 0.7, 0.6, 0.0]), jnp.array([0.1, 0.5, 0.9, 0.2]), jnp.int32(5))
    np.testing.assert_allclose(b.scores, [0.7, 1.0, 0.3], rtol=1e-6)
    np.testing.assert_array_equal(b.last_seen, [5, 1, 5])
    np.testing.assert_allclose(b.max_returns, [0.5, 0.0, 0.9])


def test_staleness_and_the_mixture():
    b = _buffer([3.0, 1.0, 2.0, 0.0], [True, True, True, False], last_seen=[0, 5, 8, 0])
    np.testing.assert_allclose(lb.staleness_weights(b.last_seen, b.filled, jnp.int32(10)), np.array([10, 5, 2, 0]) / 17, rtol=1e-6)
    # every level seen this update: uniform over the filled ones
    np.testing.assert_allclose(lb.staleness_weights(jnp.array([4, 4, 4, 0]), b.filled, jnp.int32(4)), [1 / 3, 1 / 3, 1 / 3, 0])
    mixed = lb.replay_probabilities(b, jnp.int32(10), 1.0, 0.3, "rank")
    expected = 0.7 * np.array([6, 2, 3, 0]) / 11 + 0.3 * np.array([10, 5, 2, 0]) / 17
    np.testing.assert_allclose(mixed, expected, rtol=1e-6)
    assert abs(float(mixed.sum()) - 1) < 1e-6


def test_sampling_frequencies_match_the_probabilities():
    b = _buffer([3.0, 1.0, 2.0, 0.0], [True, True, True, False], last_seen=[0, 5, 8, 0])
    p = lb.replay_probabilities(b, jnp.int32(10), 1.0, 0.3, "rank")
    indices, levels = lb.sample(jax.random.key(0), b, 40_000, p)
    freq = np.bincount(np.asarray(indices), minlength=4) / 40_000
    np.testing.assert_allclose(freq, p, atol=0.01)
    assert freq[3] == 0
    np.testing.assert_array_equal(levels, np.asarray(b.levels)[np.asarray(indices)])


def test_insertion_replacement_and_duplicates():
    b = lb.empty_buffer(jnp.zeros(2), 3)
    levels = jnp.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    b = lb.insert(b, levels, jnp.array([0.5, 0.2, 0.9]), jnp.zeros(3), jnp.int32(1))
    assert bool(b.filled.all())
    np.testing.assert_allclose(b.scores, [0.5, 0.2, 0.9])
    # full: a lower score than the minimum (0.2) is rejected, a higher one replaces slot 1
    b = lb.insert(b, jnp.array([[4.0, 4.0], [5.0, 5.0]]), jnp.array([0.1, 0.3]), jnp.zeros(2), jnp.int32(2))
    np.testing.assert_array_equal(b.levels, [[1, 1], [5, 5], [3, 3]])
    np.testing.assert_allclose(b.scores, [0.5, 0.3, 0.9])
    np.testing.assert_array_equal(b.last_seen, [1, 2, 1])
    # a duplicate is not inserted again: its score (and last-seen update) is refreshed
    b = lb.insert(b, jnp.array([[3.0, 3.0]]), jnp.array([0.05]), jnp.array([0.7]), jnp.int32(3))
    np.testing.assert_array_equal(b.levels, [[1, 1], [5, 5], [3, 3]])
    np.testing.assert_allclose(b.scores, [0.5, 0.3, 0.05])
    np.testing.assert_array_equal(b.last_seen, [1, 2, 3])
    np.testing.assert_allclose(b.max_returns, [0, 0, 0.7])
    # masked levels are not inserted
    b2 = lb.insert(b, jnp.array([[7.0, 7.0]]), jnp.array([5.0]), jnp.zeros(1), jnp.int32(4), accept=jnp.array([False]))
    np.testing.assert_array_equal(b2.levels, b.levels)
    b3 = lb.update_seen(b, jnp.array([0]), jnp.array([0.01]), jnp.array([0.4]), jnp.int32(9))
    np.testing.assert_allclose(b3.scores, [0.01, 0.3, 0.05])
    np.testing.assert_array_equal(b3.last_seen, [9, 2, 3])
    np.testing.assert_allclose(b3.max_returns, [0.4, 0, 0.7])


def test_level_scores_by_hand():
    per_env = {
        "advantage": jnp.array([[1.0, -2.0], [-1.0, 4.0]]),
        "value": jnp.array([[0.2, 0.5], [0.4, 0.1]]),
        "episode_return": jnp.array([[0.0, 0.0], [0.8, 0.0]]),
        "done": jnp.array([[False, False], [True, False]]),
        "terminated": jnp.array([[False, False], [True, False]]),
    }
    np.testing.assert_allclose(level_scores("pvl", per_env, jnp.zeros(2)), [0.5, 2.0])
    np.testing.assert_allclose(level_scores("l1", per_env, jnp.zeros(2)), [1.0, 3.0])
    # MaxMC: best return 0.8 on env 0 (seen here), 0.6 known from before on env 1
    np.testing.assert_allclose(level_scores("maxmc", per_env, jnp.array([0.0, 0.6])), [0.8 - 0.3, 0.6 - 0.3], rtol=1e-6)


def test_paired_regret_by_hand():
    from jaxrl.curricula.scores import paired_regret

    protagonist = {"done": jnp.array([[True, False], [True, False]]), "episode_return": jnp.array([[0.2, 0.0], [0.6, 0.0]])}
    antagonist = {"done": jnp.array([[True, False], [True, True]]), "episode_return": jnp.array([[0.9, 0.0], [0.5, 0.7]])}
    # env 0: best 0.9 - mean 0.4; env 1: best 0.7 - 0 (the protagonist finished no episode)
    np.testing.assert_allclose(paired_regret(protagonist, antagonist), [0.5, 0.7], rtol=1e-6)
    none = {"done": jnp.zeros((2, 2), bool), "episode_return": jnp.zeros((2, 2))}
    np.testing.assert_allclose(paired_regret(protagonist, none), [-0.4, 0.0], rtol=1e-6)
