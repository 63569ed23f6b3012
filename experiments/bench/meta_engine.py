"""What the meta-training engine costs: inner-training throughput of a generation
(``MetaProgram.generation``: ask, train population x seeds, tell) against the same runs written
as one plain vmapped program over the population (``jax.jit(jax.vmap(train))``), and against a
Python loop over members calling a jitted single-run train (the way many users write it), timed
alternately in one process (experiments/bench/harness.py). Also: traces over several generations
(one compilation serves them all) and the compiled generation's memory against population size.

    python experiments/bench/meta_engine.py [--population 16] [--inner-steps 32768] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import jaxrl  # noqa: F401  (XLA settings first)

import jax
import numpy as np

from harness import Candidate, _compiled, alternate, ratio, table_row
from jaxrl.core.train import trace_count
from jaxrl.meta.run import build_program


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--inner-steps", type=int, default=32_768)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--memory", type=int, nargs="*", default=[8, 16, 32, 64], help="populations for the memory table")
    args = parser.parse_args()
    program, _ = build_program("lpo", "CartPole-v1", population=args.population, sigma=0.1, inner_steps=args.inner_steps, track_mean=False)
    train = program.train
    steps = args.population * train.total_env_steps

    # The engine: one generation, compiled ahead of time (its state is donated: keep the latest).
    state = {"meta": program.init(jax.random.key(0))}
    start = time.perf_counter()
    generation = jax.jit(program._generation_fn, donate_argnums=0).lower(state["meta"]).compile()
    engine_compile = time.perf_counter() - start

    def engine() -> tuple[float, float]:
        start = time.perf_counter()
        state["meta"], row = generation(state["meta"])
        mean = float(jax.block_until_ready(row)["return_mean"])
        return time.perf_counter() - start, mean

    # The same population as one plain vmapped program of the pure training function.
    members, _ = program.strategy.ask(jax.random.key(1), state["meta"].es)
    hparams = train.default_hparams.replace(objective_params=members)
    axes = train.hparams_axes(objective_params=0)
    key = jax.random.key(2)
    vmapped = jax.jit(jax.vmap(lambda h: train(key, h)[1]["final_return"], in_axes=(axes,)))
    plain = _compiled("plain vmapped program", vmapped, hparams, lambda finals: finals, steps)

    # A Python loop over members, each a call of one jitted run.
    single = jax.jit(lambda member: train(key, train.default_hparams.replace(objective_params=member))[1]["final_return"])
    one = jax.tree.map(lambda x: x[0], members)
    start = time.perf_counter()
    single_compiled = single.lower(one).compile()
    loop_compile = time.perf_counter() - start
    per_member = [jax.tree.map(lambda x, i=i: x[i], members) for i in range(args.population)]

    def loop() -> tuple[float, float]:
        start = time.perf_counter()
        finals = [single_compiled(m) for m in per_member]
        finals = np.asarray(jax.block_until_ready(finals))
        return time.perf_counter() - start, float(np.nanmean(finals))

    candidates = [plain,
                  Candidate("meta-training generation", engine_compile, steps, engine),
                  Candidate("Python loop of jitted runs", loop_compile, steps, loop)]
    traces = trace_count()  # after every candidate is compiled: what alternating adds is retracing
    timings = alternate(candidates, args.repeats)
    print(f"LPO CartPole-v1, population {args.population} x 1 seed, {train.total_env_steps:,} env steps per run")
    print("| implementation | runs | compile (s) | env steps/s (median) | min-max | mean final return |\n|---|---|---|---|---|---|")
    for timing in timings:
        print(table_row(timing, args.population))
    print(f"generation / plain vmapped: {ratio(timings[1], timings[0])}; Python loop / plain vmapped: {ratio(timings[2], timings[0])}")
    print(f"training-program traces before the timed runs: {traces}; after {args.repeats} generations: {trace_count()}")
    state["meta"], _ = program.generation(state["meta"])  # the engine's own jitted entry compiles once
    before = trace_count()
    for _ in range(2):
        state["meta"], _ = program.generation(state["meta"])
    print(f"MetaProgram.generation: traces over 2 more generations: {trace_count() - before}")

    print("\n| population | generation program: temp (MiB) | arguments (MiB) |\n|---|---|---|")
    for population in args.memory:
        sized, _ = build_program("lpo", "CartPole-v1", population=population, sigma=0.1, inner_steps=args.inner_steps, track_mean=False)
        analysis = jax.jit(sized._generation_fn).lower(sized.init(jax.random.key(0))).compile().memory_analysis()
        print(f"| {population} | {analysis.temp_size_in_bytes / 2**20:.1f} | {analysis.argument_size_in_bytes / 2**20:.2f} |")


if __name__ == "__main__":
    main()
