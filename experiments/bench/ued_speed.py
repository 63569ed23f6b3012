"""Benchmark: curricula on the maze. (1) Raw maze env steps/s, random policy, vmapped, against
the same env through the training stack (auto-replay, episode statistics, vectorisation). (2)
Recurrent PPO on the maze (n_walls 60) under DR, PLR, Robust PLR, ACCEL and SFL (and with
``--jaxued-agent`` DR with JaxUED's maze network), each the kit's
pure training function under ``jit(vmap)``, timed alternately in one process (``harness.py``):
the overhead of each curriculum over DR's time, every env step counted (SFL's scoring steps
too). (3) The plain single-file PLR written the way the public UED code is (``plain_plr.py``)
against the kit's ``plr``.

    python experiments/bench/ued_speed.py [--total-steps 327680] [--seeds 1 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (imports jaxrl first)

import jax  # noqa: E402

import envs  # noqa: E402
from envs.maze import Maze  # noqa: E402

ENV = {"n_walls": 60}
# A buffer the short benchmark fills in 4 updates, so that replay and mutation happen within it
# (the plain file uses the same sizes). SFL scores 256 levels x 250 steps every 8 updates: at the
# default budget 16 updates and 2 refreshes, half the steps scoring, as in the study
# (experiments/ued/run.py: 512 x 1,000 every 50 updates, 55%).
CURRICULUM = {"buffer_size": 256, "sfl_levels": 256, "sfl_batch": 256, "sfl_rollout": 250, "sfl_buffer": 64,
              "sfl_refresh": 8}
BATCH = 32 * 256


def env_speed(num_envs: int = 32, steps: int = 2000, repeats: int = 5) -> None:
    """Raw vmapped maze against the training stack, random actions."""
    maze = Maze()
    params = maze.default_params.replace(n_walls=60)

    def raw(key):
        keys = jax.random.split(key, num_envs)
        obs, state = jax.vmap(maze.reset, in_axes=(0, None))(keys, params)

        def step(state, key):
            act_key, step_key = jax.random.split(key)
            actions = jax.random.randint(act_key, (num_envs,), 0, 3)
            _, state, reward, *_ = jax.vmap(maze.step, in_axes=(0, 0, 0, None))(jax.random.split(step_key, num_envs), state, actions, params)
            return state, reward.sum()

        return jax.lax.scan(step, state, jax.random.split(key, steps))[1].sum()

    stack = envs.make_vector(envs.AutoReplay(maze), num_envs)
    tiled = envs.tile_params(params, num_envs)

    def wrapped(key):
        obs, state = stack.reset(key, tiled)

        def step(state, key):
            act_key, step_key = jax.random.split(key)
            actions = jax.random.randint(act_key, (num_envs,), 0, 3)
            _, state, reward, *_ = stack.step(step_key, state, actions, tiled)
            return state, reward.sum()

        return jax.lax.scan(step, state, jax.random.split(key, steps))[1].sum()

    programs = {"maze, vmapped": jax.jit(raw), "maze through AutoReplay + training stack": jax.jit(wrapped)}
    speeds = {name: [] for name in programs}
    for program in programs.values():
        jax.block_until_ready(program(jax.random.key(0)))
    for _ in range(repeats):
        for name, program in programs.items():
            start = time.perf_counter()
            jax.block_until_ready(program(jax.random.key(1)))
            speeds[name].append(num_envs * steps / (time.perf_counter() - start))
    print("| env (random policy, 32 envs) | env steps/s (median) | min-max |\n|---|---|---|")
    for name, values in speeds.items():
        print(f"| {name} | {statistics.median(values):,.0f} | {min(values):,.0f}-{max(values):,.0f} |")


def plain_candidate(total_steps: int, seeds: int) -> harness.Candidate:
    """The plain single-file PLR at the benchmark's buffer size. One seed runs as the public code
    runs it, jitted without vmap (its replay ``cond`` is a real branch); several seeds are vmapped,
    which turns that ``cond`` into a select computing both branches."""
    import plain_plr

    plain_plr.BUFFER_SIZE, plain_plr.MIN_FILL = CURRICULUM["buffer_size"], CURRICULUM["buffer_size"] // 2
    if seeds > 1:
        return harness.plain(plain_plr.make_train, total_steps, seeds, batch=BATCH, final_updates=5)
    train = plain_plr.make_train(total_steps)
    keys = jax.random.split(jax.random.key(0), 1)
    return harness._compiled("plain single-file", jax.jit(lambda keys: train(keys[0])[None]), keys,
                             lambda returns: returns[:, -5:], (total_steps // BATCH) * BATCH)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-steps", type=int, default=40 * BATCH, help="per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--curricula", default="dr,plr,robust-plr,accel,sfl")
    parser.add_argument("--no-plain", action="store_true")
    parser.add_argument("--jaxued-agent", action="store_true", help="also time DR with JaxUED's maze network")
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {args.total_steps:,} steps per seed")
    env_speed()
    print()
    print(harness.TABLE_HEADER)
    summaries = []
    for seeds in args.seeds:
        candidates = [functools.partial(harness.pure, c, "maze", args.total_steps, seeds, overrides=CURRICULUM,
                                        env_overrides=ENV, name=c) for c in args.curricula.split(",")]
        if args.jaxued_agent:  # JaxUED's maze network (--set agent=jaxued) under DR
            candidates.append(functools.partial(harness.pure, "dr", "maze", args.total_steps, seeds,
                                                overrides={**CURRICULUM, "agent": "jaxued"}, env_overrides=ENV,
                                                name="dr, agent=jaxued"))
        # what `jaxrl ued plr` runs: the host driver over the same function (one seed unbatched)
        candidates.append(functools.partial(harness.kit, "plr", "maze", args.total_steps, seeds, overrides=CURRICULUM,
                                            env_overrides=ENV, name="plr, jaxrl.train"))
        if not args.no_plain:
            candidates.append(functools.partial(plain_candidate, args.total_steps, seeds))
        timings = harness.alternate([c() for c in candidates], args.repeats)
        for timing in timings:
            print(harness.table_row(timing, seeds), flush=True)
        dr = timings[0]
        overheads = ", ".join(
            f"{t.name} {statistics.median([d / s - 1 for d, s in zip(dr.speeds, t.speeds)]):+.0%}" for t in timings[1:])
        summaries.append(f"{seeds} seed(s): time over DR's: {overheads}")
        if not args.no_plain:
            for name in ("plr", "plr, jaxrl.train"):
                kit_plr = next(t for t in timings if t.name == name)
                summaries.append(f"{seeds} seed(s): kit {name} against the plain single-file PLR: {harness.ratio(kit_plr, timings[-1])}")
    print()
    print("\n".join(summaries))


if __name__ == "__main__":
    main()
