"""The algorithm contract.

An algorithm is

* a static ``Config`` (frozen dataclass): everything that decides shapes and hence compilation
  (numbers of envs and steps, minibatches, widths, ``total_steps``) and the names of the pieces
  it is built from (``objective``, ``optimizer``, ``targets``: see ``jaxrl.core.pieces``);
* a traced ``HParams`` pytree (``flax.struct`` dataclass): learning rate, discount, coefficients...
  whose leaves may be scalars, arrays or whole weight pytrees (a learned objective's network) and
  may differ along a vmapped axis without recompiling;
* ``build(config, env) -> Agent``, where the ``Agent`` holds the pure functions

      init(key, hparams, env_params) -> state           # env_params: one set, or one per env copy
      update(state, hparams, step) -> (state, metrics)  # one training iteration
      collect(state, hparams, step) -> (state, batch)   # its first half: experience
      learn(state, hparams, batch, step) -> (state, metrics)  # its second half
      act(policy_params, obs, key, deterministic) -> action
                                                        # recurrent: (..., memory) -> (action, memory)
      policy_params(state) -> what ``act`` needs (weights and observation-normaliser statistics)

  ``step`` is the runner's update index, an unbatched int32 scalar shared by every vmapped run, so
  warm-up, delays and schedules that read it stay real conditionals under ``vmap``; ``Progress``
  turns it into n/N. The environment parameters live in the state (``state.env.params``, one set
  per env copy), where an algorithm or a curriculum may replace them between updates.
  ``metrics`` are scalars, plus ``metrics["per_env"]``: arrays [num_steps, num_envs] of what a
  curriculum scores levels with (rewards, episode ends and returns; values and advantages for
  on-policy agents). The runner averages the scalars over a logging window and drops
  ``per_env``.

``jaxrl.core.train.make_train`` turns an algorithm into one pure function of (key,
hyperparameters, environment parameters); ``jaxrl.driver`` runs that function in chunks.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import typing
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.core.values import ConfigError, coerce, hparam_value

__all__ = [
    "Agent",
    "Algorithm",
    "ConfigError",
    "Progress",
    "apply_overrides",
    "check_batch",
    "get_algorithm",
    "list_algorithms",
    "register",
    "require",
]


@dataclass(frozen=True)
class Progress:
    """Where training is: update ``step`` (unbatched int32 scalar) of ``num_updates``."""

    step: jax.Array
    num_updates: int

    @property
    def fraction(self) -> jax.Array:
        """n / N in [0, 1): 0 at the first update."""
        return jnp.asarray(self.step, jnp.float32) / self.num_updates

    @property
    def log_num_updates(self) -> float:
        """log N, the lifetime's scale (a learned rule's input, with ``fraction``)."""
        return float(np.log(self.num_updates))


@dataclass(frozen=True)
class Agent:
    init: Callable[[jax.Array, Any, Any], Any]
    update: Callable[[Any, Any, jax.Array], tuple[Any, dict[str, Any]]]
    act: Callable[[Any, jax.Array, jax.Array, bool], jax.Array]
    policy_params: Callable[[Any], Any]
    steps_per_update: int  # environment steps consumed by one ``update``
    num_updates: int  # updates in a run of ``config.total_steps``
    collect: Callable[[Any, Any, jax.Array], tuple[Any, Any]]
    learn: Callable[[Any, Any, Any, jax.Array], tuple[Any, dict[str, Any]]]
    # A recurrent agent's: initial_memory(batch) -> its policy's memory for ``batch`` observations;
    # its act is then act(policy_params, obs, key, deterministic, memory) -> (action, memory).
    initial_memory: Callable[[int], Any] | None = None
    # An agent whose updates differ in cost (SFL scores levels every few updates): steps_after(n)
    # -> the environment steps of its first n updates (numpy ints); then ``steps_per_update`` is
    # only the average. None: n * steps_per_update.
    steps_after: Callable[[Any], Any] | None = None

    def env_steps(self, updates: Any) -> np.ndarray:
        """The environment steps (per run) consumed by the first ``updates`` updates, exactly."""
        updates = np.asarray(updates, np.int64)
        if self.steps_after is None:
            return updates * self.steps_per_update
        return np.asarray(self.steps_after(updates), np.int64)


def compose(collect: Callable, learn: Callable) -> Callable:
    """``update`` as ``collect`` then ``learn``."""

    def update(state: Any, hparams: Any, step: jax.Array) -> tuple[Any, dict[str, Any]]:
        state, batch = collect(state, hparams, step)
        return learn(state, hparams, batch, step)

    return update


@dataclass(frozen=True)
class Algorithm:
    name: str
    summary: str
    config_type: type
    hparams_type: type
    build: Callable[[Any, Any], Agent]
    # defaults(env_name, discrete) -> (config, hparams) that learn on that kind of environment
    defaults: Callable[[str, bool], tuple[Any, Any]]
    # check(config, hparams, discrete) raises ConfigError; hparams leaves may be arrays (sweeps)
    check: Callable[[Any, Any, bool], None]
    discrete: bool = True
    continuous: bool = True
    # An algorithm that changes its environment (an adversary's perturbation, RARL's): the
    # ``--env-set`` options that are its own, ``env_options(env_name) -> {name: default}``, and
    # ``wrap_env(env_name, env, env_params, options) -> (env, env_params)``, applied after the
    # environment is made from the other options. ConfigError for a bad option.
    env_options: Callable[[str], dict[str, Any]] | None = None
    wrap_env: Callable[[str, Any, Any, dict[str, Any]], tuple[Any, Any]] | None = None

    def field_names(self) -> tuple[list[str], list[str]]:
        return (
            [f.name for f in dataclasses.fields(self.config_type)],
            [f.name for f in dataclasses.fields(self.hparams_type)],
        )


_REGISTRY: dict[str, Algorithm] = {}
_LAZY: dict[str, str] = {}  # name -> module that registers it when imported


def canonical_name(name: str) -> str:
    """Algorithm and objective names are hyphenated (``ta-lpo``, ``dsac-t``, ``lpo-zero``); the
    underscored spelling (``ta_lpo``, which earlier versions used) is accepted everywhere as an
    alias, so older commands and run directories keep working."""
    return name.replace("_", "-")


def register(algorithm: Algorithm) -> Algorithm:
    _REGISTRY[canonical_name(algorithm.name)] = algorithm
    return algorithm


def register_lazy(name: str, module: str) -> None:
    """Makes ``name`` known without importing ``module``, which registers it on first use."""
    _LAZY[canonical_name(name)] = module


def list_algorithms() -> list[str]:
    return sorted(set(_REGISTRY) | set(_LAZY))


def get_algorithm(name: str) -> Algorithm:
    name = canonical_name(name)
    if name not in _REGISTRY and name in _LAZY:
        importlib.import_module(_LAZY[name])
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list_algorithms(), n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown algorithm {name!r}{hint} (known: {', '.join(list_algorithms())})")
    return _REGISTRY[name]


def apply_overrides(algorithm: Algorithm, config: Any, hparams: Any, overrides: dict[str, Any]) -> tuple[Any, Any]:
    """Sets fields of the config or the hyperparameters by name (``jaxrl.core.values`` parses and
    checks each value). Unknown names raise ``ConfigError`` listing the valid ones."""
    config_hints = typing.get_type_hints(algorithm.config_type)
    hparam_names = set(typing.get_type_hints(algorithm.hparams_type))
    config_updates, hparam_updates = {}, {}
    for key, value in overrides.items():
        if key in config_hints:
            config_updates[key] = coerce(value, config_hints[key], key)
        elif key in hparam_names:
            hparam_updates[key] = hparam_value(value, key)
        else:
            valid = sorted(config_hints) + sorted(hparam_names)
            close = difflib.get_close_matches(key, valid, n=3, cutoff=0.5)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"{algorithm.name} has no setting {key!r}{hint}; settings: {', '.join(valid)}")
    return dataclasses.replace(config, **config_updates), hparams.replace(**hparam_updates)


def require(condition: Any, message: str) -> None:
    """Raises ``ConfigError(message)`` unless ``condition`` holds for every element."""
    if not bool(np.all(np.asarray(condition))):
        raise ConfigError(message)


def check_batch(total_steps: int, steps_per_update: int, what: str) -> None:
    require(total_steps >= steps_per_update, f"total_steps={total_steps} is below one {what} of {steps_per_update} steps")
