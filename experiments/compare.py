"""Compare training variants (an algorithm plus settings) on several environments, with seeds.

For every (variant, environment) it trains ``--seeds`` seeds as one compiled program
(``jaxrl.train``), then reports per environment the IQM of the final returns over seeds with a
95% percentile-bootstrap interval (``jaxrl.stats``), the same for the mean return over the
whole run (area under the curve, which rewards learning early), and draws the learning curves.

    python experiments/compare.py --env CartPole-v1 --env Acrobot-v1 --seeds 5 \\
        --variant pqn:value_loss=mse --variant pqn:value_loss=hl_gauss --out experiments/value_classification

Writes into ``--out``: ``results.csv`` (variant, env, seed, step, episode_return),
``summary.csv`` and ``summary.md`` (the table), and ``curves.png``. A per-environment budget is
``--steps ENV=STEPS``; a setting for one environment only is ``--variant ALGO:KEY=VALUE@ENV``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jaxrl  # noqa: F401  (sets the XLA flags before JAX starts)

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from jaxrl.analysis import stats  # noqa: E402
from jaxrl.analysis.plotting import return_curves  # noqa: E402
from jaxrl.cli.common import rule_overrides  # noqa: E402
from jaxrl.core.contract import ConfigError  # noqa: E402


def parse_variant(text: str) -> tuple[str, str, dict[str, str], dict[str, dict[str, str]]]:
    """``ALGO[:KEY=VALUE,...]`` -> (label, algorithm, settings, per-env settings)."""
    algorithm, _, rest = text.partition(":")
    settings: dict[str, str] = {}
    per_env: dict[str, dict[str, str]] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"variant {text!r}: expected KEY=VALUE, got {item!r}")
        value, at, env = value.partition("@")
        (per_env.setdefault(env, {}) if at else settings)[key] = value
    return text, algorithm, settings, per_env


def greedy_returns(result, episodes: int, seed: int) -> np.ndarray:
    """[seeds]: each seed's final policy run deterministically, mean return over ``episodes``."""
    import jax

    from jaxrl.analysis.evaluation import episode_program, eval_keys

    train = result.train
    act = lambda params, obs, key: train.act(params, obs, key, True)  # noqa: E731
    program = episode_program(train.env, train.default_env_params, act, episodes, max_steps=100_000)
    returns, _, _ = program(train.policy_params(result.state), eval_keys(seed, len(result.seeds)))
    return np.asarray(returns).mean(axis=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", action="append", required=True, help="ALGO[:KEY=VALUE,...[@ENV]]")
    parser.add_argument("--env", action="append", required=True)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", action="append", default=[], help="ENV=TOTAL_STEPS (default: each variant's)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--append", action="store_true", help="add to the results already in --out")
    parser.add_argument("--rule", default=None, help=(
        "the learned rule of the variants that take one (disco, lpg, ta-lpg), as `jaxrl train --rule` takes it"))
    parser.add_argument("--eval-episodes", type=int, default=0, help=(
        "also run each seed's final policy deterministically for N episodes (greedy.csv; summary columns greedy_*)"))
    args = parser.parse_args(argv)
    try:
        variants = [parse_variant(v) for v in args.variant]
        budgets = {}
        for item in args.steps:
            env, _, steps = item.partition("=")
            budgets[env] = int(float(steps))
    except (ConfigError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    rows, summary, greedy_rows = [], [], []
    for env in args.env:
        for label, algorithm, settings, per_env in variants:
            overrides = {**settings, **per_env.get(env, {})}
            if env in budgets:
                overrides["total_steps"] = budgets[env]
            start = time.perf_counter()
            try:
                if args.rule is not None and algorithm in ("disco", "lpg", "ta-lpg"):
                    overrides.update(rule_overrides(args.rule, algorithm, overrides))
                result = jaxrl.train(algorithm, env, overrides=overrides, seed=args.seed, num_seeds=args.seeds)
            except (ConfigError, ValueError) as error:
                print(f"error: {label} on {env}: {error}", file=sys.stderr)
                return 2
            seconds = time.perf_counter() - start
            if args.eval_episodes:
                greedy = greedy_returns(result, args.eval_episodes, args.seed)
                greedy_rows.extend({"variant": label, "env": env, "seed": i, "greedy_return": float(g)} for i, g in enumerate(greedy))
            returns = result.metrics["episode_return"]  # [seeds, logs]
            final = result.final_returns
            auc = np.nanmean(returns, axis=1)
            final_low, final_high = stats.bootstrap_ci(final, "iqm")
            auc_low, auc_high = stats.bootstrap_ci(auc, "iqm")
            summary.append({
                "env": env, "variant": label, "total_steps": result.config.total_steps, "seeds": args.seeds,
                "final_iqm": float(stats.iqm(final)), "final_ci_low": float(final_low), "final_ci_high": float(final_high),
                "final_mean": float(stats.mean(final)),
                "auc_iqm": float(stats.iqm(auc)), "auc_ci_low": float(auc_low), "auc_ci_high": float(auc_high),
                "seconds": round(seconds, 1),
                **({"greedy_iqm": float(stats.iqm(greedy)), "greedy_ci_low": float(stats.bootstrap_ci(greedy, "iqm")[0]),
                    "greedy_ci_high": float(stats.bootstrap_ci(greedy, "iqm")[1])} if args.eval_episodes else {}),
            })
            for seed_index in range(returns.shape[0]):
                rows.extend(
                    {"variant": label, "env": env, "seed": seed_index, "step": int(step), "episode_return": float(value)}
                    for step, value in zip(result.steps, returns[seed_index])
                )
            print(f"{env:24s} {label:40s} final IQM {summary[-1]['final_iqm']:8.1f} "
                  f"[{final_low:.1f}, {final_high:.1f}]  ({seconds:.0f} s)", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    results = pd.DataFrame(rows)
    table = pd.DataFrame(summary)
    labels = [v[0] for v in variants]
    if args.append:
        old_results = pd.read_csv(args.out / "results.csv")
        old_table = pd.read_csv(args.out / "summary.csv")
        keep = ~old_table.variant.isin(labels)
        labels = list(dict.fromkeys(list(old_table.variant[keep]) + labels))
        results = pd.concat([old_results[old_results.variant.isin(old_table.variant[keep])], results], ignore_index=True)
        table = pd.concat([old_table[keep], table], ignore_index=True).sort_values(
            "env", key=lambda column: column.map(args.env.index), kind="stable"
        )
    if greedy_rows:
        greedy_table = pd.DataFrame(greedy_rows)
        if args.append and (args.out / "greedy.csv").exists():
            old = pd.read_csv(args.out / "greedy.csv")
            greedy_table = pd.concat([old[~old.variant.isin(greedy_table.variant)], greedy_table], ignore_index=True)
        greedy_table.to_csv(args.out / "greedy.csv", index=False)
    results.to_csv(args.out / "results.csv", index=False)
    table.to_csv(args.out / "summary.csv", index=False)
    (args.out / "summary.md").write_text(markdown(table))
    plot(results, table, args.env, labels, args.out / "curves.png")
    print(markdown(table))
    return 0


def markdown(table: pd.DataFrame) -> str:
    greedy = "greedy_iqm" in table and table["greedy_iqm"].notna().any()
    lines = [
        "| env | variant | steps | final return IQM [95% CI] | mean over training IQM [95% CI] |"
        + (" greedy final policy IQM [95% CI] |" if greedy else "") + " time (s) |",
        "|---|---|---|---|---|" + ("---|" if greedy else "") + "---|",
    ]
    for _, r in table.iterrows():
        lines.append(
            f"| {r.env} | `{r.variant}` | {r.total_steps:,} | {r.final_iqm:.1f} [{r.final_ci_low:.1f}, {r.final_ci_high:.1f}] "
            f"| {r.auc_iqm:.1f} [{r.auc_ci_low:.1f}, {r.auc_ci_high:.1f}] |"
            + (f" {r.greedy_iqm:.1f} [{r.greedy_ci_low:.1f}, {r.greedy_ci_high:.1f}] |" if greedy else "")
            + f" {r.seconds:.0f} |"
        )
    return "\n".join(lines) + "\n"


def plot(results: pd.DataFrame, table: pd.DataFrame, envs: list[str], labels: list[str], path: Path) -> None:
    fig, axes = plt.subplots(2, len(envs), figsize=(5 * len(envs), 7), squeeze=False, gridspec_kw={"height_ratios": [3, 2]})
    colors = plt.get_cmap("tab10")
    for column, env in enumerate(envs):
        curve_ax, bar_ax = axes[0, column], axes[1, column]
        for index, label in enumerate(labels):
            frame = results[(results.env == env) & (results.variant == label)]
            if frame.empty:  # a variant run on some environments only
                continue
            pivot = return_curves(frame)
            values = pivot.to_numpy(np.float64).T
            low, high = stats.bootstrap_ci(values, "iqm", axis=0)
            curve_ax.plot(pivot.index, stats.iqm(values, axis=0), color=colors(index), label=label)
            curve_ax.fill_between(pivot.index, low, high, color=colors(index), alpha=0.2, linewidth=0)
            row = table[(table.env == env) & (table.variant == label)].iloc[0]
            bar_ax.errorbar(
                [row.final_iqm], [index], xerr=[[row.final_iqm - row.final_ci_low], [row.final_ci_high - row.final_iqm]],
                fmt="o", color=colors(index), capsize=4,
            )
        curve_ax.set_title(env)
        curve_ax.set_xlabel("environment steps")
        curve_ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
        curve_ax.set_ylabel("episode return (IQM over seeds, 95% CI)")
        curve_ax.grid(alpha=0.3)
        bar_ax.set_yticks(range(len(labels)), labels, fontsize=7)
        bar_ax.set_xlabel("final return (IQM, 95% CI)")
        bar_ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
