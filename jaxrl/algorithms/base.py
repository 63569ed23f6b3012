"""The algorithm contract.

An algorithm is

* a static ``Config`` (frozen dataclass): everything that decides shapes and hence compilation
  (numbers of envs and steps, minibatches, widths, ``total_steps``);
* a traced ``HParams`` pytree (``flax.struct`` dataclass): learning rate, discount, coefficients...
  whose leaves may be scalars or arrays and may differ along a vmapped sweep axis without
  recompiling;
* ``build(config, env, env_params) -> Agent``, where the ``Agent`` holds the pure functions

      init(key, hparams) -> state
      update(state, hparams) -> (state, metrics)      # one training iteration
      act(policy_params, obs, key, deterministic) -> action
      policy_params(state) -> what ``act`` needs (weights and observation-normaliser statistics)

The runner (``jaxrl.runner``) owns everything else: jit, scan, chunking, vmap over seeds and
hyperparameters, metric reduction, progress, logging.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass
from typing import Any, Callable

import jax
import numpy as np


@dataclass(frozen=True)
class Agent:
    init: Callable[[jax.Array, Any], Any]
    update: Callable[[Any, Any], tuple[Any, dict[str, jax.Array]]]
    act: Callable[[Any, jax.Array, jax.Array, bool], jax.Array]
    policy_params: Callable[[Any], Any]
    steps_per_update: int  # environment steps consumed by one ``update``


class ConfigError(ValueError):
    """Invalid configuration or hyperparameters; the CLI prints it on one line and exits 2."""


@dataclass(frozen=True)
class Algorithm:
    name: str
    summary: str
    config_type: type
    hparams_type: type
    build: Callable[[Any, Any, Any], Agent]
    # defaults(env_name, discrete) -> (config, hparams) that learn on that kind of environment
    defaults: Callable[[str, bool], tuple[Any, Any]]
    # check(config, hparams, discrete) raises ConfigError; hparams leaves may be arrays (sweeps)
    check: Callable[[Any, Any, bool], None]
    discrete: bool = True
    continuous: bool = True

    def field_names(self) -> tuple[list[str], list[str]]:
        return (
            [f.name for f in dataclasses.fields(self.config_type)],
            [f.name for f in dataclasses.fields(self.hparams_type)],
        )


_REGISTRY: dict[str, Algorithm] = {}


def register(algorithm: Algorithm) -> Algorithm:
    _REGISTRY[algorithm.name] = algorithm
    return algorithm


def list_algorithms() -> list[str]:
    return sorted(_REGISTRY)


def get_algorithm(name: str) -> Algorithm:
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown algorithm {name!r}{hint} (known: {', '.join(list_algorithms())})")
    return _REGISTRY[name]


# --------------------------------------------------------------------------------------------
# Overrides (``--set key=value``) and checks shared by every algorithm


def _parse_value(text: str, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if annotation is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true/false, got {text!r}")
    if annotation is int:
        value = float(text)
        if value != int(value):
            raise ValueError(f"expected an integer, got {text!r}")
        return int(value)
    if annotation is float:
        return float(text)
    if origin is tuple:
        (item_type, *_rest) = typing.get_args(annotation)
        parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
        return tuple(_parse_value(p, item_type) for p in parts)
    return text


def apply_overrides(algorithm: Algorithm, config: Any, hparams: Any, overrides: dict[str, Any]) -> tuple[Any, Any]:
    """Sets fields of the config or the hyperparameters by name; string values are parsed by
    the field's type. Unknown names raise ``ConfigError`` listing the valid ones."""
    config_hints = typing.get_type_hints(algorithm.config_type)
    # Hyperparameter leaves are typed Any (they may be arrays); from text they are numbers.
    hparam_hints = {name: float for name in typing.get_type_hints(algorithm.hparams_type)}
    config_updates, hparam_updates = {}, {}
    for key, value in overrides.items():
        if key in config_hints:
            target, hints = config_updates, config_hints
        elif key in hparam_hints:
            target, hints = hparam_updates, hparam_hints
        else:
            valid = sorted(config_hints) + sorted(hparam_hints)
            close = difflib.get_close_matches(key, valid, n=3, cutoff=0.5)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"{algorithm.name} has no setting {key!r}{hint}; settings: {', '.join(valid)}")
        if isinstance(value, str):
            try:
                value = _parse_value(value, hints[key])
            except ValueError as error:
                raise ConfigError(f"bad value for {key}: {error}") from None
        target[key] = value
    return dataclasses.replace(config, **config_updates), hparams.replace(**hparam_updates)


def require(condition: Any, message: str) -> None:
    """Raises ``ConfigError(message)`` unless ``condition`` holds for every element."""
    if not bool(np.all(np.asarray(condition))):
        raise ConfigError(message)


def check_batch(total_steps: int, steps_per_update: int, what: str) -> None:
    require(total_steps >= steps_per_update, f"total_steps={total_steps} is below one {what} of {steps_per_update} steps")
