"""Benchmark: PPO on CartPole-v1 with the standard configuration (4 envs x 128 steps, 4 epochs x 4
minibatches, 500k steps per seed), for 1 and 8 vmapped seeds: the kit (``jaxrl.train``) side by
side with the same configuration written the plain way (``plain_ppo.py``), in one process.

Reports compile time (lowering + XLA compilation) and environment steps per second after
compilation (all seeds together; best of ``--repeats`` runs).

    python experiments/bench/ppo_cartpole.py [--total-steps 500000] [--seeds 1 8] [--repeats 2]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import jaxrl  # first: both implementations run under the kit's XLA settings

import jax
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import plain_ppo  # noqa: E402


def bench_plain(
    total_steps: int,
    num_seeds: int,
    repeats: int,
    make_train=plain_ppo.make_train,
    batch: int = 512,
    final_updates: int = 10,
) -> tuple[float, float, float]:
    """``make_train(total_steps)`` gives ``train(key) -> mean return per update`` (NaN where no
    episode ended); ``batch`` is its env steps per update, and the final return is the mean over
    its last ``final_updates`` updates. The defaults are plain_ppo's."""
    train = jax.jit(jax.vmap(make_train(total_steps)))
    keys = jax.random.split(jax.random.key(0), num_seeds)
    start = time.perf_counter()
    compiled = train.lower(keys).compile()
    compile_time = time.perf_counter() - start
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        returns = jax.block_until_ready(compiled(keys))
        best = min(best, time.perf_counter() - start)
    steps = num_seeds * (total_steps // batch) * batch
    final = np.nanmean(np.asarray(returns)[:, -final_updates:])
    return compile_time, steps / best, final


def bench_kit(
    total_steps: int, num_seeds: int, repeats: int, algorithm: str = "ppo", env: str = "CartPole-v1"
) -> tuple[float, float, float]:
    compile_time, best, final = None, np.inf, np.nan
    for _ in range(repeats + 1):
        result = jaxrl.train(algorithm, env, num_seeds=num_seeds, overrides={"total_steps": total_steps})
        if compile_time is None:
            compile_time = result.compile_time
            continue  # the first call also pays tracing and compilation; time the warm ones
        best = min(best, result.wall_time - result.compile_time)
        final = float(np.mean(result.final_returns))
    return compile_time, num_seeds * int(result.steps[-1]) / best, final


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-steps", type=int, default=500_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {args.total_steps:,} steps per seed")
    print("| implementation | seeds | compile (s) | env steps/s | final return |")
    print("|---|---|---|---|---|")
    for num_seeds in args.seeds:
        for name, fn in (("plain single-file", bench_plain), ("jaxrl", bench_kit)):
            compile_time, sps, final = fn(args.total_steps, num_seeds, args.repeats)
            print(f"| {name} | {num_seeds} | {compile_time:.1f} | {sps:,.0f} | {final:.1f} |", flush=True)


if __name__ == "__main__":
    main()
