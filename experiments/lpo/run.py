"""LPO and TA-LPO meta-trained by evolution on CartPole-v1 and Acrobot-v1 at once at CPU scale,
with the normalised multi-task fitness (each task's final return against PPO's on the same seeds),
then tested on held-out seeds against PPO: at the meta-training horizon and at 0.5x and 2x of it.
Also plots the learned drifts beside PPO's.

    python experiments/lpo/run.py --out experiments/lpo

Writes into --out: meta_lpo/ and meta_ta-lpo/ (meta-training directories: meta.csv with the
fitness-noise columns, fitness.png, the learned weights), results.csv (rule, env, horizon, seed,
final return), summary.md (IQM with 95% bootstrap intervals per cell), drift.png.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jaxrl  # noqa: F401  (XLA settings first)

import matplotlib

matplotlib.use("Agg")
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from jaxrl.analysis import stats  # noqa: E402
from jaxrl.components.drifts import learned_drift, ppo_drift  # noqa: E402
from jaxrl.meta.run import load_objective, meta_train  # noqa: E402

HELD_OUT_SEED = 1000  # base seed of the test runs: meta-training used seed streams of seed 0
ENVS = ("CartPole-v1", "Acrobot-v1")
RULES = ("lpo", "ta-lpo")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("experiments/lpo"))
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--generations", type=int, default=10)
    parser.add_argument("--inner-steps", type=int, default=32_768)
    parser.add_argument("--meta-seeds", type=int, default=4)
    parser.add_argument("--sigma", type=float, default=0.1)
    parser.add_argument("--test-seeds", type=int, default=16)
    parser.add_argument("--skip-meta", action="store_true", help="reuse the meta-training directories in --out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    timings = {}
    for rule in RULES:
        if not args.skip_meta:
            start = time.perf_counter()
            result = meta_train(rule, ",".join(ENVS), args.out / f"meta_{rule}", generations=args.generations,
                                population=args.population, sigma=args.sigma, seeds=args.meta_seeds, normalise=True,
                                inner_steps=args.inner_steps, overwrite=True, checkpoint_every=0, noise_every=4, noise_repeats=4)
            timings[rule] = time.perf_counter() - start
            print(f"meta-trained {rule}: {timings[rule]:.0f} s, last mean fitness {result.rows['fitness_mean'][-1]:.3f}")
    weights = {rule: load_objective(args.out / f"meta_{rule}", algorithm=rule)[0] for rule in RULES}

    rows = []
    cells = [(env, h) for env in ENVS for h in (0.5, 1.0, 2.0)]
    for env, horizon in cells:
        steps = int(args.inner_steps * horizon)
        for rule in ("ppo", *RULES):
            overrides = {"total_steps": steps}
            if rule != "ppo":
                overrides["objective_params"] = weights[rule]
            result = jaxrl.train(rule, env, num_seeds=args.test_seeds, seed=HELD_OUT_SEED, overrides=overrides)
            for seed, value in enumerate(result.final_returns):
                rows.append({"rule": rule, "env": env, "horizon": horizon, "steps": steps, "seed": seed, "final_return": float(value)})
            print(env, horizon, rule, np.round(result.final_returns, 1))
    frame = pd.DataFrame(rows)
    frame.to_csv(args.out / "results.csv", index=False)

    lines = ["| env | horizon (x meta-training's) | rule | IQM final return | 95% CI | mean |", "|---|---|---|---|---|---|"]
    for (env, horizon, rule), group in frame.groupby(["env", "horizon", "rule"], sort=False):
        values = group["final_return"].to_numpy()
        low, high = stats.bootstrap_ci(values, "iqm")
        lines.append(f"| {env} | {horizon:g} | {rule} | {stats.iqm(values):.1f} | {low:.1f} to {high:.1f} | {values.mean():.1f} |")
    if timings:
        lines.append("")
        lines.append("Meta-training wall time on this CPU: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot_drifts(weights, args.out / "drift.png")


def plot_drifts(weights, path: Path) -> None:
    """D(r, A) against r at A = +1 and A = -1: PPO's clipping drift, LPO's (PPO's plus the learned
    part) and TA-LPO's at three points of training."""
    ratio = jnp.linspace(0.5, 1.5, 201)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=110, sharey=True)
    for ax, advantage in zip(axes, (1.0, -1.0)):
        adv = jnp.full_like(ratio, advantage)
        ppo = ppo_drift(ratio, adv, 0.2)
        ax.plot(ratio, ppo, color="black", linestyle="--", label="PPO (clip 0.2)")
        ax.plot(ratio, ppo + learned_drift(weights["lpo"], ratio, adv), color="tab:blue", label="LPO (learned)")
        for fraction, alpha in ((0.0, 0.35), (0.5, 0.65), (0.95, 1.0)):
            drift = ppo + learned_drift(weights["ta-lpo"], ratio, adv, jnp.float32(fraction))
            ax.plot(ratio, drift, color="tab:red", alpha=alpha, label=f"TA-LPO at n/N = {fraction:g}")
        ax.set_title(f"A = {advantage:+g}")
        ax.set_xlabel("r = pi / pi_old")
    axes[0].set_ylabel("drift D(r, A)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
