"""ALP-GMM (Portelas, Colas, Hofmann and Oudeyer, 2019, "Teacher algorithms for curriculum
learning of Deep RL in continuously parameterized environments") as pure functions of a run
state, so that the teacher is compiled, vmapped over seeds and checkpointed with its student.

* Every finished episode is a record (task, return normalised to [0, 1] by the run's return
  range). Its absolute learning progress is |return - return of the nearest earlier task|
  (Euclidean, one neighbour, over the whole kept history and the earlier records of the same
  update, taken in env-copy order); 0 while at most 5 records precede it, as in the reference
  code.
* Once ``fit_rate`` records exist, and again every ``fit_rate`` records, Gaussian mixtures of
  ``min_components``..``max_components`` full-covariance components are fitted by EM to the
  newest ``fit_rate`` (task, ALP) rows and the one of lowest AIC kept (``jaxrl.curricula.gmm``).
  The check runs at the end of each update, so a fit sees the newest ``fit_rate`` rows then
  (the reference fits on the record that crosses the multiple).
* Tasks are drawn by ``task_space.sample_task``: uniform with probability ``random_ratio``
  (and always before the first fit), otherwise from a component chosen in proportion to its
  mean ALP.

Everything is in unit-cube task coordinates (each parameter's interval mapped onto [0, 1]), not
the parameters' own units as in the reference: with parameters of different scales the nearest
neighbour and the mixture would otherwise be dominated by the widest one.

Every fit is logged (``FitLog``, the first ``log_fits`` of them): the mixture, and the mean
return of the last ``reward_window`` episodes drawn from its components of ALP above
``alp_threshold`` while it was in use, as the reference's AGAIN measures it (its expert
curricula are read from this log; ``jaxrl.curricula.again``). A fit that fails (a NaN in every
candidate mixture) keeps the previous mixture.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from jax.custom_batching import custom_vmap

from jaxrl.curricula import gmm
from jaxrl.curricula.task_space import TaskSampler

MIN_PRIOR = 6  # a record's ALP counts once at least this many records precede it (reference: > 5)


@struct.dataclass
class History:
    values: jax.Array  # [H, dim] unit-cube tasks (a ring: the newest H records)
    returns: jax.Array  # [H] normalised returns
    alp: jax.Array  # [H]
    count: jax.Array  # [] records ever added


@struct.dataclass
class FitLog:
    means: jax.Array  # [F, K, dim + 1]
    covariances: jax.Array  # [F, K, dim + 1, dim + 1]
    active: jax.Array  # [F, K]
    reward: jax.Array  # [F] mean normalised return of the last W episodes from its high-ALP components
    recent: jax.Array  # [W] those returns for the mixture in use (a ring)
    written: jax.Array  # [] returns written into ``recent`` since that mixture was fitted
    count: jax.Array  # [] fits made (beyond F they are counted, not kept)


@struct.dataclass
class Teacher:
    history: History
    mixture: gmm.Mixture
    log: FitLog

    @property
    def fitted(self) -> jax.Array:
        return self.log.count > 0


def init_teacher(dim: int, history_size: int, max_components: int, log_fits: int, reward_window: int) -> Teacher:
    d1, k = dim + 1, max_components
    history = History(jnp.zeros((history_size, dim)), jnp.zeros(history_size), jnp.zeros(history_size), jnp.int32(0))
    log = FitLog(jnp.zeros((log_fits, k, d1)), jnp.broadcast_to(jnp.eye(d1), (log_fits, k, d1, d1)),
                 jnp.zeros((log_fits, k), bool), jnp.zeros(log_fits), jnp.zeros(reward_window), jnp.int32(0), jnp.int32(0))
    return Teacher(history, gmm.empty_mixture(k, d1), log)


def ring_slots(written: jax.Array, keep: jax.Array, size: int) -> jax.Array:
    """Where the entries marked by ``keep`` go, in order, in a ring of ``size`` that has had
    ``written`` values (``size``, out of range, for the others: writes with mode="drop" skip them)."""
    return jnp.where(keep, (written + jnp.cumsum(keep) - 1) % size, size)


def append_ring(ring: jax.Array, written: jax.Array, values: jax.Array, keep: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``values`` where ``keep`` appended in order to a ring holding the newest ``len(ring)``;
    ``written`` counts every value ever appended (the ring holds min(written, len) of them)."""
    slot = ring_slots(written, keep, ring.shape[0])
    return ring.at[slot].set(values, mode="drop"), written + keep.sum().astype(jnp.int32)


def ring_mean(ring: jax.Array, written: jax.Array) -> jax.Array:
    filled = jnp.arange(ring.shape[0]) < written
    return jnp.where(filled, ring, 0.0).sum() / jnp.maximum(filled.sum(), 1)


def absolute_learning_progress(history: History, values: jax.Array, returns: jax.Array, valid: jax.Array) -> jax.Array:
    """[N] ALP of N new records (``valid`` marks the real ones), each against the nearest of the
    history and of the valid records before it in the batch."""
    size, n = history.returns.shape[0], returns.shape[0]
    kept = jnp.arange(size) < jnp.minimum(history.count, size)
    to_history = jnp.where(kept[None], ((values[:, None] - history.values[None]) ** 2).sum(-1), jnp.inf)
    earlier = (jnp.arange(n)[None, :] < jnp.arange(n)[:, None]) & valid[None, :]
    to_batch = jnp.where(earlier, ((values[:, None] - values[None]) ** 2).sum(-1), jnp.inf)
    nearest = jnp.argmin(jnp.concatenate([to_history, to_batch], axis=1), axis=1)
    neighbour_return = jnp.concatenate([history.returns, returns])[nearest]
    prior = history.count + jnp.cumsum(valid) - valid
    return jnp.where(valid & (prior >= MIN_PRIOR), jnp.abs(returns - neighbour_return), 0.0)


def add_records(history: History, values: jax.Array, returns: jax.Array, alp: jax.Array, valid: jax.Array) -> History:
    """The valid records appended in order (the oldest overwritten once the ring is full)."""
    slot = ring_slots(history.count, valid, history.returns.shape[0])
    return History(history.values.at[slot].set(values, mode="drop"), history.returns.at[slot].set(returns, mode="drop"),
                   history.alp.at[slot].set(alp, mode="drop"), history.count + valid.sum().astype(jnp.int32))


def newest(history: History, n: int) -> jax.Array:
    """[n, dim + 1] the newest ``n`` (task, ALP) rows, oldest first."""
    slots = (history.count - n + jnp.arange(n)) % history.returns.shape[0]
    return jnp.concatenate([history.values[slots], history.alp[slots, None]], axis=1)


def observe(teacher: Teacher, key: jax.Array, values: jax.Array, origins: jax.Array, returns: jax.Array,
            valid: jax.Array, config: Any, fits: bool = True) -> tuple[Teacher, dict[str, jax.Array]]:
    """The teacher after the records of one update (``origins``: the sampler's component of each,
    its own mixture's components first), refitted when the record count crossed a multiple of
    ``config.fit_rate`` (under ``vmap``, in the updates where some seed is due: ``cond_any``),
    unless ``fits`` is False (a uniform teacher keeps the history for its diagnostics only)."""
    alp = absolute_learning_progress(teacher.history, values, returns, valid)
    history = add_records(teacher.history, values, returns, alp, valid)
    k = teacher.mixture.weights.shape[0]
    own = jnp.clip(origins, 0, k - 1)
    high = (origins >= 0) & (origins < k) & teacher.mixture.active[own] \
        & (teacher.mixture.means[own, -1] > config.alp_threshold) & valid
    log = teacher.log
    recent, written = append_ring(log.recent, log.written, returns, high)
    current = jnp.where(log.count > 0, log.count - 1, log.reward.shape[0])  # out of range before a fit: dropped
    log = log.replace(recent=recent, written=written,
                      reward=log.reward.at[current].set(ring_mean(recent, written), mode="drop"))
    teacher = teacher.replace(history=history, log=log)
    old, new = history.count - valid.sum(), history.count
    due = (new >= config.fit_rate) & (new // config.fit_rate > old // config.fit_rate)

    def fit(operand: tuple[Teacher, jax.Array]) -> tuple[Teacher, jax.Array]:
        teacher, key = operand
        mixture, _ = gmm.fit_best(key, newest(teacher.history, config.fit_rate), min_components=config.min_components,
                                  max_components=config.max_components)
        finite = jnp.isfinite(mixture.means).all() & jnp.isfinite(mixture.covariances).all()
        mixture = jax.tree.map(lambda new, old: jnp.where(finite, new, old), mixture, teacher.mixture)
        log, slot = teacher.log, teacher.log.count
        log = log.replace(
            means=log.means.at[slot].set(mixture.means, mode="drop"),
            covariances=log.covariances.at[slot].set(mixture.covariances, mode="drop"),
            active=log.active.at[slot].set(mixture.active, mode="drop"),
            written=jnp.int32(0), count=log.count + 1)
        return teacher.replace(mixture=mixture, log=log), key

    if fits:
        teacher, _ = cond_any(due, fit, (teacher, key))
    metrics = {"teacher_records": new.astype(jnp.float32), "teacher_fits": teacher.log.count.astype(jnp.float32),
               "teacher_components": teacher.mixture.active.sum().astype(jnp.float32),
               "alp_sum": jnp.where(valid, alp, 0.0).sum(), "alp_count": valid.sum().astype(jnp.float32)}
    return teacher, metrics


def cond_any(pred: jax.Array, fn: Any, operand: Any) -> Any:
    """``fn(operand)`` where ``pred``, else ``operand``. Under ``vmap`` a ``lax.cond`` with a
    batched predicate becomes a select that computes ``fn`` for every run at every call; here
    the batched version computes it (for all runs, kept where ``pred``) only in the calls where
    some run's ``pred`` holds. A mixture fit costs about 32 ms a run on this 2-core CPU, and a
    run is due once in tens of updates, so this saves most of it. ``fn`` must not close over
    values that are batched (pass them in ``operand``)."""

    @custom_vmap
    def apply(pred, operand):
        return jax.lax.cond(pred, fn, lambda x: x, operand)

    @apply.def_vmap
    def apply_batched(axis_size, in_batched, pred, operand):
        pred_batched, operand_batched = in_batched
        pred = pred if pred_batched else jnp.broadcast_to(pred, (axis_size,))
        operand = jax.tree.map(lambda x, b: x if b else jnp.broadcast_to(x, (axis_size, *jnp.shape(x))),
                               operand, operand_batched)

        def run(operand):
            new = jax.vmap(fn)(operand)
            return jax.tree.map(lambda n, o: jnp.where(pred.reshape((-1,) + (1,) * (n.ndim - 1)), n, o), new, operand)

        out = jax.lax.cond(pred.any(), run, lambda x: x, operand)
        return out, jax.tree.map(lambda _: True, out)

    return apply(pred, operand)


def components(mixture: gmm.Mixture, use: jax.Array = True) -> tuple[jax.Array, ...]:
    """(means, covariances, ALP, active) of a mixture's components, all inactive unless ``use``."""
    return mixture.means, mixture.covariances, jnp.maximum(mixture.means[:, -1], 0.0), mixture.active & use


def make_sampler(random_ratio: jax.Array, parts: list[tuple[jax.Array, ...]]) -> TaskSampler:
    """A ``TaskSampler`` over the concatenated components of ``parts`` (see ``components``)."""
    means, covariances, alp, active = (jnp.concatenate(x) for x in zip(*parts))
    eye = jnp.eye(means.shape[-1])
    safe = jnp.where(active[:, None, None], covariances, eye) + 1e-6 * eye
    return TaskSampler(jnp.asarray(random_ratio, jnp.float32), means, jnp.linalg.cholesky(safe), alp, active)
