"""Streaming agents (stream-q, stream-sarsa, stream-ac) against the kit's batch agents at equal
environment steps, and the "stream barrier": the same streaming agents with plain SGD in place of
ObGD and without the paper's normalisations.

Every run is ``--seeds`` seeds vmapped in one program (``jaxrl.make_train``). Each seed's final
policy is then played greedily for ``--episodes`` episodes; the score of a run is the IQM over
seeds of those greedy means, with a 95% bootstrap interval over seeds. Results go to
``experiments/streaming/results/<cell>.csv`` (one row per run and seed, written as each run
finishes, so an interrupted study resumes where it stopped) and ``<cell>_curves.csv``;
``--report`` writes ``summary.md`` and ``curves.png``.

    python experiments/streaming/run.py --cells cartpole,barrier --seeds 5
    python experiments/streaming/run.py --report
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
from jaxrl.analysis import evaluation, stats  # noqa: E402

OUT = Path(__file__).parent / "results"
# Plain SGD with traces (ObGD's bound off), no observation normalisation, no reward scaling, no
# LayerNorm, dense LeCun-uniform initialisation: the classic streaming agent.
CLASSIC = {"kappa": 0.0, "normalize_obs": False, "scale_reward": False, "layer_norm": False, "sparsity": 0.0}
BARRIER_LRS = (0.1, 0.01, 0.001, 0.0001)

# cell: (environment, env steps per seed, [(label, algorithm, overrides)]). The kit's defaults
# unless overridden; the streaming agents at the paper's settings.
CELLS = {
    "cartpole": ("CartPole-v1", 100_000, [
        ("stream-q", "stream-q", {}), ("stream-sarsa", "stream-sarsa", {}), ("stream-ac", "stream-ac", {}),
        ("dqn", "dqn", {}), ("pqn", "pqn", {}),
    ]),
    "breakout": ("Breakout-MinAtar", 60_000, [("stream-q", "stream-q", {}), ("pqn", "pqn", {}), ("dqn", "dqn", {})]),
    "asterix": ("Asterix-MinAtar", 60_000, [("stream-q", "stream-q", {}), ("pqn", "pqn", {}), ("dqn", "dqn", {})]),
    "pendulum": ("Pendulum-v1", 100_000, [("stream-ac", "stream-ac", {}), ("ppo", "ppo", {}), ("sac", "sac", {})]),
    "inverted_pendulum": ("brax/inverted_pendulum", 100_000, [
        ("stream-ac", "stream-ac", {}), ("ppo", "ppo", {}), ("sac", "sac", {}),
    ]),
    "barrier": ("CartPole-v1", 100_000, [
        ("stream-q", "stream-q", {}), ("stream-ac", "stream-ac", {}),
        *[(f"stream-q, SGD lr={lr:g}", "stream-q", {**CLASSIC, "lr": lr}) for lr in BARRIER_LRS],
        *[(f"stream-ac, SGD lr={lr:g}", "stream-ac", {**CLASSIC, "kappa_policy": 0.0, "lr": lr}) for lr in BARRIER_LRS],
        ("stream-q, ObGD without normalisations", "stream-q", {k: v for k, v in CLASSIC.items() if k != "kappa"}),
    ]),
}


def run(env_name: str, steps: int, label: str, algorithm: str, overrides: dict, seeds: int, episodes: int):
    start = time.perf_counter()
    train = jaxrl.make_train(algorithm, env_name, total_steps=steps, overrides=overrides)
    keys = jax.random.split(jax.random.key(0), seeds)
    state, metrics = jax.block_until_ready(jax.jit(jax.vmap(train, in_axes=(0, None)))(keys, train.default_hparams))
    trained = time.perf_counter() - start
    env, params = envs.make(env_name)
    act, memory = evaluation.recurrent_act(train)
    play = jax.jit(evaluation.episodes(env, act, episodes, int(params.max_steps_in_episode), memory))
    rows = []
    for seed in range(seeds):
        returns, _, _ = play(train.policy_params(jax.tree.map(lambda x: x[seed], state)), jax.random.key(100 + seed), params)
        rows.append({"label": label, "algorithm": algorithm, "seed": seed, "steps": steps, "train_seconds": trained,
                     "final_train_return": float(metrics["final_return"][seed]), "greedy_return": float(np.mean(returns))})
    curve = pd.DataFrame(np.asarray(metrics["episode_return"]).T, columns=[f"seed{s}" for s in range(seeds)])
    curve.insert(0, "step", train.log_steps())
    curve.insert(0, "label", label)
    return rows, curve


def run_cell(cell: str, seeds: int, episodes: int, scale: float) -> None:
    env_name, steps, runs = CELLS[cell]
    steps = int(steps * scale)
    results, curves = OUT / f"{cell}.csv", OUT / f"{cell}_curves.csv"
    done = pd.read_csv(results) if results.exists() else pd.DataFrame(columns=["label", "steps"])
    for label, algorithm, overrides in runs:
        if ((done["label"] == label) & (done["steps"] == steps)).any():
            continue
        rows, curve = run(env_name, steps, label, algorithm, overrides, seeds, episodes)
        done = pd.concat([done, pd.DataFrame(rows)], ignore_index=True) if len(done) else pd.DataFrame(rows)
        done.to_csv(results, index=False)
        old = pd.read_csv(curves) if curves.exists() else None
        pd.concat([old, curve]).to_csv(curves, index=False) if old is not None else curve.to_csv(curves, index=False)
        scores = [r["greedy_return"] for r in rows]
        print(f"{cell} {label}: {steps} steps x {seeds} seeds in {rows[0]['train_seconds']:.0f} s; greedy IQM "
              f"{stats.iqm(np.asarray(scores)):.1f} {np.round(scores, 1).tolist()}", flush=True)


def report() -> None:
    lines = ["| cell | environment | agent | steps per seed | seeds | greedy return, IQM [95% CI] | training return (last 10%), IQM | train time (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for cell, (env_name, _, _) in CELLS.items():
        path = OUT / f"{cell}.csv"
        if not path.exists():
            continue
        results = pd.read_csv(path)
        for (label, _), group in results.groupby(["label", "steps"], sort=False):
            greedy = group["greedy_return"].to_numpy(float)
            low, high = stats.bootstrap_ci(greedy, "iqm")
            lines.append(f"| {cell} | {env_name} | {label} | {int(group['steps'].iloc[0]):,} | {len(group)} | "
                         f"{stats.iqm(greedy):.1f} [{low:.1f}, {high:.1f}] | {stats.iqm(group['final_train_return'].to_numpy(float)):.1f} | "
                         f"{group['train_seconds'].iloc[0]:.0f} |")
    (OUT / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot()


def plot() -> None:
    cells = [c for c in CELLS if (OUT / f"{c}_curves.csv").exists()]
    if not cells:
        return
    columns = min(3, len(cells))
    rows = -(-len(cells) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.6 * rows), squeeze=False)
    for ax in axes.flat[len(cells):]:
        ax.axis("off")
    for ax, cell in zip(axes.flat, cells):
        curves = pd.read_csv(OUT / f"{cell}_curves.csv")
        for label, group in curves.groupby("label", sort=False):
            series = group.filter(like="seed").ffill().to_numpy(float)  # windows without an ended episode
            low, high = stats.bootstrap_ci(series, "iqm", axis=1)
            ax.plot(group["step"], stats.iqm(series, axis=1), label=label, linewidth=1.2)
            ax.fill_between(group["step"], low, high, alpha=0.15)
        ax.set_title(f"{cell}: {CELLS[cell][0]}", fontsize=9)
        ax.set_xlabel("env steps per seed")
        ax.set_ylabel("training episode return (IQM over seeds)")
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(OUT / "curves.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="cartpole,barrier", help=f"comma-separated, of: {', '.join(CELLS)}")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every budget (a smoke test: 0.02)")
    parser.add_argument("--report", action="store_true", help="only write summary.md and curves.png from the results")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.report:
        for cell in args.cells.split(","):
            run_cell(cell, args.seeds, args.episodes, args.scale)
    report()


if __name__ == "__main__":
    main()
