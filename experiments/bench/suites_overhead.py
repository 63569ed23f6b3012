"""What the suites cost through the kit: raw environment steps per second under a uniformly random
policy, ``--envs`` copies stepped together, against each suite's own fastest batched API, compiled
once each and timed in alternation in one process.

Sides (each one compiled program of ``--steps`` steps, carried on from call to call, so episodes
end at the rate random play ends them; ``--warmup`` calls first, so the copies' clocks spread):
- ``kit``: ``envs.VectorEnv`` over the adapter (``envs.make``), as every agent steps it. Where the
  adapter's reset is expensive (``reset_in_batch``) it resets only the copies that ended.
- ``per-copy``: the adapter's own auto-reset under ``vmap``: every copy computes a reset every
  step (what the kit did before).
- ``native``: the suite's own API with its own auto-reset (craftax's auto-resetting environment,
  xminigrid's ``GymAutoResetWrapper``, navix's ``step``, jumanji's ``AutoResetWrapper``);
- ``optimistic`` (Craftax): the optimistic resets of Craftax's baselines (Matthews et al., 2024),
  written here from their description: ``num_envs / 16`` resets computed every step and handed to
  the copies that ended; when more copies end than there are resets, some start the same world.
The ratio is the median over alternating rounds of kit / the fastest suite-own side.

    python experiments/bench/suites_overhead.py --repeats 7
    python experiments/bench/suites_overhead.py --envs craftax/Craftax-Classic-Pixels-v1 --copies 16
    python experiments/bench/suites_overhead.py --batch-resets --envs navix/Navix-DoorKey-5x5-v0
"""

from __future__ import annotations

import argparse
import statistics
import time

import jaxrl  # noqa: F401  (the kit's XLA settings for every side)

import jax
import jax.numpy as jnp

import envs
from envs.wrappers import VectorEnv, tile_params

CASES = {
    "craftax/Craftax-Classic-Symbolic-v1": 64,
    "craftax/Craftax-Symbolic-v1": 64,
    "craftax/Craftax-Classic-Pixels-v1": 16,
    "craftax/Craftax-Pixels-v1": 16,
    "xminigrid/MiniGrid-DoorKey-5x5": 1024,
    "xminigrid/XLand-MiniGrid-R1-9x9": 1024,
    "navix/Navix-DoorKey-5x5-v0": 1024,
    "jumanji/Snake-v1": 1024,
}
OPTIMISTIC_RATIO = 16  # Craftax's baselines' default reset ratio


def native_sides(name: str, params, num_envs: int) -> dict:
    """``{side: (init(key) -> state, step(state, key, actions) -> (state, reward, done, obs))}`` of
    the suite's own API."""
    suite, inner = name.split("/", 1)
    if suite == "craftax":
        from craftax.craftax_env import make_craftax_env_from_name

        auto = make_craftax_env_from_name(inner, auto_reset=True)
        raw = make_craftax_env_from_name(inner, auto_reset=False)

        def init(key):
            return jax.vmap(lambda k: auto.reset(k, params)[1])(jax.random.split(key, num_envs))

        def native(state, key, actions):
            out = jax.vmap(lambda k, s, a: auto.step(k, s, a, params))(jax.random.split(key, num_envs), state, actions)
            return out[1], out[2], out[3], out[0]

        def optimistic(state, key, actions):
            step_key, reset_key = jax.random.split(key)
            obs, stepped, reward, done, _ = jax.vmap(lambda k, s, a: raw.step_env(k, s, a, params))(
                jax.random.split(step_key, num_envs), state, actions)
            resets = num_envs // OPTIMISTIC_RATIO
            fresh = jax.vmap(lambda k: raw.reset_env(k, params))(jax.random.split(reset_key, resets))
            # the k-th copy that ended takes reset k (mod the number of resets)
            slot = (jnp.cumsum(done) - 1) % resets
            fresh_obs, fresh = jax.tree.map(lambda x: x[slot], fresh)
            pick = lambda a, b: jnp.where(done.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)  # noqa: E731
            return jax.tree.map(pick, fresh, stepped), reward, done, pick(fresh_obs, obs)

        return {"native": (init, native), "optimistic": (init, optimistic)}
    if suite == "xminigrid":
        import xminigrid
        from xminigrid.wrappers import GymAutoResetWrapper

        env = GymAutoResetWrapper(xminigrid.make(inner)[0])

        def step(state, key, actions):
            state = jax.vmap(lambda s, a: env.step(params, s, a))(state, actions)
            return state, state.reward, state.last(), state.observation

        return {"native": (lambda key: jax.vmap(lambda k: env.reset(params, k))(jax.random.split(key, num_envs)), step)}
    if suite == "navix":
        import navix

        env = navix.make(inner)

        def step(state, key, actions):
            state = jax.vmap(env.step)(state, actions)
            return state, state.reward, state.step_type > 0, state.observation

        return {"native": (lambda key: jax.vmap(env.reset)(jax.random.split(key, num_envs)), step)}
    import jumanji
    from jumanji.wrappers import AutoResetWrapper

    env = AutoResetWrapper(jumanji.make(inner))

    def step(state, key, actions):
        state, timestep = jax.vmap(env.step)(state, actions)
        return state, timestep.reward, timestep.last(), timestep.observation

    return {"native": (lambda key: jax.vmap(lambda k: env.reset(k)[0])(jax.random.split(key, num_envs)), step)}


def kit_sides(env, params, num_envs: int) -> dict:
    vec = VectorEnv(env, num_envs)
    per_copy = tile_params(params, num_envs)

    def kit(state, key, actions):
        out = vec.step(key, state, actions, per_copy)
        return out[1], out[2], out[3] | out[4], out[0]

    def plain(state, key, actions):
        out = jax.vmap(env.step, in_axes=(0, 0, 0, None))(jax.random.split(key, num_envs), state, actions, params)
        return out[1], out[2], out[3] | out[4], out[0]

    init = lambda key: vec.reset(key, per_copy)[1]  # noqa: E731
    sides = {"kit": (init, kit)}
    if vec.resets_in_batch:
        sides["per-copy"] = (init, plain)
    return sides


def program(init, step, num_envs: int, num_steps: int, num_actions: int):
    """``(state, run(state, key) -> (state, total reward, episodes ended))``, compiled; a sum of the
    observations is computed too, so that they are not optimised away (an agent reads them)."""

    def run(state, key):
        def body(state, key):
            action_key, step_key = jax.random.split(key)
            actions = jax.random.randint(action_key, (num_envs,), 0, num_actions)
            state, reward, done, obs = step(state, step_key, actions)
            seen = sum(jnp.sum(jnp.asarray(x, jnp.float32)) for x in jax.tree.leaves(obs))
            return state, (reward.sum() + 0.0 * seen, done.sum())

        state, (reward, ended) = jax.lax.scan(body, state, jax.random.split(key, num_steps))
        return state, reward.sum(), ended.sum()

    state = jax.jit(init)(jax.random.key(0))
    return state, jax.jit(run).lower(state, jax.random.key(1)).compile()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=10, help="calls before timing (the copies' clocks spread)")
    parser.add_argument("--copies", type=int, default=None, help="copies for every case (default: per case)")
    parser.add_argument("--envs", default=",".join(CASES), help="comma-separated registry names")
    parser.add_argument("--kit-only", action="store_true", help="time the kit's side alone (e.g. to find a suite's fastest variant)")
    parser.add_argument("--batch-resets", action="store_true",
                        help="reset in batch on every adapter (to measure where it pays), not only where reset_in_batch is set")
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; {args.steps} steps per call, "
          f"{args.warmup} calls of warm-up, median of {args.repeats}")
    print("| environment | copies | episodes ended per 1k steps | " + " | ".join(f"{s} steps/s" for s in ("kit", "per-copy", "native", "optimistic"))
          + " | kit / fastest suite-own (range) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.envs.split(","):
        start = time.perf_counter()
        env, params = envs.make(name)
        if args.batch_resets:
            env.reset_in_batch = True
        num_envs = args.copies or CASES.get(name, 256)
        made = time.perf_counter() - start
        sides = kit_sides(env, params, num_envs)
        if args.kit_only:
            sides = {"kit": sides["kit"]}
        else:
            sides.update(native_sides(name, params, num_envs))
        compiled, states, compile_s = {}, {}, {}
        for side, (init, step) in sides.items():
            start = time.perf_counter()
            states[side], compiled[side] = program(init, step, num_envs, args.steps, env.num_actions)
            compile_s[side] = time.perf_counter() - start
        key = jax.random.key(2)
        for _ in range(args.warmup):
            key, call_key = jax.random.split(key)
            for side in sides:
                states[side] = compiled[side](states[side], call_key)[0]
        jax.block_until_ready(states)  # the warm-up is dispatched asynchronously: not into the first timing
        speeds = {side: [] for side in sides}
        ended = 0
        for _ in range(args.repeats):
            key, call_key = jax.random.split(key)
            for side in sides:
                start = time.perf_counter()
                states[side], _, count = jax.block_until_ready(compiled[side](states[side], call_key))
                speeds[side].append(num_envs * args.steps / (time.perf_counter() - start))
                ended += int(count) if side == "kit" else 0
        own = [s for s in sides if s in ("native", "optimistic")] or ["kit"]
        ratios = [speeds["kit"][i] / max(speeds[s][i] for s in own) for i in range(args.repeats)]
        cells = [f"{statistics.median(speeds[s]):,.0f}" if s in speeds else "-" for s in ("kit", "per-copy", "native", "optimistic")]
        per_1k = 1000 * ended / (args.repeats * args.steps * num_envs)
        print(f"| {name} | {num_envs} | {per_1k:.1f} | " + " | ".join(cells)
              + f" | {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) |", flush=True)
        print(f"  (made in {made:.0f} s; compiled in " + ", ".join(f"{s} {t:.0f} s" for s, t in compile_s.items())
              + "; steps/s per call: " + "; ".join(f"{s} " + " ".join(f"{v:,.0f}" for v in speeds[s]) for s in sides) + ")", flush=True)


if __name__ == "__main__":
    main()
