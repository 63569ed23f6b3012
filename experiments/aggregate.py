"""Aggregates over the environments of a comparison written by experiments/compare.py, with
rliable (Agarwal et al., 2021): the IQM of min-max normalised returns with stratified bootstrap
intervals, the probability of improvement of each ``--pair A,B``, and performance profiles.

    pip install -e ".[stats]"      # rliable (its arch needs pandas < 3)
    python experiments/aggregate.py --results experiments/dpo/results.csv --out experiments/dpo --pair dpo,ppo
    python experiments/aggregate.py --greedy experiments/evolved_policies/greedy.csv \
        --out experiments/evolved_policies --bounds Breakout-MinAtar=0:100 --pair ga,es

Scores are each seed's final logged training return (``--results``), or its final policy's
deterministic return (``--greedy``, compare.py's greedy.csv). Normalisation per environment:
(return - low) / (high - low), with low the return of a uniformly random policy and high the best
possible return (CartPole-v1: 22 and 500; Acrobot-v1: -500 and 0; Pendulum-v1: -1200 and 0;
others by ``--bounds ENV=LOW:HIGH``).
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


def final_scores(results: pd.DataFrame, bounds: dict[str, tuple[float, float]], column: str = "episode_return") -> dict[str, np.ndarray]:
    """variant -> [seeds, envs] of normalised scores: each seed's last finite logged ``column``
    (a greedy.csv has one row per seed)."""
    ordered = results.sort_values("step") if "step" in results else results
    finals = ordered.dropna(subset=[column]).groupby(["variant", "env", "seed"])[column].last().reset_index()
    envs = [e for e in dict.fromkeys(finals["env"])]
    missing = [e for e in envs if e not in bounds]
    if missing:
        raise SystemExit(f"error: no normalisation bounds for {', '.join(missing)}; give --bounds ENV=LOW:HIGH")
    out = {}
    for variant, group in finals.groupby("variant", sort=False):
        table = group.pivot(index="seed", columns="env", values=column)[envs]
        low, high = np.array([bounds[e][0] for e in envs]), np.array([bounds[e][1] for e in envs])
        out[variant] = ((table.to_numpy() - low) / (high - low))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--results", type=Path, help="compare.py's results.csv: final training returns")
    source.add_argument("--greedy", type=Path, help="compare.py's greedy.csv: the final policies' deterministic returns")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--bounds", action="append", default=[], help="ENV=LOW:HIGH (random policy's and best return)")
    parser.add_argument("--pair", action="append", default=[], help="A,B: report P(A > B)")
    parser.add_argument("--reps", type=int, default=20_000)
    args = parser.parse_args()
    bounds = dict(BOUNDS)
    for item in args.bounds:
        env, _, span = item.partition("=")
        low, _, high = span.partition(":")
        bounds[env] = (float(low), float(high))
    if args.results is not None:
        scores = final_scores(pd.read_csv(args.results), bounds)
    else:
        scores = final_scores(pd.read_csv(args.greedy), bounds, "greedy_return")
    iqm = lambda x: np.array([metrics.aggregate_iqm(x)])  # noqa: E731
    point, intervals = rly.get_interval_estimates(scores, iqm, reps=args.reps, random_state=np.random.RandomState(0))
    lines = ["| variant | IQM normalised final return | 95% stratified bootstrap CI |", "|---|---|---|"]
    for variant in scores:
        low, high = intervals[variant][:, 0]
        lines.append(f"| {variant} | {point[variant][0]:.3f} | {low:.3f} to {high:.3f} |")
    if args.pair:
        paired = {pair: tuple(scores[v] for v in pair.split(",")) for pair in args.pair}
        improvement = lambda x, y: np.array([metrics.probability_of_improvement(x, y)])  # noqa: E731
        p_point, p_interval = rly.get_interval_estimates(paired, improvement, reps=args.reps // 4, random_state=np.random.RandomState(0))
        lines.append("")
        for pair in args.pair:
            a, b = pair.split(",")
            low, high = p_interval[pair][:, 0]
            lines.append(f"P({a} > {b}) = {p_point[pair][0]:.3f} (95% CI {low:.3f} to {high:.3f})  ")
    (args.out / "aggregate.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    taus = np.linspace(0.0, 1.0, 101)
    profiles, profile_cis = rly.create_performance_profile(scores, taus, reps=2000)
    from matplotlib.lines import Line2D

    colors = {variant: plt.get_cmap("tab10")(i) for i, variant in enumerate(scores)}
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    plot_utils.plot_performance_profiles(profiles, taus, performance_profile_cis=profile_cis, ax=ax, colors=colors,
                                         xlabel="normalised final return (tau)")
    ax.legend([Line2D([0], [0], color=c) for c in colors.values()], list(colors))
    fig.tight_layout()
    fig.savefig(args.out / "profiles.png")


if __name__ == "__main__":
    main()
