"""``jaxrl ued``: curricula on environments with levels, through the one training driver.

    jaxrl ued plr --env maze --seeds 4 --total-steps 2000000 --out runs/u
    jaxrl ued accel --env maze --set replay_prob=0.9 --set num_edits=3 --out runs/a
    jaxrl ued dr --env maze --levels my_mazes.txt --out runs/fixed     # train on a fixed set
    jaxrl eval runs/u --levels holdouts.txt                             # solve rate on levels
    jaxrl ued alp-gmm --env CartPole-v1 --task-space gravity=2:200 --task-space force_mag=0.5:30 --seeds 10 --out runs/c
    jaxrl ued again --env CartPole-v1 --task-space gravity=2:200 --task-space force_mag=0.5:30 --classroom runs/c

It takes `jaxrl train`'s options (checkpoints with the level buffer, ``--resume``); after
training it evaluates every seed on the environment's holdout levels (the kit's own layouts) and
on random solvable levels, greedy (one episode a level) and sampled (10 attempts a level), writes
``ued_eval.json``, and pictures of the buffer's highest-scoring levels
(``buffer_levels.png``) and of one episode (``episode.gif``). With a continuous ``--task-space``
(``alp-gmm``, ``again``, ``dr``) it writes ``task_eval.json`` (the share of held-out tasks each seed
masters) and, for ``alp-gmm``, the classroom its seeds form (``classroom.npz``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from jaxrl.cli.common import add_train_arguments, read_levels_file, run_train
from jaxrl.core.contract import ConfigError

TASK_CURRICULA = ("alp-gmm", "again")
CLASSROOM_SEED_OFFSET = 1000  # --classroom-size: the classroom's base seed is --seed + this


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("ued", help="train with a curriculum (dr, plr, robust-plr, accel, sfl, paired, alp-gmm, again)", description=(
        "Train recurrent PPO with CURRICULUM choosing the levels of every update inside the compiled program "
        "(the level buffer is part of the run state). Settings such as replay_prob, temperature, staleness, "
        "buffer_size, score (pvl|l1|maxmc), prioritization (rank|topk), num_edits, sfl_levels / sfl_batch / "
        "sfl_rollout / sfl_buffer / sfl_refresh, eval_attempts and agent (kit|jaxued) are given with --set; "
        "--env-set n_walls=N is an upper bound (JaxUED's generator), exact_walls=1 places exactly N. "
        "alp-gmm and again choose every episode's task in a continuous --task-space over the environment's "
        "parameters (dr with --task-space: uniform tasks); --env-set observe_task=1 shows the task to the agent."))
    parser.add_argument("curriculum", help="dr | plr | robust-plr | accel | sfl | paired | alp-gmm | again")
    add_train_arguments(parser)
    parser.add_argument("--levels", metavar="FILE", default=None, help=(
        "train on the fixed set of levels in FILE (mazes as text separated by blank lines) instead of the generator"))
    parser.add_argument("--eval-levels", type=int, default=1000, metavar="N", help=(
        "random solvable levels to evaluate on after training (default 1000; 0: none)"))
    parser.add_argument("--task-space", action="append", metavar="NAME=LOW:HIGH", help=(
        "alp-gmm, again, dr: one dimension of the task space, any numeric parameter of the environment (repeatable)"))
    parser.add_argument("--classroom", metavar="DIR", default=None, help=(
        "again: the alp-gmm run whose seeds are the classroom (its classroom.npz)"))
    parser.add_argument("--classroom-size", type=int, default=None, metavar="N", help=(
        "again without --classroom: first train a classroom of N ALP-GMM students (one vmapped run, base seed "
        "--seed + 1000) into OUT/classroom; --resume OUT resumes it too if it was cut short"))


def run_command(args: argparse.Namespace) -> int:
    from jaxrl.core.environments import make_env
    from jaxrl.curricula.curriculum import CURRICULA

    if args.curriculum in TASK_CURRICULA or args.task_space:
        return run_task_curriculum(args)
    if args.classroom is not None or args.classroom_size is not None:
        raise ConfigError("--classroom and --classroom-size go with again")
    if args.curriculum not in CURRICULA:
        raise ConfigError(f"unknown curriculum {args.curriculum!r}; choose one of {', '.join(CURRICULA + TASK_CURRICULA)}")
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


def run_task_curriculum(args: argparse.Namespace) -> int:
    """`jaxrl ued alp-gmm|again|dr --task-space ...` (``jaxrl.curricula.task_curriculum``)."""
    import copy

    from jaxrl.cli.common import output_dir, safe_name
    from jaxrl.curricula.again import CLASSROOM_FILE

    if args.curriculum not in TASK_CURRICULA + ("dr",):
        raise ConfigError(f"--task-space goes with dr, alp-gmm or again, not {args.curriculum}")
    if not args.task_space:
        raise ConfigError(f"{args.curriculum} needs a task space: --task-space NAME=LOW:HIGH (repeatable)")
    for option in ("levels", "objective"):
        if getattr(args, option) is not None:
            raise ConfigError(f"--{option} does not go with a task space")
    if any(item.partition("=")[0].strip() == "task_space" for item in args.env_set or []):
        raise ConfigError("give the task space with --task-space, not --env-set task_space=")
    args.env_set = [*(args.env_set or []), "task_space=" + ",".join(args.task_space)]
    args.algorithm = "task-dr" if args.curriculum == "dr" else args.curriculum
    extra: dict[str, Any] = {}
    if args.curriculum != "again" and (args.classroom is not None or args.classroom_size is not None):
        raise ConfigError("--classroom and --classroom-size go with again")
    if args.curriculum == "again":
        if args.classroom is not None and args.classroom_size is not None:
            raise ConfigError("give --classroom DIR or --classroom-size N, not both")
        if args.classroom is None and args.classroom_size is None:
            raise ConfigError("again needs a classroom: --classroom DIR (an alp-gmm run) or --classroom-size N")
        if args.classroom is not None:
            classroom = Path(args.classroom).expanduser().resolve()
        else:
            if args.classroom_size < 1:
                raise ConfigError(f"--classroom-size must be >= 1, got {args.classroom_size}")
            out = Path(output_dir(args, f"again-{safe_name(args.env.replace('/', '_'))}")).expanduser().resolve()
            classroom = out / "classroom"
            if args.resume is None and not args.overwrite and (out / "config.json").exists():
                raise ConfigError(f"{out} already holds a run; pass --overwrite to replace it (and its classroom) "
                                  "or choose another --out")
            if args.overwrite or not (classroom / CLASSROOM_FILE).is_file():
                teacher_args = copy.copy(args)
                teacher_args.algorithm, teacher_args.seeds, teacher_args.out = "alp-gmm", args.classroom_size, str(classroom)
                # other seeds than the new students': seed i of both would otherwise be the same run up to the pre-test
                teacher_args.seed = args.seed + CLASSROOM_SEED_OFFSET
                started = (classroom / "config.json").exists() or (classroom / "checkpoints").exists()
                resumable = started and not args.overwrite
                teacher_args.resume = str(classroom) if resumable else None
                teacher_args.set = [item for item in args.set or [] if not item.startswith("classroom=")]
                print(f"training the classroom: {args.classroom_size} ALP-GMM students -> {classroom}")
                run_train(teacher_args, after=after_task_training)
            if args.out is None and args.resume is None:
                args.out = str(out)
        if not (classroom / CLASSROOM_FILE).is_file() and not (classroom.is_file() and classroom.suffix == ".npz"):
            raise ConfigError(f"no classroom at {classroom}: train one with `jaxrl ued alp-gmm --seeds N` (it writes {CLASSROOM_FILE})")
        extra["classroom"] = str(classroom)
    return run_train(args, extra, after=after_task_training)


def after_task_training(result: Any, path: Path) -> None:
    """``task_eval.json`` (the share of held-out tasks each seed masters) and, for alp-gmm, the
    classroom its seeds form (``classroom.npz``)."""
    import numpy as np

    from jaxrl.curricula.again import CLASSROOM_FILE, save_classroom
    from jaxrl.curricula.task_curriculum import normalise, test_task_set
    from jaxrl.driver.rundir import _atomic_write

    config, state = result.train.config, result.state
    final = np.asarray(state.final)
    mastered = (final >= config.mastery_return).mean(axis=1)
    report = {"teacher": config.teacher, "task_space": result.train.env.space.text, "test_tasks": config.test_tasks,
              "test_seed": config.test_seed, "mastery_return": config.mastery_return,
              "mastered": [float(m) for m in mastered], "mean_return": [float(r) for r in final.mean(axis=1)],
              "mastered_mean": float(mastered.mean()), "test_returns": np.round(final, 2).tolist()}
    if config.teacher == "again":
        report["expert"] = [int(e) for e in np.asarray(state.expert.student)]
    _atomic_write(path / "task_eval.json", lambda p: p.write_text(json.dumps(report, indent=2) + "\n"))
    print(f"held-out tasks mastered (return >= {config.mastery_return:g}, {config.test_tasks} tasks): "
          + ", ".join(f"{m:.2f}" for m in mastered) + f" per seed -> {path / 'task_eval.json'}")
    if config.teacher == "alp-gmm":
        test = np.asarray(test_task_set(result.train.env.space.dim, config.test_tasks, config.test_seed).values)
        save_classroom(path / CLASSROOM_FILE, state.teacher, np.asarray(normalise(config, np.asarray(state.pretest))),
                       np.asarray(normalise(config, final)), result.train.env.space.text, test)
        print(f"classroom of {final.shape[0]} students -> {path / CLASSROOM_FILE}")
