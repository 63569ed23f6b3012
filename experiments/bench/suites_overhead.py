"""What the suites' adapters cost: raw environment steps per second under a uniformly random
policy, vmapped over ``--envs`` copies and scanned over ``--steps`` steps, through the kit's
adapter (``envs.make("<suite>/<name>")``: six-value step, auto-reset with the protocol's key,
float observations) and through the suite's own API with its own auto-reset (craftax's
auto-resetting environment, xminigrid's ``GymAutoResetWrapper``, navix's ``step``, jumanji's
``AutoResetWrapper``), compiled once each and timed in alternation in one process. The ratio is
the median over alternating pairs of adapter / native speed (1.00 = no cost).

    python experiments/bench/suites_overhead.py --repeats 7
"""

from __future__ import annotations

import argparse
import statistics
import time

import jaxrl  # noqa: F401  (the kit's XLA settings for both sides)

import jax
import jax.numpy as jnp

import envs

CASES = {
    "craftax/Craftax-Classic-Symbolic-v1": 64,
    "xminigrid/MiniGrid-DoorKey-5x5": 1024,
    "xminigrid/XLand-MiniGrid-R1-9x9": 1024,
    "navix/Navix-DoorKey-5x5-v0": 1024,
    "jumanji/Snake-v1": 1024,
}


def native(name: str, params):
    """``(init(keys) -> state, step(state, key, actions) -> (state, reward))`` of the suite's own API."""
    suite, inner = name.split("/", 1)
    if suite == "craftax":
        from craftax.craftax_env import make_craftax_env_from_name

        env = make_craftax_env_from_name(inner, auto_reset=True)
        init = jax.vmap(lambda k: env.reset(k, params)[1])

        def step(state, keys, actions):
            out = jax.vmap(lambda k, s, a: env.step(k, s, a, params))(keys, state, actions)
            return out[1], out[2]
    elif suite == "xminigrid":
        import xminigrid
        from xminigrid.wrappers import GymAutoResetWrapper

        env = GymAutoResetWrapper(xminigrid.make(inner)[0])
        init = jax.vmap(lambda k: env.reset(params, k))

        def step(state, keys, actions):
            state = jax.vmap(lambda s, a: env.step(params, s, a))(state, actions)
            return state, state.reward
    elif suite == "navix":
        import navix

        env = navix.make(inner)
        init = jax.vmap(env.reset)

        def step(state, keys, actions):
            state = jax.vmap(env.step)(state, actions)
            return state, state.reward
    else:
        import jumanji
        from jumanji.wrappers import AutoResetWrapper

        env = AutoResetWrapper(jumanji.make(inner))
        init = jax.vmap(lambda k: env.reset(k)[0])

        def step(state, keys, actions):
            state, timestep = jax.vmap(env.step)(state, actions)
            return state, timestep.reward
    return init, step


def adapter(env, params):
    init = jax.vmap(lambda k: env.reset(k, params)[1])

    def step(state, keys, actions):
        out = jax.vmap(lambda k, s, a: env.step(k, s, a, params))(keys, state, actions)
        return out[1], out[2]

    return init, step


def program(init, step, num_envs: int, num_steps: int, num_actions: int):
    """A compiled ``run(key) -> total reward`` of ``num_steps`` random steps of ``num_envs`` copies."""

    def run(key):
        reset_key, key = jax.random.split(key)
        state = init(jax.random.split(reset_key, num_envs))

        def body(state, key):
            action_key, step_key = jax.random.split(key)
            actions = jax.random.randint(action_key, (num_envs,), 0, num_actions)
            state, reward = step(state, jax.random.split(step_key, num_envs), actions)
            return state, reward.sum()

        return jax.lax.scan(body, state, jax.random.split(key, num_steps))[1].sum()

    key = jax.random.key(0)
    return jax.jit(run).lower(key).compile(), key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--envs", default=",".join(CASES), help="comma-separated registry names")
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; {args.steps} steps per run, median of {args.repeats}")
    print("| environment | copies | native steps/s | adapter steps/s | adapter / native (range) |")
    print("|---|---|---|---|---|")
    for name in args.envs.split(","):
        env, params = envs.make(name)
        num_envs = CASES.get(name, 256)
        sides = {}
        for side, (init, step) in (("native", native(name, params)), ("adapter", adapter(env, params))):
            sides[side] = program(init, step, num_envs, args.steps, env.num_actions)
        speeds = {"native": [], "adapter": []}
        for _ in range(args.repeats):
            for side, (compiled, key) in sides.items():
                start = time.perf_counter()
                jax.block_until_ready(compiled(key))
                speeds[side].append(num_envs * args.steps / (time.perf_counter() - start))
        ratios = [a / n for a, n in zip(speeds["adapter"], speeds["native"])]
        print(f"| {name} | {num_envs} | {statistics.median(speeds['native']):,.0f} | {statistics.median(speeds['adapter']):,.0f} "
              f"| {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) |", flush=True)


if __name__ == "__main__":
    main()
