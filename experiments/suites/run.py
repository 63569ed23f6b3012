"""PPO and PQN with the kit's defaults on one environment of each JAX suite, at a CPU budget:
each (environment, algorithm) trained for ``--seeds`` seeds vmapped in one program
(``jaxrl.make_train``), then its final policies played greedily for ``--episodes`` episodes each
(on Craftax the episode's achievements are read from craftax's ``info`` where it ends). Writes
``results.csv`` (per run and seed: final training return, greedy return, Craftax achievements),
``curves.csv``, ``curves.png`` and ``summary.md`` next to this file.

    python experiments/suites/run.py --seeds 3
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jaxrl

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import envs  # noqa: E402
from jaxrl.analysis import evaluation  # noqa: E402

HERE = Path(__file__).parent
# environment: env steps per seed (craftax steps ~15x slower: its world generation runs at
# every step of every copy, in its own auto-reset and in ours)
BUDGETS = {
    "craftax/Craftax-Classic-Symbolic-v1": 100_000,
    "xminigrid/MiniGrid-DoorKey-5x5": 500_000,
    "navix/Navix-DoorKey-5x5-v0": 500_000,
    "jumanji/Snake-v1": 500_000,
}


def achievements_unlocked(info: dict) -> jax.Array:
    """Craftax's ``info`` at an episode's end: how many achievements it unlocked (0 elsewhere)."""
    unlocked = [(v > 0).astype(jnp.float32) for k, v in info.items() if k.startswith("Achievements/")]
    return sum(unlocked) if unlocked else jnp.zeros(info["episode_done"].shape, jnp.float32)


def run_one(name: str, algorithm: str, steps: int, seeds: int, episodes: int) -> tuple[list[dict], pd.DataFrame, float]:
    start = time.perf_counter()
    train = jaxrl.make_train(algorithm, name, total_steps=steps)
    keys = jax.random.split(jax.random.key(0), seeds)
    state, metrics = jax.block_until_ready(jax.jit(jax.vmap(train, in_axes=(0, None)))(keys, train.default_hparams))
    env, params = envs.make(name)
    rows = []
    horizon = 2000 if name.startswith("craftax/") else int(params.max_steps_in_episode if hasattr(params, "max_steps_in_episode") else params.max_steps)
    play = jax.jit(evaluation.episodes(env, lambda p, o, k: train.act(p, o, k, True), episodes, horizon, info_stat=achievements_unlocked))
    for seed in range(seeds):
        policy = train.policy_params(jax.tree.map(lambda x: x[seed], state))
        returns, _, finished, achievements = play(policy, jax.random.key(100 + seed), params)
        finished = np.asarray(finished)
        rows.append({
            "env": name, "algorithm": algorithm, "seed": seed, "steps": steps,
            "final_train_return": float(metrics["final_return"][seed]),
            "greedy_return": float(np.asarray(returns)[finished].mean()) if finished.any() else float("nan"),
            "greedy_finished": int(finished.sum()),
            "achievements": float(np.asarray(achievements)[finished].mean()) if name.startswith("craftax/") and finished.any() else float("nan"),
        })
    curve = pd.DataFrame(np.asarray(metrics["episode_return"]).T, columns=[f"seed{s}" for s in range(seeds)])
    curve.insert(0, "step", train.log_steps())
    curve.insert(0, "algorithm", algorithm)
    curve.insert(0, "env", name)
    return rows, curve, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--algorithms", default="ppo,pqn")
    parser.add_argument("--envs", default=",".join(BUDGETS))
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every budget (a smoke test: 0.05)")
    args = parser.parse_args()
    rows, curves, seconds = [], [], {}
    for name in args.envs.split(","):
        for algorithm in args.algorithms.split(","):
            steps = int(BUDGETS[name] * args.scale)
            got, curve, took = run_one(name, algorithm, steps, args.seeds, args.episodes)
            rows += got
            curves.append(curve)
            seconds[(name, algorithm)] = took
            print(f"{name} {algorithm}: {steps} steps x {args.seeds} seeds in {took:.0f} s; final train returns "
                  f"{[round(r['final_train_return'], 3) for r in got]}", flush=True)
    results = pd.DataFrame(rows)
    results.to_csv(HERE / "results.csv", index=False)
    pd.concat(curves).to_csv(HERE / "curves.csv", index=False)
    write_summary(results, seconds, args)
    plot(pd.concat(curves))


def write_summary(results: pd.DataFrame, seconds: dict, args) -> None:
    lines = [f"Seeds: {args.seeds}; greedy evaluation: {args.episodes} episodes per seed. Mean ± std over seeds.", "",
             "| environment | algorithm | steps per seed | final training return | greedy return | Craftax achievements | wall time (s) |",
             "|---|---|---|---|---|---|---|"]
    for (name, algorithm), group in results.groupby(["env", "algorithm"], sort=False):
        def cell(column):
            values = group[column].to_numpy(float)
            return "-" if np.isnan(values).all() else f"{np.nanmean(values):.2f} ± {np.nanstd(values):.2f}"
        lines.append(f"| {name} | {algorithm} | {int(group['steps'].iloc[0]):,} | {cell('final_train_return')} | "
                     f"{cell('greedy_return')} | {cell('achievements')} | {seconds[(name, algorithm)]:.0f} |")
    (HERE / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def plot(curves: pd.DataFrame) -> None:
    names = list(dict.fromkeys(curves["env"]))
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        for algorithm, group in curves[curves["env"] == name].groupby("algorithm"):
            values = group.filter(like="seed").to_numpy(float)
            series = pd.DataFrame(values).ffill().to_numpy()
            mean = np.nanmean(series, axis=1)
            ax.plot(group["step"], mean, label=algorithm)
            ax.fill_between(group["step"], np.nanmin(series, axis=1), np.nanmax(series, axis=1), alpha=0.2)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("env steps per seed")
        ax.set_ylabel("episode return")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "curves.png", dpi=120)


if __name__ == "__main__":
    main()
