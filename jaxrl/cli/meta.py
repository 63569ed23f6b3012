"""``jaxrl meta-train``: the command-line face of ``jaxrl.meta.run.meta_train``.

    jaxrl meta-train lpo --env CartPole-v1 --population 32 --generations 100 --out runs/m
    jaxrl train lpo --env CartPole-v1 --objective runs/m      # train with the learned drift
    jaxrl meta-train optimizer --algo ppo --env CartPole-v1 --out runs/o   # a learned optimizer
    jaxrl train ppo --env CartPole-v1 --optimizer learned:runs/o
    jaxrl meta-train disco --meta-steps 800 --out runs/d     # a Disco rule by meta-gradient (the colab's sizes)
    jaxrl train disco --env Catch-bsuite --rule runs/d

Everything is checked before anything compiles or touches the directory; bad input raises
``ConfigError``, which ``jaxrl.cli.main`` prints on one line with exit code 2.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from jaxrl.cli.common import key_values, output_dir, safe_name
from jaxrl.meta.es import STRATEGIES


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "meta-train",
        help="meta-train a learned objective by evolution (a generation is one compiled program)",
        description=(
            "Evolve ALGORITHM's learned weights (lpo, ta-lpo: the drift network; dpo: its alpha and beta), or with "
            "`optimizer` a learned optimizer (--optimizer) used by --algo, on "
            "--env: each generation trains every member of the population on --tasks tasks x --seeds seeds "
            "inside one compiled program and moves the search distribution towards higher fitness (see "
            "--fitness and --normalise). Writes meta.csv, "
            "fitness.png, config.json, checkpoints/ and objective/ (the learned weights) into --out."
        ),
    )
    parser.add_argument("algorithm", help=(
        "algorithm with learned weights (lpo, ta-lpo, dpo: by evolution), `optimizer`, or a learned update rule "
        "(lpg, ta-lpg, groove: by meta-gradient on grid-world levels, groove's chosen by its curator; disco: the Disco103 "
        "architecture from random weights by meta-gradient on --env, default Catch-bsuite, at the reference colab's sizes; "
        "jaxrl.rules)"))
    parser.add_argument("--algo", default=None, help="with `optimizer`: the agent that uses it (ppo, mdpo, lpo...; default ppo)")
    parser.add_argument("--optimizer", default=None, help=(
        "with `optimizer`: the learned optimizer to evolve: learned_mlp (default), learned_gru, learned_mlp_noise, "
        "learned_gru_noise"))
    parser.add_argument("--field", default=None, help=(
        "the hyperparameter to evolve instead of the learned weights: a scalar such as lr or clip_eps (a check of "
        "the search against a sweep; see --log-space)"))
    parser.add_argument("--log-space", action="store_true", help=(
        "search the logarithm of --field (a multiplier of its default; for positive scales such as lr)"))
    parser.add_argument("--meta-steps", type=int, default=None, help=(
        "with lpg, ta-lpg or groove: meta-steps of the update rule by meta-gradient (default 1000; settings such as "
        "levels=small, num_agents, num_envs, num_steps, inner_updates, hidden_size, num_bins with --set); with disco "
        "default 800 (settings num_agents, num_envs, num_steps, inner_steps, valid_steps, hidden_sizes, action_hidden, lr, "
        "meta_lr... of jaxrl.rules.disco_meta.DiscoMetaConfig)"))
    parser.add_argument("--evolve", action="store_true", help=(
        "with lpg or ta-lpg: meta-train the rule by evolution instead (the ES engine on --env, whole training runs "
        "as fitness; e.g. --env gridworld --env-set level_seed=int-uniform:0:9999 --tasks 8: each task one lifetime "
        "on one level)"))
    parser.add_argument("--env", default=None, help=(
        "environment name, e.g. CartPole-v1; several, comma-separated (CartPole-v1,Acrobot-v1), make each after "
        "the first one more task (--env-set applies to the first)"))
    parser.add_argument("--strategy", default="open_es", help=f"evolution strategy: {' | '.join(STRATEGIES)} (default open_es)")
    parser.add_argument("--population", type=int, default=32, help="members per generation (even for open_es; default 32)")
    parser.add_argument("--generations", type=int, default=100, help="generations (default 100)")
    parser.add_argument("--sigma", type=float, default=0.03, help="search scale (initial scale for snes/cma_es; default 0.03)")
    parser.add_argument("--lr", type=float, default=None, help="the mean's step size (default: Adam 0.01 for open_es, 1.0 for snes)")
    parser.add_argument("--seeds", type=int, default=1, help="inner training seeds per member and task (default 1)")
    parser.add_argument("--tasks", type=int, default=1, help=(
        "tasks per generation, drawn from the --env-set distributions (each a fixed set of env parameters; default 1)"))
    parser.add_argument("--inner-steps", type=int, default=None, help="env steps of each inner training run (default: the algorithm's)")
    parser.add_argument("--fitness", default="final_return", help=(
        "final_return (mean return of the episodes that ended in the last --final-fraction of each inner run), "
        "auc (the area under each inner run's learning curve: the mean return over all of training, which does not "
        "saturate when members reach the task's maximum) or greedy (--eval-episodes deterministic episodes after training)"))
    parser.add_argument("--final-fraction", type=float, default=0.1, metavar="F", help=(
        "the fraction of each inner run's last updates whose episodes make --fitness final_return (default 0.1)"))
    parser.add_argument("--noise-every", type=int, default=5, metavar="GENERATIONS", help=(
        "every GENERATIONS generations re-evaluate the search mean on fresh seeds and log the spread of its fitness "
        "(fitness_noise_std) beside the population's (fitness_population_std) in meta.csv (0: never; default 5)"))
    parser.add_argument("--noise-repeats", type=int, default=8, help="re-evaluations of the search mean for --noise-every (default 8)")
    parser.add_argument("--eval-episodes", type=int, default=10, help=(
        "episodes per run for --fitness greedy (default 10, measured: experiments/fitness_noise/README.md)"))
    parser.add_argument("--normalise", action="store_true", help=(
        "score each task's return R as 1 + (R - B) / |B| against the return B of the algorithm's default weights "
        "(for lpo: PPO's drift) on the same task and seeds, trained in the same program"))
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting of the inner agent (repeatable)")
    parser.add_argument("--env-set", action="append", metavar="KEY=VALUE", help="environment parameter; a distribution makes it the task distribution")
    parser.add_argument("--seed", type=int, default=0, help="meta-training seed (default 0)")
    parser.add_argument("--out", default=None, help="directory to write (default: runs/meta-<algorithm>-<env>)")
    parser.add_argument("--overwrite", action="store_true", help="replace a meta-training run already in --out")
    parser.add_argument("--resume", metavar="DIR", default=None, help="continue the meta-training run in DIR from its newest checkpoint")
    parser.add_argument("--checkpoint-every", type=int, default=10, metavar="GENERATIONS", help="checkpoint every GENERATIONS generations (0: only at the end; default 10)")
    parser.add_argument("--keep-checkpoints", type=int, default=2, metavar="K", help="keep the newest K checkpoints (default 2)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--no-compile-cache", action="store_true", help="do not use JAX's persistent compilation cache")


def run_command(args: argparse.Namespace) -> int:
    from jaxrl.core.values import ConfigError
    from jaxrl.meta.run import meta_train

    overrides = key_values(args.set, "--set")
    if args.algorithm in RULES and not args.evolve:
        return _run_rule(args, overrides)
    if args.evolve and args.algorithm not in ("lpg", "ta-lpg"):
        raise ConfigError("--evolve goes with lpg or ta-lpg (the others are evolved anyway)")
    if args.env is None:
        raise ConfigError(f"meta-train {args.algorithm} needs --env")
    algorithm, field = args.algorithm, "objective_params"
    if args.algorithm == "optimizer":
        if "optimizer" in overrides or "optimizer_params" in overrides:
            raise ConfigError("name the learned optimizer with --optimizer, not --set optimizer")
        algorithm, field = args.algo or "ppo", "optimizer_params"
        overrides["optimizer"] = args.optimizer or "learned_mlp"
    elif args.algo is not None or args.optimizer is not None:
        raise ConfigError("--algo and --optimizer go with `jaxrl meta-train optimizer`")
    if args.evolve:
        field = "rule_params"
    if args.field is not None:
        if args.algorithm == "optimizer":
            raise ConfigError("--field names what to evolve; `jaxrl meta-train optimizer` evolves optimizer_params")
        field = args.field
    elif args.log_space:
        raise ConfigError("--log-space goes with --field (a scalar hyperparameter such as lr)")
    out = output_dir(args, f"meta-{safe_name(args.algorithm)}-{safe_name(args.env.split(',')[0].replace('/', '_'))}")
    result = meta_train(
        algorithm, args.env, out, field=field,
        generations=args.generations, seed=args.seed, checkpoint_every=args.checkpoint_every,
        keep_checkpoints=args.keep_checkpoints, resume=args.resume is not None, overwrite=args.overwrite,
        progress=not args.quiet, strategy=args.strategy, population=args.population, sigma=args.sigma, lr=args.lr,
        seeds=args.seeds, tasks=args.tasks, inner_steps=args.inner_steps, overrides=overrides,
        env_overrides=key_values(args.env_set, "--env-set"), fitness=args.fitness, eval_episodes=args.eval_episodes,
        normalise=args.normalise, final_fraction=args.final_fraction, noise_every=args.noise_every,
        noise_repeats=args.noise_repeats, log_space=args.log_space,
    )
    rows = result.rows
    print(
        f"meta-train {overrides['optimizer'] + ' for ' + algorithm if field == 'optimizer_params' else args.algorithm} on {args.env} ({args.strategy}): generation {int(rows['generation'][-1])}, "
        f"population fitness mean {rows['fitness_mean'][-1]:.1f}, best {rows['fitness_best'][-1]:.1f}"
        + (f", search mean's return {rows['mean_member_return'][-1]:.1f}" if "mean_member_return" in rows else "")
        + _noise_summary(rows)
        + f" ({result.wall_time:.1f} s incl. {result.compile_time:.1f} s for the first generation) -> {result.path}"
    )
    return 0


RULES = ("lpg", "ta-lpg", "groove", "disco")


def _run_rule(args: argparse.Namespace, settings: dict[str, str]) -> int:
    """`jaxrl meta-train lpg | ta-lpg | groove | disco`: meta-gradient training of an update rule (jaxrl.rules.run)."""
    from jaxrl.core.values import ConfigError
    from jaxrl.rules.run import meta_train_rule

    disco = args.algorithm == "disco"
    if args.env_set or (args.env is not None and not disco):
        raise ConfigError(f"meta-train {args.algorithm} trains on grid-world levels: choose them with --set levels=small|all, "
                          "not --env" if not disco else "meta-train disco takes no --env-set")
    if disco and args.env is not None:
        if "env" in settings and settings["env"] != args.env:
            raise ConfigError("give the environment by --env or by --set env, not both")
        settings = {**settings, "env": args.env}
    meta_steps = args.meta_steps if args.meta_steps is not None else (800 if disco else 1000)
    out = output_dir(args, f"meta-{safe_name(args.algorithm)}")
    result = meta_train_rule(args.algorithm, out, meta_steps=meta_steps, settings=settings, seed=args.seed,
                             checkpoint_every=args.checkpoint_every, keep_checkpoints=args.keep_checkpoints,
                             resume=args.resume is not None, overwrite=args.overwrite, progress=not args.quiet)
    rows = result.rows
    tail = slice(-max(1, len(rows["meta_step"]) // 10), None)
    print(f"meta-train {args.algorithm}: meta-step {int(rows['meta_step'][-1])}, mean episode return "
          f"{np.mean(rows['mean_return'][tail]):.3f} over the last 10% of meta-steps ({result.wall_time:.1f} s incl. "
          f"{result.compile_time:.1f} s for the first meta-step) -> {result.path}")
    return 0


def _noise_summary(rows) -> str:
    """``; fitness std: population P, one member re-evaluated N`` at the last measurement."""
    noise = np.asarray(rows.get("fitness_noise_std", []), float)
    measured = np.flatnonzero(np.isfinite(noise))
    if not measured.size:
        return ""
    last = measured[-1]
    return f"; fitness std: population {rows['fitness_population_std'][last]:.2f}, one member re-evaluated {noise[last]:.2f}"
