"""A learned optimizer (learned_mlp) meta-trained by evolution for PPO on CartPole-v1 at CPU
scale, then tested on held-out seeds against Adam at its best learning rate (tuned on other
seeds), against Signum (the learned optimizer's hand-set special case) and against the
meta-training's starting weights: on CartPole-v1 and on Acrobot-v1, which it was not
meta-trained on. Also plots the update it makes against the gradient.

    python experiments/learned_optimizer/run.py --out experiments/learned_optimizer

Writes into --out: meta/ (the meta-training directory: meta.csv, fitness.png, the weights),
tuning.csv (Adam's learning-rate sweep), results.csv (optimizer, env, seed, final return),
summary.md (IQM with 95% bootstrap intervals), update.png.
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
ADAM_LRS = (1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3)
ENVS = ("CartPole-v1", "Acrobot-v1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("experiments/learned_optimizer"))
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--generations", type=int, default=25)
    parser.add_argument("--inner-steps", type=int, default=32_768)
    parser.add_argument("--meta-seeds", type=int, default=1)
    parser.add_argument("--sigma", type=float, default=0.05)
    parser.add_argument("--test-seeds", type=int, default=8)
    parser.add_argument("--tuning-seeds", type=int, default=4)
    parser.add_argument("--skip-meta", action="store_true", help="reuse the meta-training directory in --out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    timings = {}
    if not args.skip_meta:
        start = time.perf_counter()
        result = meta_train("ppo", "CartPole-v1", args.out / "meta", field="optimizer_params", generations=args.generations,
                            population=args.population, sigma=args.sigma, seeds=args.meta_seeds, inner_steps=args.inner_steps,
                            overrides={"optimizer": "learned_mlp"}, fitness="greedy", overwrite=True, checkpoint_every=10)
        timings["meta-training"] = time.perf_counter() - start
        print(f"meta-trained: {timings['meta-training']:.0f} s, last mean fitness {result.rows['fitness_mean'][-1]:.1f}")
    learned, name = load_optimizer(args.out / "meta")

    # Adam's learning rate, tuned per environment on seeds apart from the test seeds.
    start = time.perf_counter()
    tuning, best_lr = [], {}
    for env in ENVS:
        for lr in ADAM_LRS:
            result = jaxrl.train("ppo", env, num_seeds=args.tuning_seeds, seed=TUNING_SEED,
                                 overrides={"total_steps": args.inner_steps, "lr": lr})
            tuning.append({"env": env, "lr": lr, "iqm_final_return": float(stats.iqm(result.final_returns))})
        frame = pd.DataFrame([t for t in tuning if t["env"] == env])
        best_lr[env] = float(frame.loc[frame["iqm_final_return"].idxmax(), "lr"])
        print(env, "Adam's best lr", best_lr[env])
    pd.DataFrame(tuning).to_csv(args.out / "tuning.csv", index=False)
    timings["Adam tuning"] = time.perf_counter() - start

    start = time.perf_counter()
    rows = []
    for env in ENVS:
        candidates = {
            f"adam (lr {best_lr[env]:g}, tuned)": {"lr": best_lr[env]},
            "learned_mlp (meta-trained)": {"optimizer": name, "optimizer_params": learned},
            "learned_mlp (initial weights)": {"optimizer": name},
            "signum (hand-set learned_mlp)": {"optimizer": name, "optimizer_params": lo.signum_weights(name)},
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
    """update / lr for each gradient g after 50 steps of the same gradient (every momentum = g),
    for a parameter of 0.1 in the first layer of an active neuron, at training progress n/N."""
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
