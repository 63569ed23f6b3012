"""Benchmark: what the ALP-GMM teacher costs PPO over a continuous task space, and where its mixture
fit should run. (1) CartPole-v1 over gravity x push force (``observe_task=1``), PPO defaults,
``--seeds`` seeds vmapped: ``task-dr`` (uniform tasks), ``task-dr`` with ``fit_rate`` beyond the run
(no mixture fit at all), ``alp-gmm`` (fit_rate 250) and ``alp-gmm`` at fit_rate 50, each the kit's
pure training function under ``jit(vmap)``, compiled once and timed in alternation (``harness.py``).
Each run also reports its fits per seed and its fit events (updates in which some seed was due:
``alp_gmm.cond_any`` computes the fit, for every seed, only in those). (2) One mixture fit as
ALP-GMM makes it (k = 2..10, full covariances, the newest 250 (task, ALP) rows of each seed's
``alp-gmm`` run from (1)): the kit's ``gmm.fit_best`` jitted, one run and vmapped over the seeds,
against the reference's host-side procedure (scikit-learn's ``GaussianMixture`` for each k, the
lowest AIC kept), and the device-host copies such a host fit needs.

    JAXRL_COMPILATION_CACHE=off python experiments/bench/task_curricula_speed.py [--total-steps 200000] [--seeds 5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time
import warnings

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (imports jaxrl first)

import jax  # noqa: E402
import numpy as np  # noqa: E402

import jaxrl  # noqa: E402
from jaxrl.curricula import alp_gmm, gmm  # noqa: E402

ENV = "CartPole-v1"
ENV_OVERRIDES = {"task_space": "gravity=2:60,force_mag=0.5:20", "observe_task": "1"}
FIT_ROWS = 250  # the rows of one fit: ALP-GMM's default fit_rate
CANDIDATES = (  # (name, algorithm, overrides)
    ("task-dr", "task-dr", {}),
    ("task-dr, no fits (fit_rate 10,000)", "task-dr", {"fit_rate": 10_000}),
    ("alp-gmm (fit_rate 250)", "alp-gmm", {}),
    ("alp-gmm, fit_rate 50", "alp-gmm", {"fit_rate": 50}),
)


def candidate(name: str, algorithm: str, overrides: dict, total_steps: int, seeds: int, outputs: dict) -> harness.Candidate:
    """The pure training function under ``jit(vmap)`` over ``seeds`` keys; one window per update
    (``log_every=1``) so that the fit events can be counted. Each run's outputs go to ``outputs[name]``."""
    train = jaxrl.make_train(algorithm, ENV, total_steps=total_steps, overrides=overrides,
                             env_overrides=ENV_OVERRIDES, log_every=1)
    keys = jax.random.split(jax.random.key(0), seeds)

    def one(key):
        state, metrics = train(key, train.default_hparams)
        return {"final": metrics["final_return"], "fits": metrics["teacher_fits"],
                "records": state.teacher.history.count, "rows": alp_gmm.newest(state.teacher.history, FIT_ROWS)}

    start = time.perf_counter()
    compiled = jax.jit(jax.vmap(one)).lower(keys).compile()
    compile_time = time.perf_counter() - start

    def run() -> tuple[float, float]:
        start = time.perf_counter()
        out = jax.block_until_ready(compiled(keys))
        seconds = time.perf_counter() - start
        outputs[name] = out
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return seconds, float(np.nanmean(np.asarray(out["final"])))

    return harness.Candidate(name, compile_time, seeds * train.total_env_steps, run)


def fits_and_events(out: dict) -> tuple[float, int]:
    """(mean fits per seed, updates in which some seed fitted)."""
    fits = np.asarray(out["fits"])  # [seeds, updates]: fits made so far, after each update
    made = np.diff(fits, axis=1, prepend=0) > 0
    return float(fits[:, -1].mean()), int(made.any(0).sum())


def timed(fn, calls: int) -> list[float]:
    """Seconds of each of ``calls`` calls ``fn(i)`` (the caller warms it up)."""
    seconds = []
    for i in range(calls):
        start = time.perf_counter()
        fn(i)
        seconds.append(time.perf_counter() - start)
    return seconds


def ms(values: list[float]) -> str:
    return f"{1e3 * statistics.median(values):.1f} | {1e3 * min(values):.1f}-{1e3 * max(values):.1f}"


def sklearn_fit_best(x: np.ndarray, seed: int, min_components: int = 2, max_components: int = 10):
    """The reference's fit: ``GaussianMixture(k, covariance_type='full')`` for each k, the lowest AIC kept."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for k in range(min_components, max_components + 1):
            model = GaussianMixture(k, covariance_type="full", random_state=seed).fit(x)
            aic = model.aic(x)
            if best is None or aic < best[0]:
                best = (aic, k)
    return best


def fit_costs(rows: jax.Array, calls: int) -> tuple[float, float]:
    """Part (2) on ``rows`` [seeds, 250, 3] (device arrays, a real run's newest rows)."""
    seeds = rows.shape[0]
    one = jax.jit(gmm.fit_best)
    many = jax.jit(jax.vmap(gmm.fit_best))
    keys = [jax.random.split(jax.random.key(i), seeds) for i in range(calls + 1)]
    compile_times = {}
    for label, fn, args in (("one", one, (keys[0][0], rows[0])), ("many", many, (keys[0], rows))):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))  # compile and first call
        compile_times[label] = time.perf_counter() - start
    host_rows = np.asarray(rows)
    sklearn_fit_best(host_rows[0], 0)  # warm-up (imports)
    copy = jax.jit(lambda x, i: x + 0 * i)  # a fresh device array each time, as a run's output would be

    def round_trip(i):  # the rows to the host, a mixture of max_components back to the device
        fresh = jax.block_until_ready(copy(rows[i % seeds], i))
        start = time.perf_counter()
        x = np.asarray(fresh)
        mixture = (np.zeros((10, 4), np.float32), np.zeros((10, 4, 4), np.float32), np.zeros(10, np.float32))
        jax.block_until_ready(jax.device_put(mixture))
        return time.perf_counter() - start, x

    round_trip(0)
    results = {"jax": [], "jax_vmapped": [], "sklearn": [], "copy": []}
    for i in range(calls):  # in alternation
        results["jax"] += timed(lambda _: jax.block_until_ready(one(keys[i + 1][0], rows[i % seeds])), 1)
        results["jax_vmapped"] += timed(lambda _: jax.block_until_ready(many(keys[i + 1], rows)), 1)
        results["sklearn"] += timed(lambda _: sklearn_fit_best(host_rows[i % seeds], i), 1)
        results["copy"].append(round_trip(i + 1)[0])
    print(f"\nOne ALP-GMM fit (k = 2..10, full covariances, {rows.shape[1]} rows of dimension {rows.shape[2]}), "
          f"{calls} calls each in alternation:\n")
    print("| fit | compile (s) | ms per call (median) | min-max | ms per run's fit |\n|---|---|---|---|---|")
    print(f"| kit `gmm.fit_best`, jitted, one run | {compile_times['one']:.1f} | {ms(results['jax'])} | "
          f"{1e3 * statistics.median(results['jax']):.1f} |")
    print(f"| kit `gmm.fit_best`, jitted, vmapped over {seeds} runs | {compile_times['many']:.1f} | "
          f"{ms(results['jax_vmapped'])} | {1e3 * statistics.median(results['jax_vmapped']) / seeds:.1f} |")
    print(f"| scikit-learn `GaussianMixture`, k = 2..10, lowest AIC, one run (host) | - | {ms(results['sklearn'])} | "
          f"{1e3 * statistics.median(results['sklearn']):.1f} |")
    print(f"| copies: {rows.shape[1]} rows device-to-host + a 10-component mixture host-to-device | - | "
          f"{1e3 * statistics.median(results['copy']):.3f} | {1e3 * min(results['copy']):.3f}-{1e3 * max(results['copy']):.3f} | - |")
    chosen = [(int(one(keys[0][s], rows[s])[1]), sklearn_fit_best(host_rows[s], 0)[1]) for s in range(seeds)]
    print(f"\nk chosen per seed's rows (kit, scikit-learn): {chosen}")
    return statistics.median(results["jax_vmapped"]), statistics.median(results["sklearn"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-steps", type=int, default=200_000, help="per seed")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fit-calls", type=int, default=20)
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {ENV} {ENV_OVERRIDES}, "
          f"{args.total_steps:,} steps per seed, {args.seeds} seeds vmapped")
    outputs: dict = {}
    candidates = [candidate(name, algorithm, overrides, args.total_steps, args.seeds, outputs)
                  for name, algorithm, overrides in CANDIDATES]
    timings = harness.alternate(candidates, args.repeats)
    base = timings[0]
    print("\n| implementation | seeds | compile (s) | env steps/s (median) | min-max | final return | fits per seed "
          "| fit events | time over task-dr's |\n|---|---|---|---|---|---|---|---|---|")
    seconds, events = {}, {}
    for timing, c in zip(timings, candidates):
        fits, events[c.name] = fits_and_events(outputs[c.name])
        seconds[c.name] = statistics.median([c.steps / s for s in timing.speeds])
        over = statistics.median([b / s - 1 for b, s in zip(base.speeds, timing.speeds)])
        print(f"{harness.table_row(timing, args.seeds)} {fits:.1f} | {events[c.name]} | {over:+.1%} |")
    records = np.asarray(outputs[CANDIDATES[2][0]]["records"])
    print(f"\nrecords (episodes) per seed in the alp-gmm run: {records.min()}-{records.max()}")
    fit_many, fit_sklearn = fit_costs(outputs[CANDIDATES[2][0]]["rows"], args.fit_calls)

    print()
    for a, b in ((0, 1), (3, 2)):  # per fit event, from the whole runs' medians
        hi, lo = CANDIDATES[a][0], CANDIDATES[b][0]
        if events[hi] != events[lo]:
            per = (seconds[hi] - seconds[lo]) / (events[hi] - events[lo])
            print(f"in the program: ({hi}) - ({lo}) = {seconds[hi] - seconds[lo]:+.2f} s over "
                  f"{events[hi] - events[lo]} fit events: {1e3 * per:.0f} ms per event ({args.seeds} seeds' fits, vmapped; "
                  f"the microbenchmark's: {1e3 * fit_many:.0f} ms)")
    for name, *_ in CANDIDATES[2:]:
        fits = sum(np.asarray(outputs[name]["fits"])[:, -1])
        print(f"{name}: {fits:.0f} fits in all; on the host with scikit-learn, one after another: "
              f"{fits * fit_sklearn:.2f} s of fits in a run of {seconds[name]:.2f} s, at {events[name]} chunk boundaries")


if __name__ == "__main__":
    main()
