"""Benchmark: DQN and PQN on CartPole-v1 with the kit's default configurations, for 1 and 8 vmapped
seeds: the kit (``jaxrl.train``) side by side with the same configuration written the plain way
(``plain_dqn.py``, ``plain_pqn.py``), in one process.

Reports compile time (lowering + XLA compilation) and environment steps per second after
compilation (all seeds together; best of ``--repeats`` runs), measured as ``ppo_cartpole.py``
does (its helpers are reused). ``--quick`` is a smoke test: a tiny budget, 1 and 2 seeds, one
repeat.

    python experiments/bench/value_based_cartpole.py [--total-steps 500000] [--seeds 1 8] [--repeats 2]
    python experiments/bench/value_based_cartpole.py --quick
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys
import warnings

import jaxrl  # first: both implementations run under the kit's XLA settings

import jax

from jaxrl.algorithms.dqn import DQNConfig, DQNHParams
from jaxrl.algorithms.pqn import PQNConfig, PQNHParams
from jaxrl.runner import default_log_every

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import plain_dqn  # noqa: E402
import plain_pqn  # noqa: E402
from ppo_cartpole import bench_kit, bench_plain  # noqa: E402

ALGORITHMS = {
    "dqn": (plain_dqn.make_train, DQNConfig, DQNHParams),
    "pqn": (plain_pqn.make_train, PQNConfig, PQNHParams),
}
QUICK = {"total_steps": 20_480, "seeds": [1, 2], "repeats": 1}


def describe(algorithm: str) -> str:
    """The default configuration both implementations run, in one line."""
    _, config_type, hparams_type = ALGORITHMS[algorithm]
    config, hparams = config_type(), hparams_type()
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name != "total_steps"}
    fields.update({f.name: getattr(hparams, f.name) for f in dataclasses.fields(hparams)})
    return f"{algorithm}: " + ", ".join(f"{k}={v}" for k, v in fields.items())


def bench_plain_algorithm(algorithm: str, total_steps: int, num_seeds: int, repeats: int) -> tuple[float, float, float]:
    make_train, config_type, _ = ALGORITHMS[algorithm]
    config = config_type()
    batch = config.num_envs * config.num_steps
    # Final return over the last ~1% of updates, the kit's default log window.
    final_updates = default_log_every(total_steps // batch)
    return bench_plain(total_steps, num_seeds, repeats, make_train=make_train, batch=batch, final_updates=final_updates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithms", nargs="+", choices=sorted(ALGORITHMS), default=["dqn", "pqn"])
    parser.add_argument("--total-steps", type=int, default=None, help="per seed (default 500000; --quick: 20480)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default 1 8 (--quick: 1 2)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs after compilation (default 2; --quick: 1)")
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny budget, 1 and 2 seeds, one repeat")
    args = parser.parse_args()
    defaults = QUICK if args.quick else {"total_steps": 500_000, "seeds": [1, 8], "repeats": 2}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)

    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {args.total_steps:,} steps per seed")
    for algorithm in args.algorithms:
        print(describe(algorithm))
    print()
    print("| algorithm | implementation | seeds | compile (s) | env steps/s | final return |")
    print("|---|---|---|---|---|---|")
    speeds = {}
    for algorithm in args.algorithms:
        for num_seeds in args.seeds:
            for name, fn in (
                ("plain single-file", lambda *a: bench_plain_algorithm(algorithm, *a)),
                ("jaxrl", lambda *a: bench_kit(*a, algorithm=algorithm)),
            ):
                with warnings.catch_warnings():  # nanmean of a tiny run with no finished episode
                    warnings.simplefilter("ignore", RuntimeWarning)
                    compile_time, sps, final = fn(args.total_steps, num_seeds, args.repeats)
                speeds[algorithm, num_seeds, name] = sps
                print(f"| {algorithm} | {name} | {num_seeds} | {compile_time:.1f} | {sps:,.0f} | {final:.1f} |", flush=True)
    print()
    for algorithm in args.algorithms:
        for num_seeds in args.seeds:
            ratio = speeds[algorithm, num_seeds, "jaxrl"] / speeds[algorithm, num_seeds, "plain single-file"]
            print(f"{algorithm}, {num_seeds} seed(s): jaxrl runs at {ratio:.2f}x the plain implementation's env steps/s")


if __name__ == "__main__":
    main()
