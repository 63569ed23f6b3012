"""What the side-by-side benchmarks share: compile the kit's run and the plain single-file run of
the same configuration once each, then time them in alternation (plain, kit, plain, kit, ...) in
one process, so that a slow spell of the machine (this project's CPUs are shared virtual cores,
where the same program's speed drifts by 10-20% over a minute) hits both sides alike. Speeds are
medians over the repeats; the kit/plain ratio is the median of the ratios of each alternating
pair, with their range.
"""

from __future__ import annotations

import statistics
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import jaxrl  # first: both implementations run under the kit's XLA settings

import jax
import numpy as np


@dataclass
class Candidate:
    """One compiled implementation: ``run()`` executes it once and returns (seconds, final return)."""

    name: str
    compile_time: float
    steps: int  # env steps per run, all seeds together
    run: Callable[[], tuple[float, float]]


def plain(
    make_train: Callable[[int], Callable],
    total_steps: int,
    num_seeds: int,
    batch: int,
    final_updates: int,
) -> Candidate:
    """``make_train(total_steps)`` gives ``train(key) -> mean return per update`` (NaN where no
    episode ended); ``batch`` is its env steps per update, and the final return is the mean over
    its last ``final_updates`` updates."""
    keys = jax.random.split(jax.random.key(0), num_seeds)
    return _compiled("plain single-file", jax.jit(jax.vmap(make_train(total_steps))), keys,
                     lambda returns: returns[:, -final_updates:], num_seeds * (total_steps // batch) * batch)


def _compiled(name: str, program: Callable, keys: jax.Array, final: Callable, steps: int) -> Candidate:
    """Compiles ``program(keys)`` once (timed as its compile time); ``run`` executes it and
    reports the NaN-mean of ``final(outputs)`` as the final return."""
    start = time.perf_counter()
    compiled = program.lower(keys).compile()
    compile_time = time.perf_counter() - start

    def run() -> tuple[float, float]:
        start = time.perf_counter()
        outputs = np.asarray(jax.block_until_ready(compiled(keys)))
        seconds = time.perf_counter() - start
        with warnings.catch_warnings():  # nanmean of a tiny run with no finished episode
            warnings.simplefilter("ignore", RuntimeWarning)
            return seconds, float(np.nanmean(final(outputs)))

    return Candidate(name, compile_time, steps, run)


def kit(algorithm: str, env: str, total_steps: int, num_seeds: int, *, overrides: dict | None = None,
        env_overrides: dict | None = None, name: str = "jaxrl") -> Candidate:
    """``jaxrl.train`` with the algorithm's defaults (and any ``overrides``); the first call
    compiles (and is not timed), later calls reuse the compiled programs."""
    kwargs = dict(num_seeds=num_seeds, overrides={**(overrides or {}), "total_steps": total_steps}, env_overrides=env_overrides)
    first = jaxrl.train(algorithm, env, **kwargs)

    def run() -> tuple[float, float]:
        result = jaxrl.train(algorithm, env, **kwargs)
        return result.wall_time - result.compile_time, float(np.mean(result.final_returns))

    return Candidate(name, first.compile_time, num_seeds * int(first.steps[-1]), run)


def pure(algorithm: str, env: str, total_steps: int, num_seeds: int, *, overrides: dict | None = None,
         env_overrides: dict | None = None, name: str = "make_train under jit") -> Candidate:
    """``jaxrl.make_train`` called under an outer ``jax.jit(jax.vmap(...))``: the pure function as a
    user composes it, without the host driver (no chunks, no progress)."""
    train = jaxrl.make_train(algorithm, env, total_steps=total_steps, overrides=overrides, env_overrides=env_overrides)
    keys = jax.random.split(jax.random.key(0), num_seeds)
    program = jax.jit(jax.vmap(lambda key: train(key, train.default_hparams)[1]["final_return"]))
    return _compiled(name, program, keys, lambda finals: finals, num_seeds * train.total_env_steps)


@dataclass
class Timing:
    name: str
    compile_time: float
    speeds: list[float]  # env steps/s of each timed run
    final: float

    @property
    def median(self) -> float:
        return statistics.median(self.speeds)


def alternate(candidates: list[Candidate], repeats: int) -> list[Timing]:
    """Times every candidate ``repeats`` times, in turn."""
    timings = [Timing(c.name, c.compile_time, [], np.nan) for c in candidates]
    for _ in range(repeats):
        for candidate, timing in zip(candidates, timings):
            seconds, timing.final = candidate.run()
            timing.speeds.append(candidate.steps / seconds)
    return timings


def ratio(kit_timing: Timing, plain_timing: Timing) -> str:
    """Median and range of kit/plain over the alternating pairs, e.g. '1.04x (0.98-1.10)'."""
    pairs = [k / p for k, p in zip(kit_timing.speeds, plain_timing.speeds)]
    return f"{statistics.median(pairs):.2f}x ({min(pairs):.2f}-{max(pairs):.2f})"


TABLE_HEADER = "| implementation | seeds | compile (s) | env steps/s (median) | min-max | final return |\n|---|---|---|---|---|---|"


def table_row(timing: Timing, num_seeds: int, prefix: str = "") -> str:
    return (
        f"| {prefix}{timing.name} | {num_seeds} | {timing.compile_time:.1f} | {timing.median:,.0f} | "
        f"{min(timing.speeds):,.0f}-{max(timing.speeds):,.0f} | {timing.final:.1f} |"
    )


def compare(label: str, plain_candidate: Callable[[], Candidate], kit_candidate: Callable[[], Candidate], num_seeds: int, repeats: int,
            prefix: str = "", more: Sequence[Callable[[], Candidate]] = ()) -> str:
    """Builds the candidates (the plain file, the kit, then ``more``), times them alternately,
    prints their table rows, and returns the one-line ratio summary (each against the plain file)."""
    timings = alternate([plain_candidate(), kit_candidate(), *(m() for m in more)], repeats)
    for timing in timings:
        print(table_row(timing, num_seeds, prefix), flush=True)
    ratios = ", ".join(f"{t.name} {ratio(t, timings[0])}" for t in timings[1:])
    return f"{label}, {num_seeds} seed(s), against the plain implementation's env steps/s: {ratios}"
