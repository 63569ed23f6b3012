"""Learned update rules at CPU scale: LPG, GROOVE and TA-LPG meta-trained by meta-gradient on the
small grid-world level space (and TA-LPG by evolution), then fresh agents trained by each learned
rule, by the hand-set A2C rule (same agent, same lifetime) on held-out levels and on LPG's five
named levels, and on a gymnax environment no rule saw (Catch) against the kit's A2C and PPO.

    python experiments/lpg/run.py --meta-steps 1500            # meta-train (resumes) and evaluate
    python experiments/lpg/run.py --only-results               # evaluate the rules already in --runs

Writes results.md (IQM over levels with bootstrap intervals; returns normalised by A2C's and by the
value-iteration optimum), heldout.png, named.png, transfer.png and meta_curves.png here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import jax  # noqa: E402

import jaxrl  # noqa: E402
import envs  # noqa: E402
from envs.gridworld import lpg_level, optimal_return  # noqa: E402
from jaxrl.analysis import stats  # noqa: E402
from jaxrl.core.train import build  # noqa: E402
from jaxrl.rules.lifetimes import level_return, train_on_level  # noqa: E402
from jaxrl.rules.run import load_rule, meta_train_rule  # noqa: E402

HERE = Path(__file__).parent
# The CPU configuration (the benchmark's): update network of width 64, m = 30 as in LPG.
SETTINGS = {"levels": "small", "num_agents": 32, "num_envs": 16, "num_steps": 20, "inner_updates": 5, "hidden_size": 64}
METHODS = ("lpg", "groove", "ta-lpg")
HELDOUT_SEED = 10_000  # held-out levels: drawn from keys the meta-training never uses


def meta_train(args) -> None:
    for method in args.methods:
        out = args.runs / method
        resume = (out / "checkpoints").is_dir()
        meta_train_rule(method, out, meta_steps=args.meta_steps, settings=SETTINGS, seed=0,
                        checkpoint_every=50, resume=resume, overwrite=not resume)


UNTRAINED = "untrained"  # the control: LPG's network at the weights meta-training starts from


def rule_overrides(rule_dir: Path | str | None) -> dict:
    if rule_dir is None:  # the hand-set A2C rule in the same agent
        return {"rule": "a2c"}
    if rule_dir == UNTRAINED:  # rule_params None: the untrained rule's weights (seed 0)
        return {"rule": "lpg", "num_bins": int(SETTINGS.get("num_bins", 30)), "rule_hidden": int(SETTINGS["hidden_size"])}
    weights, settings = load_rule(rule_dir)
    return {**settings, "rule_params": weights}


def lifetimes_on(env_name: str, levels, overrides: dict, seeds: int, updates: int, eval_steps: int) -> np.ndarray:
    """[seeds, levels] returns of fresh agents trained ``updates`` updates on each level."""
    train = build("lpg", env_name, overrides={**overrides, "total_steps": 320 * updates})
    agent, hparams = train.agent, train.default_hparams

    def one(key, level):
        train_key, eval_key = jax.random.split(key)
        state = train_on_level(agent, hparams, level, train_key, updates, train.default_env_params)
        return level_return(agent, state.params, state.env, level, eval_key, eval_steps)

    count = jax.tree.leaves(levels)[0].shape[0]
    keys = jax.random.split(jax.random.PRNGKey(1), seeds * count).reshape(seeds, count, -1)
    program = jax.jit(jax.vmap(jax.vmap(one, in_axes=(0, 0)), in_axes=(0, None)))
    return np.asarray(program(keys, levels))


def heldout(args, rules: dict) -> pd.DataFrame:
    env, params = envs.make("gridworld", levels="small")
    keys = jax.random.split(jax.random.PRNGKey(HELDOUT_SEED), args.levels)
    levels = jax.vmap(env.sample_level, in_axes=(0, None))(keys, params)
    optimum = np.asarray(optimal_return(env, levels))
    rows = []
    for name, rule_dir in rules.items():
        returns = lifetimes_on("gridworld", levels, rule_overrides(rule_dir), args.seeds, args.lifetime, int(params.max_steps))
        for seed in range(args.seeds):
            for level in range(args.levels):
                rows.append({"rule": name, "seed": seed, "level": level, "return": returns[seed, level],
                             "optimum": optimum[level]})
    return pd.DataFrame(rows)


def named(args, rules: dict) -> pd.DataFrame:
    rows = []
    for level_name in ("dense", "sparse", "long", "longer", "long_dense"):
        env, _ = envs.make(f"gridworld/{level_name}")
        level = jax.tree.map(lambda x: x[None], lpg_level(level_name))
        optimum = float(optimal_return(env, lpg_level(level_name)))
        for name, rule_dir in rules.items():
            returns = lifetimes_on(f"gridworld/{level_name}", level, rule_overrides(rule_dir), args.seeds,
                                   args.named_updates, int(level.max_steps[0]))
            rows += [{"level": level_name, "rule": name, "seed": s, "return": float(returns[s, 0]), "optimum": optimum}
                     for s in range(args.seeds)]
    return pd.DataFrame(rows)


def transfer(args, rules: dict) -> pd.DataFrame:
    rows = []
    runs = {name: ("lpg", rule_overrides(rule_dir)) for name, rule_dir in rules.items()}
    runs.update({"a2c (kit)": ("a2c", {}), "ppo (kit)": ("ppo", {})})
    for name, (algorithm, overrides) in runs.items():
        result = jaxrl.train(algorithm, args.transfer_env, num_seeds=args.seeds,
                             overrides={**overrides, "total_steps": args.transfer_steps})
        rows += [{"rule": name, "seed": s, "return": float(r)} for s, r in enumerate(result.final_returns)]
    return pd.DataFrame(rows)


def interval(values) -> str:
    values = np.asarray(values, float)
    low, high = stats.bootstrap_ci(values, stats.iqm)
    return f"{stats.iqm(values):.3f} [{low:.3f}, {high:.3f}]"


def write_results(args, frames: dict) -> None:
    lines = ["# Learned update rules at CPU scale: results", "",
             f"Meta-training: {json.dumps(SETTINGS)}, {args.meta_steps} meta-steps each (`python experiments/lpg/run.py "
             f"--meta-steps {args.meta_steps}`). Fresh agents: tables, SGD lr 40, alpha_y 0.5, {args.seeds} seeds.", ""]
    h = frames["heldout"]
    a2c = h[h.rule == "a2c (hand-set)"].groupby("level")["return"].mean()
    lines += [f"## {args.levels} held-out levels (small space), lifetimes of {args.lifetime} updates", "",
              "| rule | mean return | IQM of return / optimum (levels with optimum > 0) | mean return / A2C's |", "|---|---|---|---|"]
    for name, group in h.groupby("rule", sort=False):
        per_level = group.groupby("level").agg({"return": "mean", "optimum": "first"})
        positive = per_level[per_level.optimum > 0]
        ratio = per_level["return"].mean() / a2c.mean() if a2c.mean() != 0 else np.nan
        lines.append(f"| {name} | {per_level['return'].mean():.3f} | {interval(positive['return'] / positive.optimum)} | {ratio:.2f} |")
    n = frames["named"]
    lines += ["", f"## LPG's five levels, lifetimes of {args.named_updates} updates (return / optimum, mean over seeds)", "",
              "| level | " + " | ".join(n.rule.unique()) + " |", "|---|" + "---|" * n.rule.nunique()]
    for level, group in n.groupby("level", sort=False):
        means = group.groupby("rule", sort=False).apply(lambda g: (g["return"] / g.optimum).mean(), include_groups=False)
        lines.append(f"| {level} | " + " | ".join(f"{means[r]:.2f}" for r in n.rule.unique()) + " |")
    t = frames["transfer"]
    lines += ["", f"## Transfer to {args.transfer_env} ({args.transfer_steps:,} steps, final return, IQM over seeds)", "",
              "| agent | final return |", "|---|---|"]
    lines += [f"| {name} | {interval(group['return'])} |" for name, group in t.groupby("rule", sort=False)]
    (HERE / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def plot(frames: dict, args) -> None:
    h = frames["heldout"]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    names = list(h.rule.unique())
    for i, name in enumerate(names):
        per_level = h[h.rule == name].groupby("level").agg({"return": "mean", "optimum": "first"})
        ax.scatter(per_level.optimum, per_level["return"], s=12, label=name, color=f"C{i}")
    ax.plot([0, h.optimum.max()], [0, h.optimum.max()], "k--", linewidth=0.8, label="optimum")
    ax.set_xlabel("optimal return (value iteration)")
    ax.set_ylabel("fresh agent's return after its lifetime")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "heldout.png")
    plt.close(fig)
    fig, axes = plt.subplots(1, len(args.methods), figsize=(4 * len(args.methods), 3), dpi=110, squeeze=False)
    for ax, method in zip(axes[0], args.methods):
        meta = pd.read_csv(args.runs / method / "meta.csv")
        window = max(1, len(meta) // 50)
        ax.plot(meta.meta_step, meta.mean_return.rolling(window).mean())
        ax.set_title(f"{method}: mean episode return of the population", fontsize=8)
        ax.set_xlabel("meta-step")
    fig.tight_layout()
    fig.savefig(HERE / "meta_curves.png")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", type=lambda s: s.split(","), default=list(METHODS))
    parser.add_argument("--meta-steps", type=int, default=1500)
    parser.add_argument("--runs", type=Path, default=Path("runs/lpg"))
    parser.add_argument("--levels", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--named-updates", type=int, default=500)
    parser.add_argument("--transfer-env", default="Catch-bsuite")
    parser.add_argument("--transfer-steps", type=int, default=200_000)
    parser.add_argument("--only-results", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a meta-training setting")
    parser.add_argument("--lifetime", type=int, default=250, help="updates of a fresh agent on a held-out level")
    args = parser.parse_args()
    SETTINGS.update(item.split("=", 1) for item in args.set)
    if not args.only_results:
        meta_train(args)
    rules = {"a2c (hand-set)": None, "lpg (untrained)": UNTRAINED, **{m: args.runs / m for m in args.methods}}
    frames = {"heldout": heldout(args, rules), "named": named(args, rules), "transfer": transfer(args, rules)}
    for name, frame in frames.items():
        frame.to_csv(HERE / f"{name}.csv", index=False)
    write_results(args, frames)
    plot(frames, args)


if __name__ == "__main__":
    main()
