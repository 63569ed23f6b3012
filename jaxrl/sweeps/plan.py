"""Planning a sweep: names, values and checks, all before anything compiles.

A sweep is a list of configurations (a grid, or samples from distributions) times ``seeds``
seeds. Traced hyperparameters (fields of the algorithm's ``HParams``: ``lr``, ``ent_coef``, or a
learned objective's weights) vary inside one compiled program; structural values (fields of the
static ``Config``) decide shapes, so configurations are grouped by them, one program per group.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import typing
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import jax
import numpy as np

import envs
from jaxrl.core.contract import Algorithm, ConfigError, apply_overrides
from jaxrl.core.distributions import parse_distribution
from jaxrl.core.train import resolve


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


def display(value: Any) -> Any:
    """A value as it appears in tables, plots and CSV files: tuples as ``64x64`` (the CLI's
    spelling), arrays and weight pytrees as ``arrays:`` and the start of their digest, everything
    else unchanged."""
    if isinstance(value, tuple):
        return "x".join(str(v) for v in value)
    if isinstance(value, (dict, list)) or np.ndim(value) > 0:
        digest = hashlib.sha256()
        for leaf in jax.tree.leaves(value):
            digest.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
        return f"arrays:{digest.hexdigest()[:10]}"
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
            # A list (or an array's leading axis) holds the grid's values; anything else is one value.
            values = list(values) if isinstance(values, (list, tuple, np.ndarray)) else [values]
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


def stack_hparams(hparams: Sequence[Any], names: Sequence[str], repeat: int = 1) -> Any:
    """One HParams whose swept fields have a leading run axis (one entry per configuration, each
    repeated ``repeat`` times for its seeds; every leaf of a pytree field alike: a population
    axis); the other fields are the (shared) first one's."""
    first = hparams[0]
    swept = {}
    for name in names:
        if not hasattr(first, name):
            continue
        values = [getattr(h, name) for h in hparams]
        structures = {jax.tree.structure(v) for v in values}
        if len(structures) > 1:
            raise ConfigError(f"the values of {name} must all have the same structure to be swept in one program")
        swept[name] = jax.tree.map(lambda *xs: np.repeat(np.stack([np.asarray(x, np.float32) for x in xs]), repeat, axis=0), *values)
    return jax.tree.map(np.asarray, first.replace(**swept))


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
    (the CLI prints it on one line and exits 2). Arguments as for ``jaxrl.sweep``."""
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or seeds < 1:
        raise ConfigError(f"seeds must be an integer >= 1, got {seeds!r}")
    overrides = dict(overrides or {})
    env_overrides = dict(env_overrides or {})
    algo, env_obj, env_params, base_config, base_hparams = resolve(algorithm, env, overrides=overrides, env_overrides=env_overrides)
    config_hints = typing.get_type_hints(algo.config_type)
    hints = {**config_hints, **{name: float for name in typing.get_type_hints(algo.hparams_type)}}
    kind, names, raw, spec = _configurations(algo, grid, random, samples, seed, hints, set(config_hints))
    both = sorted(set(names) & set(overrides))
    if both:
        raise ConfigError(f"{', '.join(both)} is both swept and overridden (--set); drop one")
    structural = [n for n in names if n in config_hints]
    discrete = envs.is_discrete(env_obj.action_space(env_params))

    values, configs, hparams = [], [], []
    for settings in raw:
        config, hp = apply_overrides(algo, base_config, base_hparams, settings)
        configs.append(config)
        hparams.append(hp)
        values.append({n: getattr(config, n) if n in config_hints else getattr(hp, n) for n in names})

    groups: dict[Any, Group] = {}
    for index, config in enumerate(configs):
        groups.setdefault(config, Group(config, [])).config_ids.append(index)
    for group in groups.values():
        # One check per group with array-valued hyperparameters; only when it fails, look for the
        # first offending configuration so the message names it.
        try:
            algo.check(group.config, stack_hparams([hparams[i] for i in group.config_ids], names), discrete)
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
