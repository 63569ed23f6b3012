"""Curricula over a continuous task space at a CPU budget: uniform tasks (domain randomisation),
ALP-GMM and AGAIN (and its IN variant, the expert's curriculum alone), each ``--seeds`` seeds
vmapped in one program, PPO, the same steps for every method.

The task spaces are CartPole-v1's gravity and push force (``CELLS``), over ranges where some
tasks are easy (low gravity), some hard or impossible (a strong gravity with a weak push, or a
fall too fast for 50 Hz pushes); the agent sees the task (``observe_task=1``). AGAIN's classroom is an ALP-GMM run
of ``--classroom`` students with other seeds. Each student is scored on 64 held-out tasks drawn
uniformly with a fixed seed, greedy policy, one episode each: a task is mastered when the return
reaches 475 (of 500). The share mastered per seed is summarised by the IQM over seeds with a
95% bootstrap interval.

    python experiments/task_curricula/run.py --cells moderate,wide --seeds 5 --classroom 10
    python experiments/task_curricula/run.py --report

Runs go to ``--runs`` (default /tmp/task_curricula_runs); per-method results to
``experiments/task_curricula/results/<cell>/<method>.json`` (an interrupted study resumes).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxrl.analysis import stats  # noqa: E402

HERE = Path(__file__).parent
OUT = HERE / "results"
ENV = "CartPole-v1"
# cell -> task space: "moderate" is mostly feasible (the hard corner: gravity above 40 with a push
# below 5); "wide" reaches gravities whose fall is too fast for 50 Hz pushes.
CELLS = {"moderate": ("gravity=2:60", "force_mag=0.5:20"), "wide": ("gravity=2:200", "force_mag=0.5:30")}
COMMON = ["--env-set", "observe_task=1", "--set", "eval_every=40"]
# (label, jaxrl ued curriculum, extra settings)
TEST_SEED, MASTERY = 12_345, 475.0  # the task curricula's default test_seed, CartPole's mastery_return
METHODS = (("random", "dr", []), ("alp-gmm", "alp-gmm", []), ("again", "again", []),
           ("in", "again", ["--set", "again_mode=in"]))


def ued(curriculum: str, space: tuple[str, ...], out: Path, seeds: int, seed: int, steps: int, extra: list[str]) -> float:
    command = [sys.executable, "-m", "jaxrl.cli", "ued", curriculum, "--env", ENV, "--seeds", str(seeds), "--seed", str(seed),
               "--total-steps", str(steps), "--out", str(out), "--overwrite", "--quiet", "--checkpoint-every", "0"]
    for item in space:
        command += ["--task-space", item]
    start = time.perf_counter()
    subprocess.run(command + COMMON + extra, check=True)
    return time.perf_counter() - start


def curves(run: Path) -> dict[str, list]:
    """test_mastered per evaluation, per seed, from the run's metrics.csv."""
    rows = [r for r in csv.DictReader((run / "metrics.csv").open()) if r["test_mastered"] not in ("", "nan")]
    seeds = sorted({int(r["seed"]) for r in rows})
    steps = sorted({int(r["step"]) for r in rows})
    table = {(int(r["seed"]), int(r["step"])): float(r["test_mastered"]) for r in rows}
    return {"steps": steps, "mastered": [[table.get((s, t), float("nan")) for t in steps] for s in seeds]}


def sampled(run: Path, bins: int = 20) -> list[list[int]]:
    """Where the teacher sent its students: a bins x bins histogram (unit-cube coordinates) of the
    newest tasks in every seed's history (up to history_size each)."""
    from jaxrl.driver.run import load_run

    history = load_run(run).state.teacher.history
    kept = np.minimum(np.asarray(history.count), history.values.shape[1])
    tasks = np.concatenate([np.asarray(history.values[s, :n]) for s, n in enumerate(kept)])
    counts, _, _ = np.histogram2d(tasks[:, 0], tasks[:, 1], bins=bins, range=[[0, 1], [0, 1]])
    return counts.astype(int).tolist()


def run_cell(cell: str, seeds: int, classroom: int, steps: int, runs: Path) -> None:
    out, runs, space = OUT / cell, runs / cell, CELLS[cell]
    out.mkdir(parents=True, exist_ok=True)
    classroom_dir = runs / "classroom"
    if not (classroom_dir / "classroom.npz").is_file():
        seconds = ued("alp-gmm", space, classroom_dir, classroom, 1000, steps, [])
        print(f"{cell}: classroom of {classroom}: {seconds:.0f} s")
    for label, curriculum, extra in METHODS:
        if (out / f"{label}.json").is_file():
            continue
        run = runs / label
        extra = extra + (["--classroom", str(classroom_dir)] if curriculum == "again" else [])
        seconds = ued(curriculum, space, run, seeds, 0, steps, extra)
        report = json.loads((run / "task_eval.json").read_text())
        result = {"label": label, "env": ENV, "task_space": list(space), "steps": steps, "seeds": seeds,
                  "classroom": classroom if curriculum == "again" else 0, "seconds": round(seconds, 1),
                  "mastered": report["mastered"], "mean_return": report["mean_return"],
                  "expert": report.get("expert"), "test_returns": report["test_returns"], "curve": curves(run),
                  "sampled": sampled(run)}
        (out / f"{label}.json").write_text(json.dumps(result, indent=1) + "\n")
        print(f"{cell} {label}: mastered {np.round(report['mastered'], 3).tolist()} ({seconds:.0f} s)")


def _iqm_ci(values) -> tuple[float, float, float]:
    values = np.asarray(values, float)
    low, high = stats.bootstrap_ci(values, "iqm")
    return float(stats.iqm(values)), float(low), float(high)


def report(runs: Path) -> None:
    lines = []
    for cell in CELLS:
        for label, *_ in METHODS:  # results written before "sampled" was recorded, from their runs
            path = OUT / cell / f"{label}.json"
            if path.is_file() and "sampled" not in (result := json.loads(path.read_text())) and (runs / cell / label).is_dir():
                path.write_text(json.dumps({**result, "sampled": sampled(runs / cell / label)}, indent=1) + "\n")
        results = [json.loads((OUT / cell / f"{label}.json").read_text()) for label, *_ in METHODS
                   if (OUT / cell / f"{label}.json").is_file()]
        if results:
            lines += report_cell(cell, results)
    if not lines:
        raise SystemExit("no results yet: run the study first")
    (OUT / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines) + f"\n-> {OUT / 'summary.md'}")


def report_cell(cell: str, results: list[dict]) -> list[str]:
    first = results[0]
    lines = [f"## {cell}: {first['env']}, {', '.join(first['task_space'])}", "",
             f"{first['seeds']} seeds x {first['steps']:,} steps each; share of 64 held-out tasks mastered (greedy "
             "return >= 475), IQM over seeds [95% bootstrap CI], and each seed's share.", "",
             "| method | mastered (IQM [CI]) | per seed | mean test return | seconds |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['label']} | %.3f [%.3f, %.3f] | {', '.join('%.3f' % m for m in r['mastered'])} | "
                     f"{np.mean(r['mean_return']):.0f} | {r['seconds']:.0f} |" % _iqm_ci(r["mastered"]))
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in results:
        steps, curve = np.asarray(r["curve"]["steps"]), np.asarray(r["curve"]["mastered"])
        points = np.array([_iqm_ci(curve[:, i]) for i in range(curve.shape[1])])
        ax.plot(steps, points[:, 0], label=r["label"])
        ax.fill_between(steps, points[:, 1], points[:, 2], alpha=0.2)
    ax.set_xlabel("environment steps per seed")
    ax.set_ylabel("share of held-out tasks mastered (IQM)")
    ax.set_title(f"{first['env']}: {', '.join(first['task_space'])}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(OUT / f"mastered_{cell}.png", dpi=120)
    plt.close(fig)
    task_map(cell, results)
    return lines + ["", f"![share mastered over training](mastered_{cell}.png)", "",
                    f"![held-out tasks mastered](tasks_{cell}.png)", ""]


def task_map(cell: str, results: list[dict]) -> None:
    """The held-out tasks in parameter units, coloured by the share of seeds that master each."""
    names = [item.split("=")[0] for item in results[0]["task_space"]]
    bounds = np.array([[float(b) for b in item.split("=")[1].split(":")] for item in results[0]["task_space"]])
    returns = np.asarray(results[0]["test_returns"])
    unit = np.random.default_rng(TEST_SEED).random((returns.shape[1], len(names)))  # as test_task_set draws them
    points = bounds[:, 0] + unit * (bounds[:, 1] - bounds[:, 0])
    fig, axes = plt.subplots(2, len(results), figsize=(3.2 * len(results), 6.4), sharex=True, sharey=True, squeeze=False)
    extent = [bounds[0, 0], bounds[0, 1], bounds[1, 0], bounds[1, 1]]
    for ax, under, r in zip(axes[0], axes[1], results):
        share = (np.asarray(r["test_returns"]) >= MASTERY).mean(axis=0)
        dots = ax.scatter(points[:, 0], points[:, 1], c=share, cmap="viridis", vmin=0, vmax=1, s=25)
        ax.set_title(f"{r['label']}: {np.mean(r['mastered']):.2f} mastered", fontsize=9)
        counts = np.asarray(r["sampled"], float)
        under.imshow((counts / counts.sum()).T, origin="lower", extent=extent, aspect="auto", cmap="magma")
        under.set_title("tasks trained on", fontsize=9)
        under.set_xlabel(names[0])
    axes[0][0].set_ylabel(names[1])
    axes[1][0].set_ylabel(names[1])
    fig.colorbar(dots, ax=axes[0].tolist(), label="share of seeds mastering")
    fig.savefig(OUT / f"tasks_{cell}.png", dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", default=",".join(CELLS), help=f"comma-separated, of {', '.join(CELLS)}")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--classroom", type=int, default=10, help="AGAIN's classroom size (ALP-GMM students)")
    parser.add_argument("--steps", type=int, default=500_000)
    parser.add_argument("--runs", type=Path, default=Path("/tmp/task_curricula_runs"))
    parser.add_argument("--report", action="store_true", help="only write summary.md and mastered.png")
    args = parser.parse_args()
    if not args.report:
        for cell in args.cells.split(","):
            if cell not in CELLS:
                raise SystemExit(f"unknown cell {cell!r}; choose from {', '.join(CELLS)}")
            run_cell(cell, args.seeds, args.classroom, args.steps, args.runs)
    report(args.runs)


if __name__ == "__main__":
    main()
