"""Environments by name with their settings, as the command line and the API give them: fixed
values (``--env-set gravity=9.8``), distributions (``--env-set gravity=uniform:8:12``) or Python
samplers (``env_overrides={"gravity": lambda key: ...}``). A distribution or a sampler makes it
domain randomisation: every episode of every env copy draws its parameters anew, inside the
compiled program (``envs.DomainRandomization``). Everything is checked here, before anything
compiles, and a bad name or value raises ``ConfigError`` on one line.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

import envs
from jaxrl.core.distributions import Distribution, is_distribution, parse_distribution
from jaxrl.core.values import ConfigError, parse_text


def _kind(default: Any) -> type | None:
    """The type of a parameter, from its default value; None for an array-valued one."""
    if isinstance(default, (bool, np.bool_)):
        return bool
    if isinstance(default, (int, np.integer)):
        return int
    if isinstance(default, (float, np.floating)):
        return float
    return str if isinstance(default, str) else None


def _check_distribution(env_name: str, field: str, dist: Distribution, default: Any) -> Distribution:
    kind = _kind(default)
    if kind is float and dist.kind in ("uniform", "loguniform", "int-uniform"):
        return dist
    if kind is int and dist.kind == "int-uniform":
        return dist
    if kind in (int, float, bool) and dist.kind == "choice":
        return Distribution("choice", choices=tuple(parse_text(str(c), kind, field) for c in dist.choices))
    raise ConfigError(
        f"{env_name} parameter {field} ({kind.__name__ if kind else 'an array'}) cannot be drawn from {dist.kind}"
        + ("; use int-uniform:LOW:HIGH or choice:..." if kind is int else "")
    )


def _sampler(draws: dict[str, Callable[[jax.Array], Any]], default_params: Any) -> Callable[[jax.Array, Any], Any]:
    names = sorted(draws)
    dtypes = {n: jnp.asarray(getattr(default_params, n)).dtype for n in names}

    def sample(key: jax.Array, params: Any) -> Any:
        keys = jax.random.split(key, len(names))
        return params.replace(**{n: jnp.asarray(draws[n](k), dtypes[n]) for n, k in zip(names, keys)})

    return sample


def make_env(name: str, overrides: Mapping[str, Any] | None = None) -> tuple[envs.Environment, Any]:
    """The environment ``name`` and its parameters with ``overrides`` applied: values (text is
    parsed by the parameter's type), distributions or samplers ``fn(key) -> value``."""
    env, params, sample = task_distribution(name, overrides)
    if sample is not None:
        env = envs.DomainRandomization(env, sample)
    return env, params


def task_distribution(name: str, overrides: Mapping[str, Any] | None = None) -> tuple[envs.Environment, Any, Any]:
    """``make_env``'s pieces: the environment without randomisation, its parameters with the fixed
    overrides, and ``sample(key, params) -> params`` drawing the randomised ones (``None`` when
    there are none). A meta-learner draws one set per task from it."""
    try:
        defaults = envs.registry.option_defaults(name)
    except envs.UnknownEnvironmentError as error:
        raise ConfigError(str(error)) from None
    fixed: dict[str, Any] = {}
    draws: dict[str, Any] = {}
    for field, value in dict(overrides or {}).items():
        if defaults is not None and field not in defaults:
            close = difflib.get_close_matches(field, sorted(defaults), n=3, cutoff=0.5)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"{name} has no parameter {field!r}{hint}; it has: {', '.join(sorted(defaults))}")
        random = callable(value) or is_distribution(value)
        # brax's settings and playground's constructor options build the environment: not data
        not_data = name.startswith("brax/") or (name.startswith("playground/") and field != "episode_length")
        if random and (defaults is None or not_data):
            raise ConfigError(f"{name}'s {field} cannot be randomised; only parameters that are data "
                              "(gymnax's, craftax's, playground's episode_length) can")
        if callable(value):
            draws[field] = value
        elif random:
            dist = _check_distribution(name, field, parse_distribution(field, value), defaults[field])
            draws[field] = lambda key, dist=dist: dist.sample_jax(key)
        elif isinstance(value, str) and defaults is not None:
            kind = _kind(defaults[field])
            if kind is None:
                raise ConfigError(f"{name} parameter {field} is an array and cannot be set from text")
            fixed[field] = parse_text(value, kind, field)
        else:
            fixed[field] = value
    try:
        env, params = envs.make(name, **fixed)
    except (envs.InvalidEnvSetting, TypeError) as error:
        raise ConfigError(str(error)) from None
    return env, params, (_sampler(draws, params) if draws else None)


def plain_overrides(name: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``overrides`` as a run directory records them: values of their parameter's type (text
    parsed, so ``"200"`` from the command line and ``200`` from Python agree) and distributions as
    text. ``ConfigError`` for a Python sampler, which a run directory cannot record."""
    defaults = envs.registry.option_defaults(name) or {}
    out = {}
    for field, value in overrides.items():
        if callable(value):
            raise ConfigError(f"env setting {field} is a Python function; a run directory can only record "
                              "values and distributions written as text (e.g. 'uniform:8:12')")
        kind = _kind(defaults.get(field))
        if isinstance(value, str) and not is_distribution(value) and kind not in (None, str):
            value = parse_text(value, kind, field)
        out[field] = value.item() if isinstance(value, np.generic) else value
    return out
