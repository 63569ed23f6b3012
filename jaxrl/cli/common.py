"""What the ``jaxrl`` subcommands share: the one-line usage error, ``KEY=VALUE`` lists, the
training options and the training command (``train``, which ``ued`` extends), the run directory a
command writes. Nothing here imports a subcommand's module: the subcommands sit above it."""

from __future__ import annotations

import argparse
from typing import Any, Sequence

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
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
    train.add_argument("--rule", metavar="META_DIR", default=None, help=(
        "with lpg or ta-lpg: train with the update rule a `jaxrl meta-train lpg` (or ta-lpg) run wrote into META_DIR; "
        "with disco: disco103 (after `jaxrl fetch-rule disco103`), disco103:PATH to the published weights, or the "
        "directory a `jaxrl meta-train disco` run wrote"))
    train.add_argument("--optimizer", metavar="NAME|learned:META_DIR", default=None, help=(
        "the optimizer: a name (adam, sgd, rmsprop, learned_mlp, ...; as --set optimizer=NAME) or "
        "learned:META_DIR, the learned optimizer a `jaxrl meta-train optimizer` run wrote into META_DIR, at the lr (step "
        "scale) it was meta-trained at unless --set lr= is given"))
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--no-compile-cache", action="store_true", help=(
        "do not use JAX's persistent compilation cache (also JAXRL_COMPILATION_CACHE=0)"))


def safe_name(text: str) -> str:
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


def read_levels_file(env: Any, path: str) -> Any:
    """The levels in ``path`` (stacked), checked by the environment's reader; ``ConfigError``
    with one line for a missing, malformed or unsolvable file."""
    from jaxrl.core.contract import ConfigError

    if not hasattr(env, "read_levels"):
        raise ConfigError(f"{env.name}'s levels cannot be read from a file")
    try:
        return env.read_levels(path)
    except (ValueError, OSError) as error:
        raise ConfigError(str(error).splitlines()[0]) from None


def rule_overrides(meta_dir: str, algorithm: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The settings ``--rule META_DIR`` stands for: the learned rule's weights and its shape;
    for disco, ``--rule disco103`` (the weights `jaxrl fetch-rule disco103` wrote), ``disco103:PATH``
    or the directory of a `jaxrl meta-train disco` run."""
    from jaxrl.core.contract import ConfigError
    from jaxrl.rules.run import load_rule

    if algorithm == "disco":
        from jaxrl.rules.published import default_path
        from jaxrl.rules.disco import WEIGHT_SHAPES, load_weights
        from jaxrl.rules.disco_agent import to_hparam

        if "rule_params" in overrides:
            raise ConfigError("give the rule's weights by --rule or by --set rule_params, not both")
        name, _, path = meta_dir.partition(":")
        if name != "disco103":
            from pathlib import Path

            if not Path(meta_dir).expanduser().is_dir():
                raise ConfigError(f"disco takes --rule disco103, disco103:PATH or a `jaxrl meta-train disco` directory, "
                                  f"got {meta_dir!r}")
            weights, settings = load_rule(meta_dir)
            if settings["rule"] != "disco":
                raise ConfigError(f"--rule {meta_dir} holds a {settings['rule']} rule; train it with `jaxrl train {settings['rule']}`")
            expected = to_hparam(WEIGHT_SHAPES)
            if {k: tuple(v.shape) for k, v in weights.items()} != expected:
                raise ConfigError(f"--rule {meta_dir}: its weights do not have the shapes of the Disco rule")
            return {"rule_params": weights}
        if not path and not default_path("disco103").exists():
            raise ConfigError(f"no Disco103 weights at {default_path('disco103')}: run `jaxrl fetch-rule disco103`, "
                              "or give --rule disco103:PATH")
        return {"rule_params": to_hparam(load_weights(path or default_path("disco103")))}
    if algorithm not in ("lpg", "ta-lpg"):
        raise ConfigError(f"--rule goes with lpg, ta-lpg or disco, not {algorithm}")
    if "rule_params" in overrides:
        raise ConfigError("give the learned rule by --rule or by --set rule_params, not both")
    weights, settings = load_rule(meta_dir)
    if settings["rule"] != algorithm:
        raise ConfigError(f"--rule {meta_dir} holds a {settings['rule']} rule; train it with `jaxrl train {settings['rule']}`")
    for name, value in settings.items():
        if name in overrides and str(overrides[name]) != str(value):
            raise ConfigError(f"--rule {meta_dir} was meta-trained with {name}={value}, not {overrides[name]}")
    return {**{k: str(v) for k, v in settings.items()}, "rule_params": weights}


def run_train(args: argparse.Namespace, extra_overrides: dict[str, Any] | None = None, after: Any = None) -> int:
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
    if getattr(args, "rule", None) is not None:
        overrides.update(rule_overrides(args.rule, args.algorithm, overrides))
    if args.seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {args.seeds}")
    if args.log_every is not None and args.log_every < 1:
        raise ConfigError(f"--log-every must be >= 1, got {args.log_every}")
    if args.checkpoint_every is not None and args.checkpoint_every < 0:
        raise ConfigError(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
    if args.keep_checkpoints < 1:
        raise ConfigError(f"--keep-checkpoints must be >= 1, got {args.keep_checkpoints}")
    out = output_dir(args, f"{safe_name(args.algorithm)}-{safe_name(args.env.replace('/', '_'))}")
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
