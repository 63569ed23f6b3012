"""PPO and SAC on MuJoCo Playground's CartpoleBalance (``playground/CartpoleBalance``, the DM
Control Suite on MJX) at a CPU budget: each algorithm trained for ``--seeds`` seeds vmapped in
one program (``jaxrl.make_train``), its final policies then played greedily for ``--episodes``
full episodes (1,000 steps) each, beside a uniformly random policy. DM Control rewards are in
[0, 1] per step, so a return is at most 1,000. Writes ``results.csv`` (per algorithm and seed),
``curves.csv``, ``curves.png`` and ``summary.md`` into ``experiments/suites/playground/``.

    python experiments/suites/playground.py --seeds 3
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jaxrl

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import envs  # noqa: E402
from jaxrl.analysis import evaluation  # noqa: E402

OUT = Path(__file__).parent / "playground"
ENV = "playground/CartpoleBalance"
# algorithm: (env steps per seed, config fields and hyperparameters). The kit's defaults except
# where said: PPO with 16 copies and 0.995 discounting (the horizon of a 1,000-step episode, as
# Playground's own DM Control configs), SAC as the kit has it (64x64 networks, 4 copies, one
# gradient step per environment step).
RUNS = {
    "ppo": (2_000_000, {"num_envs": 16, "num_steps": 256, "num_minibatches": 8, "gamma": 0.995, "lr": 3e-4,
                        "normalize_obs": True}),
    "sac": (100_000, {}),
}


def run_one(algorithm: str, seeds: int, episodes: int, scale: float) -> tuple[list[dict], pd.DataFrame, float]:
    steps, overrides = RUNS[algorithm]
    steps = int(steps * scale)
    start = time.perf_counter()
    train = jaxrl.make_train(algorithm, ENV, total_steps=steps, overrides=overrides)
    keys = jax.random.split(jax.random.key(0), seeds)
    state, metrics = jax.block_until_ready(jax.jit(jax.vmap(train, in_axes=(0, None)))(keys, train.default_hparams))
    trained = time.perf_counter() - start
    env, params = envs.make(ENV)
    play = jax.jit(evaluation.episodes(env, lambda p, o, k: train.act(p, o, k, True), episodes, params.max_steps_in_episode))
    rows = []
    for seed in range(seeds):
        returns, _, finished = play(train.policy_params(jax.tree.map(lambda x: x[seed], state)), jax.random.key(100 + seed), params)
        rows.append({"algorithm": algorithm, "seed": seed, "steps": steps, "train_seconds": trained,
                     "final_train_return": float(metrics["final_return"][seed]),
                     "greedy_return": float(np.asarray(returns)[np.asarray(finished)].mean())})
    curve = pd.DataFrame(np.asarray(metrics["episode_return"]).T, columns=[f"seed{s}" for s in range(seeds)])
    curve.insert(0, "step", train.log_steps())
    curve.insert(0, "algorithm", algorithm)
    return rows, curve, time.perf_counter() - start


def random_policy(episodes: int) -> float:
    env, params = envs.make(ENV)
    size = envs.action_size(env.action_space(params))
    act = lambda p, obs, key: jax.random.uniform(key, (obs.shape[0], size), minval=-1.0, maxval=1.0)  # noqa: E731
    returns, _, finished = jax.jit(evaluation.episodes(env, act, episodes, params.max_steps_in_episode))(None, jax.random.key(7), params)
    return float(np.asarray(returns)[np.asarray(finished)].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--algorithms", default=",".join(RUNS))
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every budget (a smoke test: 0.05)")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    baseline = random_policy(args.episodes)
    print(f"random policy: {baseline:.1f}", flush=True)
    rows, curves, seconds = [], [], {}
    for algorithm in args.algorithms.split(","):
        got, curve, took = run_one(algorithm, args.seeds, args.episodes, args.scale)
        rows += got
        curves.append(curve)
        seconds[algorithm] = took
        print(f"{algorithm}: {got[0]['steps']} steps x {args.seeds} seeds in {took:.0f} s (training {got[0]['train_seconds']:.0f} s); "
              f"final train returns {[round(r['final_train_return'], 1) for r in got]}, "
              f"greedy {[round(r['greedy_return'], 1) for r in got]}", flush=True)
    results = pd.DataFrame(rows)
    results.to_csv(OUT / "results.csv", index=False)
    pd.concat(curves).to_csv(OUT / "curves.csv", index=False)
    write_summary(results, seconds, baseline, args)
    plot(pd.concat(curves), baseline)


def write_summary(results: pd.DataFrame, seconds: dict, baseline: float, args) -> None:
    command = f"python experiments/suites/playground.py --seeds {args.seeds}" + (f" --scale {args.scale}" if args.scale != 1 else "")
    lines = [f"# PPO and SAC on {ENV} at a CPU budget", "",
             f"Command: `{command}` (2-core CPU, MJX's JAX backend). "
             f"Greedy evaluation: {args.episodes} full episodes (1,000 steps) per seed; mean ± std over seeds. "
             f"A uniformly random policy returns {baseline:.1f}.", "",
             "| algorithm | steps per seed | settings | final training return | greedy return | wall time (s) |",
             "|---|---|---|---|---|---|"]
    for algorithm, group in results.groupby("algorithm", sort=False):
        def cell(column):
            values = group[column].to_numpy(float)
            return f"{values.mean():.1f} ± {values.std():.1f}"
        settings = ", ".join(f"{k}={v}" for k, v in RUNS[algorithm][1].items()) or "the kit's defaults"
        lines.append(f"| {algorithm} | {int(group['steps'].iloc[0]):,} | {settings} | {cell('final_train_return')} | "
                     f"{cell('greedy_return')} | {seconds[algorithm]:.0f} |")
    (OUT / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def plot(curves: pd.DataFrame, baseline: float) -> None:
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for algorithm, group in curves.groupby("algorithm", sort=False):
        # windows in which no episode ended hold the last value; those before the first are left out
        series = pd.DataFrame(group.filter(like="seed").to_numpy(float)).ffill().to_numpy()
        some = ~np.isnan(series).all(axis=1)
        steps, series = group["step"].to_numpy()[some], series[some]
        ax.plot(steps, np.nanmean(series, axis=1), label=algorithm)
        ax.fill_between(steps, np.nanmin(series, axis=1), np.nanmax(series, axis=1), alpha=0.2)
    ax.axhline(baseline, color="grey", linestyle=":", label="random")
    ax.set_xscale("log")
    ax.set_title(ENV, fontsize=9)
    ax.set_xlabel("env steps per seed")
    ax.set_ylabel("episode return")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT / "curves.png", dpi=120)


if __name__ == "__main__":
    main()
