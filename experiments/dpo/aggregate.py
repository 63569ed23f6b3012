"""Aggregates of DPO against PPO over the environments of results.csv (written by
experiments/compare.py), with rliable (Agarwal et al., 2021): the IQM of min-max normalised final
returns with stratified bootstrap intervals, the probability of improvement, and performance
profiles.

    pip install -e ".[stats]"      # rliable (its arch needs pandas < 3)
    python experiments/dpo/aggregate.py --results experiments/dpo/results.csv --out experiments/dpo

Normalisation per environment: (return - low) / (high - low), with low the return of a uniformly
random policy and high the best possible return (CartPole-v1: 22 and 500; Acrobot-v1: -500 and 0;
Pendulum-v1: -1200 and 0).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from rliable import library as rly  # noqa: E402
from rliable import metrics, plot_utils  # noqa: E402

BOUNDS = {"CartPole-v1": (22.0, 500.0), "Acrobot-v1": (-500.0, 0.0), "Pendulum-v1": (-1200.0, 0.0)}


def final_scores(results: pd.DataFrame) -> dict[str, np.ndarray]:
    """variant -> [seeds, envs] of normalised final returns (each seed's last finite logged return)."""
    finals = (results.dropna(subset=["episode_return"]).sort_values("step")
              .groupby(["variant", "env", "seed"])["episode_return"].last().reset_index())
    envs = [e for e in BOUNDS if e in set(finals["env"])]
    out = {}
    for variant, group in finals.groupby("variant"):
        table = group.pivot(index="seed", columns="env", values="episode_return")[envs]
        low, high = np.array([BOUNDS[e][0] for e in envs]), np.array([BOUNDS[e][1] for e in envs])
        out[variant] = ((table.to_numpy() - low) / (high - low))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=Path("experiments/dpo/results.csv"))
    parser.add_argument("--out", type=Path, default=Path("experiments/dpo"))
    parser.add_argument("--reps", type=int, default=20_000)
    args = parser.parse_args()
    scores = final_scores(pd.read_csv(args.results))
    iqm = lambda x: np.array([metrics.aggregate_iqm(x)])  # noqa: E731
    point, intervals = rly.get_interval_estimates(scores, iqm, reps=args.reps, random_state=np.random.RandomState(0))
    lines = ["| variant | IQM normalised final return | 95% stratified bootstrap CI |", "|---|---|---|"]
    for variant in scores:
        low, high = intervals[variant][:, 0]
        lines.append(f"| {variant} | {point[variant][0]:.3f} | {low:.3f} to {high:.3f} |")
    paired = {"dpo,ppo": (scores["dpo"], scores["ppo"])}
    improvement = lambda x, y: np.array([metrics.probability_of_improvement(x, y)])  # noqa: E731
    p_point, p_interval = rly.get_interval_estimates(paired, improvement, reps=args.reps // 4, random_state=np.random.RandomState(0))
    low, high = p_interval["dpo,ppo"][:, 0]
    lines += ["", f"P(DPO > PPO) = {p_point['dpo,ppo'][0]:.3f} (95% CI {low:.3f} to {high:.3f})"]
    (args.out / "aggregate.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    taus = np.linspace(0.5, 1.0, 101)
    profiles, profile_cis = rly.create_performance_profile(scores, taus, reps=2000)
    from matplotlib.lines import Line2D

    colors = dict(zip(scores, ["tab:blue", "tab:orange"]))
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    plot_utils.plot_performance_profiles(profiles, taus, performance_profile_cis=profile_cis, ax=ax, colors=colors,
                                         xlabel="normalised final return (tau)")
    ax.legend([Line2D([0], [0], color=c) for c in colors.values()], list(colors))
    fig.tight_layout()
    fig.savefig(args.out / "profiles.png")


if __name__ == "__main__":
    main()
