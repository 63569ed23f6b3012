"""On-policy MDPO on Pendulum-v1 at its default budget (500k steps): training return and greedy
evaluation of every seed through training, for the defaults and the variants that test why the
greedy policy ended worse than the training return suggested.

Each variant trains into ``OUT/<variant>`` with a checkpoint every ``--every`` env steps; every
checkpoint's deterministic policy is evaluated for ``--episodes`` episodes per seed. Writes
``OUT/results.csv`` (variant, step, seed, training return of that window, greedy return) and
``OUT/greedy.png`` (greedy return through training: mean and every seed), and prints a table of
the greedy return (mean and worst seed) at each evaluated step.

    python experiments/continuous/mdpo_pendulum.py --out runs/mdpo_pendulum --seeds 4
    python experiments/continuous/mdpo_pendulum.py --variants defaults lr-1e-3 --seeds 8
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jaxrl  # noqa: F401  (first: the kit's XLA settings)

import numpy as np
import pandas as pd

from jaxrl.analysis.evaluation import evaluate_loaded
from jaxrl.components.losses import mdpo_policy_loss
from jaxrl.components.objectives import register_objective
from jaxrl.driver.checkpoint import CheckpointStore
from jaxrl.driver.run import load_run, train_run


@register_objective("mdpo-constant-step")
def mdpo_constant_step(terms, hparams, progress):
    """MDPO's objective with the step size held at t_k = 1 (KL weight 1) instead of annealed."""
    kl = terms.kl()
    return mdpo_policy_loss(terms.log_prob, terms.old_log_prob, terms.advantage, kl, 1.0), {"kl": kl.mean()}


VARIANTS = {
    "defaults": {},  # lr 3e-4 since this study
    "lr-1e-3": {"lr": 1e-3},  # the defaults before it (PPO's)
    # the KL weight 1 / t_k grows to K (488 updates at 500k steps); held at 1 instead
    "lr-1e-3-constant-step-size": {"lr": 1e-3, "objective": "mdpo-constant-step"},
    "lr-1e-3-no-lr-anneal": {"lr": 1e-3, "anneal_lr": False},
}


def plot(frame: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(dict.fromkeys(frame["variant"]))
    fig, axes = plt.subplots(1, len(variants), figsize=(4 * len(variants), 3.2), sharey=True, squeeze=False)
    for ax, variant in zip(axes[0], variants):
        table = frame[frame["variant"] == variant].pivot(index="step", columns="seed", values="greedy_return")
        ax.plot(table.index, table.values, color="tab:gray", alpha=0.5, lw=1)
        ax.plot(table.index, table.mean(axis=1), color="tab:blue", lw=2, label="mean")
        ax.set_title(f"{variant} ({table.shape[1]} seeds)")
        ax.set_xlabel("env steps")
    axes[0][0].set_ylabel("greedy return (10 episodes)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/mdpo_pendulum"))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=sorted(VARIANTS))
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--total-steps", type=int, default=500_000)
    parser.add_argument("--every", type=int, default=50_000, help="env steps between evaluated checkpoints")
    parser.add_argument("--episodes", type=int, default=10)
    args = parser.parse_args()
    rows = []
    for variant in args.variants:
        run_dir = args.out / variant
        result = train_run("mdpo", "Pendulum-v1", run_dir, num_seeds=args.seeds, overwrite=True, progress=True,
                           overrides={"total_steps": args.total_steps, **VARIANTS[variant]}, checkpoint_every=args.every,
                           keep_checkpoints=10_000)
        training = result.dataframe()
        with CheckpointStore(run_dir / "checkpoints") as store:
            steps = store.steps()
        for step in steps:
            report = evaluate_loaded(load_run(run_dir, step), args.episodes)
            for seed, greedy in enumerate(report.per_seed_mean_returns):
                window = training[(training["seed"] == seed) & (training["step"] <= step)]["episode_return"].dropna()
                rows.append({"variant": variant, "step": step, "seed": seed, "greedy_return": greedy,
                             "training_return": window.iloc[-1] if len(window) else np.nan})
        print(f"{variant}: {result.wall_time:.0f} s", flush=True)
    frame = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / "results.csv", index=False)
    plot(frame, args.out / "greedy.png")
    table = frame.groupby(["variant", "step"]).agg(greedy_mean=("greedy_return", "mean"), greedy_worst=("greedy_return", "min"),
                                                   training_mean=("training_return", "mean"))
    print(table.round(1).to_string())


if __name__ == "__main__":
    main()
