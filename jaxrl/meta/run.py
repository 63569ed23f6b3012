"""The host driver of meta-training: generations of ``MetaProgram`` (one compiled program), a
progress bar with the best and mean fitness, ``meta.csv`` and ``fitness.png``, Orbax checkpoints
of the whole meta state every ``checkpoint_every`` generations, and an exact resume.

Layout of a meta-training directory::

    config.json     # what was meta-trained and how (kind "meta-train"), written at the end
    meta.csv        # one row per generation: fitness statistics, env steps, wall time
    fitness.png     # fitness over generations
    checkpoints/<generation>/   # the strategy's state and key (jaxrl.driver.checkpoint)
    objective/<generation>/     # the search distribution's mean: the learned weights

``jaxrl train lpo --objective DIR`` (``load_objective(DIR)``) trains with a learned objective's
weights, ``jaxrl train ppo --optimizer learned:DIR`` (``load_optimizer(DIR)``) with a learned
optimizer's (``field="optimizer_params"``: ``jaxrl meta-train optimizer``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import jax
import numpy as np

import envs
from jaxrl.core.contract import canonical_name
from jaxrl.core.distributions import is_distribution
from jaxrl.core.environments import plain_overrides, task_distribution
from jaxrl.core.train import DEFAULT_FINAL_FRACTION, build
from jaxrl.core.values import ConfigError
from jaxrl.driver import rundir
from jaxrl.driver.checkpoint import CheckpointError, CheckpointStore
from jaxrl.driver.loggers import ProgressBar
from jaxrl.driver.resume import progress_metadata, resume_from, write_table
from jaxrl.driver.spec import arrays_spec, arrays_template, canonical_metadata, config_dict, json_normal
from jaxrl.meta.engine import MetaProgram, learned_field
from jaxrl.meta.es import make_strategy

META_FORMAT = "jaxrl-meta/1"
CHECKPOINTS, OBJECTIVE = "checkpoints", "objective"
COLUMNS = ("generation", "env_steps", "wall_time")
NOISE_COLUMNS = ("fitness_noise_std", "mean_fitness_repeated", "mean_fitness_ci_low", "mean_fitness_ci_high")


@dataclass
class MetaResult:
    path: Path
    rows: dict[str, np.ndarray]  # column -> [generations]
    objective: Any  # the search distribution's mean (the learned weights)
    wall_time: float
    compile_time: float

    def dataframe(self):
        import pandas as pd

        return pd.DataFrame(self.rows)


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def build_program(
    algorithm: str,
    env: str,
    *,
    strategy: str = "open_es",
    population: int = 32,
    sigma: float = 0.03,
    lr: float | None = None,
    seeds: int = 1,
    tasks: int = 1,
    inner_steps: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    env_overrides: Mapping[str, Any] | None = None,
    fitness: str = "final_return",
    eval_episodes: int = 10,
    normalise: bool = False,
    track_mean: bool = True,
    field: str = "objective_params",
    final_fraction: float = DEFAULT_FINAL_FRACTION,
    noise_repeats: int = 8,
    log_space: bool = False,
) -> tuple[MetaProgram, dict[str, Any]]:
    """The meta program and its JSON description. Environment settings with a distribution are
    the task distribution: each of a generation's ``tasks`` draws is one inner run's fixed
    parameters (not redrawn every episode, as they are in ``jaxrl train``). ``env`` may name
    several environments, comma-separated: each after the first is one more task, with its
    default parameters (``env_overrides`` apply to the first) and the same agent settings.
    With ``fitness="final_return"`` a member's score is the mean return of the episodes that ended
    in the last ``final_fraction`` of each inner run's updates."""
    overrides = dict(overrides or {})
    if inner_steps is not None:
        overrides["total_steps"] = _check_int("inner_steps", inner_steps, 1)
    env_overrides = dict(env_overrides or {})
    first, *others = [name.strip() for name in env.split(",")]
    _, _, sample_task = task_distribution(first, env_overrides)
    fixed = {k: v for k, v in env_overrides.items() if not (callable(v) or is_distribution(v))}
    train = build(algorithm, first, overrides=overrides, env_overrides=fixed, final_fraction=final_fraction)
    other_trains = tuple(build(algorithm, name, overrides=overrides, final_fraction=final_fraction) for name in others)
    template = learned_field(train, field)
    es = make_strategy(strategy, template, population=population, sigma=sigma, lr=lr)
    program = MetaProgram(train, es, field, num_seeds=seeds, num_tasks=tasks, sample_task=sample_task,
                          fitness=fitness, eval_episodes=eval_episodes, normalise=normalise, track_mean=track_mean,
                          other_envs=other_trains, noise_repeats=noise_repeats, log_space=log_space)
    spec = json_normal({
        "format": META_FORMAT,
        "kind": "meta-train",
        "algorithm": train.algorithm.name,
        "env": env,
        "env_overrides": plain_overrides(first, env_overrides),
        **config_dict(train.config, train.hparams),
        "field": field,
        "strategy": strategy,
        "population": population,
        "sigma": sigma,
        "lr": es.lr,
        "seeds": seeds,
        "tasks": tasks,
        "fitness": fitness,
        "final_fraction": train.final_fraction,
        "noise_repeats": noise_repeats,
        "log_space": log_space,
        "eval_episodes": eval_episodes,
        "normalise": normalise,
        "track_mean": track_mean,
        "inner_env_steps": train.total_env_steps,
        "observation_shape": [list(envs.observation_shape(t.env, t.default_env_params)) for t in (train, *other_trains)],
        "objective": arrays_spec(jax.tree.map(np.asarray, template)),
    })
    return program, spec


def meta_train(
    algorithm: str,
    env: str,
    out: str | Path,
    *,
    generations: int = 100,
    seed: int = 0,
    checkpoint_every: int = 10,
    keep_checkpoints: int = 2,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    noise_every: int = 5,
    **settings: Any,
) -> MetaResult:
    """Meta-trains ``algorithm``'s learned weights on ``env`` for ``generations`` generations into
    the directory ``out`` (``settings``: those of ``build_program``). ``resume=True`` continues
    the run in ``out`` from its newest checkpoint; the settings must be the original ones.

    Every ``noise_every`` generations (and at the last; 0: never), before the generation, the search
    mean is re-evaluated ``noise_repeats`` times on fresh seeds: ``meta.csv``'s
    ``fitness_noise_std`` (one member's fitness spread) beside ``fitness_population_std`` (the
    population's, every generation). Where the first is as large as the second the strategy is
    ranking noise: give members more seeds or a fitness with more episodes."""
    generations = _check_int("generations", generations, 1)
    noise_every = _check_int("noise_every", noise_every, 0)
    checkpoint_every = _check_int("checkpoint_every", checkpoint_every, 0)
    keep_checkpoints = _check_int("keep_checkpoints", keep_checkpoints, 1)
    program, spec = build_program(algorithm, env, **settings)
    spec = {**spec, "seed": int(seed), "generations": generations, "noise_every": noise_every}
    path = Path(out).expanduser().resolve()
    state = program.init(jax.random.key(seed))
    rows: dict[str, list[float]] = {}
    done, wall_before = 0, 0.0
    if resume:
        # Read and checked through a read-only store first: a refused resume changes nothing.
        if not (path / CHECKPOINTS).is_dir() or not (path / OBJECTIVE).is_dir():
            raise CheckpointError(f"{path} is not a meta-training directory with checkpoints to resume")
        state, rows, done, wall_before = resume_from(
            path / CHECKPOINTS, state, spec, count_key="generations_done", total=generations, unit="generations",
            saved_spec=lambda saved: dict(canonical_metadata(saved), generations=generations))
    else:
        path = rundir.prepare(path, overwrite)
    store = CheckpointStore(path / CHECKPOINTS, keep=keep_checkpoints, writable=True)
    objectives = CheckpointStore(path / OBJECTIVE, keep=1, writable=True)
    steps_per_generation = program.runs_per_generation * program.train.total_env_steps
    what = f"{spec['config']['optimizer']} for {spec['algorithm']}" if spec["field"] == "optimizer_params" else spec["algorithm"]
    bar = ProgressBar(generations * steps_per_generation, f"meta-train {what} on {env}", done * steps_per_generation) if progress else None
    start = time.perf_counter()
    compile_time = 0.0

    def save(generations_done: int) -> None:
        store.save(generations_done, state, progress_metadata(spec, "generations_done", generations_done,
                                                              wall_before + time.perf_counter() - start, rows))
        mean = jax.tree.map(np.asarray, program.strategy.mean(state.es))
        objectives.save(generations_done, mean, {"spec": spec, "generation": generations_done, "objective": arrays_spec(mean)})
        write_table(path, rows, ("generation", "env_steps"))

    try:
        for generation in range(done, generations):
            tick = time.perf_counter()
            measure = noise_every and (generation % noise_every == 0 or generation + 1 == generations)
            # Measured before the generation (which takes the state): the mean it evaluates.
            noise = {}
            if noise_every:
                noise = jax.device_get(program.noise(state)) if measure else dict.fromkeys(NOISE_COLUMNS, np.nan)
            state, row = program.generation(state)
            row = {k: float(v) for k, v in {**jax.device_get(row), **noise}.items()}
            if generation == done:
                compile_time = time.perf_counter() - tick  # the first generation compiles
            for name, value in {"generation": generation + 1, "env_steps": (generation + 1) * steps_per_generation,
                                "wall_time": wall_before + time.perf_counter() - start, **row}.items():
                rows.setdefault(name, []).append(value)
            if bar is not None:
                bar.bar.set_postfix(best=f"{row['fitness_best']:.1f}", mean=f"{row['fitness_mean']:.1f}")
                bar.show((generation + 1) * steps_per_generation)
            if generation + 1 == generations or checkpoint_every and (generation + 1) % checkpoint_every == 0:
                save(generation + 1)
        store.wait()
        objectives.wait()
    finally:
        if bar is not None:
            bar.close()
        store.close()
        objectives.close()
    write_table(path, rows, ("generation", "env_steps"))
    _plot(path, rows, f"{spec['strategy']}: {what} on {env}")
    rundir._atomic_write(path / "config.json", lambda p: p.write_text(_json(spec) + "\n"))
    return MetaResult(path, {k: np.asarray(v) for k, v in rows.items()}, program.strategy.mean(state.es),
                      wall_before + time.perf_counter() - start, compile_time)


def _json(value: Any) -> str:
    import json

    return json.dumps(value, indent=2)


def _plot(path: Path, rows: Mapping[str, list[float]], title: str) -> None:
    """Fitness over generations: the population's range and mean, the search mean's fitness with
    a 95% band from its re-evaluations; below, the population's spread against one member's."""
    import matplotlib.pyplot as plt

    generation = np.asarray(rows["generation"])
    noise = "fitness_noise_std" in rows and np.isfinite(rows["fitness_noise_std"]).any()
    fig, axes = plt.subplots(2 if noise else 1, 1, figsize=(6, 6 if noise else 4), dpi=110, sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": [2, 1]} if noise else None)
    ax = axes[0, 0]
    ax.fill_between(generation, rows["fitness_worst"], rows["fitness_best"], color="tab:blue", alpha=0.2, label="population range")
    ax.plot(generation, rows["fitness_mean"], color="tab:blue", label="population mean")
    if "mean_member_fitness" in rows:
        mean = np.asarray(rows["mean_member_fitness"])
        ax.plot(generation, mean, color="tab:orange", label="search mean")
        if noise:
            # The latest measured spread of one member's fitness, carried forward to each generation.
            std = np.asarray(rows["fitness_noise_std"], float)
            carried = np.maximum.accumulate(np.where(np.isfinite(std), np.arange(len(std)), 0))
            half = 1.96 * std[carried]
            ax.fill_between(generation, mean - half, mean + half, color="tab:orange", alpha=0.2,
                            label="search mean ± 1.96 x re-evaluation std")
    if "baseline_return" in rows:
        ax.axhline(1.0, color="gray", linestyle="--", linewidth=0.8, label="handcrafted rule (= 1)")
    ax.set_ylabel("fitness (return / handcrafted rule's)" if "baseline_return" in rows else "fitness (return)")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    if noise:
        spread = axes[1, 0]
        spread.plot(generation, rows["fitness_population_std"], color="tab:blue", label="population std")
        measured = np.isfinite(rows["fitness_noise_std"])
        spread.plot(generation[measured], np.asarray(rows["fitness_noise_std"])[measured], "o-", color="tab:red",
                    label="one member re-evaluated: std")
        spread.set_ylabel("fitness std")
        spread.legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel("generation")
    fig.tight_layout()
    rundir._atomic_write(path / "fitness.png", lambda p: fig.savefig(p))
    plt.close(fig)


def _load_learned(meta_dir: str | Path, field: str, flag: str) -> tuple[Any, dict[str, Any]]:
    """The newest saved search mean of a meta-training directory that evolved ``field``, as numpy
    arrays, and its spec; ``ConfigError`` (exit 2 in the CLI) for a missing directory or one
    that is not such a run."""
    path = Path(meta_dir).expanduser().resolve()
    if not path.is_dir():
        raise ConfigError(f"{flag}{meta_dir}: no such directory")
    if not (path / OBJECTIVE).is_dir():
        raise ConfigError(f"{flag}{meta_dir}: not a meta-training directory (no {OBJECTIVE}/ in it; "
                          "write one with `jaxrl meta-train`)")
    store = CheckpointStore(path / OBJECTIVE)
    try:
        metadata = store.read_metadata()
        spec = metadata.get("spec", {})
        if spec.get("kind") != "meta-train" or spec.get("field") != field:
            raise ConfigError(f"{flag}{meta_dir}: not a meta-trained {field} (it holds {spec.get('field')})")
        weights, _ = store.restore(arrays_template(metadata.get("objective"), "objective"))
    finally:
        store.close()
    return jax.tree.map(np.asarray, weights), spec


def load_objective(meta_dir: str | Path, *, algorithm: str | None = None) -> tuple[Any, str]:
    """The learned drift of a meta-training directory (``jaxrl meta-train lpo``) and the name of
    the objective it was meta-trained in (``lpo``, ``lpo-zero``...). ``ConfigError`` also for
    weights of another algorithm's rule."""
    weights, spec = _load_learned(meta_dir, "objective_params", "--objective ")
    spec = canonical_metadata(spec)
    if algorithm is not None and spec.get("algorithm") != canonical_name(algorithm):
        # Another algorithm's rule may share the shapes but not the meaning (lpo's drift is
        # added to PPO's; ta-lpo's also reads progress), so it is refused, not reinterpreted.
        raise ConfigError(f"--objective {meta_dir} was meta-trained for {spec.get('algorithm')}, not {algorithm}")
    return weights, spec["config"]["objective"]


def load_optimizer(meta_dir: str | Path) -> tuple[Any, str]:
    """The learned optimizer of a meta-training directory (``jaxrl meta-train optimizer``): its
    weights and its name (``learned_mlp``...), checked against that optimizer's network
    (``ConfigError`` for weights shaped for another)."""
    settings = learned_optimizer_settings(meta_dir)
    return settings["optimizer_params"], settings["optimizer"]


def learned_optimizer_settings(meta_dir: str | Path) -> dict[str, Any]:
    """What ``--optimizer learned:META_DIR`` sets: the optimizer's name, its weights, and ``lr``,
    the step scale its inner runs used (a learned optimizer's updates are -lr times the network's
    output, so its weights were evolved for that scale)."""
    from jaxrl.components.optim import check_optimizer

    weights, spec = _load_learned(meta_dir, "optimizer_params", "--optimizer learned:")
    name = spec["config"]["optimizer"]
    try:
        check_optimizer(name, weights, context=True)
    except ConfigError as error:
        raise ConfigError(f"--optimizer learned:{meta_dir}: {error}") from None
    return {"optimizer": name, "optimizer_params": weights, "lr": float(spec["hparams"]["lr"])}
