"""``jaxrl ued``: curricula on environments with levels, through the one training driver.

    jaxrl ued plr --env maze --seeds 4 --total-steps 2000000 --out runs/u
    jaxrl ued accel --env maze --set replay_prob=0.9 --set num_edits=3 --out runs/a
    jaxrl ued dr --env maze --levels my_mazes.txt --out runs/fixed     # train on a fixed set
    jaxrl eval runs/u --levels holdouts.txt                             # solve rate on levels

It takes `jaxrl train`'s options (checkpoints with the level buffer, ``--resume``); after
training it evaluates every seed on the environment's holdout levels (the kit's own layouts) and
on random solvable levels, greedy (one episode a level) and sampled (10 attempts a level), writes
``ued_eval.json``, and pictures of the buffer's highest-scoring levels
(``buffer_levels.png``) and of one episode (``episode.gif``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from jaxrl.cli.common import add_train_arguments, read_levels_file, run_train
from jaxrl.core.contract import ConfigError


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("ued", help="train with a curriculum (dr, plr, robust-plr, accel, sfl, paired)", description=(
        "Train recurrent PPO with CURRICULUM choosing the levels of every update inside the compiled program "
        "(the level buffer is part of the run state). Settings such as replay_prob, temperature, staleness, "
        "buffer_size, score (pvl|l1|maxmc), prioritization (rank|topk), num_edits, sfl_levels / sfl_batch / "
        "sfl_rollout / sfl_buffer / sfl_refresh, eval_attempts and agent (kit|jaxued) are given with --set; "
        "--env-set n_walls=N is an upper bound (JaxUED's generator), exact_walls=1 places exactly N."))
    parser.add_argument("curriculum", help="dr | plr | robust-plr | accel | sfl | paired")
    add_train_arguments(parser)
    parser.add_argument("--levels", metavar="FILE", default=None, help=(
        "train on the fixed set of levels in FILE (mazes as text separated by blank lines) instead of the generator"))
    parser.add_argument("--eval-levels", type=int, default=1000, metavar="N", help=(
        "random solvable levels to evaluate on after training (default 1000; 0: none)"))


def run_command(args: argparse.Namespace) -> int:
    from jaxrl.core.environments import make_env
    from jaxrl.curricula.curriculum import CURRICULA

    if args.curriculum not in CURRICULA:
        raise ConfigError(f"unknown curriculum {args.curriculum!r}; choose one of {', '.join(CURRICULA)}")
    if args.eval_levels < 0:
        raise ConfigError(f"--eval-levels must be >= 0, got {args.eval_levels}")
    if args.objective is not None:
        raise ConfigError("--objective is not supported by curricula")
    extra = {}
    if args.levels is not None:
        env, _ = make_env(args.env, None)
        levels = read_levels_file(env, args.levels)
        extra["train_levels"] = env.levels_to_text(levels)
    args.algorithm = args.curriculum
    return run_train(args, extra, after=lambda result, path: after_training(result, path, args.eval_levels, args.seed))


def after_training(result: Any, path: Path, random_levels: int, seed: int) -> None:
    """Evaluation and pictures of a finished curriculum run."""
    from jaxrl.curricula.evaluation import level_report
    from jaxrl.driver.rundir import _atomic_write

    train, env = result.train, result.train.env
    params = train.policy_params(result.state)
    named = env.holdout_levels() if hasattr(env, "holdout_levels") else None
    report = level_report(train, params, named=named, random_levels=random_levels if hasattr(env, "solvable") else 0, seed=seed)
    _atomic_write(path / "ued_eval.json", lambda p: p.write_text(json.dumps(report, indent=2) + "\n"))
    parts = [f"{k.replace('_', ' ')}: greedy solve rate {v['solve_rate']:.2f} (worst 10% {v['solve_rate_cvar10']:.2f}), "
             f"sampled {v['sampled']['solve_rate']:.2f}" for k, v in report.items() if isinstance(v, dict)]
    print(("; ".join(parts) or "no level evaluation for this environment") + f" -> {path / 'ued_eval.json'}")
    if env.name == "maze":
        from jaxrl.curricula.pictures import buffer_picture, episode_gif, first_seed

        pictures = []
        if int(result.state.buffer.filled[0].sum()) > 1:  # DR keeps no buffer
            buffer_picture(path / "buffer_levels.png", first_seed(result.state.buffer))
            pictures.append(f"{path / 'buffer_levels.png'} (the buffer's best levels)")
        name, level = next(iter(named.items()))
        episode_gif(path / "episode.gif", train, first_seed(params), level, seed)
        pictures.append(f"{path / 'episode.gif'} (seed 0 on {name})")
        print("pictures: " + ", ".join(pictures))
