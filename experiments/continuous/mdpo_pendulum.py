"""On-policy MDPO on Pendulum-v1 at its default budget (500k steps): training return and greedy
evaluation of every seed through training, for the defaults and the variants that test why the
greedy policy ended worse than the training return suggested.

Each variant trains into ``OUT/<variant>`` with a checkpoint every ``--every`` env steps; every
checkpoint's deterministic policy is evaluated for ``--episodes`` episodes per seed. Writes
``OUT/results.csv`` (variant, step, seed, training return of that window, greedy return) and
prints a table of the greedy return (mean and worst seed) at a few steps.

    python experiments/continuous/mdpo_pendulum.py --out runs/mdpo_pendulum --seeds 4
    python experiments/continuous/mdpo_pendulum.py --variants defaults no-anneal --seeds 2
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
    "defaults": {},
    # the KL weight 1 / t_k grows to K (488 updates at 500k steps); held at 1 instead
    "constant-step-size": {"objective": "mdpo-constant-step"},
    "lr-3e-4": {"lr": 3e-4},
    "no-lr-anneal": {"anneal_lr": False},
}


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
    table = frame.groupby(["variant", "step"]).agg(greedy_mean=("greedy_return", "mean"), greedy_worst=("greedy_return", "min"),
                                                   training_mean=("training_return", "mean"))
    print(table.round(1).to_string())


if __name__ == "__main__":
    main()
