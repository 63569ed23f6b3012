"""``jaxrl eval``: a trained run's deterministic policies, on fresh episodes or on a file of levels."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    evaluate = sub.add_parser("eval", help="evaluate a trained run's deterministic policies", description=(
        "Run the deterministic (greedy / mean) policy of every seed of RUN_DIR's newest checkpoint for "
        "--episodes episodes, print the mean return with a 95% bootstrap interval and write RUN_DIR/eval.json."
    ))
    evaluate.add_argument("run_dir", help="a run directory written by `jaxrl train`")
    evaluate.add_argument("--episodes", type=int, default=100, help="episodes per seed (default 100)")
    evaluate.add_argument("--seed", type=int, default=0, help="evaluation seed (default 0)")
    evaluate.add_argument("--max-steps", type=int, default=None, help="stop episodes after this many steps (default 100000)")
    evaluate.add_argument("--render", action="store_true", help="also write RUN_DIR/episode.gif of one episode of seed 0")
    evaluate.add_argument("--adversary", metavar="none|trained|RUN_DIR", default=None, help=(
        "rarl and qarl runs: evaluate the protagonist alone (none, the default), against the run's trained "
        "adversary, or against the adversary of another rarl/qarl run"))
    evaluate.add_argument("--levels", metavar="FILE", default=None, help=(
        "instead, play every level in FILE once per seed (mazes as text separated by blank lines): solve rate and "
        "return, with the worst 10%% of levels, written to RUN_DIR/eval_levels.json"))


def run_command(args: argparse.Namespace) -> int:
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
    params, against = None, ""
    if args.adversary is not None:
        from jaxrl.analysis.robustness import with_adversary

        params, against = with_adversary(run, args.adversary)
    report = evaluate_loaded(run, args.episodes, seed=args.seed, max_steps=args.max_steps, policy_params=params)
    payload = report.to_json() if not against else {**report.to_json(), "adversary": against}
    _atomic_write(run.path / "eval.json", lambda p: p.write_text(json.dumps(payload, indent=2) + "\n"))
    low, high = report.ci95
    seeds = report.returns.shape[0]
    print(
        f"{report.algorithm} on {report.env_name} at {report.checkpoint_env_steps:,} steps: mean return "
        f"{report.mean_return:.1f} (95% CI {low:.1f} to {high:.1f}) over {seeds} seed{'s' if seeds > 1 else ''} "
        f"x {report.episodes} episodes{' against ' + against if against else ''} -> {run.path / 'eval.json'}"
    )
    if args.render:
        gif = render_loaded(run, seed=args.seed, max_steps=args.max_steps)
        print(f"one episode of seed 0 -> {gif}")
    return 0


def _eval_levels(run: Any, levels_file: str, seed: int) -> int:
    """`jaxrl eval RUN --levels FILE`."""
    import json

    from jaxrl.cli.common import read_levels_file
    from jaxrl.curricula.evaluation import play_levels, summary
    from jaxrl.driver.rundir import _atomic_write

    levels = read_levels_file(run.train.env, levels_file)
    report = {"levels_file": str(levels_file), "policy": "deterministic", "eval_seed": seed,
              **summary(*play_levels(run.train, run.policy_params(), levels, seed=seed))}
    _atomic_write(run.path / "eval_levels.json", lambda p: p.write_text(json.dumps(report, indent=2) + "\n"))
    print(f"{run.algorithm.name} on {report['levels']} levels of {levels_file}: solve rate {report['solve_rate']:.2f} "
          f"(worst 10% {report['solve_rate_cvar10']:.2f}), mean return {report['mean_return']:.3f} -> {run.path / 'eval_levels.json'}")
    return 0
