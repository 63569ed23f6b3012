"""AGAIN, Meta Automatic Curriculum Learning (Portelas, Romac, Hofmann and Oudeyer, 2020): a new
student's curriculum built from the curricula of earlier students that looked like it.

A *classroom* is an ALP-GMM run of several seeds (a vmapped population): for every student its
pre-test vector (the normalised returns of the greedy policy on a fixed set of test tasks, at
the pre-test update: its knowledge-component vector), its final test vector, and its logged
mixtures (``alp_gmm.FitLog``). ``jaxrl ued alp-gmm`` writes it as ``classroom.npz``.

A new student trains with ALP-GMM until its own pre-test; then the ``k`` classroom students
nearest by pre-test vector (Euclidean) are looked up and the one with the best final test score
is the expert. Its curriculum is its sequence of mixtures with the components of ALP at most
``alp_threshold`` removed (a mixture left empty is skipped). It is replayed as in the paper's
variants:

* ``T`` (time): the expert's mixture of index records // ``fit_rate``;
* ``R`` (reward): the next mixture once the mean normalised return of the last
  ``reward_window`` episodes drawn from the expert's components reaches ``tol_ratio`` times what
  the expert itself got on that mixture (its last ``reward_window`` high-ALP episodes while it
  was in use); checked at the end of each update rather than after each episode;
* ``P`` (pool): all the expert's kept components at once.

``again`` mixes the expert's components with the student's own live ALP-GMM ones (sampled in
proportion to their ALP; uniform tasks with probability ``again_random_ratio``); ``in`` (the
paper's IN) replays the expert alone. With ``T`` and ``R``, ``fit_rate`` records after the
last mixture was reached the expert's components are dropped and ALP-GMM goes on alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl.core.values import ConfigError
from jaxrl.curricula.alp_gmm import append_ring

CLASSROOM_FILE = "classroom.npz"
VARIANTS = ("R", "T", "P")
MODES = ("again", "in")


@struct.dataclass
class Classroom:
    pretest: jax.Array  # [S, M] normalised returns on the test tasks at the pre-test update
    final: jax.Array  # [S] final test score (sum of normalised test returns)
    means: jax.Array  # [S, F, K, dim + 1]
    covariances: jax.Array  # [S, F, K, dim + 1, dim + 1]
    active: jax.Array  # [S, F, K]
    reward: jax.Array  # [S, F] the student's mean normalised return on its last high-ALP episodes of that mixture
    num_fits: jax.Array  # [S]


def save_classroom(path: Path, teacher: Any, pretest: np.ndarray, final: np.ndarray, task_space: str,
                   test_tasks: np.ndarray) -> None:
    """Writes the classroom of a finished ALP-GMM run (leaves with a leading seed axis;
    ``pretest`` and ``final`` the normalised test returns)."""
    from jaxrl.driver.rundir import _atomic_write

    log = jax.device_get(teacher.log)
    arrays = dict(pretest=np.asarray(pretest), final=np.asarray(final).sum(axis=-1), means=log.means,
                  covariances=log.covariances, active=log.active, reward=log.reward,
                  num_fits=np.minimum(np.asarray(log.count), log.means.shape[1]),
                  task_space=np.asarray(task_space), test_tasks=np.asarray(test_tasks))
    _atomic_write(path, lambda p: np.savez(p.open("wb"), **arrays))


def load_classroom(path: str | Path, task_space: str, test_tasks: np.ndarray, max_components: int,
                   log_fits: int) -> Classroom:
    """The classroom in ``path`` (a ``classroom.npz`` or the run directory holding one), checked
    against this run's task space, test tasks, mixture size and fit log; ``ConfigError`` on one line."""
    path = Path(path)
    if path.is_dir():
        path = path / CLASSROOM_FILE
    if not path.is_file():
        raise ConfigError(f"no classroom at {path}: train one with `jaxrl ued alp-gmm --seeds N` (it writes {CLASSROOM_FILE})")
    try:
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read the classroom {path}: {error}") from None
    needed = {"pretest", "final", "means", "covariances", "active", "reward", "num_fits", "task_space", "test_tasks"}
    if not needed <= set(arrays):
        raise ConfigError(f"{path} is not a classroom file (missing {', '.join(sorted(needed - set(arrays)))})")
    if str(arrays["task_space"]) != task_space:
        raise ConfigError(f"the classroom {path} was trained on the task space {arrays['task_space']}, not {task_space}")
    if arrays["test_tasks"].shape != test_tasks.shape or not np.allclose(arrays["test_tasks"], test_tasks):
        raise ConfigError(f"the classroom {path} was pre-tested on other test tasks (set test_tasks and test_seed as it was)")
    if arrays["means"].ndim != 4 or arrays["means"].shape[2] != max_components:
        raise ConfigError(f"the classroom {path} has mixtures of {arrays['means'].shape[2:3]} components, this run "
                          f"max_components={max_components}")
    if arrays["means"].shape[1] != log_fits:
        raise ConfigError(f"the classroom {path} logged {arrays['means'].shape[1]} mixtures a student, this run "
                          f"log_fits={log_fits}: set log_fits={arrays['means'].shape[1]}")
    return Classroom(**{k: jnp.asarray(arrays[k]) for k in needed - {"task_space", "test_tasks"}})


def nearest_students(pretest: jax.Array, vector: jax.Array, k: int) -> jax.Array:
    """[k] indices of the rows of ``pretest`` [S, M] nearest to ``vector`` [M], nearest first."""
    distance = jnp.sqrt(((pretest - vector[None]) ** 2).sum(-1))
    return jax.lax.top_k(-distance, min(k, pretest.shape[0]))[1]


def choose_expert(classroom: Classroom, vector: jax.Array, k: int) -> jax.Array:
    """Among the ``k`` students nearest by pre-test vector, the one with the best final score."""
    near = nearest_students(classroom.pretest, vector, k)
    return near[jnp.argmax(classroom.final[near])]


@struct.dataclass
class Expert:
    student: jax.Array  # [] the expert's index in the classroom (-1 before the pre-test)
    keep: jax.Array  # [F, K] its components kept (ALP above the threshold)
    order: jax.Array  # [F] its non-empty mixtures first, in time order
    count: jax.Array  # [] how many are non-empty
    pointer: jax.Array  # [] the mixture replayed now (an index into ``order``)
    rewards: jax.Array  # [W] the newest normalised returns of episodes from its components (R)
    written: jax.Array  # [] returns written since the pointer last moved
    end_records: jax.Array  # [] the record count when the last mixture was reached (-1: not yet)
    over: jax.Array  # [] bool: ALP-GMM alone from now on


def no_expert(num_fits: int, max_components: int, window: int) -> Expert:
    return Expert(jnp.int32(-1), jnp.zeros((num_fits, max_components), bool), jnp.arange(num_fits, dtype=jnp.int32),
                  jnp.int32(0), jnp.int32(0), jnp.zeros(window), jnp.int32(0), jnp.int32(-1), jnp.bool_(False))


def start_expert(classroom: Classroom, student: jax.Array, threshold: float, window: int) -> Expert:
    num_fits = classroom.means.shape[1]
    made = jnp.arange(num_fits) < classroom.num_fits[student]
    keep = classroom.active[student] & (classroom.means[student, :, :, -1] > threshold) & made[:, None]
    nonempty = keep.any(axis=1)
    order = jnp.argsort(~nonempty, stable=True).astype(jnp.int32)
    expert = no_expert(num_fits, classroom.means.shape[2], window)
    return expert.replace(student=student.astype(jnp.int32), keep=keep, order=order, count=nonempty.sum().astype(jnp.int32))


def expert_components(classroom: Classroom, expert: Expert, variant: str) -> tuple[jax.Array, ...]:
    """(means, covariances, ALP, active) of the components replayed now: one mixture (T, R) or
    all kept ones (P), none before the pre-test, after ALP-GMM took over or without any kept."""
    student = jnp.maximum(expert.student, 0)
    on = (expert.student >= 0) & ~expert.over & (expert.count > 0)
    means, covariances = classroom.means[student], classroom.covariances[student]
    if variant == "P":
        d1 = means.shape[-1]
        means, covariances, keep = means.reshape(-1, d1), covariances.reshape(-1, d1, d1), expert.keep.reshape(-1)
    else:
        fit = expert.order[expert.pointer]
        means, covariances, keep = means[fit], covariances[fit], expert.keep[fit]
    return means, covariances, jnp.maximum(means[:, -1], 0.0), keep & on


def advance(expert: Expert, classroom: Classroom, variant: str, records: jax.Array, returns: jax.Array,
            from_expert: jax.Array, config: Any) -> Expert:
    """The expert after an update whose teacher now holds ``records`` records; ``returns`` [N]
    of the update's episodes, ``from_expert`` [N] marking those drawn from its components."""
    if variant == "P":
        return expert
    started = expert.student >= 0
    last = jnp.maximum(expert.count - 1, 0)
    if variant == "T":
        pointer = jnp.minimum(records // config.fit_rate, last)
        written = expert.written
        rewards = expert.rewards
    else:
        rewards, written = append_ring(expert.rewards, expert.written, returns, from_expert)
        target = classroom.reward[jnp.maximum(expert.student, 0), expert.order[expert.pointer]] * config.tol_ratio
        move = (written >= rewards.shape[0]) & (rewards.mean() >= target) & (expert.pointer < last)
        pointer = jnp.where(move, expert.pointer + 1, expert.pointer)
        written = jnp.where(move, 0, written)
    pointer = jnp.where(started, pointer, expert.pointer)
    at_end = started & (pointer >= last)
    end_records = jnp.where(at_end & (expert.end_records < 0), records, expert.end_records)
    over = expert.over | (at_end & (records - end_records >= config.fit_rate))
    return expert.replace(pointer=pointer.astype(jnp.int32), rewards=rewards, written=written.astype(jnp.int32),
                          end_records=end_records.astype(jnp.int32), over=over)
