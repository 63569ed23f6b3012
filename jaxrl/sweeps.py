"""Sweeps: hyperparameters x seeds as one compiled program, the run axis sharded over devices.

A sweep is a list of configurations (a grid, or samples from distributions) times ``seeds``
seeds. Every (configuration, seed) pair is one *run*; runs form the runner's run axis.

* Traced hyperparameters (fields of the algorithm's ``HParams`` pytree: ``lr``, ``ent_coef``...)
  vary along that axis inside ONE compiled program: a swept leaf gets one value per run, so the
  runs are bit-identical to the same configurations trained alone on one device.
* Structural values (fields of the static ``Config``: ``num_envs``, ``hidden_sizes``...) decide
  shapes, so the sweep splits into one compilation per distinct structural combination. Everything
  else about those groups is the same.
* Run (config c, seed index i) gets the key ``runner.run_keys(seed, [i])``, exactly the key seed
  index i gets in ``jaxrl.train(..., seed=seed, num_seeds > i)``; so every run of a sweep
  reproduces the same configuration trained alone (``tests/test_sweep.py`` checks this).
* The run axis is sharded over all devices (``jax.sharding.Mesh`` with one axis, ``runs``):
  keys, swept hyperparameters, and hence the whole training state are split along their leading
  axis, padded with copies of the first run up to a multiple of the device count (the padding is
  dropped from the results). The programs are ``shard_map``ped, so devices never communicate
  while training. On several hosts, call ``jax.distributed.initialize()`` first; see the README's
  "Devices and hosts" and ``experiments/sweep_multihost.py``.

>>> result = sweep("ppo", "CartPole-v1", grid={"lr": [1e-4, 1e-3]}, seeds=2,
...                overrides={"total_steps": 10240, "num_envs": 4})   # doctest: +SKIP
>>> result.summary[["lr", "mean", "iqm", "ci_low", "ci_high"]]       # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
import platform
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jax
import numpy as np
import pandas as pd

import envs
from jaxrl import runner, stats
from jaxrl.algorithms.base import Algorithm, ConfigError, apply_overrides
from jaxrl.checkpoint import decode_rows, encode_rows

DISTRIBUTIONS = ("loguniform", "uniform", "int-uniform", "choice")


# --------------------------------------------------------------------------------------------
# Distributions for random search


@dataclass(frozen=True)
class Distribution:
    """One hyperparameter's search distribution. ``low``/``high`` bound the continuous and integer
    kinds (both inclusive for ``int-uniform``); ``choices`` lists the values of ``choice``."""

    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple[Any, ...] = ()

    def sample(self, rng: np.random.Generator, count: int) -> list[Any]:
        """``count`` independent draws."""
        if self.kind == "loguniform":
            return [float(v) for v in np.exp(rng.uniform(math.log(self.low), math.log(self.high), count))]
        if self.kind == "uniform":
            return [float(v) for v in rng.uniform(self.low, self.high, count)]
        if self.kind == "int-uniform":
            return [int(v) for v in rng.integers(int(self.low), int(self.high) + 1, count)]
        return [self.choices[int(i)] for i in rng.integers(0, len(self.choices), count)]


def parse_distribution(name: str, spec: str | Sequence[Any] | Distribution) -> Distribution:
    """``loguniform:a:b``, ``uniform:a:b``, ``int-uniform:a:b`` or ``choice:v1,v2,...`` (a list
    or tuple is a choice too). Raises ``ConfigError`` naming ``name`` on a malformed spec."""
    if isinstance(spec, Distribution):
        return spec
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise ConfigError(f"choice for {name} is empty")
        return Distribution("choice", choices=tuple(spec))
    if not isinstance(spec, str):
        raise ConfigError(f"bad distribution for {name}: {spec!r}; use one of {', '.join(d + ':...' for d in DISTRIBUTIONS)}")
    kind, _, rest = spec.strip().partition(":")
    kind = {"intuniform": "int-uniform", "randint": "int-uniform", "log-uniform": "loguniform"}.get(kind.lower(), kind.lower())
    if kind not in DISTRIBUTIONS:
        raise ConfigError(
            f"bad distribution for {name}: {spec!r}; use loguniform:LOW:HIGH, uniform:LOW:HIGH, "
            f"int-uniform:LOW:HIGH or choice:V1,V2,..."
        )
    if kind == "choice":
        choices = tuple(v.strip() for v in rest.split(",") if v.strip())
        if not choices:
            raise ConfigError(f"bad distribution for {name}: {spec!r} lists no choices")
        return Distribution("choice", choices=choices)
    bounds = rest.split(":")
    try:
        if len(bounds) != 2:
            raise ValueError
        low, high = float(bounds[0]), float(bounds[1])
    except ValueError:
        raise ConfigError(f"bad distribution for {name}: {spec!r}; expected {kind}:LOW:HIGH with two numbers") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise ConfigError(f"bad distribution for {name}: {spec!r}; LOW must be below HIGH")
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"bad distribution for {name}: {spec!r}; loguniform needs LOW > 0")
    if kind == "int-uniform" and (low != int(low) or high != int(high)):
        raise ConfigError(f"bad distribution for {name}: {spec!r}; int-uniform needs integer bounds")
    return Distribution(kind, low, high)


# --------------------------------------------------------------------------------------------
# Planning: names, values and checks, all before anything compiles


@dataclass
class Group:
    """Configurations that share one structural config, hence one compiled program."""

    config: Any
    config_ids: list[int]


@dataclass
class SweepPlan:
    """A validated sweep: every configuration resolved and checked, grouped by structure."""

    algo: Algorithm
    env_name: str
    env: Any
    env_params: Any
    env_overrides: dict[str, Any]
    overrides: dict[str, Any]
    kind: str  # "grid" or "random"
    names: list[str]  # swept settings, in the order given
    structural: list[str]  # the swept names that are Config fields
    values: list[dict[str, Any]]  # per configuration: swept name -> typed value
    configs: list[Any]  # per configuration: its Config
    hparams: list[Any]  # per configuration: its HParams
    groups: list[Group]
    seeds: int
    seed: int
    spec: dict[str, Any]  # the grid or distributions as given, for config.json

    @property
    def num_runs(self) -> int:
        return len(self.values) * self.seeds


def _suggest(name: str, valid: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(valid), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def _coerce(name: str, value: Any, annotation: Any, structural: bool) -> Any:
    """Python values from the API to the field's type (strings are parsed by ``apply_overrides``).
    Structural values must be hashable, since the config keys the compilation cache."""
    if isinstance(value, str):
        return value
    if not structural:
        try:
            if np.ndim(value) != 0 or isinstance(value, bool):
                raise TypeError
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"values of {name} must be numbers, got {value!r}") from None
    if annotation is bool:
        if not isinstance(value, (bool, np.bool_)):
            raise ConfigError(f"values of {name} must be true or false, got {value!r}")
        return bool(value)
    if annotation is int:
        if isinstance(value, bool) or np.ndim(value) != 0 or float(value) != int(value):
            raise ConfigError(f"values of {name} must be integers, got {value!r}")
        return int(value)
    if annotation is float:
        return float(value)
    if typing.get_origin(annotation) is tuple:
        if np.ndim(value) == 0:
            value = (value,)
        return tuple(int(v) for v in value) if typing.get_args(annotation)[:1] == (int,) else tuple(value)
    return value


def display(value: Any) -> Any:
    """A value as it appears in tables, plots and CSV files: tuples as ``64x64`` (the CLI's
    spelling), everything else unchanged."""
    if isinstance(value, tuple):
        return "x".join(str(v) for v in value)
    return value


def label(values: Mapping[str, Any]) -> str:
    """``lr=0.0003, ent_coef=0.01``: a configuration as one line."""
    return ", ".join(f"{k}={display(v):.3g}" if isinstance(v, float) else f"{k}={display(v)}" for k, v in values.items())


def _configurations(
    algo: Algorithm,
    grid: Mapping[str, Any] | None,
    random: Mapping[str, Any] | None,
    samples: int | None,
    seed: int,
    hints: dict[str, Any],
    structural_names: set[str],
) -> tuple[str, list[str], list[dict[str, Any]], dict[str, Any]]:
    """The raw (not yet typed) value of every swept name for every configuration."""
    if (grid is None) == (random is None):
        raise ConfigError("give exactly one of grid (--grid) or random (--random)")
    kind = "grid" if grid is not None else "random"
    spec = dict(grid if grid is not None else random)
    if not spec:
        raise ConfigError(f"the {kind} sweeps no setting")
    for name in spec:
        if name not in hints:
            raise ConfigError(
                f"{algo.name} has no setting {name!r}{_suggest(name, sorted(hints))}; settings: {', '.join(sorted(hints))}"
            )
    if kind == "grid":
        if samples is not None:
            raise ConfigError("samples (--samples) applies to random search only")
        lists = {}
        for name, values in spec.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) and not isinstance(values, np.ndarray):
                values = [values]
            values = list(values)
            if not values:
                raise ConfigError(f"the grid for {name} is empty")
            lists[name] = values
        names = list(lists)
        configs = [dict(zip(names, combo)) for combo in itertools.product(*(lists[n] for n in names))]
        return kind, names, configs, {n: [display(v) for v in vs] for n, vs in lists.items()}
    if samples is None or samples < 1:
        raise ConfigError(f"random search needs samples (--samples) >= 1, got {samples}")
    distributions = {name: parse_distribution(name, value) for name, value in spec.items()}
    for name, dist in distributions.items():
        annotation = hints[name]
        if name in structural_names and dist.kind in ("uniform", "loguniform") and annotation is not float:
            raise ConfigError(
                f"{name} is structural (decides compilation) and not a float; sample it with choice:... "
                + ("or int-uniform:LOW:HIGH" if annotation is int else "")
            )
        if dist.kind == "int-uniform" and name in structural_names and annotation is not int:
            raise ConfigError(f"{name} is not an integer setting; sample it with choice:...")
    rng = np.random.default_rng(seed)
    names = list(distributions)
    # One name at a time, all samples of it, so adding a swept name leaves the others' draws alone.
    draws = {name: distributions[name].sample(rng, samples) for name in names}
    configs = [{name: draws[name][i] for name in names} for i in range(samples)]
    return kind, names, configs, {n: (v if isinstance(v, str) else [display(c) for c in distributions[n].choices]) for n, v in spec.items()}


def plan(
    algorithm: str | Algorithm,
    env: str,
    *,
    grid: Mapping[str, Any] | None = None,
    random: Mapping[str, Any] | None = None,
    samples: int | None = None,
    seeds: int = 1,
    overrides: Mapping[str, Any] | None = None,
    env_overrides: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> SweepPlan:
    """Resolves and checks a sweep without compiling anything: unknown names, empty grids,
    malformed distributions and values the algorithm's ``check`` rejects raise ``ConfigError``
    (the CLI prints it on one line and exits 2). Arguments as for ``sweep``."""
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or seeds < 1:
        raise ConfigError(f"seeds must be an integer >= 1, got {seeds!r}")
    overrides = dict(overrides or {})
    env_overrides = dict(env_overrides or {})
    algo, env_obj, env_params, base_config, base_hparams = runner.resolve(
        algorithm, env, overrides=overrides, env_overrides=env_overrides
    )
    config_hints = typing.get_type_hints(algo.config_type)
    hints = {**config_hints, **{name: float for name in typing.get_type_hints(algo.hparams_type)}}
    kind, names, raw, spec = _configurations(algo, grid, random, samples, seed, hints, set(config_hints))
    both = sorted(set(names) & set(overrides))
    if both:
        raise ConfigError(f"{', '.join(both)} is both swept and overridden (--set); drop one")
    structural = [n for n in names if n in config_hints]
    discrete = envs.is_discrete(env_obj.action_space(env_params))

    values, configs, hparams = [], [], []
    for index, settings in enumerate(raw):
        typed = {n: _coerce(n, v, hints[n], n in config_hints) for n, v in settings.items()}
        config, hp = apply_overrides(algo, base_config, base_hparams, typed)
        configs.append(config)
        hparams.append(hp)
        values.append({n: getattr(config, n) if n in config_hints else float(getattr(hp, n)) for n in names})

    groups: dict[Any, Group] = {}
    for index, config in enumerate(configs):
        groups.setdefault(config, Group(config, [])).config_ids.append(index)
    for group in groups.values():
        # One check per group with array-valued hyperparameters; only when it fails, look for the
        # first offending configuration so the message names it.
        try:
            algo.check(group.config, _stack([hparams[i] for i in group.config_ids], names), discrete)
        except ConfigError:
            for i in group.config_ids:
                try:
                    algo.check(configs[i], jax.tree.map(np.asarray, hparams[i]), discrete)
                except ConfigError as error:
                    raise ConfigError(f"configuration {i} ({label(values[i])}): {error}") from None
            raise
    return SweepPlan(
        algo=algo,
        env_name=env,
        env=env_obj,
        env_params=env_params,
        env_overrides=env_overrides,
        overrides=overrides,
        kind=kind,
        names=names,
        structural=structural,
        values=values,
        configs=configs,
        hparams=hparams,
        groups=list(groups.values()),
        seeds=int(seeds),
        seed=seed,
        spec=spec,
    )


def _stack(hparams: Sequence[Any], names: Sequence[str], repeat: int = 1) -> Any:
    """One HParams whose swept fields are float32 arrays (one entry per configuration, each
    repeated ``repeat`` times for its seeds); the other fields are the (shared) first one's."""
    first = hparams[0]
    swept = {n: np.repeat(np.asarray([getattr(h, n) for h in hparams], np.float32), repeat) for n in names if hasattr(first, n)}
    return jax.tree.map(np.asarray, first.replace(**swept))


# --------------------------------------------------------------------------------------------
# Running


def _place(mesh: jax.sharding.Mesh, keys: jax.Array, hparams: Any, swept: Sequence[str]) -> tuple[jax.Array, Any]:
    """Keys and swept hyperparameters split along the run axis, the rest on every device: where
    the compiled program expects them, so no call starts with a reshuffle."""
    per_run = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("runs"))
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    shared = jax.tree.map(lambda x: jax.device_put(x, replicated), hparams.replace(**{n: None for n in swept}))
    # Keys travel as their raw uint32 data: device_put can lay a host array out over devices of
    # several processes (jax.distributed), but not a typed key array.
    key_data = jax.device_put(np.asarray(jax.random.key_data(keys)), per_run)
    keys = jax.random.wrap_key_data(key_data, impl=jax.random.key_impl(keys))
    return keys, shared.replace(**{n: jax.device_put(getattr(hparams, n), per_run) for n in swept})


class _SweepProgress:
    """One tqdm bar over the environment steps of all runs of all groups."""

    def __init__(self, total: int, description: str):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=description, unit="step", unit_scale=True, dynamic_ncols=True)
        self.offset = 0
        self.best = -math.inf

    def for_group(self, num_runs: int, group_index: int, num_groups: int) -> Callable[[int, dict[str, np.ndarray]], None]:
        start = self.offset
        if num_groups > 1:
            self.bar.set_description(f"{self.bar.desc.split(' [')[0]} [program {group_index + 1}/{num_groups}]")

        def callback(steps_done: int, rows: dict[str, np.ndarray]) -> None:
            returns = rows.get("episode_return")
            if returns is not None:
                # Best configuration-seed mean of this chunk's windows: a cheap "is anything learning".
                with np.errstate(invalid="ignore"):
                    finite = returns[:num_runs][np.isfinite(returns[:num_runs])]
                if finite.size:
                    self.best = max(self.best, float(finite.max()))
                    self.bar.set_postfix(best_ret=f"{self.best:.1f}")
            self.offset = start + steps_done * num_runs
            self.bar.update(self.offset - self.bar.n)

        return callback

    def close(self) -> None:
        self.bar.close()


def run(
    sweep_plan: SweepPlan,
    *,
    log_every: int | None = None,
    logs_per_chunk: int | None = None,
    progress: bool | Callable[[int, int], None] = False,
    devices: Sequence[jax.Device] | None = None,
    run_dir: str | Path | None = None,
    checkpoint_every: int | None = None,
    keep_checkpoints: int = 2,
    resume: bool = False,
    overwrite: bool = False,
) -> "SweepResult":
    """Trains every run of a planned sweep: one compiled program per structural group, its runs
    sharded over ``devices`` (default: all of ``jax.devices()``; pass one device to not shard).
    ``progress`` is True for a bar, or ``progress(env_steps_done, env_steps_total)`` summed over
    all runs.

    With ``run_dir`` the sweep lives in that directory: it checkpoints every ``checkpoint_every``
    env steps per run (``jaxrl.session.plan_checkpoints``; each group also at its end), keeping
    the newest ``keep_checkpoints``, and writes its results there when done. A checkpoint holds
    the in-progress group's state and its rows so far, and the rows of every completed group.
    ``resume=True`` continues from the newest checkpoint, so results.csv is bitwise the one an
    uninterrupted sweep writes; a checkpoint of a different sweep raises ``CheckpointError``
    naming the first difference, before anything on disk changes."""
    from jaxrl import rundir, session
    from jaxrl.checkpoint import CheckpointStore

    p = sweep_plan
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ConfigError("no devices to run the sweep on")
    if log_every is not None and log_every < 1:
        raise ConfigError(f"log_every must be >= 1, got {log_every}")
    if run_dir is None and (resume or checkpoint_every is not None):
        raise ConfigError("checkpoints (checkpoint_every, resume) need a run directory (run_dir, --out)")
    if resume and overwrite:
        raise ConfigError("resume continues a sweep in place and cannot be combined with overwrite")
    if keep_checkpoints < 1:
        raise ConfigError(f"keep_checkpoints must be >= 1, got {keep_checkpoints}")
    if checkpoint_every is not None and checkpoint_every < 0:
        raise ConfigError(f"checkpoint_every must be >= 0 env steps, got {checkpoint_every}")
    # One device: the plain vmapped program, exactly what ``jaxrl.train`` runs.
    mesh = jax.sharding.Mesh(np.asarray(devices), ("runs",)) if len(devices) > 1 else None

    agents = [
        runner.build_agent(p.algo, p.env_name, p.env_overrides, p.env, p.env_params, g.config) for g in p.groups
    ]
    total_steps = sum(
        len(g.config_ids) * p.seeds * (g.config.total_steps // a.steps_per_update) * a.steps_per_update
        for g, a in zip(p.groups, agents)
    )
    spec = _checkpoint_spec(p, log_every, checkpoint_every)
    saved: dict[str, Any] | None = None
    path: Path | None = None
    if run_dir is not None and resume:
        # Only reads: a mismatch must leave the directory exactly as it was.
        path = session.existing_run_dir(run_dir)
        with CheckpointStore(path / session.CHECKPOINTS) as reader:
            saved_step = reader.latest_step()
            saved = reader.read_metadata(saved_step)
            session.check_resumable(path, saved_step, saved, spec, SWEEP_RESUME_FIELDS, "sweep")
        session.warn_if_other_jax(saved)
    elif run_dir is not None:
        path = rundir.prepare(run_dir, overwrite)
    # Completed groups' rows (encoded exactly as saved) by group index; a resumed sweep starts with
    # those of its checkpoint and skips their groups.
    completed: dict[str, Any] = dict(saved["completed"]) if saved else {}
    store = CheckpointStore(path / session.CHECKPOINTS, keep=keep_checkpoints, writable=True) if path else None
    bar = _SweepProgress(total_steps, f"sweep {p.algo.name} {p.env_name}") if progress is True else None
    t0 = time.perf_counter()
    traces_before = runner.compile_count()
    compile_time, num_compilations, done_before = 0.0, 0, 0
    frames, finals = [], np.full((len(p.values), p.seeds), np.nan)
    try:
        for index, (group, agent) in enumerate(zip(p.groups, agents)):
            num_runs = len(group.config_ids) * p.seeds
            group_steps = num_runs * (group.config.total_steps // agent.steps_per_update) * agent.steps_per_update
            resumed = saved if saved is not None and saved.get("group") == index else None
            if resumed is not None and resumed.get("updates_done") == group.config.total_steps // agent.steps_per_update:
                # The checkpoint was taken at this group's end: it is complete, minus the bookkeeping.
                rows = {k: v[:num_runs] for k, v in decode_rows(resumed["rows"]).items()}
                completed[str(index)] = {"metrics": encode_rows(rows), "steps": resumed["steps"]}
            if str(index) in completed:
                # Finished before the interruption: its rows come from the checkpoint, bit for bit.
                metrics = decode_rows(completed[str(index)]["metrics"])
                steps = np.asarray(completed[str(index)]["steps"], np.int64)
            else:
                metrics, steps, compiled_new, seconds = _run_group(
                    p, index, group, agent, devices, mesh, log_every, logs_per_chunk, checkpoint_every,
                    bar, progress, done_before, total_steps, store, resumed, completed, spec,
                )
                num_compilations += compiled_new
                compile_time += seconds
                if store is not None:  # later checkpoints carry this group's rows; JSON costs, so only then
                    completed[str(index)] = {"metrics": encode_rows(metrics), "steps": [int(x) for x in steps]}
            done_before += group_steps
            if bar is not None:
                bar.offset = done_before
                bar.bar.update(bar.offset - bar.bar.n)
            finals[group.config_ids] = runner.last_finite(metrics["episode_return"]).reshape(len(group.config_ids), p.seeds)
            frames.append(_tidy(p, group, metrics, steps))
    finally:
        if store is not None:
            store.close()  # lets a started save finish even when the sweep failed
    if bar is not None:
        bar.close()
    results = pd.concat(frames, ignore_index=True).sort_values(["config_id", "seed", "step"], kind="stable")
    result = SweepResult(
        algorithm=p.algo.name,
        env_name=p.env_name,
        kind=p.kind,
        names=list(p.names),
        structural=list(p.structural),
        configs=[dict(v) for v in p.values],
        seeds=p.seeds,
        seed=p.seed,
        results=results.reset_index(drop=True),
        summary=summarize(p.names, p.values, finals),
        final_returns=finals,
        num_compilations=int(num_compilations),
        num_traces=runner.compile_count() - traces_before,
        num_devices=len(devices),
        wall_time=time.perf_counter() - t0,
        compile_time=compile_time,
        base=runner.config_dict(p.configs[0], p.hparams[0]),
        overrides=dict(p.overrides),
        env_overrides=dict(p.env_overrides),
        spec=p.spec,
    )
    if path is not None:
        result.write(path)
    return result


# What must match for a sweep checkpoint to be resumed, most basic first: everything that decides
# the groups, their compiled programs, random streams and logged rows. Not "spec": it is the grid
# as given (CLI text or API numbers); "configs" holds the typed values it resolves to.
SWEEP_RESUME_FIELDS = (
    "algorithm", "env", "env_overrides", "overrides", "search", "seeds", "seed", "swept", "configs",
    "log_every", "checkpoint_every",
)
SWEEP_METADATA_FORMAT = 1


def _checkpoint_spec(p: SweepPlan, log_every: int | None, checkpoint_every: int | None) -> dict[str, Any]:
    """The static description of a sweep saved in each of its checkpoints (JSON-normal, so a
    fresh one compares equal to one read back)."""
    from jaxrl import session

    return session._json(
        {
            "format": SWEEP_METADATA_FORMAT,
            "kind": "sweep",
            "algorithm": p.algo.name,
            "env": p.env_name,
            "env_overrides": dict(p.env_overrides),
            # Overrides as resolved values (CLI text and API numbers for one setting then agree).
            "overrides": {k: display(_resolved(p, k)) for k in sorted(p.overrides)},
            "search": p.kind,
            "spec": p.spec,
            "seeds": p.seeds,
            "seed": p.seed,
            "swept": list(p.names),
            "configs": [{k: display(v) for k, v in c.items()} for c in p.values],
            "log_every": log_every,
            "checkpoint_every": checkpoint_every,
        }
    )


def _resolved(p: SweepPlan, name: str) -> Any:
    """An override's value as the base configuration holds it."""
    config, hparams = p.configs[0], p.hparams[0]
    value = getattr(config, name) if hasattr(config, name) else getattr(hparams, name, p.overrides[name])
    return value if isinstance(value, (tuple, str, bool, int)) else float(np.asarray(value))


def _run_group(p, index, group, agent, devices, mesh, log_every, logs_per_chunk, checkpoint_every,
               bar, progress, done_before, total_steps, store, resumed, completed, spec):
    """Trains one structural group (from its checkpoint when ``resumed`` is that checkpoint's
    metadata) and returns its rows [runs, logs], their steps, whether it compiled a new program,
    and the compile time. With a ``store``, checkpoints on the plan's chunk boundaries and at the
    group's end, each holding the rows of ``completed`` groups and of this one so far."""
    from jaxrl import session

    from jaxrl import session
    from jaxrl.checkpoint import CheckpointStore

    num_runs = len(group.config_ids) * p.seeds
    padded = math.ceil(num_runs / len(devices)) * len(devices)
    # Padding repeats run 0 (a valid key and valid hyperparameters); its results are dropped.
    source = np.concatenate([np.arange(num_runs), np.zeros(padded - num_runs, np.int64)])
    seed_indices = np.tile(np.arange(p.seeds), len(group.config_ids))[source]
    keys = runner.run_keys(p.seed, seed_indices)
    hparams = _stack([p.hparams[i] for i in group.config_ids], p.names, repeat=p.seeds)
    swept = [n for n in p.names if n not in p.structural]
    hparams = hparams.replace(**{n: getattr(hparams, n)[source] for n in swept})
    hparams = runner.to_hparams(hparams)
    # Swept leaves vary along the run axis; the rest are shared (and broadcast by vmap).
    hparam_axes = jax.tree.map(lambda _: None, hparams).replace(**{n: 0 for n in swept})
    if mesh is not None:
        keys, hparams = _place(mesh, keys, hparams, swept)
    elif devices[0] != jax.devices()[0]:
        keys, hparams = jax.device_put((keys, hparams), devices[0])

    num_updates = group.config.total_steps // agent.steps_per_update
    group_log_every = log_every or runner.default_log_every(num_updates)
    num_logs = math.ceil(num_updates / group_log_every)
    every_updates = None
    chunk_logs = logs_per_chunk or runner.default_logs_per_chunk(num_logs)
    if store is not None:
        # Chunks must end where checkpoints fall; train_run plans them the same way.
        ckpt_plan = session.plan_checkpoints(num_updates, group_log_every, agent.steps_per_update, checkpoint_every)
        every_updates, chunk_logs = ckpt_plan.every_updates, ckpt_plan.logs_per_chunk
    compiled = runner.compiled_for(agent, hparam_axes, chunk_logs, mesh)

    state, start_update = None, 0
    prior_rows: dict[str, np.ndarray] = {}
    prior_steps: list[int] = []
    if resumed is not None:
        start_update = int(resumed["updates_done"])
        prior_rows = decode_rows(resumed["rows"])
        prior_steps = [int(x) for x in resumed["steps"]]
        template = jax.eval_shape(jax.vmap(agent.init, in_axes=(0, hparam_axes)), keys, hparams)
        with CheckpointStore(store.directory) as reader:
            state, _ = reader.restore(template, reader.latest_step())
        if mesh is not None:
            # The compiled program expects the run axis split over the mesh, as init leaves it.
            per_run = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("runs"))
            state = jax.tree.map(lambda x: jax.device_put(x, per_run), state)

    # Every row this group has logged, padding runs included (the checkpoint's state has them too).
    rows_so_far: list[dict[str, np.ndarray]] = [prior_rows] if prior_rows else []

    if bar is not None:
        shown = bar.for_group(num_runs, index, len(p.groups))
    elif callable(progress):
        shown = (lambda base, n: lambda done, _rows: progress(base + done * n, total_steps))(done_before, num_runs)
    else:
        shown = None

    def callback(done: int, rows: dict[str, np.ndarray]) -> None:
        # Rows and their steps arrive here once per logged chunk; keep them for the checkpoint.
        rows_so_far.append(rows)
        if shown is not None:
            shown(done, rows)

    last_saved = [start_update]

    def on_chunk(state: Any, done: int) -> None:
        due = every_updates is not None and done - last_saved[0] >= every_updates
        if not (due or done == num_updates):
            return
        merged = {k: np.concatenate([r[k] for r in rows_so_far], axis=1) for k in rows_so_far[-1]}
        # The runner logs a row at the end of each log window of log_every updates (the last
        # may be shorter), so the rows' steps follow from their count.
        steps = [min((w + 1) * group_log_every, num_updates) * agent.steps_per_update for w in range(merged["episode_return"].shape[1])]
        metadata = {
            **spec,
            "group": index,
            "updates_done": done,
            "completed": completed,
            "rows": encode_rows(merged),
            "steps": steps,
            "versions": session.versions(),
            "backend": jax.default_backend(),
        }
        # Steps count env steps over all runs of all groups, so they only grow through a sweep.
        store.save(done_before + done * agent.steps_per_update * num_runs, state, metadata)
        last_saved[0] = done

    traces = runner.compile_count()
    output = runner.execute(
        compiled,
        keys,
        hparams,
        num_updates=num_updates,
        steps_per_update=agent.steps_per_update,
        log_every=group_log_every,
        progress=callback,
        state=state,
        start_update=start_update,
        on_chunk=on_chunk if store is not None else None,
    )
    compiled_new = runner.compile_count() > traces
    new_metrics = output.metrics
    if prior_rows:
        new_metrics = {k: np.concatenate([prior_rows[k], new_metrics[k]], axis=1) for k in prior_rows}
    metrics = {name: values[:num_runs] for name, values in new_metrics.items()}
    steps = np.concatenate([np.asarray(prior_steps, np.int64), output.steps])
    seconds = output.compile_time
    del output  # the final states of a group are not kept: a sweep's memory is its metrics
    return metrics, steps, compiled_new, seconds


def _tidy(p: SweepPlan, group: Group, metrics: dict[str, np.ndarray], steps: np.ndarray) -> pd.DataFrame:
    """One row per (configuration, seed, logged step) of one group."""
    num_runs, num_logs = metrics["episode_return"].shape
    config_ids = np.repeat(np.asarray(group.config_ids), p.seeds)
    frame: dict[str, Any] = {"config_id": np.repeat(config_ids, num_logs)}
    for name in p.names:
        column = [display(p.values[c][name]) for c in config_ids]
        frame[name] = np.repeat(np.asarray(column, dtype=object if name in p.structural else np.float64), num_logs)
    frame["seed"] = np.repeat(np.tile(np.arange(p.seeds), len(group.config_ids)), num_logs)
    frame["step"] = np.tile(steps, num_runs)
    order = ["episode_return", "episode_length"] + sorted(k for k in metrics if k not in ("episode_return", "episode_length"))
    for name in order:
        # A metric named like a swept setting (PPO logs the annealed ``lr``) keeps a suffix, so the
        # setting's column holds the swept value.
        frame[f"{name}_logged" if name in frame else name] = metrics[name].reshape(-1)
    out = pd.DataFrame(frame)
    for name in p.structural:
        out[name] = pd.Series(out[name].tolist(), dtype=_column_dtype(out[name].tolist()))
    return out


def _column_dtype(values: list[Any]) -> Any:
    if all(isinstance(v, (bool, np.bool_)) for v in values):
        return bool
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        return np.int64
    if all(isinstance(v, (int, float, np.number)) for v in values):
        return np.float64
    return object


def summarize(names: Sequence[str], values: Sequence[Mapping[str, Any]], final_returns: np.ndarray) -> pd.DataFrame:
    """One row per configuration: its swept values, then mean, IQM and the 95% bootstrap interval
    of the mean of the final return over seeds (``jaxrl.stats``), and how many seeds finished an
    episode."""
    rows = []
    for config_id, (settings, finals) in enumerate(zip(values, final_returns)):
        row = {"config_id": config_id, **{n: display(settings[n]) for n in names}}
        row.update(stats.summarize(finals) if np.isfinite(finals).any() else
                   {"mean": np.nan, "iqm": np.nan, "ci_low": np.nan, "ci_high": np.nan, "num_finite": 0})
        row["num_seeds"] = int(final_returns.shape[1])
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class SweepResult:
    """What a sweep returns. ``results`` is tidy (one row per configuration x seed x logged step:
    config_id, one column per swept setting, seed, step, episode_return, losses...); ``summary``
    has one row per configuration (mean, iqm, ci_low, ci_high of the final return over seeds)."""

    algorithm: str
    env_name: str
    kind: str
    names: list[str]
    structural: list[str]
    configs: list[dict[str, Any]]
    seeds: int
    seed: int
    results: pd.DataFrame
    summary: pd.DataFrame
    final_returns: np.ndarray  # [configs, seeds]
    num_compilations: int  # programs compiled for this sweep (one per new structural group)
    num_traces: int  # runner.compile_count() delta: an init and a chunk trace per compilation
    num_devices: int
    wall_time: float
    compile_time: float
    base: dict[str, Any] = field(default_factory=dict)  # config and hparams the sweep starts from
    overrides: dict[str, Any] = field(default_factory=dict)
    env_overrides: dict[str, Any] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def best_config_id(self) -> int | None:
        """The configuration with the highest IQM of final returns over seeds (robust to one
        diverging seed; equal to the mean with fewer than four seeds). None if no run finished
        an episode."""
        scores = self.summary["iqm"].to_numpy(np.float64)
        if not np.isfinite(scores).any():
            return None
        return int(np.nanargmax(scores))

    @property
    def best(self) -> dict[str, Any] | None:
        """The best configuration's swept values (pass them as ``overrides`` to ``jaxrl.train``)."""
        best = self.best_config_id
        return None if best is None else dict(self.configs[best])

    def summary_line(self) -> str:
        best = self.best_config_id
        if best is None:
            return f"{len(self.configs)} configurations x {self.seeds} seeds: no episode finished"
        row = self.summary.iloc[best]
        return (
            f"best of {len(self.configs)} configurations x {self.seeds} seeds: {label(self.configs[best])} "
            f"(config {best}): final return {row['mean']:.1f} [95% CI {row['ci_low']:.1f}, {row['ci_high']:.1f}], "
            f"IQM {row['iqm']:.1f}"
        )

    def plot_curves(self, path: str | Path | None = None, **kwargs: Any):
        """Learning curves, one per configuration (the best few when there are many), mean over
        seeds with a 95% bootstrap band."""
        from jaxrl import sweep_plots

        return sweep_plots.curves(self.results, self.summary, self.names, path, title=self._title(), **kwargs)

    def plot_heatmap(self, path: str | Path | None = None, **kwargs: Any):
        """Mean final return over a 2-D grid (rows: the first swept setting)."""
        from jaxrl import sweep_plots

        if len(self.names) != 2:
            raise ValueError(f"a heatmap needs exactly two swept settings, this sweep has {len(self.names)}")
        return sweep_plots.heatmap(self.summary, self.names[0], self.names[1], path, title=self._title(), **kwargs)

    def plot_sensitivity(self, path: str | Path | None = None, **kwargs: Any):
        """Final return against each swept setting's value, with 95% intervals."""
        from jaxrl import sweep_plots

        return sweep_plots.sensitivity(self.summary, self.names, path, title=self._title(), connect=self.kind == "grid", **kwargs)

    def _title(self) -> str:
        return f"{self.algorithm} on {self.env_name}: {len(self.configs)} configs x {self.seeds} seeds"

    def metadata(self) -> dict[str, Any]:
        """JSON-ready description of the sweep (config.json)."""
        from jaxrl import __version__

        def plain(value: Any) -> Any:
            if isinstance(value, tuple):
                return list(value)
            if isinstance(value, (np.floating, float)):
                return None if value != value else float(value)
            if isinstance(value, np.integer):
                return int(value)
            return value

        best = self.best_config_id
        return {
            "kind": "sweep",
            "algorithm": self.algorithm,
            "env": self.env_name,
            "env_overrides": self.env_overrides,
            "overrides": {k: plain(v) for k, v in self.overrides.items()},
            "search": self.kind,
            "spec": self.spec,
            "swept": self.names,
            "structural": self.structural,
            "seed": self.seed,
            "seeds": self.seeds,
            "configs": [{k: plain(v) for k, v in c.items()} for c in self.configs],
            "best_config_id": best,
            "best": None if best is None else {k: plain(v) for k, v in self.configs[best].items()},
            "base": self.base,
            "num_runs": len(self.configs) * self.seeds,
            "num_compilations": self.num_compilations,
            "num_devices": self.num_devices,
            "wall_time_s": round(self.wall_time, 3),
            "compile_time_s": round(self.compile_time, 3),
            "versions": {"jaxrl": __version__, "jax": jax.__version__, "python": platform.python_version()},
            "backend": jax.default_backend(),
        }

    def write(self, path: str | Path) -> list[Path]:
        """Writes config.json, results.csv, summary.csv, curves.png and heatmap.png (2-D grid) or
        sensitivity.png (otherwise) into the directory ``path``; returns the files written. On
        several hosts only process 0 writes."""
        from jaxrl.rundir import _atomic_write

        path = Path(path)
        if jax.process_index() != 0:
            return []
        path.mkdir(parents=True, exist_ok=True)
        written = [path / "config.json", path / "results.csv", path / "summary.csv", path / "curves.png"]
        text = json.dumps(self.metadata(), indent=2, default=_json_default) + "\n"
        _atomic_write(written[0], lambda f: f.write_text(text))
        _atomic_write(written[1], lambda f: self.results.to_csv(f, index=False))
        _atomic_write(written[2], lambda f: self.summary.to_csv(f, index=False))
        _atomic_write(written[3], lambda f: self.plot_curves(f))
        if self.kind == "grid" and len(self.names) == 2:
            written.append(path / "heatmap.png")
            _atomic_write(written[-1], lambda f: self.plot_heatmap(f))
        else:
            written.append(path / "sensitivity.png")
            _atomic_write(written[-1], lambda f: self.plot_sensitivity(f))
        return written


def _json_default(value: Any) -> Any:
    """numpy scalars and tuples in specs and settings, as JSON numbers and lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    return str(value)


# --------------------------------------------------------------------------------------------
# The one-call API


def sweep(
    algorithm: str | Algorithm,
    env: str,
    *,
    grid: Mapping[str, Sequence[Any]] | None = None,
    random: Mapping[str, Any] | None = None,
    samples: int | None = None,
    seeds: int = 1,
    overrides: Mapping[str, Any] | None = None,
    env_overrides: Mapping[str, Any] | None = None,
    seed: int = 0,
    log_every: int | None = None,
    logs_per_chunk: int | None = None,
    progress: bool | Callable[[int, int], None] = False,
    devices: Sequence[jax.Device] | None = None,
    run_dir: str | Path | None = None,
    checkpoint_every: int | None = None,
    keep_checkpoints: int = 2,
    resume: bool = False,
    overwrite: bool = False,
) -> SweepResult:
    """Trains every configuration of a grid or a random search for ``seeds`` seeds each, as few
    compiled programs as the structural settings allow, sharded over all devices.

    Args:
      algorithm, env: as for ``jaxrl.train``.
      grid: setting -> list of values; the sweep is their Cartesian product.
      random: setting -> distribution (``"loguniform:1e-5:1e-2"``, ``"uniform:0:0.1"``,
        ``"int-uniform:1:8"``, ``"choice:64x64,128x128"`` or a list of choices); ``samples``
        configurations are drawn with ``numpy.random.default_rng(seed)``.
      seeds: seeds per configuration; seed index i of every configuration uses the key
        ``jaxrl.train(..., seed=seed)`` gives seed index i.
      overrides, env_overrides: fixed settings of every configuration (not swept ones).
      log_every, logs_per_chunk: as for ``jaxrl.train`` (per structural group).
      progress: True for a progress bar, or ``progress(env_steps_done, env_steps_total)``.
      devices: devices to shard the runs over (default ``jax.devices()``).
      run_dir, checkpoint_every, keep_checkpoints, resume, overwrite: checkpoint the sweep into
        ``run_dir`` and continue it after an interruption (see ``run``); the results are written
        there too.

    >>> result = sweep("ppo", "CartPole-v1", grid={"lr": [1e-4, 1e-3], "ent_coef": [0.0, 0.01]},
    ...                seeds=2, overrides={"total_steps": 10240})     # doctest: +SKIP
    >>> result.summary.shape, result.num_compilations                  # doctest: +SKIP
    ((4, 10), 1)
    """
    sweep_plan = plan(
        algorithm,
        env,
        grid=grid,
        random=random,
        samples=samples,
        seeds=seeds,
        overrides=overrides,
        env_overrides=env_overrides,
        seed=seed,
    )
    return run(
        sweep_plan, log_every=log_every, logs_per_chunk=logs_per_chunk, progress=progress, devices=devices,
        run_dir=run_dir, checkpoint_every=checkpoint_every, keep_checkpoints=keep_checkpoints, resume=resume,
        overwrite=overwrite,
    )
