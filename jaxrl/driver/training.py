"""``jaxrl.train``: several seeds of one configuration, trained as one program by the host driver,
in memory (``jaxrl.driver.run.train_run`` does the same into a run directory)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import jax
import numpy as np

from jaxrl.core.contract import Algorithm, ConfigError
from jaxrl.core.train import DEFAULT_FINAL_FRACTION, Train, build, final_return
from jaxrl.driver.loggers import MetricsLog, ProgressBar
from jaxrl.driver.runner import RunOutput, default_chunk_windows, execute, programs_for, run_keys


@dataclass
class TrainResult:
    algorithm: str
    env_name: str
    config: Any
    hparams: Any
    seeds: list[int]  # seed indices of the runs
    seed: int  # base seed
    metrics: dict[str, np.ndarray]  # name -> [num_seeds, L]
    steps: np.ndarray  # [L]
    state: Any  # final run states, leading seed axis
    train: Train
    env_overrides: dict[str, Any] = field(default_factory=dict)
    wall_time: float = 0.0
    compile_time: float = 0.0

    @property
    def final_returns(self) -> np.ndarray:
        """Per seed: the mean return of the episodes that ended during the run's final fraction of
        updates (``final_fraction``, default the last 10%; NaN if none did), from the rows."""
        return np.asarray(final_return(self.metrics), np.float64)

    def summary_line(self) -> str:
        """``final return MEAN +- STD over N seeds in the last 10% of training`` (over the seeds
        that finished an episode then)."""
        finite = self.final_returns[np.isfinite(self.final_returns)]
        window = f"the last {100 * self.train.final_fraction:g}% of training"
        if finite.size == 0:
            return f"no episode finished in {window}"
        seeds = f"{finite.size} seed{'s' if finite.size > 1 else ''}"
        return f"final return {finite.mean():.1f} +- {finite.std():.1f} over {seeds} in {window}"

    def dataframe(self):
        """Tidy metrics: one row per seed and logged step."""
        import pandas as pd

        num_seeds, num_logs = self.metrics["episode_return"].shape
        frame = {"step": np.tile(self.steps, num_seeds), "seed": np.repeat(self.seeds, num_logs)}
        order = ["episode_return", "episode_length"] + sorted(
            k for k in self.metrics if k not in ("episode_return", "episode_length")
        )
        for name in order:
            frame[name] = self.metrics[name].reshape(-1)
        return pd.DataFrame(frame)

    def policy(self, seed_index: int = 0):
        """``act(obs, key, deterministic=False)`` of one seed, jitted, normaliser included."""
        params = jax.tree.map(lambda x: x[seed_index], self.train.policy_params(self.state))
        act = self.train.act
        return jax.jit(lambda obs, key, deterministic=False: act(params, obs, key, deterministic), static_argnums=2)


def shared_axes(hparams: Any) -> Any:
    """``vmap`` axes for hyperparameters that every run shares."""
    return jax.tree.map(lambda _: None, hparams)


def run_seeds(
    train_fn: Train,
    *,
    seed: int,
    num_seeds: int,
    chunk_windows: int | None = None,
    on_rows: Callable[[int, dict[str, np.ndarray]], None] | None = None,
    on_chunk: Callable[[Any, int], None] | None = None,
    state: Any = None,
    start_window: int = 0,
    warm_imports: Sequence[str] = (),
) -> RunOutput:
    """``num_seeds`` runs of ``train_fn`` with its default hyperparameters, from ``start_window``
    (with ``state``) or from the start; ``warm_imports`` as for ``execute``."""
    programs = programs_for(train_fn.program, shared_axes(train_fn.default_hparams), chunk_windows or default_chunk_windows(train_fn.num_logs))
    keys = run_keys(seed, np.arange(num_seeds))
    return execute(
        programs, keys, train_fn.default_hparams, train_fn.default_env_params,
        state=state, start_window=start_window, on_rows=on_rows, on_chunk=on_chunk, warm_imports=warm_imports,
    )


def train(
    algorithm: str | Algorithm,
    env: str,
    *,
    config: Any = None,
    hparams: Any = None,
    overrides: dict[str, Any] | None = None,
    env_overrides: dict[str, Any] | None = None,
    seed: int = 0,
    num_seeds: int = 1,
    log_every: int | None = None,
    chunk_windows: int | None = None,
    progress: bool = False,
    state: Any = None,
    start_window: int = 0,
    final_fraction: float = DEFAULT_FINAL_FRACTION,
) -> TrainResult:
    """Trains ``num_seeds`` independent runs of one configuration as one compiled program.

    >>> result = train("ppo", "CartPole-v1", num_seeds=2, overrides={"total_steps": 20_000})
    >>> result.final_returns.shape
    (2,)

    ``state`` and ``start_window`` continue runs from a saved state (``metrics`` then holds only
    the rows from ``start_window`` on, and ``final_returns`` is computed from those);
    ``final_fraction`` is the fraction of the last updates whose episodes ``final_returns``
    averages (default 0.1); ``chunk_windows`` is the number of logging windows per compiled chunk
    (default: about ten chunks a run). ``overrides`` may hold array-valued
    hyperparameters (a learned objective's weights)."""
    if isinstance(num_seeds, bool) or not isinstance(num_seeds, (int, np.integer)) or num_seeds < 1:
        raise ConfigError(f"num_seeds must be an integer >= 1, got {num_seeds!r}")
    env_overrides = dict(env_overrides or {})
    train_fn = build(algorithm, env, config=config, hparams=hparams, overrides=overrides, env_overrides=env_overrides,
                     log_every=log_every, final_fraction=final_fraction)
    log = MetricsLog(train_fn.log_steps())
    log.windows_done = start_window
    if progress:
        log.sinks.append(ProgressBar(train_fn.total_env_steps, f"{train_fn.algorithm.name} {env}", int(log.steps[-1]) if start_window else 0))
    try:
        output = run_seeds(
            train_fn, seed=seed, num_seeds=num_seeds, chunk_windows=chunk_windows, on_rows=log,
            state=state, start_window=start_window,
        )
    finally:
        log.close()
    return TrainResult(
        algorithm=train_fn.algorithm.name,
        env_name=env,
        config=train_fn.config,
        hparams=train_fn.hparams,
        seeds=list(range(num_seeds)),
        seed=seed,
        metrics=output.metrics,
        steps=output.steps,
        state=output.state,
        train=train_fn,
        env_overrides=env_overrides,
        wall_time=output.wall_time,
        compile_time=output.compile_time,
    )
