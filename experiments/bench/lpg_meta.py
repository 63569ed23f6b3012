"""What meta-gradient meta-training of an update rule costs (``jaxrl meta-train lpg``): meta-steps
per second, compile time and the compiled step's memory against the number of differentiated
inner updates K, with and without rematerialisation, beside the same meta-step written the plain
way in one file (plain_lpg.py), timed alternately in one process; then agent steps per second of
a fresh agent trained by a learned rule against A2C (the rule set by hand, and the kit's a2c).

    python experiments/bench/lpg_meta.py [--ks 1 5 10] [--steps 20] [--repeats 3]

The configuration is the one the public LPG code was measured in on this CPU (GROOVE's JAX code on
its pinned 2023 stack: 1.30 meta-steps/s after a 56 s compile, 1 GiB): small levels, 32 agents x
16 environments x 20 steps, K = 5, an update network of width 64.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import jaxrl  # noqa: F401  (XLA settings first)

import jax
import numpy as np

from jaxrl.rules.meta import MetaConfig, MetaGradient
from plain_lpg import make

CONFIG = dict(num_agents=32, num_envs=16, num_steps=20, hidden_size=64)


def kit_candidate(k: int, remat: bool):
    program = MetaGradient(MetaConfig(**CONFIG, inner_updates=k, remat=remat))
    start = time.perf_counter()
    state = jax.block_until_ready(program.init(jax.random.PRNGKey(0)))
    compiled = jax.jit(program._step).lower(state).compile()
    compile_time = time.perf_counter() - start
    memory = compiled.memory_analysis()
    holder = {"state": state}

    def run(steps: int) -> float:
        tick = time.perf_counter()
        for _ in range(steps):
            holder["state"], row = compiled(holder["state"])
        jax.block_until_ready(row)
        return steps / (time.perf_counter() - tick)

    return compile_time, memory, run


def plain_candidate(k: int):
    init, step = make(num_agents=CONFIG["num_agents"], num_envs=CONFIG["num_envs"], num_steps=CONFIG["num_steps"],
                      inner=k, hidden=CONFIG["hidden_size"])
    start = time.perf_counter()
    state = jax.block_until_ready(init(jax.random.PRNGKey(0)))
    compiled = step.lower(state).compile()
    compile_time = time.perf_counter() - start
    holder = {"state": state}

    def run(steps: int) -> float:
        tick = time.perf_counter()
        for _ in range(steps):
            holder["state"], loss = compiled(holder["state"])
        jax.block_until_ready(loss)
        return steps / (time.perf_counter() - tick)

    return compile_time, compiled.memory_analysis(), run


def mib(memory) -> str:
    if memory is None:
        return "n/a"
    return f"{(memory.temp_size_in_bytes + memory.argument_size_in_bytes + memory.output_size_in_bytes) / 2**20:.0f}"


def agent_speeds(total_steps: int) -> None:
    print("\n| agent on gridworld/dense | env steps/s | final return |\n|---|---|---|")
    for label, algorithm, overrides in (("lpg (learned rule, width 64)", "lpg", {"rule_hidden": 64}),
                                        ("lpg with the hand-set a2c rule", "lpg", {"rule": "a2c"}),
                                        ("a2c (PPO's agent, MLP)", "a2c", {})):
        jaxrl.train(algorithm, "gridworld/dense", overrides={**overrides, "total_steps": total_steps})  # compile
        result = jaxrl.train(algorithm, "gridworld/dense", overrides={**overrides, "total_steps": total_steps})
        speed = total_steps / (result.wall_time - result.compile_time)
        print(f"| {label} | {speed:,.0f} | {float(np.mean(result.final_returns)):.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 5, 10])
    parser.add_argument("--steps", type=int, default=20, help="meta-steps per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--agent-steps", type=int, default=320_000)
    args = parser.parse_args()
    print("| K | implementation | compile (s) | meta-steps/s (median) | min-max | compiled memory (MiB) |\n|---|---|---|---|---|---|")
    for k in args.ks:
        candidates = {"plain single-file": plain_candidate(k), "jaxrl": kit_candidate(k, False),
                      "jaxrl, remat": kit_candidate(k, True)}
        speeds = {name: [] for name in candidates}
        for _ in range(args.repeats):
            for name, (_, _, run) in candidates.items():
                speeds[name].append(run(args.steps))
        for name, (compile_time, memory, _) in candidates.items():
            values = speeds[name]
            print(f"| {k} | {name} | {compile_time:.1f} | {statistics.median(values):.2f} | {min(values):.2f}-{max(values):.2f} "
                  f"| {mib(memory)} |", flush=True)
    print(f"\npeak resident memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    agent_speeds(args.agent_steps)


if __name__ == "__main__":
    main()
