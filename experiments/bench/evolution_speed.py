"""Benchmark: ``jaxrl train es`` and ``jaxrl train ga`` on CartPole-v1 with their default
configurations against the same generations written the plain way (``plain_evolution.py``: the
same population, episodes, selection and update, over flat weight vectors), timed alternately in
one process (``harness.py``). Env steps/s count every step of every member's episodes.

    python experiments/bench/evolution_speed.py [--total-steps 2000000] [--seeds 1 4] [--repeats 5]
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (imports jaxrl first: both sides run under the kit's XLA settings)
import plain_evolution as plain  # noqa: E402

import jax  # noqa: E402

BATCH = {"es": plain.ES_POPULATION * plain.HORIZON,
         "ga": (plain.GA_POPULATION + plain.CANDIDATES * plain.CANDIDATE_EPISODES) * plain.HORIZON}
MAKE = {"es": plain.make_train_es, "ga": plain.make_train_ga}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithms", nargs="+", choices=sorted(MAKE), default=["es", "ga"])
    parser.add_argument("--total-steps", type=int, default=2_000_000, help="per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {args.total_steps:,} steps per seed")
    print(harness.TABLE_HEADER)
    summaries = []
    for algorithm in args.algorithms:
        total = args.total_steps // BATCH[algorithm] * BATCH[algorithm]  # whole generations on both sides
        for seeds in args.seeds:
            summaries.append(harness.compare(
                algorithm,
                functools.partial(harness.plain, MAKE[algorithm], total, seeds, batch=BATCH[algorithm], final_updates=1),
                functools.partial(harness.kit, algorithm, "CartPole-v1", total, seeds),
                seeds, args.repeats, prefix=f"{algorithm}: ",
            ))
    print()
    print("\n".join(summaries))


if __name__ == "__main__":
    main()
