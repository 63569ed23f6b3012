"""Peak memory of a sweep against its number of runs.

Each size runs in a fresh process (peak resident memory only ever grows), as a grid of learning
rates x 2 seeds of PPO on CartPole-v1 with a tiny budget, and reports:

* peak RSS after imports (the floor), after the sweep, and the growth the sweep caused;
* the training state of all runs (parameters, optimizer state, env states, keys: what lives on
  the device for the whole run) computed from its shapes;
* the host-side results (the tidy DataFrame of reduced per-window metrics).

Metrics are reduced on the device to one row per run and logging window, so what grows with the
number of runs is the state and the rollout buffers of one update, not a per-update history.

    python experiments/bench/sweep_memory.py --runs 8 32 128
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np

    def peak_mib():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB

    def rss_mib():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    runs, total_steps = int(sys.argv[1]), int(sys.argv[2])
    import jax
    import jaxrl
    from jaxrl.core.train import build
    from jaxrl.sweeps.plan import plan as plan_sweep
    floor = peak_mib()
    configs = runs // 2
    grid = {"lr": [float(v) for v in np.geomspace(1e-4, 3e-3, configs)]}
    overrides = {"total_steps": total_steps, "num_envs": 4}
    result = jaxrl.sweep("ppo", "CartPole-v1", grid=grid, seeds=2, overrides=overrides, log_every=1)
    peak = peak_mib()
    plan = plan_sweep("ppo", "CartPole-v1", grid=grid, seeds=2, overrides=overrides)
    train_fn = build("ppo", "CartPole-v1", config=plan.groups[0].config, hparams=plan.hparams[0])
    one = jax.eval_shape(train_fn.init, jax.random.key(0), train_fn.default_hparams)
    state_bytes = sum(np.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(one) if hasattr(x, "dtype"))
    print("RESULT " + json.dumps({
        "runs": runs, "floor_mib": floor, "peak_mib": peak, "rss_after_mib": rss_mib(),
        "state_mib": float(state_bytes * runs / 2**20),
        "results_mib": float(result.results.memory_usage(deep=True).sum() / 2**20),
        "rows": len(result.results), "wall_s": result.wall_time, "compile_s": result.compile_time,
    }))
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[8, 32, 128], help="even numbers of runs")
    parser.add_argument("--total-steps", type=int, default=10_240)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env.setdefault("JAX_PLATFORMS", "cpu")
    rows = []
    for runs in args.runs:
        done = subprocess.run([sys.executable, "-c", CHILD, str(runs), str(args.total_steps)], env=env,
                              capture_output=True, text=True, check=True)
        line = next(l for l in done.stdout.splitlines() if l.startswith("RESULT "))
        rows.append(json.loads(line[len("RESULT "):]))
        print(json.dumps(rows[-1]), flush=True)
    print()
    print(f"PPO on CartPole-v1, 4 envs x 128 steps, {args.total_steps:,} env steps per run, one log row per update")
    print("| runs | peak RSS after imports (MiB) | peak RSS after sweep (MiB) | growth (MiB) | state of all runs (MiB) | results frame (MiB) | wall (s) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['runs']} | {r['floor_mib']:.0f} | {r['peak_mib']:.0f} | {r['peak_mib'] - r['floor_mib']:.0f} | "
              f"{r['state_mib']:.2f} | {r['results_mib']:.2f} | {r['wall_s']:.1f} |")
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        per_run = (last["peak_mib"] - first["peak_mib"]) / (last["runs"] - first["runs"])
        print(f"\nmarginal peak memory per run: {per_run * 1024:.0f} KiB")


if __name__ == "__main__":
    main()
