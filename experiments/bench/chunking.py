"""What chunked execution costs: env steps per second of one configuration trained

* as one compiled call (every log window in a single chunk),
* in the runner's default chunks (~20 a run, the next one dispatched before the host reads the
  previous one's rows),
* in default chunks with an ``on_chunk`` hook that does nothing (the host waits for every chunk,
  as it does when checkpointing), and
* through ``jaxrl.driver.run.train_run`` with checkpoints (about ten Orbax saves a run).

All in one process, after a warm-up run of each, so compilation is excluded; variants are
interleaved over the repeats so that drift on a shared machine hits them alike; the median
repeat is reported.

    python experiments/bench/chunking.py --total-steps 500000 --seeds 1 --repeats 5
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
from pathlib import Path

import jax

from jaxrl.core.train import default_log_every
from jaxrl.driver.run import run_seeds, train_run
from jaxrl.driver.training import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--total-steps", type=int, default=500_000)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--num-envs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    overrides = {"total_steps": args.total_steps, "num_envs": args.num_envs}
    batch = args.num_envs * 128
    num_updates = args.total_steps // batch
    log_every = default_log_every(num_updates)
    num_logs = -(-num_updates // log_every)
    common = dict(overrides=overrides, num_seeds=args.seeds, log_every=log_every)
    scratch = Path(tempfile.mkdtemp(prefix="jaxrl-bench-"))

    def one_call():
        return train("ppo", args.env, chunk_windows=num_logs, **common).wall_time

    def default_chunks():
        return train("ppo", args.env, **common).wall_time

    train_fn = train("ppo", args.env, **common).train

    def with_noop_hook():
        return run_seeds(train_fn, seed=0, num_seeds=args.seeds, on_chunk=lambda state, done: None).wall_time

    def with_checkpoints():
        return train_run("ppo", args.env, scratch / "run", overwrite=True, **common).wall_time

    variants = {
        "one call": one_call,
        "default chunks": default_chunks,
        "default chunks + no-op hook": with_noop_hook,
        "train_run, ~10 checkpoints": with_checkpoints,
    }
    for run in variants.values():  # warm-up: compile everything once
        run()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, run in variants.items():
            times[name].append(run())

    env_steps = num_updates * batch * args.seeds
    device = jax.devices()[0]
    print(f"{args.env}, PPO {args.num_envs} envs x 128 steps, {args.seeds} seed(s), {num_updates} updates, "
          f"{num_logs} log rows; {device.platform} ({getattr(device, 'device_kind', '')}), "
          f"{jax.device_count()} device(s), python {platform.python_version()}, jax {jax.__version__}; "
          f"median of {args.repeats}")
    baseline = statistics.median(times["one call"])
    print("| variant | median s | env steps/s | vs one call |")
    print("|---|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.3f} | {env_steps / median:,.0f} | {100 * (median / baseline - 1):+.1f}% |")


if __name__ == "__main__":
    main()
