"""The level buffer of Prioritized Level Replay (Jiang et al., 2021, "Prioritized Level Replay";
and "Replay-Guided Adversarial Environment Design", 2021), as data in the run state.

A buffer of ``capacity`` slots holds levels (a pytree, leaves [capacity, ...]), their scores,
the update at which each was last sampled or scored, the best return seen on each (for MaxMC),
and which slots are filled. Replay samples a level with probability

    P(l_i) = (1 - rho) P_S(l_i) + rho P_C(l_i)

where P_S comes from the scores (rank: h_i = 1 / rank_i, then h_i^(1/beta) normalised, beta the
temperature; top-k, as JaxUED's level sampler: a softmax of the scores over the k best levels, 0
for the others, the temperature unused) and P_C from staleness,
(c - C_i) / sum_j (c - C_j), c the current update and C_i the update level i was last seen.
Ranks are guarded: only filled slots are ranked and only they have probability; when every
filled level was seen this very update (all staleness 0), P_C is uniform over them.

Written here rather than taken from a library: the public UED code does not install on today's
JAX, and flashbax's buffers are FIFO/uniform or sum-tree prioritised, not score-replaced levels.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class LevelBuffer:
    levels: Any
    scores: jax.Array  # [capacity] float32
    last_seen: jax.Array  # [capacity] int32: update index of the last sample or score
    max_returns: jax.Array  # [capacity] float32: the best episode return seen on the level
    filled: jax.Array  # [capacity] bool
    stats: Any = None  # the environment's diagnostics of each level (a dict of [capacity] arrays), or None

    @property
    def capacity(self) -> int:
        return int(self.scores.shape[0])

    @property
    def size(self) -> jax.Array:
        return self.filled.sum()


def empty_buffer(example_level: Any, capacity: int, example_stats: Any = None) -> LevelBuffer:
    """A buffer of ``capacity`` empty slots for levels shaped like ``example_level`` (and their
    diagnostics shaped like ``example_stats``, if given)."""
    def slots(example):
        return jax.tree.map(lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype), example)

    return LevelBuffer(
        levels=slots(example_level),
        scores=jnp.zeros(capacity, jnp.float32),
        last_seen=jnp.zeros(capacity, jnp.int32),
        max_returns=jnp.zeros(capacity, jnp.float32),
        filled=jnp.zeros(capacity, bool),
        stats=None if example_stats is None else slots(example_stats),
    )


def score_weights(scores: jax.Array, filled: jax.Array, temperature: jax.Array, prioritization: str, top_k: int) -> jax.Array:
    """P_S over the slots (zero on empty ones): rank prioritisation with the temperature as a
    power 1 / beta, or top-k (a softmax of the scores within the ``top_k`` best filled slots)."""
    masked = jnp.where(filled, scores, -jnp.inf)
    order = jnp.argsort(-masked, stable=True)  # best first; empty slots last
    ranks = jnp.zeros_like(order).at[order].set(jnp.arange(1, scores.shape[0] + 1))
    if prioritization == "rank":
        h = jnp.where(filled, 1.0 / ranks.astype(jnp.float32), 0.0) ** (1.0 / temperature)
    elif prioritization == "topk":
        top = filled & (ranks <= top_k)
        h = jnp.where(top, jnp.exp(scores - jnp.max(jnp.where(top, scores, -jnp.inf))), 0.0)
    else:
        raise ValueError(f"unknown prioritization {prioritization!r}; choose rank or topk")
    return h / jnp.maximum(h.sum(), 1e-30)


def staleness_weights(last_seen: jax.Array, filled: jax.Array, now: jax.Array) -> jax.Array:
    """P_C over the slots: proportional to updates since last seen, uniform when all are 0."""
    stale = jnp.where(filled, (now - last_seen).astype(jnp.float32), 0.0)
    uniform = filled.astype(jnp.float32) / jnp.maximum(filled.sum(), 1)
    total = stale.sum()
    return jnp.where(total > 0, stale / jnp.maximum(total, 1e-30), uniform)


def replay_probabilities(buffer: LevelBuffer, now: jax.Array, temperature: Any, staleness: Any,
                         prioritization: str = "rank", top_k: int = 1) -> jax.Array:
    """P(l_i) = (1 - rho) P_S + rho P_C for every slot (``staleness`` is rho)."""
    p_s = score_weights(buffer.scores, buffer.filled, temperature, prioritization, top_k)
    p_c = staleness_weights(buffer.last_seen, buffer.filled, now)
    return (1.0 - staleness) * p_s + staleness * p_c


def sample(key: jax.Array, buffer: LevelBuffer, count: int, probabilities: jax.Array) -> tuple[jax.Array, Any]:
    """``count`` slot indices drawn with replacement from ``probabilities``, and their levels."""
    indices = jax.random.choice(key, buffer.capacity, (count,), replace=True, p=probabilities)
    return indices, jax.tree.map(lambda x: x[indices], buffer.levels)


def update_seen(buffer: LevelBuffer, indices: jax.Array, scores: jax.Array, max_returns: jax.Array, now: jax.Array) -> LevelBuffer:
    """New scores for replayed levels, seen at update ``now``; best returns kept. A level replayed
    in several environments of one update gets the mean of their scores (a defined result, where
    a scatter of duplicates would keep an arbitrary one; JaxUED's sequential writes keep the last)."""
    capacity = buffer.capacity
    total = jnp.zeros(capacity, jnp.float32).at[indices].add(scores)
    count = jnp.zeros(capacity, jnp.float32).at[indices].add(1.0)
    replayed = count > 0
    return buffer.replace(
        scores=jnp.where(replayed, total / jnp.maximum(count, 1.0), buffer.scores),
        last_seen=jnp.where(replayed, now, buffer.last_seen),
        max_returns=buffer.max_returns.at[indices].max(max_returns),
    )


def _same_level(buffer_levels: Any, level: Any) -> jax.Array:
    """[capacity] bool: slots holding exactly ``level``."""
    equal = jax.tree.map(lambda b, x: (b == x).reshape(b.shape[0], -1).all(axis=1), buffer_levels, level)
    return jax.tree.reduce(jnp.logical_and, equal)


def insert(buffer: LevelBuffer, levels: Any, scores: jax.Array, max_returns: jax.Array, now: jax.Array,
           accept: jax.Array | None = None, stats: Any = None) -> LevelBuffer:
    """Inserts new levels (leaves [n, ...]) one after another: a level already in the buffer
    only gets the new score (the duplicate check); otherwise it takes an empty slot, or replaces
    the lowest-scoring level when its score is higher. ``accept`` [n] masks levels not to insert;
    ``stats`` (leaves [n]) are the levels' diagnostics, for a buffer that keeps them."""
    accept = jnp.ones(scores.shape, bool) if accept is None else accept

    def one(buffer, item):
        level, score, best, ok, level_stats = item
        duplicate = _same_level(buffer.levels, level) & buffer.filled
        is_duplicate = duplicate.any()
        lowest = jnp.argmin(jnp.where(buffer.filled, buffer.scores, -jnp.inf))  # an empty slot first
        replace = ~buffer.filled[lowest] | (score > buffer.scores[lowest])
        slot = jnp.where(is_duplicate, jnp.argmax(duplicate), lowest)
        write = ok & (is_duplicate | replace)

        def put(old, new):
            return old.at[slot].set(jnp.where(write, new, old[slot]))

        prior_best = jnp.where(is_duplicate, buffer.max_returns[slot], -jnp.inf)
        return LevelBuffer(
            levels=jax.tree.map(put, buffer.levels, level),
            scores=put(buffer.scores, score),
            last_seen=put(buffer.last_seen, now),
            max_returns=put(buffer.max_returns, jnp.maximum(best, prior_best)),
            filled=put(buffer.filled, True),
            stats=None if buffer.stats is None else jax.tree.map(put, buffer.stats, level_stats),
        ), None

    buffer, _ = jax.lax.scan(one, buffer, (levels, scores, max_returns, accept, stats))
    return buffer
