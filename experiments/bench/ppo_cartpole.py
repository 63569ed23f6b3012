"""Benchmark: PPO on CartPole-v1 with the standard configuration (4 envs x 128 steps, 4 epochs x 4
minibatches, 500k steps per seed), for 1 and 8 vmapped seeds: the kit (``jaxrl.train``) side by
side with the same configuration written the plain way (``plain_ppo.py``), and with the pure
function (``jaxrl.make_train``) called under an outer ``jit(vmap(...))``, in one process.

Reports compile time (lowering + XLA compilation) and environment steps per second after
compilation (all seeds together), the two implementations timed in alternation (``harness.py``).

    python experiments/bench/ppo_cartpole.py [--total-steps 500000] [--seeds 1 8] [--repeats 5]
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (imports jaxrl first: both sides run under the kit's XLA settings)
import plain_ppo  # noqa: E402

import jax  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-steps", type=int, default=500_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-pure", dest="pure", action="store_false", help="leave out make_train under an outer jit")
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {args.total_steps:,} steps per seed")
    print(harness.TABLE_HEADER)
    summaries = [
        harness.compare(
            "ppo",
            functools.partial(harness.plain, plain_ppo.make_train, args.total_steps, num_seeds, batch=512, final_updates=10),
            functools.partial(harness.kit, "ppo", "CartPole-v1", args.total_steps, num_seeds),
            num_seeds,
            args.repeats,
            more=[functools.partial(harness.pure, "ppo", "CartPole-v1", args.total_steps, num_seeds)] if args.pure else [],
        )
        for num_seeds in args.seeds
    ]
    print("\n" + "\n".join(summaries))


if __name__ == "__main__":
    main()
