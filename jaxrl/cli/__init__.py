"""The ``jaxrl`` command: ``train``, ``eval``, ``sweep``, ``meta-train``, ``ued``, ``fetch-rule``, ``list``. Bad input
ends with one line on stderr and exit code 2, never a traceback, and never touches an existing run.

A package in layers: ``common`` (the shared helpers) at the bottom, one module per subcommand
above it (``evaluate``, ``sweep``, ``meta``, ``ued``, ``fetch``), and this module, which registers them and
dispatches, on top. No module imports one above it. The heavy libraries load only when a command
runs (a newcomer's first command: experiments/bench/startup.py).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import Sequence

from jaxrl.cli.common import EXIT_BAD_INPUT, Parser, UsageError, add_train_arguments, key_values, run_train

__all__ = ["EXIT_BAD_INPUT", "UsageError", "build_parser", "entry", "key_values", "main"]


def build_parser() -> Parser:
    from jaxrl.cli import evaluate, fetch, meta, sweep, ued

    parser = Parser(
        prog="jaxrl",
        description="JAX-native reinforcement learning: whole training runs compiled into one XLA program.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    train = sub.add_parser("train", help="train an agent on an environment over several seeds", description=(
        "Train ALGORITHM on --env, all seeds vmapped in one compiled program. Writes config.json, "
        "metrics.csv and curve.png into --out, and checkpoints of the whole run state into "
        "--out/checkpoints, from which --resume continues a run that was stopped."
    ))
    train.add_argument("algorithm", help="algorithm name (see `jaxrl list`)")
    add_train_arguments(train)
    for module in (evaluate, sweep, meta, ued, fetch):
        module.add_parser(sub)
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
        print(f"{suite.prefix} environments ({status}; the fastest first):")
        if suite.cpu_cost:
            print(f"  # on a 2-core CPU: {suite.cpu_cost}")
        if suite.unavailable:
            print(f"  # {suite.unavailable}")
        for name in suites.names(suite):
            print(f"  {suite.prefix}/{name}")
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
            from jaxrl.cli import evaluate

            return evaluate.run_command(args)
        if getattr(args, "no_compile_cache", False):
            from jaxrl import _platform

            _platform.disable_compilation_cache()
        if args.command in ("sweep", "meta-train", "ued", "fetch-rule"):
            from jaxrl.cli import fetch, meta, sweep, ued

            return {"sweep": sweep, "meta-train": meta, "ued": ued, "fetch-rule": fetch}[args.command].run_command(args)
        return run_train(args)
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
