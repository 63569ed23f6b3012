"""Benchmark: the off-policy actor-critic agents (SAC, TD3, DSAC-T) with their default
configurations on one environment, several seeds vmapped: final return per seed (the mean return
of the episodes that ended in the last logged window), compile time and run time.

    python experiments/bench/off_policy_pendulum.py [--env Pendulum-v1] [--seeds 4] [--total-steps 30000]
    python experiments/bench/off_policy_pendulum.py --env brax/inverted_pendulum --seeds 1 --algorithms sac
"""

from __future__ import annotations

import argparse

import jaxrl  # first: the kit's XLA settings

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--algorithms", nargs="+", default=["sac", "td3", "dsac-t"])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--total-steps", type=int, default=None, help="default: the algorithm's")
    args = parser.parse_args()
    overrides = {} if args.total_steps is None else {"total_steps": args.total_steps}
    print("| algorithm | env | env steps | seeds | final return per seed | mean | compile (s) | run (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for algorithm in args.algorithms:
        result = jaxrl.train(algorithm, args.env, num_seeds=args.seeds, overrides=overrides)
        final = result.final_returns
        run_time = result.wall_time - result.compile_time
        per_seed = " ".join(f"{x:.0f}" for x in final)
        print(
            f"| {algorithm} | {args.env} | {result.config.total_steps} | {args.seeds} | {per_seed} | {np.nanmean(final):.0f} "
            f"| {result.compile_time:.1f} | {run_time:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
