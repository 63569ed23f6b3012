"""Benchmark: the kit's streaming agent ``stream-q`` (Elsayed, Vasan and Mahmood, 2024) on
CartPole-v1 against the same algorithm written the plain way (``plain_stream_q.py``), both
vmapped over N independent learners (one environment copy each), in one process; then what one
env step of one streaming learner costs against the kit's DQN and PQN at their CartPole defaults.

Table 1: for each N, both implementations compiled once, then timed in alternation
(``harness.alternate``); env steps/s summed over the N learners; kit/plain is the median (range)
of the ratios of the alternating pairs. Table 2: stream-q (1 learner), DQN and PQN (1 seed each,
the kit's ``jaxrl.train``) at the same env steps, timed in alternation: microseconds per env step.
``JAXRL_COMPILATION_CACHE=off`` makes the compile times cold ones (otherwise a rerun reads the
programs from the kit's persistent compilation cache: about 1 s).

    JAXRL_COMPILATION_CACHE=off python experiments/bench/streaming_speed.py [--steps 100000] [--learners 1,64,512] [--repeats 3]
    JAXRL_COMPILATION_CACHE=off python experiments/bench/streaming_speed.py --steps 3000 --learners 1,4 --repeats 1   # smoke
"""

from __future__ import annotations

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (imports jaxrl first: both sides run under the kit's XLA settings)
import plain_stream_q  # noqa: E402

import jax  # noqa: E402

from jaxrl._platform import compilation_cache_dir  # noqa: E402
from jaxrl.algorithms.dqn import DQNConfig  # noqa: E402
from jaxrl.algorithms.pqn import PQNConfig  # noqa: E402
from jaxrl.algorithms.stream_q import StreamQConfig, StreamQHParams  # noqa: E402
from jaxrl.core.train import DEFAULT_FINAL_FRACTION  # noqa: E402

ENV = "CartPole-v1"


def plain_candidate(steps: int, learners: int) -> harness.Candidate:
    # Final return over the last 10% of the windows, as the kit's final_returns (DEFAULT_FINAL_FRACTION).
    windows = steps // plain_stream_q.WINDOW
    return harness.plain(plain_stream_q.make_train, steps, learners, batch=plain_stream_q.WINDOW,
                         final_updates=max(1, round(DEFAULT_FINAL_FRACTION * windows)))


def describe() -> list[str]:
    s, h, d, p = StreamQConfig(), StreamQHParams(), DQNConfig(), PQNConfig()
    return [
        f"stream-q: 1 env per learner, one ObGD step per env step; MLP {s.hidden_sizes}, sparsity {s.sparsity}, "
        f"lr {h.lr}, gamma {h.gamma}, lambda {h.lam}, kappa {h.kappa}, epsilon {h.eps_start} -> {h.eps_end} over {h.eps_fraction:.0%}",
        f"dqn: {d.num_envs} envs, {d.gradient_steps} Adam step (batch {d.batch_size}) per {d.num_envs * d.num_steps} env steps "
        f"after {d.learning_starts:,}; MLP {d.hidden_sizes}",
        f"pqn: {p.num_envs} envs x {p.num_steps} steps, {p.update_epochs} epochs x {p.num_minibatches} minibatches "
        f"per {p.num_envs * p.num_steps:,} env steps; MLP {p.hidden_sizes}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000, help="env steps per learner (a multiple of 1000)")
    parser.add_argument("--learners", type=str, default="1,64,512", help="comma-separated numbers of vmapped learners")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each after compilation")
    args = parser.parse_args()
    learners = [int(n) for n in args.learners.split(",")]
    if args.steps < plain_stream_q.WINDOW:
        parser.error(f"--steps must be at least {plain_stream_q.WINDOW} (one logged update of stream-q)")

    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {ENV}, {args.steps:,} env steps per learner, "
          f"{args.repeats} timed run(s) each, persistent compilation cache {'on' if compilation_cache_dir() else 'off'}")
    print("\n".join(describe()) + "\n")

    print("| learners | implementation | compile (s) | env steps/s, all learners (median) | min-max | final return | kit/plain |")
    print("|---|---|---|---|---|---|---|")
    kit_stream = {}  # N -> the kit's compiled candidate (N = 1 is reused by table 2)
    for n in learners:
        plain, kit = plain_candidate(args.steps, n), harness.kit("stream-q", ENV, args.steps, n, name="jaxrl stream-q")
        kit_stream[n] = kit
        t_plain, t_kit = harness.alternate([plain, kit], args.repeats)
        for timing, ratio in ((t_plain, "1"), (t_kit, harness.ratio(t_kit, t_plain))):
            print(f"| {n} | {timing.name} | {timing.compile_time:.1f} | {timing.median:,.0f} | "
                  f"{min(timing.speeds):,.0f}-{max(timing.speeds):,.0f} | {timing.final:.1f} | {ratio} |", flush=True)

    print("\n| algorithm (1 learner / seed) | compile (s) | us per env step (median) | env steps/s (median) | min-max | final return |")
    print("|---|---|---|---|---|---|")
    candidates = [
        kit_stream.get(1) or harness.kit("stream-q", ENV, args.steps, 1, name="jaxrl stream-q"),
        harness.kit("dqn", ENV, args.steps, 1, name="jaxrl dqn"),
        harness.kit("pqn", ENV, args.steps, 1, name="jaxrl pqn"),
    ]
    for timing in harness.alternate(candidates, args.repeats):
        print(f"| {timing.name.removeprefix('jaxrl ')} | {timing.compile_time:.1f} | {1e6 / timing.median:,.1f} | "
              f"{timing.median:,.0f} | {min(timing.speeds):,.0f}-{max(timing.speeds):,.0f} | {timing.final:.1f} |", flush=True)
    if args.steps <= DQNConfig().learning_starts:
        print(f"\nnote: {args.steps:,} steps <= DQN's learning_starts ({DQNConfig().learning_starts:,}): its run took no gradient step")
    if args.steps % (PQNConfig().num_envs * PQNConfig().num_steps):
        print("note: PQN ran the whole rollouts that fit in the budget (env steps/s counts those)")


if __name__ == "__main__":
    main()
