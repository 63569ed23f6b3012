"""A learned optimizer (learned_mlp, OPEN's) meta-trained by evolution for PPO on CartPole-v1 and
Acrobot-v1 at once, with OPEN's normalised multi-task fitness, then tested on held-out seeds
against Adam at its best learning rate (tuned per environment on other seeds, on a grid whose best
is checked not to be an edge), against Signum (the learned optimizer's hand-set special case, at
its own tuned step scale) and against the meta-training's starting weights. Also plots the update
it makes against the gradient.

    python experiments/learned_optimizer/run.py --out experiments/learned_optimizer

Writes into --out: tuning.csv (the learning-rate grids), meta/ (the meta-training directory:
meta.csv with the fitness-noise columns, fitness.png, the weights), results.csv (optimizer, env,
seed, final return), summary.md (IQM with 95% bootstrap intervals), update.png.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jaxrl  # noqa: F401  (XLA settings first)

import matplotlib

matplotlib.use("Agg")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from jaxrl.analysis import stats  # noqa: E402
from jaxrl.components import learned_optim as lo  # noqa: E402
from jaxrl.components.optim import optimizer  # noqa: E402
from jaxrl.core.contract import Progress  # noqa: E402
from jaxrl.meta.run import load_optimizer, meta_train  # noqa: E402

TUNING_SEED, HELD_OUT_SEED = 500, 1000  # meta-training used the seed streams of seed 0
ADAM_LRS = (1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 1e-1, 2.5e-1)
SIGNUM_LRS = (1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2)  # sign steps: dead from 2.5e-2 on
ENVS = ("CartPole-v1", "Acrobot-v1")
NAME = "learned_mlp"


def tune(label: str, overrides: dict, lrs: tuple[float, ...], args) -> tuple[list[dict], dict[str, float]]:
    """IQM final return per env and lr on the tuning seeds, and the best lr per env."""
    rows = []
    for env in ENVS:
        for lr in lrs:
            result = jaxrl.train("ppo", env, num_seeds=args.tuning_seeds, seed=TUNING_SEED,
                                 overrides={"total_steps": args.inner_steps, "lr": lr, **overrides})
            rows.append({"optimizer": label, "env": env, "lr": lr, "iqm_final_return": float(stats.iqm(result.final_returns))})
    frame = pd.DataFrame(rows)
    best = {env: float(group.loc[group["iqm_final_return"].idxmax(), "lr"]) for env, group in frame.groupby("env")}
    for env, lr in best.items():
        edge = " (an edge of the grid: widen it)" if lr in (lrs[0], lrs[-1]) else ""
        print(f"{label} on {env}: best lr {lr:g}{edge}")
    return rows, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("experiments/learned_optimizer"))
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--generations", type=int, default=12)
    parser.add_argument("--inner-steps", type=int, default=32_768)
    parser.add_argument("--meta-seeds", type=int, default=2)
    parser.add_argument("--sigma", type=float, default=0.05)
    parser.add_argument("--test-seeds", type=int, default=16)
    parser.add_argument("--tuning-seeds", type=int, default=4)
    parser.add_argument("--skip-meta", action="store_true", help="reuse the meta-training directory in --out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    timings = {}

    # Learning rates, tuned on seeds apart from the test seeds: Adam's per environment, and the
    # learned optimizer's step scale (Signum's, its hand-set case) for both environments at once:
    # the lr whose IQMs, each scaled to its environment's range over the grid, have the best mean.
    start = time.perf_counter()
    adam_rows, adam_lr = tune("adam", {}, ADAM_LRS, args)
    signum_rows, _ = tune("signum", {"optimizer": NAME, "optimizer_params": lo.signum_weights(NAME)}, SIGNUM_LRS, args)
    signum = pd.DataFrame(signum_rows)
    scaled = signum.groupby("env")["iqm_final_return"].transform(lambda v: (v - v.min()) / max(v.max() - v.min(), 1e-8))
    step_lr = float(signum.assign(scaled=scaled).groupby("lr")["scaled"].mean().idxmax())
    print(f"the learned optimizer's step scale: {step_lr:g}")
    pd.DataFrame(adam_rows + signum_rows).to_csv(args.out / "tuning.csv", index=False)
    timings["tuning"] = time.perf_counter() - start

    if not args.skip_meta:
        start = time.perf_counter()
        result = meta_train("ppo", ",".join(ENVS), args.out / "meta", field="optimizer_params", generations=args.generations,
                            population=args.population, sigma=args.sigma, seeds=args.meta_seeds, inner_steps=args.inner_steps,
                            overrides={"optimizer": NAME, "lr": step_lr}, normalise=True, overwrite=True,
                            checkpoint_every=0, noise_every=4, noise_repeats=4)
        timings["meta-training"] = time.perf_counter() - start
        print(f"meta-trained: {timings['meta-training']:.0f} s, last mean fitness {result.rows['fitness_mean'][-1]:.3f}")
    learned, name = load_optimizer(args.out / "meta")

    start = time.perf_counter()
    rows = []
    for env in ENVS:
        candidates = {
            f"adam (lr {adam_lr[env]:g}, tuned)": {"lr": adam_lr[env]},
            f"{name} (meta-trained, lr {step_lr:g})": {"optimizer": name, "optimizer_params": learned, "lr": step_lr},
            f"{name} (initial weights, lr {step_lr:g})": {"optimizer": name, "lr": step_lr},
            f"signum (hand-set {name}, lr {step_lr:g})": {"optimizer": name, "optimizer_params": lo.signum_weights(name), "lr": step_lr},
        }
        for label, overrides in candidates.items():
            result = jaxrl.train("ppo", env, num_seeds=args.test_seeds, seed=HELD_OUT_SEED,
                                 overrides={"total_steps": args.inner_steps, **overrides})
            rows += [{"optimizer": label, "env": env, "seed": s, "final_return": float(v)} for s, v in enumerate(result.final_returns)]
            print(env, label, np.round(result.final_returns, 1))
    timings["held-out tests"] = time.perf_counter() - start
    frame = pd.DataFrame(rows)
    frame.to_csv(args.out / "results.csv", index=False)
    lines = ["| env | optimizer | IQM final return | 95% CI | mean |", "|---|---|---|---|---|"]
    for (env, label), group in frame.groupby(["env", "optimizer"], sort=False):
        values = group["final_return"].to_numpy()
        low, high = stats.bootstrap_ci(values, "iqm")
        lines.append(f"| {env} | {label} | {stats.iqm(values):.1f} | {low:.1f} to {high:.1f} | {values.mean():.1f} |")
    lines += ["", "Wall time on this CPU: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())]
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot_updates({"meta-trained": learned, "initial": lo.default_weights(name), "signum": lo.signum_weights(name)},
                 name, args.out / "update.png")


def steady_update(weights, name: str, gradients: jax.Array, fraction: float) -> np.ndarray:
    """update / lr for each gradient g after 50 steps of the same gradient (every momentum near g),
    for parameters of 0.1 in the first layer of an active neuron, at training progress n/N. The
    gradients make one tensor (the magnitude inputs are normalised over it, and the mean update
    over it subtracted: the gradients are symmetric about 0, so that mean is 0 by equivariance)."""
    tx = optimizer(name, lr=jnp.float32(1.0), progress=Progress(jnp.int32(round(fraction * 1000)), 1000), params=weights)
    params = {"w": jnp.full(gradients.shape, 0.1)}
    state = tx.init(params)
    for _ in range(50):
        updates, state = tx.update({"w": gradients}, state, params, batch_progress=0.5)
    return np.asarray(updates["w"])


def plot_updates(weights: dict, name: str, path: Path) -> None:
    gradients = jnp.concatenate([-jnp.logspace(-1, -6, 100), jnp.logspace(-6, -1, 100)])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=110)
    for label, w in weights.items():
        axes[0].plot(gradients, steady_update(w, name, gradients, 0.5), label=label)
    for fraction, alpha in ((0.0, 0.35), (0.5, 0.65), (0.95, 1.0)):
        axes[1].plot(gradients, steady_update(weights["meta-trained"], name, gradients, fraction), color="tab:blue", alpha=alpha,
                     label=f"meta-trained at n/N = {fraction:g}")
    axes[0].axhline(0, color="gray", linewidth=0.5)
    for ax in axes:
        ax.set_xscale("symlog", linthresh=1e-6)
        ax.set_xlabel("gradient g (held constant for 50 steps)")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("update / lr")
    axes[0].set_title("update against gradient (n/N = 0.5); Adam's would be -sign(g)")
    axes[1].set_title("the meta-trained optimizer over training")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
