"""DR, PLR, Robust PLR, ACCEL, SFL and PAIRED on the maze at a CPU budget: each curriculum trained
through ``jaxrl ued`` (all seeds vmapped in one program), then evaluated by it on the kit's own
holdout layouts and on random solvable levels (``ued_eval.json``), greedy (one episode a level)
and sampled (10 attempts a level, as JaxUED and the papers report). Writes ``summary.md`` (IQM
over seeds with bootstrap intervals, every curriculum's learning and scoring steps), ``greedy.csv``
(per curriculum, holdout and seed: the greedy return, for ``experiments/aggregate.py``),
``random_solvable.png``, ``holdouts.png``, ``curves.png``, ``eval_curves.png`` (solve rates
evaluated during training) and ``level_diagnostics.png`` (the levels trained on and kept).

    python experiments/ued/run.py --seeds 5 --total-steps 3000000 --n-walls 25
    python experiments/ued/run.py --only-results     # tables and plots again from --runs
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import jaxrl  # noqa: E402
from jaxrl.analysis import stats  # noqa: E402
from jaxrl.cli import main  # noqa: E402
from jaxrl.curricula.curriculum import REPLAY, schedule  # noqa: E402

HERE = Path(__file__).parent
# SFL at this budget: 512 levels played 1,000 steps each (four episodes at least) every 50
# updates, the 100 most learnable kept; the reference's 25,000 x 2,000 every 100 updates would
# cost 50M steps a refresh (``--set`` overrides these).
SFL_SETTINGS = ["sfl_levels=512", "sfl_batch=512", "sfl_rollout=1000", "sfl_buffer=100", "sfl_refresh=50"]


def settings(args) -> list[str]:
    return SFL_SETTINGS + (args.set or [])


def train_all(args) -> dict[str, float]:
    seconds = {}
    for name in args.curricula.split(","):
        start = time.perf_counter()
        argv = ["ued", name, "--env", "maze", "--env-set", f"n_walls={args.n_walls}", "--seeds", str(args.seeds),
                "--total-steps", str(args.total_steps), "--out", str(args.runs / name), "--overwrite", "--quiet",
                "--eval-levels", str(args.eval_levels), "--checkpoint-every", "0", "--log-every", "1",
                "--set", f"eval_every={args.eval_every}", "--set", f"eval_random={args.eval_random}",
                "--set", f"eval_attempts={args.eval_attempts}"]
        for setting in settings(args):
            argv += ["--set", setting]
        if main(argv) != 0:
            raise SystemExit(f"{name} failed")
        seconds[name] = time.perf_counter() - start  # training and evaluation
        (args.runs / name / "wall_seconds.txt").write_text(f"{seconds[name]:.1f}\n")
    return seconds


def budget(name: str, args) -> dict[str, int]:
    """Updates, the updates that learn, the protagonist's learning steps and every other step
    (scoring, exploration, mutation; PAIRED's antagonist and teacher), per seed."""
    overrides = {**dict(s.split("=", 1) for s in settings(args)), "total_steps": str(args.total_steps)}
    train = jaxrl.make_train(name, "maze", overrides=overrides, env_overrides={"n_walls": str(args.n_walls)})
    config, updates = train.config, train.num_updates
    batch = config.num_envs * config.num_steps
    kinds = schedule(config, updates)
    learning = {"robust-plr": int((kinds == REPLAY).sum()), "accel": int((kinds == REPLAY).sum())}.get(name, updates)
    return {"updates": updates, "learning updates": learning, "learning steps": learning * batch,
            "other steps": train.total_env_steps - learning * batch}


def iqm_ci(per_seed) -> tuple[float, str]:
    values = np.asarray(per_seed)
    low, high = stats.bootstrap_ci(values, "iqm")
    return float(stats.iqm(values)), f"{low:.3f}-{high:.3f}"


def write_results(args, seconds: dict[str, float]) -> None:
    names = args.curricula.split(",")
    rows, summary = [], []
    for name in names:
        report = json.loads((args.runs / name / "ued_eval.json").read_text())
        for level, result in report["holdout"]["per_level"].items():
            rows += [(name, level, seed, r) for seed, r in enumerate(result["per_seed_return"])]
        rand, hold = report["random_solvable"], report["holdout"]
        greedy_iqm, greedy_ci = iqm_ci(rand["per_seed_solve_rate"])
        sampled_iqm, sampled_ci = iqm_ci(rand["sampled"]["per_seed_solve_rate"])
        wall = seconds.get(name) or float((args.runs / name / "wall_seconds.txt").read_text())
        summary.append({"curriculum": name, "sampled: IQM": sampled_iqm, "sampled: 95% CI": sampled_ci,
                        "greedy: IQM": greedy_iqm, "greedy: 95% CI": greedy_ci,
                        "sampled: worst 10%": rand["sampled"]["solve_rate_cvar10"],
                        **dict(zip(("holdouts (kit's own), sampled: IQM", "holdouts, sampled: 95% CI"),
                                   iqm_ci(hold["sampled"]["per_seed_solve_rate"]))),
                        "holdouts, greedy: mean": hold["solve_rate"],
                        **budget(name, args), "wall s": wall})
    with open(HERE / "greedy.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["variant", "env", "seed", "greedy_return"])
        writer.writerows(rows)
    table = pd.DataFrame(summary)
    fmt = lambda v: v if isinstance(v, str) else (f"{v:,}" if isinstance(v, (int, np.integer)) else f"{v:.3f}")  # noqa: E731
    header = "| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns) + "\n"
    body = "".join("| " + " | ".join(fmt(v) for v in row) + " |\n" for row in table.itertuples(index=False))
    (HERE / "summary.md").write_text(header + body)
    print(table.to_string(index=False))
    regime = f"n_walls={args.n_walls} (an upper bound, JaxUED's generator)"
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), sharey=True)
    for ax, kind in zip(axes, ("sampled", "greedy")):
        iqms = table[f"{kind}: IQM"].to_numpy()
        bounds = np.array([[float(x) for x in ci.split("-")] for ci in table[f"{kind}: 95% CI"]])
        ax.bar(table["curriculum"], iqms, yerr=[iqms - bounds[:, 0], bounds[:, 1] - iqms], capsize=4, color="tab:blue")
        ax.set_title(f"{kind}: {args.eval_levels} random solvable levels")
    axes[0].set_ylabel(f"solve rate, IQM over {args.seeds} seeds (95% CI)")
    fig.suptitle(regime, fontsize=9)
    plt.tight_layout()
    plt.savefig(HERE / "random_solvable.png", dpi=120)
    plt.close()
    frame = pd.DataFrame(rows, columns=["variant", "env", "seed", "greedy_return"])
    pivot = frame.groupby(["env", "variant"])["greedy_return"].apply(lambda r: (r > 0).mean()).unstack()
    ax = pivot.plot.bar(figsize=(10, 4), rot=30)
    ax.set_ylabel("greedy solve rate over seeds")
    ax.set_title(f"the kit's own holdout layouts after {args.total_steps:,} steps ({regime}, {args.seeds} seeds)")
    plt.tight_layout()
    plt.savefig(HERE / "holdouts.png", dpi=120)
    plt.close()
    curves(args, names, [("episode_return", "training return (levels the curriculum chose)"),
                         ("solved_fraction", "fraction of training episodes solved")], "curves.png")
    curves(args, names, [("random_sampled_solve_rate", f"{args.eval_random} random levels (solvable ones), sampled x{args.eval_attempts}"),
                         ("random_solve_rate", "the same levels, greedy"),
                         ("holdout_sampled_solve_rate", f"holdouts (kit's own), sampled x{args.eval_attempts}"),
                         ("holdout_solve_rate", "holdouts (kit's own), greedy")], "eval_curves.png", every=args.eval_every)
    curves(args, names, [("train_solvable", "solvable fraction of the levels trained on"),
                         ("train_shortest_path", "their shortest path (solvable ones)"),
                         ("buffer_solvable", "solvable fraction of the buffer"),
                         ("buffer_shortest_path", "the buffer's shortest path (solvable ones)")], "level_diagnostics.png")
    dr_flatness(args)


def curves(args, names, columns, filename: str, every: int = 0) -> None:
    """Mean over seeds of each column against env steps (scoring steps included), a band from
    the lowest to the highest seed; a curriculum without the column is left out of its panel."""
    cols = 2
    rows = (len(columns) + 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(11, 3.3 * rows), squeeze=False)
    for index, name in enumerate(names):  # one colour per curriculum in every panel
        metrics = pd.read_csv(args.runs / name / "metrics.csv")
        for ax, (column, _) in zip(axes.flat, columns):
            if column not in metrics or metrics[column].isna().all():
                continue
            table = metrics.dropna(subset=[column]).pivot(index="step", columns="seed", values=column)
            ax.plot(table.index, table.mean(axis=1), marker="." if every else None, label=name, color=f"C{index}")
            ax.fill_between(table.index, table.min(axis=1), table.max(axis=1), color=f"C{index}", alpha=0.12)
    for ax, (_, title) in zip(axes.flat, columns):
        ax.set_title(title + (f", every {every} updates" if every else ""), fontsize=9)
        ax.set_xlabel("env steps per seed (scoring steps included)")
        ax.legend(fontsize=7)
    plt.tight_layout()
    plt.savefig(HERE / filename, dpi=120)
    plt.close()


def dr_flatness(args) -> None:
    """Whether DR's own curve has flattened: its sampled solve rate on the fixed random set
    during training, mean of the seeds, in each third of training."""
    path = args.runs / "dr" / "metrics.csv"
    if not path.exists():
        return
    metrics = pd.read_csv(path).dropna(subset=["random_sampled_solve_rate"])
    mean = metrics.groupby("step")["random_sampled_solve_rate"].mean()
    thirds = np.array_split(mean.to_numpy(), 3)
    last = thirds[2]
    halves = np.array_split(last, 2)
    print(f"DR, sampled solve rate on the fixed random set, mean of each third: {', '.join(f'{t.mean():.3f}' for t in thirds)}; "
          f"last third, first half {halves[0].mean():.3f} -> second half {halves[1].mean():.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curricula", default="dr,plr,robust-plr,accel,sfl,paired")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--total-steps", type=int, default=3_000_000)
    parser.add_argument("--n-walls", type=int, default=25)
    parser.add_argument("--eval-levels", type=int, default=500)
    parser.add_argument("--eval-every", type=int, default=32, help="updates between evaluations during training")
    parser.add_argument("--eval-random", type=int, default=64, help="random levels in each evaluation during training")
    parser.add_argument("--eval-attempts", type=int, default=3, help=(
        "sampled attempts a level in each evaluation during training (the final evaluation always makes 10)"))
    parser.add_argument("--set", action="append", help="a setting for every curriculum (repeatable)")
    parser.add_argument("--runs", type=Path, default=Path("runs/ued25"))
    parser.add_argument("--only-results", action="store_true", help="rewrite the tables and plots from --runs")
    args = parser.parse_args()
    write_results(args, {} if args.only_results else train_all(args))
