"""Benchmark: DQN and PQN on CartPole-v1 with the kit's default configurations, for 1 and 8 vmapped
seeds: the kit (``jaxrl.train``) side by side with the same configuration written the plain way
(``plain_dqn.py``, ``plain_pqn.py``), in one process.

Reports compile time (lowering + XLA compilation) and environment steps per second after
compilation (all seeds together), the two implementations timed in alternation (``harness.py``).
``--quick`` is a smoke test: a tiny budget, 1 and 2 seeds, one repeat.

    python experiments/bench/value_based_cartpole.py [--total-steps 500000] [--seeds 1 8] [--repeats 5]
    python experiments/bench/value_based_cartpole.py --quick
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (imports jaxrl first: both sides run under the kit's XLA settings)
import plain_dqn  # noqa: E402
import plain_pqn  # noqa: E402

import jax  # noqa: E402

from jaxrl.algorithms.dqn import DQNConfig, DQNHParams  # noqa: E402
from jaxrl.algorithms.pqn import PQNConfig, PQNHParams  # noqa: E402
from jaxrl.core.train import default_log_every  # noqa: E402

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


def plain_candidate(algorithm: str, total_steps: int, num_seeds: int) -> harness.Candidate:
    make_train, config_type, _ = ALGORITHMS[algorithm]
    config = config_type()
    batch = config.num_envs * config.num_steps
    # Final return over the last ~1% of updates, the kit's default log window.
    final_updates = default_log_every(total_steps // batch)
    return harness.plain(make_train, total_steps, num_seeds, batch=batch, final_updates=final_updates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithms", nargs="+", choices=sorted(ALGORITHMS), default=["dqn", "pqn"])
    parser.add_argument("--total-steps", type=int, default=None, help="per seed (default 500000; --quick: 20480)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default 1 8 (--quick: 1 2)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs of each after compilation (default 5; --quick: 1)")
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny budget, 1 and 2 seeds, one repeat")
    args = parser.parse_args()
    defaults = QUICK if args.quick else {"total_steps": 500_000, "seeds": [1, 8], "repeats": 5}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)

    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {args.total_steps:,} steps per seed")
    for algorithm in args.algorithms:
        print(describe(algorithm))
    print()
    print(harness.TABLE_HEADER)
    summaries = [
        harness.compare(
            algorithm,
            functools.partial(plain_candidate, algorithm, args.total_steps, num_seeds),
            functools.partial(harness.kit, algorithm, "CartPole-v1", args.total_steps, num_seeds),
            num_seeds,
            args.repeats,
            prefix=f"{algorithm}: ",
        )
        for algorithm in args.algorithms
        for num_seeds in args.seeds
    ]
    print("\n" + "\n".join(summaries))


if __name__ == "__main__":
    main()
