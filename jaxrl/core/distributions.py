"""Distributions of a setting's value: random search draws configurations from them on the host
(numpy), domain randomisation draws environment parameters from them on the device (JAX), with
one parser for both (``uniform:8:12``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.core.values import ConfigError

DISTRIBUTIONS = ("loguniform", "uniform", "int-uniform", "choice")
_ALIASES = {"intuniform": "int-uniform", "randint": "int-uniform", "log-uniform": "loguniform"}


@dataclass(frozen=True)
class Distribution:
    """One setting's distribution. ``low``/``high`` bound the continuous and integer kinds (both
    inclusive for ``int-uniform``); ``choices`` lists the values of ``choice``."""

    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple[Any, ...] = ()

    def sample(self, rng: np.random.Generator, count: int) -> list[Any]:
        """``count`` independent draws on the host."""
        if self.kind == "loguniform":
            return [float(v) for v in np.exp(rng.uniform(math.log(self.low), math.log(self.high), count))]
        if self.kind == "uniform":
            return [float(v) for v in rng.uniform(self.low, self.high, count)]
        if self.kind == "int-uniform":
            return [int(v) for v in rng.integers(int(self.low), int(self.high) + 1, count)]
        return [self.choices[int(i)] for i in rng.integers(0, len(self.choices), count)]

    def sample_jax(self, key: jax.Array, dtype: Any = jnp.float32) -> jax.Array:
        """One draw on the device, inside a compiled program (numeric choices only)."""
        if self.kind == "loguniform":
            return jnp.exp(jax.random.uniform(key, (), jnp.float32, math.log(self.low), math.log(self.high))).astype(dtype)
        if self.kind == "uniform":
            return jax.random.uniform(key, (), jnp.float32, self.low, self.high).astype(dtype)
        if self.kind == "int-uniform":
            return jax.random.randint(key, (), int(self.low), int(self.high) + 1).astype(dtype)
        return jax.random.choice(key, jnp.asarray(self.choices, dtype))


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
    kind = _ALIASES.get(kind.lower(), kind.lower())
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


def is_distribution(text: Any) -> bool:
    """Whether ``text`` is written as a distribution (``kind:...``) rather than a value."""
    if not isinstance(text, str) or ":" not in text:
        return False
    kind = text.strip().partition(":")[0].lower()
    return _ALIASES.get(kind, kind) in DISTRIBUTIONS
