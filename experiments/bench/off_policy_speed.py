"""Benchmark: SAC on Pendulum-v1 with the kit's default configuration (4 envs x 1 step, 4 gradient
steps of batch 256 per update, 64x64 networks, replay of 100k, 1k random warm-up steps, 30k steps
per seed), for 1 and 8 vmapped seeds: the kit (``jaxrl.train``) side by side with the same
configuration written the plain way (``plain_sac.py``), in one process.

Reports compile time (lowering + XLA compilation) and environment steps per second after
compilation (all seeds together), the two implementations timed in alternation (``harness.py``).
The final return is the kit's last logged window with a finished
episode, and for the plain run the mean over its last episode per environment. ``--quick`` is a
smoke test: a tiny budget (half of it random warm-up, so its speeds say little), 1 and 2 seeds,
one repeat. ``off_policy_pendulum.py`` measures the returns of SAC, TD3 and DSAC-T instead.

    python experiments/bench/off_policy_speed.py [--total-steps 30000] [--seeds 1 8] [--repeats 5]
    python experiments/bench/off_policy_speed.py --quick
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (imports jaxrl first: both sides run under the kit's XLA settings)
import plain_sac  # noqa: E402

import gymnax  # noqa: E402
import jax  # noqa: E402

from jaxrl.algorithms import sac  # noqa: E402

ENV = "Pendulum-v1"
QUICK = {"total_steps": 2_000, "seeds": [1, 2], "repeats": 1}
FULL = {"total_steps": None, "seeds": [1, 8], "repeats": 5}  # None: the kit's default budget


def describe() -> str:
    """The default configuration both implementations run, in one line."""
    config, hparams = sac.defaults(ENV, discrete=False)
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name not in ("total_steps", "torso")}
    fields.update({f.name: getattr(hparams, f.name) for f in dataclasses.fields(hparams)})
    return f"sac on {ENV}: " + ", ".join(f"{k}={v}" for k, v in fields.items())


def plain_candidate(total_steps: int, num_seeds: int) -> harness.Candidate:
    config, _ = sac.defaults(ENV, discrete=False)
    _, env_params = gymnax.make(ENV)
    # Pendulum's episodes all last max_steps_in_episode steps: the last that many updates hold
    # the last finished episode of every environment.
    final_updates = max(1, env_params.max_steps_in_episode // config.num_steps)
    batch = config.num_envs * config.num_steps
    return harness.plain(plain_sac.make_train, total_steps, num_seeds, batch=batch, final_updates=final_updates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-steps", type=int, default=None, help="per seed (default: the kit's, 30000; --quick: 2000)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default 1 8 (--quick: 1 2)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs of each after compilation (default 5; --quick: 1)")
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny budget, 1 and 2 seeds, one repeat")
    args = parser.parse_args()
    defaults = QUICK if args.quick else FULL
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.total_steps is None:
        args.total_steps = sac.defaults(ENV, discrete=False)[0].total_steps

    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {args.total_steps:,} steps per seed")
    print(describe())
    if args.quick:
        print("(--quick: a smoke test. Half its updates are random warm-up, which the plain run skips and the kit")
        print(" computes and discards (its learning cond is a select under vmap), so its speeds are not the benchmark.)")
    print()
    print(harness.TABLE_HEADER)
    summaries = [
        harness.compare(
            "sac",
            functools.partial(plain_candidate, args.total_steps, num_seeds),
            functools.partial(harness.kit, "sac", ENV, args.total_steps, num_seeds),
            num_seeds,
            args.repeats,
        )
        for num_seeds in args.seeds
    ]
    print("\n" + "\n".join(summaries))


if __name__ == "__main__":
    main()
