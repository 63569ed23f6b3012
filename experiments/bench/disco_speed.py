"""What training an agent with Disco103 costs against PPO and A2C on the same environment and the
same network (``jaxrl train disco --rule disco103``): env steps per second and compile time of one
run, each implementation compiled once and then timed in alternation (``harness.alternate``).

    python experiments/bench/disco_speed.py [--env Catch-bsuite] [--steps 53760] [--repeats 3] [--seeds 1]

Rows per network (an MLP torso of 64 x 64, then the colab's 512 x 512): Disco103 on-policy (8
environments x 28 steps per update; the per-action layer 32 wide on the small torso, the default
128 on the large), Disco103 with the colab's replay (2 environments, 32 stored sequences of 28
steps per update: a replay ratio of 16), PPO and A2C at their defaults with that torso. The
reference implementation (Haiku, pinned to an old JAX) does not run on this stack, so the
comparison is against the kit's own actor-critics, not a plain file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import harness

from jaxrl.rules.disco import load_weights
from jaxrl.rules.disco_agent import to_hparam

WEIGHTS = Path(__file__).resolve().parents[3] / "shared" / "disco103" / "disco_103.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="Catch-bsuite")
    parser.add_argument("--steps", type=int, default=53_760, help="env steps per run (a multiple of 1,792 and 512)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--weights", type=Path, default=WEIGHTS)
    args = parser.parse_args()
    rule = {"rule_params": to_hparam(load_weights(args.weights))}
    print(harness.TABLE_HEADER)
    for torso, action_hidden in (((64, 64), 32), ((512, 512), 128)):
        net = {"hidden_sizes": torso}
        disco = {**rule, **net, "action_hidden": action_hidden}
        candidates = [
            lambda: harness.kit("disco", args.env, args.steps, args.seeds, overrides={**disco, "num_envs": 8},
                                name="disco (on-policy, 8 envs x 28)"),
            lambda: harness.kit("disco", args.env, args.steps, args.seeds, name="disco (replay ratio 16, batch 32 x 28)",
                                overrides={**disco, "num_envs": 2, "replay_capacity": 28_672, "batch_size": 32}),
            lambda: harness.kit("ppo", args.env, args.steps, args.seeds, overrides=net, name="ppo (4 envs x 128, 4 x 4 epochs)"),
            lambda: harness.kit("a2c", args.env, args.steps, args.seeds, overrides=net, name="a2c (8 envs x 5)"),
        ]
        timings = harness.alternate([make() for make in candidates], args.repeats)
        for timing in timings:
            print(harness.table_row(timing, args.seeds, prefix=f"{torso[0]}x{torso[1]} "), flush=True)
        ppo = timings[2]
        print("| | | | " + ", ".join(f"{t.name}: {harness.ratio(t, ppo)} of PPO" for t in timings[:2]) + " | | |", flush=True)


if __name__ == "__main__":
    main()
