"""Benchmark: what a learned optimizer costs PPO. PPO on CartPole-v1 (the kit's defaults) with
Adam, with ``learned_mlp`` and with ``learned_gru``, each the pure training function under one
``jax.jit(jax.vmap(...))``, compiled once and timed alternately in one process (``harness.py``).

    python experiments/bench/learned_optimizer_speed.py [--total-steps 200000] [--seeds 1 8] [--repeats 5]
"""

from __future__ import annotations

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (imports jaxrl first)

import jax  # noqa: E402

import jaxrl  # noqa: E402

OPTIMIZERS = ("adam", "learned_mlp", "learned_gru")


def candidate(name: str, total_steps: int, seeds: int) -> harness.Candidate:
    train = jaxrl.make_train("ppo", "CartPole-v1", total_steps=total_steps, overrides={"optimizer": name})
    keys = jax.random.split(jax.random.key(0), seeds)
    program = jax.jit(jax.vmap(lambda key: train(key, train.default_hparams)[1]["final_return"]))
    return harness._compiled(f"PPO + {name}", program, keys, lambda finals: finals, seeds * train.total_env_steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-steps", type=int, default=200_000, help="per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {args.total_steps:,} steps per seed")
    print(harness.TABLE_HEADER)
    summaries = []
    for seeds in args.seeds:
        timings = harness.alternate([candidate(name, args.total_steps, seeds) for name in OPTIMIZERS], args.repeats)
        for timing in timings:
            print(harness.table_row(timing, seeds), flush=True)
        summaries.append(f"{seeds} seed(s), env steps/s against Adam's: "
                         + ", ".join(f"{t.name} {harness.ratio(t, timings[0])}" for t in timings[1:]))
    print()
    print("\n".join(summaries))


if __name__ == "__main__":
    main()
