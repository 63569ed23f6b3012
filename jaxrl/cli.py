"""The ``jaxrl`` command: ``train``, ``eval``, ``sweep``, ``meta-train``, ``list``. Bad input ends with one line on stderr
and exit code 2, never a traceback, and never touches an existing run."""

from __future__ import annotations

import argparse
import atexit
import os
import sys
import threading
from typing import Any, Sequence

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def key_values(items: Sequence[str] | None, flag: str, *, unique: bool = False) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; values stay text for the field parsers. A
    repeated key takes its last value, or is an error with ``unique`` (a sweep axis given twice)."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"{flag} expects KEY=VALUE, got {item!r}")
        if unique and key in out:
            raise UsageError(f"{flag} gives {key} twice")
        out[key] = value.strip()
    return out


def add_train_arguments(train: argparse.ArgumentParser) -> None:
    """The options of `jaxrl train`, which `jaxrl ued` shares."""
    train.add_argument("--env", required=True, help="environment name, e.g. CartPole-v1 or brax/inverted_pendulum")
    train.add_argument("--seeds", type=int, default=1, help="number of seeds, vmapped (default 1)")
    train.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    train.add_argument("--total-steps", type=int, default=None, help="environment steps per seed (default: the algorithm's)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field or hyperparameter, e.g. lr=3e-4 (repeatable)")
    train.add_argument("--env-set", action="append", metavar="KEY=VALUE", help=(
        "environment parameter or option, e.g. max_steps_in_episode=200 or backend=spring; a distribution "
        "such as gravity=uniform:8:12 randomises it every episode (domain randomisation)"))
    train.add_argument("--log-every", type=int, default=None, help="updates per logged row (default: ~100 rows)")
    train.add_argument("--final-fraction", type=float, default=0.1, metavar="F", help=(
        "the final return is the mean return of the episodes that ended in the last F of the updates (default 0.1)"))
    train.add_argument("--out", default=None, help="run directory to write (default: runs/<algorithm>-<env>)")
    train.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    train.add_argument("--resume", metavar="RUN_DIR", default=None, help=(
        "continue the run in RUN_DIR from its newest checkpoint; give the same algorithm, --env and "
        "settings as the original command (a difference is refused)"))
    train.add_argument("--checkpoint-every", type=int, default=None, metavar="STEPS", help=(
        "save the whole run state every STEPS env steps per seed, rounded to a chunk boundary "
        "(default: about 10 per run; 0: only at the end)"))
    train.add_argument("--keep-checkpoints", type=int, default=2, metavar="K", help="keep the newest K checkpoints (default 2)")
    train.add_argument("--tensorboard", action="store_true", help="also write TensorBoard event files to RUN_DIR/tensorboard (needs tensorboardX)")
    train.add_argument("--wandb", action="store_true", help="also log to Weights & Biases (needs wandb; project from WANDB_PROJECT)")
    train.add_argument("--objective", metavar="META_DIR", default=None, help=(
        "train with the learned weights a `jaxrl meta-train` run wrote into META_DIR (lpo, ta-lpo)"))
    train.add_argument("--optimizer", metavar="NAME|learned:META_DIR", default=None, help=(
        "the optimizer: a name (adam, sgd, rmsprop, learned_mlp, ...; as --set optimizer=NAME) or "
        "learned:META_DIR, the learned optimizer a `jaxrl meta-train optimizer` run wrote into META_DIR, at the lr (step "
        "scale) it was meta-trained at unless --set lr= is given"))
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--no-compile-cache", action="store_true", help=(
        "do not use JAX's persistent compilation cache (also JAXRL_COMPILATION_CACHE=0)"))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="jaxrl",
        description="JAX-native reinforcement learning: whole training runs compiled into one XLA program.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train = sub.add_parser("train", help="train an agent on an environment over several seeds", description=(
        "Train ALGORITHM on --env, all seeds vmapped in one compiled program. Writes config.json, "
        "metrics.csv and curve.png into --out, and checkpoints of the whole run state into "
        "--out/checkpoints, from which --resume continues a run that was stopped."
    ))
    train.add_argument("algorithm", help="algorithm name (see `jaxrl list`)")
    add_train_arguments(train)

    evaluate = sub.add_parser("eval", help="evaluate a trained run's deterministic policies", description=(
        "Run the deterministic (greedy / mean) policy of every seed of RUN_DIR's newest checkpoint for "
        "--episodes episodes, print the mean return with a 95% bootstrap interval and write RUN_DIR/eval.json."
    ))
    evaluate.add_argument("run_dir", help="a run directory written by `jaxrl train`")
    evaluate.add_argument("--episodes", type=int, default=100, help="episodes per seed (default 100)")
    evaluate.add_argument("--seed", type=int, default=0, help="evaluation seed (default 0)")
    evaluate.add_argument("--max-steps", type=int, default=None, help="stop episodes after this many steps (default 100000)")
    evaluate.add_argument("--render", action="store_true", help="also write RUN_DIR/episode.gif of one episode of seed 0")
    evaluate.add_argument("--levels", metavar="FILE", default=None, help=(
        "instead, play every level in FILE once per seed (mazes as text separated by blank lines): solve rate and "
        "return, with the worst 10%% of levels, written to RUN_DIR/eval_levels.json"))

    from jaxrl.sweeps.cli import add_parser as add_sweep_parser

    add_sweep_parser(sub)

    from jaxrl.meta.cli import add_parser as add_meta_parser

    add_meta_parser(sub)

    from jaxrl.curricula.cli import add_parser as add_ued_parser

    add_ued_parser(sub)

    sub.add_parser("list", help="list algorithms and environments")
    return parser


def _cmd_list() -> int:
    import envs
    from jaxrl.core.contract import get_algorithm, list_algorithms

    print("algorithms:")
    for name in list_algorithms():
        algo = get_algorithm(name)
        kinds = "/".join(k for k, ok in (("discrete", algo.discrete), ("continuous", algo.continuous)) if ok)
        print(f"  {name:10s} {algo.summary} [{kinds}]")
    from envs import suites

    print("environments:")
    prefixes = tuple(f"{prefix}/" for prefix in suites.SUITES)
    for name in envs.list_envs():
        if not name.startswith(prefixes):
            print(f"  {name}")
    for suite in suites.SUITES.values():
        status = "installed" if suites.installed(suite) else f"not installed: {suites.install_hint(suite)}"
        print(f"{suite.prefix} environments ({status}):")
        for name in suites.names(suite):
            print(f"  {suite.prefix}/{name}")
    return 0


def _safe_name(text: str) -> str:
    """A single path component from a user-given name: no separators, no leading dots."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in text).lstrip(".")
    return cleaned or "run"


def output_dir(args: argparse.Namespace, default_name: str) -> str:
    """The directory a command writes: ``--resume DIR`` (in place), else ``--out``, else
    ``runs/<default_name>``; ``--resume`` with ``--overwrite`` or another ``--out`` is refused."""
    from pathlib import Path

    from jaxrl.core.contract import ConfigError

    if args.resume is None:
        return args.out or f"runs/{default_name}"
    if args.overwrite:
        raise ConfigError("--resume continues a run in place; it cannot be combined with --overwrite")
    if args.out is not None and Path(args.out).expanduser().resolve() != Path(args.resume).expanduser().resolve():
        raise ConfigError("--resume continues the run in its own directory; leave out --out or give the same one")
    return args.resume


def optimizer_overrides(value: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The settings ``--optimizer NAME`` or ``--optimizer learned:META_DIR`` stands for."""
    from jaxrl.components.optim import check_optimizer
    from jaxrl.core.contract import ConfigError

    if "optimizer" in overrides or "optimizer_params" in overrides:
        raise ConfigError("give the optimizer by --optimizer or by --set optimizer/optimizer_params, not both")
    if value.startswith("learned:"):
        from jaxrl.meta.run import learned_optimizer_settings

        if not value[len("learned:"):]:
            raise ConfigError("--optimizer learned: needs a directory, e.g. --optimizer learned:runs/meta-optimizer")
        settings = learned_optimizer_settings(value[len("learned:"):])
        if "lr" in overrides:  # --set lr=... given: the user's step scale, not the meta-training's
            del settings["lr"]
        return settings
    check_optimizer(value, context=True)  # a learned one's context is the algorithm's check
    return {"optimizer": value}


def _cmd_train(args: argparse.Namespace, extra_overrides: dict[str, Any] | None = None, after: Any = None) -> int:
    """`jaxrl train` (and `jaxrl ued`, which adds settings and calls ``after(result, path)``)."""
    from pathlib import Path

    from jaxrl.core.contract import ConfigError
    from jaxrl.driver.run import train_run

    overrides: dict[str, Any] = {**key_values(args.set, "--set"), **(extra_overrides or {})}
    if args.total_steps is not None:
        overrides["total_steps"] = str(args.total_steps)
    # Text: each value is parsed (and checked) by its parameter's type before anything compiles.
    env_overrides = key_values(args.env_set, "--env-set")
    if args.objective is not None:
        from jaxrl.meta.run import load_objective

        if "objective_params" in overrides:
            raise ConfigError("give the learned weights by --objective or by --set objective_params, not both")
        overrides["objective_params"], objective = load_objective(args.objective, algorithm=args.algorithm)
        if overrides.setdefault("objective", objective) != objective:
            raise ConfigError(f"--objective {args.objective} holds weights of objective {objective}, not {overrides['objective']}")
    if args.optimizer is not None:
        overrides.update(optimizer_overrides(args.optimizer, overrides))
    if args.seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {args.seeds}")
    if args.log_every is not None and args.log_every < 1:
        raise ConfigError(f"--log-every must be >= 1, got {args.log_every}")
    if args.checkpoint_every is not None and args.checkpoint_every < 0:
        raise ConfigError(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
    if args.keep_checkpoints < 1:
        raise ConfigError(f"--keep-checkpoints must be >= 1, got {args.keep_checkpoints}")
    out = output_dir(args, f"{_safe_name(args.algorithm)}-{_safe_name(args.env.replace('/', '_'))}")
    # train_run validates names, settings, loggers and the run directory (or checkpoint) before
    # any compilation, and touches nothing on disk when they are wrong.
    result = train_run(
        args.algorithm,
        args.env,
        out,
        overrides=overrides,
        env_overrides=env_overrides,
        seed=args.seed,
        num_seeds=args.seeds,
        log_every=args.log_every,
        final_fraction=args.final_fraction,
        checkpoint_every=args.checkpoint_every,
        keep_checkpoints=args.keep_checkpoints,
        resume=args.resume is not None,
        overwrite=args.overwrite,
        tensorboard=args.tensorboard,
        wandb=args.wandb,
        progress=not args.quiet,
    )
    steps = int(result.steps[-1]) if len(result.steps) else 0
    path = Path(out).expanduser().resolve()
    print(
        f"{result.algorithm} on {result.env_name}: {result.summary_line()} "
        f"({steps:,} steps per seed, {result.wall_time:.1f} s incl. {result.compile_time:.1f} s compile) -> {path}"
    )
    if after is not None:
        after(result, path)
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    import json

    from jaxrl.analysis.evaluation import check_renderable, evaluate_loaded, render_loaded
    from jaxrl.core.contract import ConfigError
    from jaxrl.driver.rundir import _atomic_write
    from jaxrl.driver.run import load_run

    if args.episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {args.episodes}")
    if args.max_steps is not None and args.max_steps < 1:
        raise ConfigError(f"--max-steps must be >= 1, got {args.max_steps}")
    run = load_run(args.run_dir)
    if args.levels is not None:
        return _eval_levels(run, args.levels, args.seed)
    if args.render:
        check_renderable(run)  # refuse before evaluating, not after
    report = evaluate_loaded(run, args.episodes, seed=args.seed, max_steps=args.max_steps)
    _atomic_write(run.path / "eval.json", lambda p: p.write_text(json.dumps(report.to_json(), indent=2) + "\n"))
    low, high = report.ci95
    seeds = report.returns.shape[0]
    print(
        f"{report.algorithm} on {report.env_name} at {report.checkpoint_env_steps:,} steps: mean return "
        f"{report.mean_return:.1f} (95% CI {low:.1f} to {high:.1f}) over {seeds} seed{'s' if seeds > 1 else ''} "
        f"x {report.episodes} episodes -> {run.path / 'eval.json'}"
    )
    if args.render:
        gif = render_loaded(run, seed=args.seed, max_steps=args.max_steps)
        print(f"one episode of seed 0 -> {gif}")
    return 0


def _eval_levels(run: Any, levels_file: str, seed: int) -> int:
    """`jaxrl eval RUN --levels FILE`."""
    import json

    from jaxrl.curricula.cli import read_levels_file
    from jaxrl.curricula.evaluation import play_levels, summary
    from jaxrl.driver.rundir import _atomic_write

    levels = read_levels_file(run.train.env, levels_file)
    report = {"levels_file": str(levels_file), "policy": "deterministic", "eval_seed": seed,
              **summary(*play_levels(run.train, run.policy_params(), levels, seed=seed))}
    _atomic_write(run.path / "eval_levels.json", lambda p: p.write_text(json.dumps(report, indent=2) + "\n"))
    print(f"{run.algorithm.name} on {report['levels']} levels of {levels_file}: solve rate {report['solve_rate']:.2f} "
          f"(worst 10% {report['solve_rate_cvar10']:.2f}), mean return {report['mean_return']:.3f} -> {run.path / 'eval_levels.json'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        if args.command == "list":
            return _cmd_list()
        if args.command == "eval":
            return _cmd_eval(args)
        if getattr(args, "no_compile_cache", False):
            from jaxrl import _platform

            _platform.disable_compilation_cache()
        if args.command == "sweep":
            from jaxrl.sweeps.cli import run_command

            return run_command(args)
        if args.command == "meta-train":
            from jaxrl.meta.cli import run_command as run_meta

            return run_meta(args)
        if args.command == "ued":
            from jaxrl.curricula.cli import run_command as run_ued

            return run_ued(args)
        return _cmd_train(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as error:  # noqa: BLE001 - bad input classes are known; anything else is a bug
        from envs import InvalidEnvSetting, UnknownEnvironmentError
        from jaxrl.core.contract import ConfigError

        if isinstance(error, (ConfigError, UnknownEnvironmentError, InvalidEnvSetting)):
            print(f"error: {error}", file=sys.stderr)
            return EXIT_BAD_INPUT
        raise


def entry() -> None:
    """The ``jaxrl`` command: ``main``, then a quick exit. Once a command has returned, its files
    are written and closed, its checkpoints finished (``CheckpointStore.close``) and its loggers
    closed; what remains of a normal exit is the interpreter tearing down every module and XLA's
    objects, 0.3-0.4 s of a newcomer's 6 s first command (experiments/bench/startup.py). So the
    exit handlers run (wandb's and logging's among them) and the process ends without the
    teardown. Skipped while another non-daemon thread runs, which a normal exit would wait for.
    ``main`` itself returns normally, for tests and for callers in Python."""
    code = main()
    if any(not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()  # noqa: SLF001 - the handlers a normal exit would run
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
