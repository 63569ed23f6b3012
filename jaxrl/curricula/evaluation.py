"""Evaluating a policy on levels: the named holdout mazes (the kit's own layouts, named after
the literature's), a ``--levels`` file, and a large sample of random solvable levels (mean and the
worst 10%: the conditional value at risk), for every seed of a run, two ways:

* greedy: the deterministic policy plays each level once (the maze is deterministic, so once is
  that policy's result; a greedy recurrent policy may loop forever);
* sampled, as JaxUED and the papers report: the stochastic policy plays each level ``attempts``
  times (default 10) and a level's solve rate is the fraction of attempts solved.

A level counts as solved when the episode ends with a positive return (the maze rewards only
reaching the goal)."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from envs.levels import stack_levels as stack
from jaxrl.analysis.evaluation import episode_program, episodes, eval_keys, recurrent_act
from jaxrl.core.contract import ConfigError

# The random levels evaluated during training come from this fixed key: every evaluation, and
# every seed, plays the same levels, so that a curve shows the policy changing, not the sample.
EVAL_LEVELS_SEED = 0
ATTEMPTS = 10  # sampled-action episodes per level (JaxUED's and SFL's EVAL_NUM_ATTEMPTS)
HOLDOUT_LABEL = "the kit's own holdout layouts (envs/maze/holdouts.py), named after the literature's; not its exact mazes"


def repeat_levels(levels: Any, attempts: int) -> Any:
    """``levels`` (leaves [n, ...]) ``attempts`` times over: attempt a of level i at a * n + i."""
    return jax.tree.map(lambda x: jnp.concatenate([x] * attempts), levels)


def play_levels(train: Any, policy_params: Any, levels: Any, *, seed: int = 0, max_steps: int | None = None,
                attempts: int = 1, deterministic: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(returns, solved), each [seeds, num_levels]: ``attempts`` episodes per level for each seed
    of ``policy_params`` (leading seed axis), by the deterministic or the sampling policy; with
    several attempts, the mean return and the fraction of attempts solved."""
    count = jax.tree.leaves(levels)[0].shape[0]
    seeds = jax.tree.leaves(policy_params)[0].shape[0]
    horizon = max_steps or int(getattr(train.default_env_params, "max_steps_in_episode", 1000))
    act, memory = recurrent_act(train, deterministic)
    tiled = repeat_levels(levels, attempts)
    program = episode_program(train.env, train.default_env_params, act, count * attempts, horizon, memory, tiled)
    returns, _, _ = jax.device_get(program(policy_params, eval_keys(seed, seeds)))
    returns = np.asarray(returns).reshape(seeds, attempts, count)
    return returns.mean(axis=1), (returns > 0).mean(axis=1)


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
                 levels: Any = None, random_levels: int = 0, seed: int = 0, attempts: int = ATTEMPTS) -> dict[str, Any]:
    """The evaluation ``jaxrl ued`` writes (``ued_eval.json``): per named level (holdouts), on
    ``levels`` (a file's), and on ``random_levels`` random solvable ones; each set's top-level
    figures are the greedy policy's (one episode a level), and its ``sampled`` entry the sampling
    policy's over ``attempts`` episodes a level (0: none)."""
    report: dict[str, Any] = {"policy": "greedy: deterministic, one episode a level; sampled: stochastic, "
                                        f"{attempts} episodes a level", "attempts": attempts, "eval_seed": seed}

    def both(level_set):
        greedy = play_levels(train, policy_params, level_set, seed=seed)
        sampled = play_levels(train, policy_params, level_set, seed=seed, attempts=attempts, deterministic=False) if attempts else None
        return greedy, sampled

    if named:
        names = list(named)
        (returns, solved), sampled = both(stack([named[n] for n in names]))
        report["holdout"] = {
            "layouts": HOLDOUT_LABEL,
            "per_level": {n: {"solve_rate": float(solved[:, i].mean()), "mean_return": float(returns[:, i].mean()),
                              "per_seed_return": [float(r) for r in returns[:, i]],
                              **({"sampled_solve_rate": float(sampled[1][:, i].mean())} if sampled else {})}
                          for i, n in enumerate(names)},
            **summary(returns, solved),
            **({"sampled": summary(*sampled)} if sampled else {}),
        }
    sets = {}
    if levels is not None:
        sets["levels_file"] = levels
    if random_levels:
        sets["random_solvable"] = random_solvable_levels(train.env, train.default_env_params, random_levels, seed)
    for name, level_set in sets.items():
        greedy, sampled = both(level_set)
        report[name] = {**summary(*greedy), **({"sampled": summary(*sampled)} if sampled else {})}
    return report


def training_evaluation(config: Any, env: Any, act: Callable, initial_memory: Callable | None) -> Callable | None:
    """``evaluate(policy_params, env_params, step, key) -> metrics`` for inside a curriculum's
    update, or None when ``config.eval_every`` is 0. Every ``eval_every`` updates the
    deterministic policy plays once:
    - each of the environment's holdout levels: ``holdout_solve_rate``, ``holdout_return``;
    - ``config.eval_random`` levels of its generator, drawn with ``EVAL_LEVELS_SEED`` and the
      run's parameters, of which those its solver finds unsolvable are left out:
      ``random_solve_rate``, ``random_return`` and ``random_return_cvar10`` (the mean return of
      the worst 10% of them).
    and with ``config.eval_attempts`` > 0 the sampling policy plays each of those levels that many
    times: ``holdout_sampled_solve_rate`` and ``random_sampled_solve_rate`` (fractions of attempts).
    Each is a ``_sum``/``_count`` pair, so a logging window without an evaluation logs NaN."""
    if not config.eval_every:
        return None
    named = env.holdout_levels() if hasattr(env, "holdout_levels") else {}
    if config.eval_random and not hasattr(env, "level_solvable"):
        raise ConfigError(f"eval_random needs a level solver that runs inside the program, and {env.name} has none")
    if not named and not config.eval_random:
        raise ConfigError(f"eval_every needs holdout levels or eval_random > 0, and {env.name} has no holdout levels")
    horizon = int(env.default_params.max_steps_in_episode)
    greedy = lambda p, obs, k, m: act(p, obs, k, True, m)  # noqa: E731
    holdouts = stack(list(named.values())) if named else None
    play_named = episodes(env, greedy, len(named), horizon, initial_memory) if named else None
    play_random = episodes(env, greedy, config.eval_random, horizon, initial_memory) if config.eval_random else None
    attempts = config.eval_attempts
    sampling = lambda p, obs, k, m: act(p, obs, k, False, m)  # noqa: E731
    sampled_named = episodes(env, sampling, len(named) * attempts, horizon, initial_memory) if named and attempts else None
    sampled_random = (episodes(env, sampling, config.eval_random * attempts, horizon, initial_memory)
                      if config.eval_random and attempts else None)

    def run(policy_params, params, key):
        named_key, random_key, named_sample_key, random_sample_key = jax.random.split(key, 4)
        out = {}
        if named:
            returns, _, _ = play_named(policy_params, named_key, params, holdouts)
            out.update(holdout_solved=(returns > 0).sum().astype(jnp.float32), holdout_return=returns.sum())
        if sampled_named is not None:
            returns, _, _ = sampled_named(policy_params, named_sample_key, params, repeat_levels(holdouts, attempts))
            out["holdout_sampled"] = (returns > 0).sum().astype(jnp.float32)
        if config.eval_random:
            level_keys = jax.random.split(jax.random.key(EVAL_LEVELS_SEED), config.eval_random)
            levels = jax.vmap(env.sample_level, in_axes=(0, None))(level_keys, params)
            solvable = jax.vmap(env.level_solvable)(levels)
            returns, _, _ = play_random(policy_params, random_key, params, levels)
            count = solvable.sum()
            ordered = jnp.sort(jnp.where(solvable, returns, jnp.inf))
            tail = jnp.maximum(1, (count + 9) // 10)  # ceil(count / 10) in integers, as cvar()'s
            cvar10 = jnp.where(jnp.arange(config.eval_random) < tail, ordered, 0.0).sum() / tail
            out.update(random_solved=((returns > 0) & solvable).sum().astype(jnp.float32),
                       random_return=jnp.where(solvable, returns, 0.0).sum(),
                       random_count=count.astype(jnp.float32),
                       random_cvar10=jnp.where(count > 0, cvar10, 0.0))
            if sampled_random is not None:
                returns, _, _ = sampled_random(policy_params, random_sample_key, params, repeat_levels(levels, attempts))
                out["random_sampled"] = ((returns > 0) & jnp.tile(solvable, attempts)).sum().astype(jnp.float32)
        return out

    def evaluate(policy_params, params, step, key):
        due = step % config.eval_every == 0
        shapes = jax.eval_shape(run, policy_params, params, key)
        out = jax.lax.cond(due, run, lambda *_: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes),
                           policy_params, params, key)
        metrics = {}
        if named:
            count = jnp.where(due, float(len(named)), 0.0)
            metrics.update(holdout_solve_rate_sum=out["holdout_solved"], holdout_solve_rate_count=count,
                           holdout_return_sum=out["holdout_return"], holdout_return_count=count)
            if attempts:
                metrics.update(holdout_sampled_solve_rate_sum=out["holdout_sampled"],
                               holdout_sampled_solve_rate_count=count * attempts)
        if config.eval_random:
            metrics.update(random_solve_rate_sum=out["random_solved"], random_solve_rate_count=out["random_count"],
                           random_return_sum=out["random_return"], random_return_count=out["random_count"],
                           random_return_cvar10_sum=out["random_cvar10"],
                           random_return_cvar10_count=(out["random_count"] > 0).astype(jnp.float32))
            if attempts:
                metrics.update(random_sampled_solve_rate_sum=out["random_sampled"],
                               random_sampled_solve_rate_count=out["random_count"] * attempts)
        return metrics

    return evaluate
