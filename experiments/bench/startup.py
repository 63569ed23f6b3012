"""Benchmark: the whole process of a newcomer's first command, ``jaxrl train ppo --env CartPole-v1
--seeds 1`` (500k steps), from ``python`` starting to it exiting: imports, tracing, compilation,
training, checkpoints and the run directory's files.

Two ways (four with ``--before``), as whole processes alternated in one run (a, b, a, b, ...),
so that the machine's speed drifts alike for all:

* ``before, never run`` and ``before, run before``: the kit at another source tree
  (``--before DIR``, e.g. a ``git worktree`` of the commit before the change, run with
  ``PYTHONPATH=DIR``), with an empty compilation cache and with one its own first run filled;
* ``never run``: this tree with an empty persistent compilation cache (a fresh directory each
  time): a configuration never run before;
* ``run before``: this tree with the cache that a first run filled.

    git worktree add /tmp/before <commit>
    python experiments/bench/startup.py --before /tmp/before --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[2]
COMMAND = ["-m", "jaxrl.cli", "train", "ppo", "--env", "CartPole-v1", "--seeds", "1", "--quiet", "--overwrite"]


def one_process(source: Path, cache: str, out: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE"))}
    env["PYTHONPATH"] = str(source)
    env["JAXRL_COMPILATION_CACHE"] = cache
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *COMMAND, "--out", str(out)], env=env, cwd=source, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, default=None, help="source tree of the version to compare against")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="jaxrl-startup-"))
    warm_cache = str(scratch / "warm-cache")
    one_process(HERE, warm_cache, scratch / "run")  # fills the cache of "run before"
    ways = {"never run": lambda i: one_process(HERE, str(scratch / f"cold-{i}"), scratch / "run"),
            "run before": lambda i: one_process(HERE, warm_cache, scratch / "run")}
    if args.before is not None:
        before, before_cache = args.before.resolve(), str(scratch / "before-warm-cache")
        one_process(before, before_cache, scratch / "run")  # fills the cache of "before, run before"
        ways = {"before, never run": lambda i: one_process(before, str(scratch / f"before-cold-{i}"), scratch / "run"),
                "before, run before": lambda i: one_process(before, before_cache, scratch / "run"), **ways}
    times: dict[str, list[float]] = {name: [] for name in ways}
    for i in range(args.repeats):
        for name, way in ways.items():
            times[name].append(way(i))
            print(f"{name}: {times[name][-1]:.1f} s", flush=True)
    print("\n| way | whole process (s), median | min-max |\n|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.1f} | {min(values):.1f}-{max(values):.1f} |")


if __name__ == "__main__":
    main()
