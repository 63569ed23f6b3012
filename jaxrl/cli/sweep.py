"""``jaxrl sweep``: the command-line face of ``jaxrl.sweep``.

    jaxrl sweep ppo --env CartPole-v1 --grid lr=1e-4,3e-4,1e-3 --grid ent_coef=0,0.01 --seeds 8 --out runs/s
    jaxrl sweep ppo --env CartPole-v1 --random lr=loguniform:1e-5:1e-2 --samples 32 --seeds 2

Every spec is checked before anything compiles or touches the run directory; a bad one raises
``ConfigError``, which ``jaxrl.cli.main`` prints on one line and turns into exit code 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence

from jaxrl.cli.common import key_values
from jaxrl.core.contract import ConfigError


def add_parser(subparsers: Any) -> None:
    """Registers ``sweep`` on the ``jaxrl`` command's subparsers."""
    parser = subparsers.add_parser(
        "sweep",
        help="train a grid or random search of hyperparameters x seeds as one compiled program",
        description=(
            "Train ALGORITHM on --env for every configuration of a grid (--grid, repeatable: the "
            "Cartesian product) or a random search (--random with --samples), --seeds seeds each. "
            "Hyperparameters vary inside one compiled program; structural settings (num_envs, "
            "hidden_sizes, ...) compile once per distinct value. Runs are sharded over all devices. "
            "Writes config.json, results.csv, summary.csv, curves.png and heatmap.png (2-D grid) or "
            "sensitivity.png into --out."
        ),
    )
    parser.add_argument("algorithm", help="algorithm name (see `jaxrl list`)")
    parser.add_argument("--env", required=True, help="environment name, e.g. CartPole-v1")
    parser.add_argument("--grid", action="append", metavar="NAME=V1,V2,...", help=(
        "grid values of a setting, e.g. lr=1e-4,3e-4 or hidden_sizes=64x64,128x128 (repeatable)"))
    parser.add_argument("--random", action="append", metavar="NAME=DIST", help=(
        "distribution of a setting: loguniform:LOW:HIGH, uniform:LOW:HIGH, int-uniform:LOW:HIGH or "
        "choice:V1,V2,... (repeatable; needs --samples)"))
    parser.add_argument("--samples", type=int, default=None, help="configurations drawn by --random")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per configuration (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="base seed of the runs and of --random's draws (default 0)")
    parser.add_argument("--total-steps", type=int, default=None, help="environment steps per run (default: the algorithm's)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="fixed setting of every configuration, e.g. num_envs=8")
    parser.add_argument("--env-set", action="append", metavar="KEY=VALUE", help=(
        "environment parameter or option of every run; a distribution (gravity=uniform:8:12) randomises it every episode"))
    parser.add_argument("--log-every", type=int, default=None, help="updates per logged row (default: ~100 rows)")
    parser.add_argument("--final-fraction", type=float, default=0.1, metavar="F", help=(
        "the final return is the mean return of the episodes that ended in the last F of the updates (default 0.1)"))
    parser.add_argument("--out", default=None, help="directory to write (default: runs/sweep-<algorithm>-<env>)")
    parser.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    parser.add_argument("--checkpoint-every", type=int, default=None, metavar="STEPS", help=(
        "checkpoint the sweep into --out/checkpoints every STEPS env steps per run (and at the end of "
        "each program); without it and without --resume the sweep keeps no checkpoints"))
    parser.add_argument("--keep-checkpoints", type=int, default=2, metavar="K", help="keep the newest K checkpoints (default 2)")
    parser.add_argument("--resume", metavar="RUN_DIR", default=None, help=(
        "continue the sweep in RUN_DIR from its newest checkpoint; give the same sweep (algorithm, "
        "--env, --grid/--random, --seeds, --set, --checkpoint-every ...)"))
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--no-compile-cache", action="store_true", help=(
        "do not use JAX's persistent compilation cache (also JAXRL_COMPILATION_CACHE=0)"))


def parse_grid(items: Sequence[str] | None) -> dict[str, list[str]] | None:
    """``--grid lr=1e-4,3e-4`` -> ``{"lr": ["1e-4", "3e-4"]}``; values stay text so each is
    parsed by its field's type (``64x64`` is a tuple for ``hidden_sizes``)."""
    if not items:
        return None
    return {name: [v.strip() for v in text.split(",") if v.strip()] for name, text in key_values(items, "--grid", unique=True).items()}


def run_command(args: argparse.Namespace) -> int:
    """Runs ``jaxrl sweep``; returns the exit code."""
    from jaxrl.driver import rundir
    from jaxrl.core.train import check_final_fraction
    from jaxrl.sweeps.plan import plan
    from jaxrl.sweeps.run import run

    overrides: dict[str, Any] = key_values(args.set, "--set")
    if args.total_steps is not None:
        overrides["total_steps"] = str(args.total_steps)
    env_overrides = key_values(args.env_set, "--env-set")
    if args.log_every is not None and args.log_every < 1:
        raise ConfigError(f"--log-every must be >= 1, got {args.log_every}")
    if args.seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {args.seeds}")
    check_final_fraction(args.final_fraction)
    if args.grid and args.random:
        raise ConfigError("give --grid or --random, not both")
    if not args.grid and not args.random:
        raise ConfigError("a sweep needs --grid NAME=V1,V2,... or --random NAME=DIST (with --samples)")
    # Everything is checked here, before the run directory is created or anything compiles.
    sweep_plan = plan(
        args.algorithm,
        args.env,
        grid=parse_grid(args.grid),
        random=key_values(args.random, "--random", unique=True) if args.random else None,
        samples=args.samples,
        seeds=args.seeds,
        overrides=overrides,
        env_overrides=env_overrides,
        seed=args.seed,
    )
    if args.resume is not None:
        if args.overwrite:
            raise ConfigError("--resume continues a sweep in place; it cannot be combined with --overwrite")
        if args.out is not None and Path(args.out).expanduser().resolve() != Path(args.resume).expanduser().resolve():
            raise ConfigError("--resume continues the sweep in its own directory; leave out --out or give the same one")
    if args.keep_checkpoints < 1:
        raise ConfigError(f"--keep-checkpoints must be >= 1, got {args.keep_checkpoints}")
    safe_env = "".join(c if c.isalnum() or c in "-_." else "_" for c in args.env)
    out = args.resume or args.out or f"runs/sweep-{args.algorithm}-{safe_env}"
    if args.resume is None and args.checkpoint_every is None:
        # Without checkpoints the run directory is only written at the end, as before.
        path = rundir.prepare(out, args.overwrite)
        result = run(sweep_plan, log_every=args.log_every, progress=not args.quiet, final_fraction=args.final_fraction)
        result.write(path)
    else:
        # run() checks a resumed checkpoint (or refuses an occupied directory) before training.
        path = Path(out).expanduser().resolve()
        result = run(
            sweep_plan,
            log_every=args.log_every,
            final_fraction=args.final_fraction,
            progress=not args.quiet,
            run_dir=out,
            checkpoint_every=args.checkpoint_every,
            keep_checkpoints=args.keep_checkpoints,
            resume=args.resume is not None,
            overwrite=args.overwrite,
        )
    runs = len(result.configs) * result.seeds
    print(
        f"{result.summary_line()}; {runs} runs, {result.num_compilations} compilation"
        f"{'s' if result.num_compilations != 1 else ''} on {result.num_devices} device"
        f"{'s' if result.num_devices != 1 else ''}, {result.wall_time:.1f} s incl. {result.compile_time:.1f} s compile -> {Path(path)}"
    )
    return 0
