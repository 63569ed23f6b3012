"""How many greedy episodes does a fitness need? The noise of one policy's greedy return from
episode to episode, measured against the spread between training seeds, for PPO at the inner
horizons the meta-training studies use. This sets the default of ``--eval-episodes``.

    python experiments/fitness_noise/run.py --out experiments/fitness_noise

For each environment: PPO (the kit's defaults) trained on --seeds seeds for each of --steps env steps; each
seed's final policy then plays --episodes deterministic episodes. Reported: sigma_episode (the
pooled within-seed std of the greedy returns), sigma_seed (the std over seeds of each seed's mean
greedy return), the final training return's spread over seeds and its episode count, and the
episodes E a member needs so that episode noise adds at most a quarter of the seed variance
(sigma_episode / sqrt(E) <= sigma_seed / 2). Writes noise.csv and prints the table.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import jaxrl  # noqa: F401  (XLA settings first)

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from jaxrl.analysis.evaluation import episodes  # noqa: E402


def measure(env: str, seeds: int, steps: int, num_episodes: int) -> dict:
    train = jaxrl.make_train("ppo", env, total_steps=steps)
    keys = jax.random.split(jax.random.key(2000), seeds)
    states, metrics = jax.jit(jax.vmap(train, in_axes=(0, None)))(keys, train.default_hparams)
    act = lambda params, obs, key: train.act(params, obs, key, True)  # noqa: E731
    play = episodes(train.env, act, num_episodes, max_steps=100_000)
    eval_keys = jax.random.split(jax.random.key(3000), seeds)
    returns = np.asarray(jax.jit(jax.vmap(lambda p, k: play(p, k, train.default_env_params)[0]))(
        train.policy_params(states), eval_keys))  # [seeds, episodes]
    sigma_episode = float(np.sqrt(np.mean(np.var(returns, axis=1, ddof=1))))
    sigma_seed = float(np.std(returns.mean(axis=1), ddof=1))
    final = np.asarray(metrics["final_return"])
    needed = math.ceil(4 * sigma_episode**2 / max(sigma_seed**2, 1e-12))
    return {"env": env, "steps": steps, "seeds": seeds, "episodes": num_episodes,
            "greedy_mean": float(returns.mean()), "sigma_episode": sigma_episode, "sigma_seed": sigma_seed,
            "final_return_mean": float(np.nanmean(final)), "final_return_sigma_seed": float(np.nanstd(final, ddof=1)),
            "final_episodes_per_seed": float(np.mean(np.asarray(metrics["final_episode_count"]).sum(-1))),
            "episodes_needed": needed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("experiments/fitness_noise"))
    parser.add_argument("--envs", default="CartPole-v1,Acrobot-v1")
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--steps", default="32768,65536", help="inner horizons, comma-separated")
    parser.add_argument("--episodes", type=int, default=64)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    frame = pd.DataFrame([measure(env, args.seeds, int(steps), args.episodes)
                          for steps in args.steps.split(",") for env in args.envs.split(",")])
    frame.to_csv(args.out / "noise.csv", index=False)
    print(frame.round(2).to_string(index=False))
    print(f"wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
