"""Benchmark: what the ALP-GMM teacher costs PPO over a continuous task space, and where its mixture
fit should run. (1) CartPole-v1 over gravity x push force (``observe_task=1``), PPO defaults,
``--seeds`` seeds vmapped: ``task-dr`` (uniform tasks; it keeps the ALP history but makes no mixture
fit, so it is the baseline every "time over" is measured against), ``alp-gmm`` (fit_rate 250) and
``alp-gmm`` at fit_rate 50, each the kit's pure training function under ``jit(vmap)``, compiled once
and timed in alternation (``harness.py``). Each run also reports its fits per seed and its fit events
(updates in which some seed was due: ``alp_gmm.cond_any`` computes the fit, for every seed, only in
those). (2) One mixture fit as ALP-GMM makes it (k = 2..10, full covariances, the newest 250 (task,
ALP) rows of each seed's ``alp-gmm`` run from (1)): the kit's ``gmm.fit_best`` jitted, one run and vmapped over the seeds,
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
    ("task-dr", "task-dr", {}),  # no teacher fits: the baseline
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


def fit_costs(rows: jax.Array, sizes: tuple[int, ...], calls: int) -> dict[int, tuple[float, float]]:
    """Part (2) on the newest ``size`` of ``rows`` [seeds, 250, 3] (device arrays, a real run's
    newest rows) for each size; returns {size: (vmapped fit, scikit-learn fit) median seconds}."""
    seeds = rows.shape[0]
    one, many = jax.jit(gmm.fit_best), jax.jit(jax.vmap(gmm.fit_best))
    keys = [jax.random.split(jax.random.key(i), seeds) for i in range(calls + 1)]
    copy = jax.jit(lambda x, i: x + 0 * i)  # a fresh device array each time, as a run's output would be

    def round_trip(i):  # the rows to the host, a mixture of max_components back to the device
        fresh = jax.block_until_ready(copy(rows[i % seeds], i))
        start = time.perf_counter()
        np.asarray(fresh)
        mixture = (np.zeros((10, 4), np.float32), np.zeros((10, 4, 4), np.float32), np.zeros(10, np.float32))
        jax.block_until_ready(jax.device_put(mixture))
        return time.perf_counter() - start

    print(f"\nOne ALP-GMM fit (k = 2..10, full covariances, rows of dimension {rows.shape[2]}), {calls} calls each in "
          f"alternation:\n\n| rows | fit | compile (s) | ms per call (median) | min-max | ms per run's fit |\n|---|---|---|---|---|---|")
    medians, chosen = {}, {}
    for size in sizes:
        x = rows[:, -size:]
        host = np.asarray(x)
        compile_times = {}
        for label, fn, args in (("one", one, (keys[0][0], x[0])), ("many", many, (keys[0], x))):
            start = time.perf_counter()
            jax.block_until_ready(fn(*args))  # compile and first call
            compile_times[label] = time.perf_counter() - start
        sklearn_fit_best(host[0], 0)  # warm-up (imports)
        round_trip(0)
        results = {"one": [], "many": [], "sklearn": [], "copy": []}
        for i in range(calls):  # in alternation
            results["one"] += timed(lambda _: jax.block_until_ready(one(keys[i + 1][0], x[i % seeds])), 1)
            results["many"] += timed(lambda _: jax.block_until_ready(many(keys[i + 1], x)), 1)
            results["sklearn"] += timed(lambda _: sklearn_fit_best(host[i % seeds], i), 1)
            results["copy"].append(round_trip(i + 1))
        med = {name: statistics.median(values) for name, values in results.items()}
        print(f"| {size} | kit `gmm.fit_best`, jitted, one run | {compile_times['one']:.1f} | {ms(results['one'])} | "
              f"{1e3 * med['one']:.1f} |")
        print(f"| {size} | kit `gmm.fit_best`, jitted, vmapped over {seeds} runs | {compile_times['many']:.1f} | "
              f"{ms(results['many'])} | {1e3 * med['many'] / seeds:.1f} |")
        print(f"| {size} | scikit-learn `GaussianMixture`, k = 2..10, lowest AIC, one run (host) | - | "
              f"{ms(results['sklearn'])} | {1e3 * med['sklearn']:.1f} |")
        if size == rows.shape[1]:
            print(f"| {size} | copies: the rows device-to-host + a 10-component mixture host-to-device | - | "
                  f"{1e3 * med['copy']:.3f} | {1e3 * min(results['copy']):.3f}-{1e3 * max(results['copy']):.3f} | - |")
        medians[size] = med["many"], med["sklearn"]
        chosen[size] = [(int(one(keys[0][s], x[s])[1]), sklearn_fit_best(host[s], 0)[1]) for s in range(seeds)]
    for size, ks in chosen.items():
        print(f"k chosen on each seed's newest {size} rows (kit, scikit-learn): {ks}")
    return medians


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
    base = timings[0]  # task-dr: no teacher fits
    print("\n| implementation | seeds | compile (s) | env steps/s (median) | min-max | final return | fits per seed "
          "| fit events | time over task-dr's |\n|---|---|---|---|---|---|---|---|---|")
    seconds, events = {}, {}
    for timing, c in zip(timings, candidates):
        fits, events[c.name] = fits_and_events(outputs[c.name])
        seconds[c.name] = statistics.median([c.steps / s for s in timing.speeds])
        over = statistics.median([b / s - 1 for b, s in zip(base.speeds, timing.speeds)])
        print(f"{harness.table_row(timing, args.seeds)} {fits:.1f} | {events[c.name]} | {over:+.1%} |")
    records = np.asarray(outputs[CANDIDATES[1][0]]["records"])
    print(f"\nrecords (episodes) per seed in the alp-gmm run: {records.min()}-{records.max()}")
    sizes = {name: min(overrides.get("fit_rate", FIT_ROWS), FIT_ROWS) for name, _, overrides in CANDIDATES}
    fit = fit_costs(outputs[CANDIDATES[1][0]]["rows"], tuple(sorted(set(sizes.values()), reverse=True)), args.fit_calls)
    print()
    for timing, c in zip(timings, candidates):
        fits = float(np.asarray(outputs[c.name]["fits"])[:, -1].sum())
        if not fits:
            continue
        over = statistics.median([c.steps / s - c.steps / n for s, n in zip(timing.speeds, base.speeds)])
        vmapped, host = fit[sizes[c.name]]
        print(f"{c.name}: run {seconds[c.name]:.2f} s, {over:+.2f} s over task-dr; in the program {events[c.name]} "
              f"fit events x {1e3 * vmapped:.0f} ms (one vmapped fit of {sizes[c.name]} rows) = {events[c.name] * vmapped:.2f} s; "
              f"on the host {fits:.0f} fits x {1e3 * host:.0f} ms (scikit-learn) = {fits * host:.2f} s, "
              f"at {events[c.name]} chunk boundaries")


if __name__ == "__main__":
    main()
