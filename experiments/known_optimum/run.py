"""Does meta-training climb the right way? A check where the answer is known independently.

An evolution strategy searches one scalar, PPO's learning rate (in log space, so a member is a
multiplier of the default), with the engine `jaxrl meta-train` uses; a grid sweep with
`jaxrl.sweep` over the same inner runs locates the best learning rate on its own. The search mean
must end in the sweep's best region: the grid values whose 95% interval of the mean final return
reaches the best value's mean.

    python experiments/known_optimum/run.py --out experiments/known_optimum

Writes into --out: sweep/ (the sweep's results), meta/ (the meta-training directory), result.json
(the best region, the search mean's final learning rate, whether it landed) and check.png (the
sweep's curve with the region, and the search mean's learning rate per generation).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jaxrl  # noqa: F401  (XLA settings first)

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxrl.meta.run import meta_train  # noqa: E402

ENV = "CartPole-v1"
INNER = {"num_envs": 4, "num_steps": 64, "num_minibatches": 2, "update_epochs": 2, "hidden_sizes": (32, 32)}


def best_region(lrs: np.ndarray, summary) -> tuple[float, float]:
    """The smallest and largest grid value whose interval of the mean reaches the best's mean."""
    best = summary["mean"].max()
    inside = lrs[summary["ci_high"].to_numpy() >= best]
    return float(inside.min()), float(inside.max())


def landed(lr: float, region: tuple[float, float], lrs: np.ndarray) -> bool:
    """Within the region widened by half a grid step (in log space) on each side."""
    half = 0.5 * np.log(lrs[1] / lrs[0])
    return bool(np.log(region[0]) - half <= np.log(lr) <= np.log(region[1]) + half)


def run(out: Path, *, inner_steps: int, seeds: int, grid: int, population: int, generations: int, sigma: float,
        es_lr: float, start_lr: float, final_fraction: float = 0.1) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    overrides = {**INNER, "total_steps": inner_steps}
    lrs = np.geomspace(1e-4, 1e-1, grid)
    start = time.perf_counter()
    swept = jaxrl.sweep("ppo", ENV, grid={"lr": [float(x) for x in lrs]}, seeds=seeds, overrides=overrides,
                        final_fraction=final_fraction)
    swept.write(out / "sweep")
    sweep_seconds = time.perf_counter() - start
    region = best_region(lrs, swept.summary)

    start = time.perf_counter()
    meta = meta_train("ppo", ENV, out / "meta", field="lr", log_space=True, population=population,
                      generations=generations, sigma=sigma, lr=es_lr, seeds=seeds, inner_steps=inner_steps,
                      overrides={**INNER, "lr": start_lr}, final_fraction=final_fraction, overwrite=True, progress=False,
                      noise_every=0)
    meta_seconds = time.perf_counter() - start
    path = np.asarray(meta.rows["mean_value"])
    final = float(np.exp(np.log(path[-5:]).mean()))  # the mean's last five generations, averaged in log space
    result = {
        "env": ENV, "inner_steps": inner_steps, "seeds": seeds, "final_fraction": final_fraction, "grid": [float(x) for x in lrs],
        "sweep_mean": [float(x) for x in swept.summary["mean"]], "best_region": region,
        "start_lr": start_lr, "final_lr": final, "landed": landed(final, region, lrs),
        "sweep_seconds": round(sweep_seconds, 1), "meta_seconds": round(meta_seconds, 1),
        "population": population, "generations": generations, "sigma": sigma, "es_lr": es_lr,
    }
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    _plot(out / "check.png", lrs, swept.summary, region, path)
    return result


def _plot(path: Path, lrs: np.ndarray, summary, region: tuple[float, float], mean_path: np.ndarray) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=110)
    left.fill_between(lrs, summary["ci_low"], summary["ci_high"], alpha=0.25, color="tab:blue")
    left.plot(lrs, summary["mean"], "o-", color="tab:blue", label="sweep: mean final return, 95% CI")
    left.axvspan(*region, color="tab:green", alpha=0.15, label="best region")
    left.axvline(mean_path[-1], color="tab:orange", label="ES mean at the end")
    left.set_xscale("log"), left.set_xlabel("learning rate"), left.set_ylabel("final return"), left.legend(fontsize=8)
    right.plot(np.arange(1, len(mean_path) + 1), mean_path, color="tab:orange", label="ES search mean")
    right.axhspan(*region, color="tab:green", alpha=0.15, label="sweep's best region")
    right.set_yscale("log"), right.set_xlabel("generation"), right.set_ylabel("learning rate"), right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("experiments/known_optimum"))
    parser.add_argument("--inner-steps", type=int, default=32_768)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--grid", type=int, default=10)
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--generations", type=int, default=25)
    parser.add_argument("--sigma", type=float, default=0.3, help="search scale in log(lr)")
    parser.add_argument("--es-lr", type=float, default=0.25, help="the search mean's Adam step in log(lr)")
    parser.add_argument("--start-lr", type=float, default=1e-3)
    parser.add_argument("--final-fraction", type=float, default=0.1, help="the fitness (and the sweep's score): the mean "
                        "return of the episodes of the last F of each run's updates (1: all of training)")
    args = parser.parse_args()
    result = run(args.out, inner_steps=args.inner_steps, seeds=args.seeds, grid=args.grid, population=args.population,
                 generations=args.generations, sigma=args.sigma, es_lr=args.es_lr, start_lr=args.start_lr,
                 final_fraction=args.final_fraction)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
