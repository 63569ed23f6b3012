"""DR, PLR, Robust PLR, ACCEL, SFL and PAIRED on the maze with dense walls, at a CPU budget: each
curriculum trained through ``jaxrl ued`` (all seeds vmapped in one program), then evaluated by it on
the holdout mazes and on random solvable levels (``ued_eval.json``). Writes ``greedy.csv`` (per
curriculum, holdout maze and seed: the deterministic policy's return there, for
``experiments/aggregate.py``), ``summary.md``, ``holdouts.png``, ``curves.png`` and ``eval_curves.png``
(the solve rates evaluated during training).

    python experiments/ued/run.py --seeds 5 --total-steps 1000000 --n-walls 60
    python experiments/aggregate.py --greedy experiments/ued/greedy.csv --out experiments/ued \
        --bounds SixteenRooms=0:1,... (printed by this script) --pair plr,dr
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

from jaxrl.analysis import stats  # noqa: E402
from jaxrl.cli import main  # noqa: E402

HERE = Path(__file__).parent


def train_all(args) -> dict[str, float]:
    seconds = {}
    for name in args.curricula.split(","):
        start = time.perf_counter()
        argv = ["ued", name, "--env", "maze", "--env-set", f"n_walls={args.n_walls}", "--seeds", str(args.seeds),
                "--total-steps", str(args.total_steps), "--out", str(args.runs / name), "--overwrite", "--quiet",
                "--eval-levels", str(args.eval_levels), "--checkpoint-every", "0", "--log-every", "1"]
        if args.eval_every:  # the evaluation logged during training (eval_curves.png)
            argv += ["--set", f"eval_every={args.eval_every}", "--set", f"eval_random={args.eval_random}"]
        for setting in args.set or []:
            argv += ["--set", setting]
        if main(argv) != 0:
            raise SystemExit(f"{name} failed")
        seconds[name] = time.perf_counter() - start  # training and evaluation
        (args.runs / name / "wall_seconds.txt").write_text(f"{seconds[name]:.1f}\n")
    return seconds


def write_results(args, seconds: dict[str, float]) -> None:
    rows, summary = [], []
    for name in args.curricula.split(","):
        report = json.loads((args.runs / name / "ued_eval.json").read_text())
        for level, result in report["holdout"]["per_level"].items():
            rows += [(name, level, seed, r) for seed, r in enumerate(result["per_seed_return"])]
        rand = report["random_solvable"]
        metrics = pd.read_csv(args.runs / name / "metrics.csv")
        per_seed = np.asarray(rand["per_seed_solve_rate"])
        low, high = stats.bootstrap_ci(per_seed, "iqm")
        summary.append({
            "curriculum": name,
            "random solvable: IQM over seeds": float(stats.iqm(per_seed)),
            "95% CI": f"{low:.3f}-{high:.3f}",
            "holdout solve rate": report["holdout"]["solve_rate"],
            "holdout return": report["holdout"]["mean_return"],
            "random solvable: solve rate": rand["solve_rate"],
            "random solvable: worst 10%": rand["solve_rate_cvar10"],
            "train solved fraction (last rows)": metrics.groupby("seed")["solved_fraction"].apply(lambda s: s.tail(5).mean()).mean(),
            "train wall s": seconds.get(name, float((args.runs / name / "wall_seconds.txt").read_text())),
        })
    with open(HERE / f"greedy{args.tag}.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["variant", "env", "seed", "greedy_return"])
        writer.writerows(rows)
    table = pd.DataFrame(summary)
    header = "| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns) + "\n"
    body = "".join("| " + " | ".join(v if isinstance(v, str) else f"{v:.3f}" for v in row) + " |\n" for row in table.itertuples(index=False))
    (HERE / f"summary{args.tag}.md").write_text(header + body)
    print(table.to_string(index=False))
    fig, ax = plt.subplots(figsize=(6, 3.2))
    iqms = table["random solvable: IQM over seeds"].to_numpy()
    bounds = np.array([[float(x) for x in ci.split("-")] for ci in table["95% CI"]])
    ax.bar(table["curriculum"], iqms, yerr=[iqms - bounds[:, 0], bounds[:, 1] - iqms], capsize=4, color="tab:blue")
    ax.set_ylabel("solve rate, IQM over seeds")
    ax.set_title(f"{args.eval_levels} random solvable levels (n_walls={args.n_walls}), 95% bootstrap CI")
    plt.tight_layout()
    plt.savefig(HERE / f"random_solvable{args.tag}.png", dpi=120)
    plt.close()
    frame = pd.DataFrame(rows, columns=["variant", "env", "seed", "greedy_return"])
    pivot = frame.groupby(["env", "variant"])["greedy_return"].apply(lambda r: (r > 0).mean()).unstack()
    ax = pivot.plot.bar(figsize=(10, 4), rot=30)
    ax.set_ylabel("solve rate over seeds")
    ax.set_title(f"holdout mazes after {args.total_steps:,} steps (n_walls={args.n_walls}, {args.seeds} seeds)")
    plt.tight_layout()
    plt.savefig(HERE / f"holdouts{args.tag}.png", dpi=120)
    plt.close()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    for name in args.curricula.split(","):
        metrics = pd.read_csv(args.runs / name / "metrics.csv")
        mean = metrics.groupby("step")[["episode_return", "solved_fraction"]].mean()
        axes[0].plot(mean.index, mean["episode_return"], label=name)
        axes[1].plot(mean.index, mean["solved_fraction"], label=name)
    axes[0].set_title("training return (levels the curriculum chose)")
    axes[1].set_title("fraction of training episodes solved")
    _save_curves(axes, HERE / f"curves{args.tag}.png")
    if args.eval_every:
        eval_curves(args)
    print("bounds for aggregate.py: --bounds " + ",".join(f"{lv}=0:1" for lv in pivot.index))


def eval_curves(args) -> None:
    """The deterministic policy's solve rate during training, on the holdout mazes and on the
    random solvable levels evaluated every ``eval_every`` updates: mean over seeds, and a band of
    the lowest and highest seed."""
    columns = ("holdout_solve_rate", "random_solve_rate")
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5), sharey=True)
    for name in args.curricula.split(","):
        metrics = pd.read_csv(args.runs / name / "metrics.csv")
        for ax, column in zip(axes, columns):
            rows = metrics.dropna(subset=[column]).pivot(index="step", columns="seed", values=column)
            line, = ax.plot(rows.index, rows.mean(axis=1), marker=".", label=name)
            ax.fill_between(rows.index, rows.min(axis=1), rows.max(axis=1), color=line.get_color(), alpha=0.12)
    axes[0].set_title(f"holdout mazes, every {args.eval_every} updates")
    axes[1].set_title(f"{args.eval_random} random levels (solvable ones), every {args.eval_every} updates")
    axes[0].set_ylabel(f"solve rate, mean of {args.seeds} seeds (band: min-max)")
    _save_curves(axes, HERE / f"eval_curves{args.tag}.png")


def _save_curves(axes, path: Path) -> None:
    for ax in axes:
        ax.set_xlabel("env steps per seed (scoring steps included)")
    axes[1].legend()
    plt.tight_layout()
    plt.savefig(path, dpi=120)
    plt.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curricula", default="dr,plr,robust-plr,accel,sfl,paired")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--total-steps", type=int, default=1_000_000)
    parser.add_argument("--n-walls", type=int, default=60)
    parser.add_argument("--eval-levels", type=int, default=500)
    parser.add_argument("--eval-every", type=int, default=8, help="updates between evaluations during training (0: none)")
    parser.add_argument("--eval-random", type=int, default=64, help="random levels in each evaluation during training")
    parser.add_argument("--set", action="append", help="a setting for every curriculum (repeatable)")
    parser.add_argument("--runs", type=Path, default=Path("runs/ued"))
    parser.add_argument("--tag", default="", help="suffix of the files written here (a second configuration)")
    parser.add_argument("--only-results", action="store_true", help="rewrite the tables and plots from --runs")
    args = parser.parse_args()
    write_results(args, {} if args.only_results else train_all(args))
