"""The ``jaxrl`` command: ``train``, ``list``. Bad input ends with one line on stderr and exit
code 2, never a traceback, and never touches an existing run."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _key_values(items: Sequence[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag} expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _env_value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="jaxrl",
        description="JAX-native reinforcement learning: whole training runs compiled into one XLA program.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train = sub.add_parser("train", help="train an agent on an environment over several seeds", description=(
        "Train ALGORITHM on --env, all seeds vmapped in one compiled program. Writes config.json, "
        "metrics.csv and curve.png into --out."
    ))
    train.add_argument("algorithm", help="algorithm name (see `jaxrl list`)")
    train.add_argument("--env", required=True, help="environment name, e.g. CartPole-v1 or brax/inverted_pendulum")
    train.add_argument("--seeds", type=int, default=1, help="number of seeds, vmapped (default 1)")
    train.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    train.add_argument("--total-steps", type=int, default=None, help="environment steps per seed (default: the algorithm's)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field or hyperparameter, e.g. lr=3e-4 (repeatable)")
    train.add_argument("--env-set", action="append", metavar="KEY=VALUE", help="environment option, e.g. backend=spring or max_steps_in_episode=200")
    train.add_argument("--log-every", type=int, default=None, help="updates per logged row (default: ~100 rows)")
    train.add_argument("--out", default=None, help="run directory to write (default: runs/<algorithm>-<env>)")
    train.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    sub.add_parser("list", help="list algorithms and environments")
    return parser


def _cmd_list() -> int:
    import envs
    from jaxrl.algorithms import get_algorithm, list_algorithms

    print("algorithms:")
    for name in list_algorithms():
        algo = get_algorithm(name)
        kinds = "/".join(k for k, ok in (("discrete", algo.discrete), ("continuous", algo.continuous)) if ok)
        print(f"  {name:10s} {algo.summary} [{kinds}]")
    print("environments:")
    for name in envs.list_envs():
        print(f"  {name}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from jaxrl import rundir
    from jaxrl.algorithms import ConfigError
    from jaxrl.plotting import summary_line
    from jaxrl.runner import train

    overrides: dict[str, Any] = _key_values(args.set, "--set")
    if args.total_steps is not None:
        overrides["total_steps"] = str(args.total_steps)
    env_overrides = {k: _env_value(v) for k, v in _key_values(args.env_set, "--env-set").items()}
    if args.seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {args.seeds}")
    if args.log_every is not None and args.log_every < 1:
        raise ConfigError(f"--log-every must be >= 1, got {args.log_every}")
    out = args.out or f"runs/{args.algorithm}-{args.env.replace('/', '_')}"
    # Validate everything (names, settings, the run directory) before any compilation.
    from jaxrl.runner import resolve

    resolve(args.algorithm, args.env, overrides=overrides, env_overrides=env_overrides)
    path = rundir.prepare(out, args.overwrite)
    result = train(
        args.algorithm,
        args.env,
        overrides=overrides,
        env_overrides=env_overrides,
        seed=args.seed,
        num_seeds=args.seeds,
        log_every=args.log_every,
        progress=not args.quiet,
    )
    rundir.write(result, path)
    steps = int(result.steps[-1]) if len(result.steps) else 0
    print(
        f"{result.algorithm} on {result.env_name}: {summary_line(result.final_returns)} "
        f"({steps:,} steps per seed, {result.wall_time:.1f} s incl. {result.compile_time:.1f} s compile) -> {path}"
    )
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
        return _cmd_train(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as error:  # noqa: BLE001 - bad input classes are known; anything else is a bug
        from envs import UnknownEnvironmentError
        from jaxrl.algorithms import ConfigError

        if isinstance(error, (ConfigError, UnknownEnvironmentError)):
            print(f"error: {error}", file=sys.stderr)
            return EXIT_BAD_INPUT
        raise


if __name__ == "__main__":
    sys.exit(main())
