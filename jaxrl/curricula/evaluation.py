"""Evaluating a policy on levels: the named holdout mazes, a ``--levels`` file, and a large
sample of random solvable levels (mean and the worst 10%: the conditional value at risk), for
every seed of a run. Each level is played once per seed by the deterministic policy (the maze is
deterministic, so once is the policy's result there); a level counts as solved when the episode
ends with a positive return (the maze rewards only reaching the goal)."""

from __future__ import annotations

from typing import Any, Mapping

import jax
import numpy as np

from envs.levels import stack_levels as stack
from jaxrl.analysis.evaluation import episode_program, eval_keys, recurrent_act
from jaxrl.core.contract import ConfigError


def play_levels(train: Any, policy_params: Any, levels: Any, *, seed: int = 0, max_steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(returns, solved), each [seeds, num_levels]: one episode per level for each seed of
    ``policy_params`` (leading seed axis)."""
    count = jax.tree.leaves(levels)[0].shape[0]
    seeds = jax.tree.leaves(policy_params)[0].shape[0]
    horizon = max_steps or int(getattr(train.default_env_params, "max_steps_in_episode", 1000))
    act, memory = recurrent_act(train)
    program = episode_program(train.env, train.default_env_params, act, count, horizon, memory, levels)
    returns, _, _ = jax.device_get(program(policy_params, eval_keys(seed, seeds)))
    returns = np.asarray(returns)
    return returns, returns > 0


def random_solvable_levels(env: Any, env_params: Any, count: int, seed: int = 0) -> Any:
    """``count`` levels from the environment's generator that its solver says are solvable."""
    if not hasattr(env, "solvable"):
        raise ConfigError(f"{env.name} has no solver; random solvable levels need one")
    key = jax.random.key(seed)
    chosen: list[Any] = []
    while len(chosen) < count:
        key, draw = jax.random.split(key)
        batch = jax.device_get(jax.vmap(env.sample_level, in_axes=(0, None))(jax.random.split(draw, 2 * count), env_params))
        for i in range(2 * count):
            level = jax.tree.map(lambda x: x[i], batch)
            if env.solvable(level):
                chosen.append(level)
                if len(chosen) == count:
                    break
    return stack(chosen)


def cvar(values: np.ndarray, fraction: float = 0.1) -> float:
    """The mean of the worst ``fraction`` of ``values`` (at least one)."""
    ordered = np.sort(np.asarray(values).reshape(-1))
    return float(ordered[: max(1, int(np.ceil(fraction * ordered.size)))].mean())


def summary(returns: np.ndarray, solved: np.ndarray) -> dict[str, Any]:
    """Solve rate and return, over seeds and levels, and their worst 10% of levels (per-level
    means over seeds)."""
    return {
        "solve_rate": float(solved.mean()),
        "mean_return": float(returns.mean()),
        "solve_rate_cvar10": cvar(solved.mean(axis=0)),
        "return_cvar10": cvar(returns.mean(axis=0)),
        "per_seed_solve_rate": [float(x) for x in solved.mean(axis=1)],
        "levels": int(returns.shape[1]),
    }


def level_report(train: Any, policy_params: Any, *, named: Mapping[str, Any] | None = None,
                 levels: Any = None, random_levels: int = 0, seed: int = 0) -> dict[str, Any]:
    """The evaluation ``jaxrl ued`` writes (``ued_eval.json``): per named level (holdouts), on
    ``levels`` (a file's), and on ``random_levels`` random solvable ones."""
    report: dict[str, Any] = {"policy": "deterministic", "eval_seed": seed}
    if named:
        names = list(named)
        returns, solved = play_levels(train, policy_params, stack([named[n] for n in names]), seed=seed)
        report["holdout"] = {
            "per_level": {n: {"solve_rate": float(solved[:, i].mean()), "mean_return": float(returns[:, i].mean()),
                              "per_seed_return": [float(r) for r in returns[:, i]]}
                          for i, n in enumerate(names)},
            **summary(returns, solved),
        }
    if levels is not None:
        report["levels_file"] = summary(*play_levels(train, policy_params, levels, seed=seed))
    if random_levels:
        sample = random_solvable_levels(train.env, train.default_env_params, random_levels, seed)
        report["random_solvable"] = summary(*play_levels(train, policy_params, sample, seed=seed))
    return report
