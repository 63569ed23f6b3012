"""What a CPU run costs on each suite: PPO with the kit's defaults, one seed, on the environments
given (by default each suite's fastest variant and the ones a newcomer meets first), compiled once
(timed), then run again and timed; env steps per second of that second run. Prints a markdown
table (the README's suites table and ``envs.suites.SUITES[...].cpu_cost`` quote it).

    python experiments/suites/cpu_cost.py
    python experiments/suites/cpu_cost.py --envs craftax/Craftax-Classic-Pixels-v1 --steps 8192
"""

from __future__ import annotations

import argparse
import time

import jaxrl

import jax

DEFAULT = (
    "craftax/Craftax-Classic-Symbolic-v1",
    "craftax/Craftax-Symbolic-v1",
    "craftax/Craftax-Classic-Pixels-v1",
    "xminigrid/MiniGrid-Empty-5x5",
    "xminigrid/MiniGrid-DoorKey-5x5",
    "navix/Navix-Empty-5x5-v0",
    "navix/Navix-DoorKey-5x5-v0",
    "jumanji/Snake-v1",
    "playground/CartpoleBalance",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", default=",".join(DEFAULT))
    parser.add_argument("--algorithm", default="ppo")
    parser.add_argument("--steps", type=int, default=32_768, help="env steps per timed run")
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; {args.algorithm} defaults, 1 seed, {args.steps:,} steps")
    print("| environment | num_envs | compile + first run (s) | training env steps/s |")
    print("|---|---|---|---|")
    for name in args.envs.split(","):
        start = time.perf_counter()
        train = jaxrl.make_train(args.algorithm, name, total_steps=args.steps)
        program = jax.jit(train)
        hparams = train.default_hparams
        jax.block_until_ready(program(jax.random.key(0), hparams))
        first = time.perf_counter() - start
        start = time.perf_counter()
        jax.block_until_ready(program(jax.random.key(1), hparams))
        speed = train.total_env_steps / (time.perf_counter() - start)
        print(f"| {name} | {train.config.num_envs} | {first:.0f} | {speed:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
