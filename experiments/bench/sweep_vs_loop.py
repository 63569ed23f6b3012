"""A sweep as one program against the same runs launched one after another.

16 configurations (4 learning rates x 4 entropy coefficients) x 2 seeds of PPO on CartPole-v1:

* **sweep**: one ``jaxrl sweep`` process, all 32 runs in one compiled program;
* **loop**: 32 ``jaxrl train`` processes, one per (configuration, seed), started one after another,
  each training one seed (``--seed i``, the plain way people script this; the keys differ from
  the sweep's, the work is the same). ``--checkpoint-every 0`` keeps each to one checkpoint, at
  the end.

Wall time is measured around the processes, so it includes Python start-up, imports and
compilation: what a researcher waits for. No persistent compilation cache is used (the variable
is removed from the children's environment), so every ``jaxrl train`` process compiles.

    python experiments/bench/sweep_vs_loop.py --total-steps 50000
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LRS = ["1e-4", "3e-4", "1e-3", "3e-3"]
ENT_COEFS = ["0", "0.003", "0.01", "0.03"]


def _jaxrl(*args: str) -> list[str]:
    return [sys.executable, "-m", "jaxrl.cli", *args]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_COMPILATION_CACHE_DIR",)}
    env["JAX_PLATFORMS"] = env.get("JAX_PLATFORMS", "cpu")
    return env


def run_sweep(out: Path, total_steps: int, seeds: int) -> dict:
    start = time.perf_counter()
    subprocess.run(
        _jaxrl("sweep", "ppo", "--env", "CartPole-v1", "--grid", "lr=" + ",".join(LRS), "--grid",
               "ent_coef=" + ",".join(ENT_COEFS), "--seeds", str(seeds), "--total-steps", str(total_steps),
               "--out", str(out), "--quiet"),
        check=True, env=_env(), stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    meta = json.loads((out / "config.json").read_text())
    return {"wall_s": wall, "compilations": meta["num_compilations"], "compile_s": meta["compile_time_s"],
            "in_process_s": meta["wall_time_s"]}


def run_loop(out: Path, total_steps: int, seeds: int) -> dict:
    start = time.perf_counter()
    compile_s, in_process_s, processes = 0.0, 0.0, 0
    for (lr, ent), seed in itertools.product(itertools.product(LRS, ENT_COEFS), range(seeds)):
        run_dir = out / f"lr{lr}-ent{ent}-seed{seed}"
        subprocess.run(
            _jaxrl("train", "ppo", "--env", "CartPole-v1", "--set", f"lr={lr}", "--set", f"ent_coef={ent}",
                   "--seed", str(seed), "--total-steps", str(total_steps), "--out", str(run_dir), "--quiet",
                   "--checkpoint-every", "0"),
            check=True, env=_env(), stdout=subprocess.DEVNULL,
        )
        meta = json.loads((run_dir / "config.json").read_text())
        compile_s += meta.get("compile_time_s", 0.0)
        in_process_s += meta.get("wall_time_s", 0.0)
        processes += 1
    return {"wall_s": time.perf_counter() - start, "compilations": processes, "compile_s": compile_s,
            "in_process_s": in_process_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--total-steps", type=int, default=50_000, help="env steps per run")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--keep", default=None, help="directory to keep the run directories in")
    args = parser.parse_args()

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sweep-vs-loop-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        sweep = run_sweep(root / "sweep", args.total_steps, args.seeds)
        print("sweep", json.dumps(sweep), flush=True)
        loop = run_loop(root / "loop", args.total_steps, args.seeds)
        print("loop ", json.dumps(loop), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    runs = len(LRS) * len(ENT_COEFS) * args.seeds
    print()
    print(f"{runs} runs of PPO on CartPole-v1, {args.total_steps:,} env steps each; "
          f"python {platform.python_version()}, {os.cpu_count()} CPUs")
    print("| way | processes | compilations | compile (s) | wall time (s) |")
    print("|---|---|---|---|---|")
    print(f"| one sweep | 1 | {sweep['compilations']} | {sweep['compile_s']:.1f} | {sweep['wall_s']:.1f} |")
    print(f"| {runs} `jaxrl train` in a row | {runs} | {loop['compilations']} | {loop['compile_s']:.1f} | {loop['wall_s']:.1f} |")
    print(f"\nwall-time ratio sweep / loop: {sweep['wall_s'] / loop['wall_s']:.3f}")


if __name__ == "__main__":
    main()
