"""The one value parser: a setting's value from the command line (text), from Python or from JSON,
turned into what its field holds and checked against the field's type.

Static config fields are typed (bool, int, float, str, tuple[int, ...]) and their values must be
hashable, since a config keys compiled programs. Hyperparameter fields are traced: a number
becomes a float, and an array or a pytree of arrays (a learned objective's weights) a pytree of
float32 arrays. Everything raises ``ConfigError`` with one line naming the field.
"""

from __future__ import annotations

import typing
from typing import Any

import jax
import numpy as np


class ConfigError(ValueError):
    """Invalid configuration or hyperparameters; the CLI prints it on one line and exits 2."""


def parse_text(text: str, annotation: Any, where: str = "value") -> Any:
    """A value written on the command line, by the type of the field it is for: ``true``/``false``,
    integers (``1e5`` too, when whole), floats, tuples (``64x64`` or ``64,64``) and text."""
    text = text.strip()
    if annotation is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"bad value for {where}: expected true or false, got {text!r}")
    if annotation in (int, float):
        try:
            number = float(text)
        except ValueError:
            raise ConfigError(f"bad value for {where}: expected a number, got {text!r}") from None
        if annotation is int:
            if number != int(number):
                raise ConfigError(f"bad value for {where}: expected an integer, got {text!r}")
            return int(number)
        return number
    if typing.get_origin(annotation) is tuple:
        (item_type, *_rest) = typing.get_args(annotation)
        parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
        return tuple(parse_text(p, item_type, where) for p in parts)
    return text


def coerce(value: Any, annotation: Any, where: str = "value") -> Any:
    """A value given from Python or read from JSON, checked to be of ``annotation`` (an int is a
    float where a float is wanted, a list a tuple where a tuple is); text is parsed."""
    if isinstance(value, str) and annotation is not str:
        return parse_text(value, annotation, where)
    if typing.get_origin(annotation) is tuple:
        (item_type, *_rest) = typing.get_args(annotation)
        items = value if isinstance(value, (list, tuple, np.ndarray)) else [value]
        return tuple(coerce(v, item_type, where) for v in items)
    is_bool = isinstance(value, (bool, np.bool_))
    if annotation is bool:
        ok = is_bool
    elif annotation is int:
        ok = isinstance(value, (int, np.integer)) and not is_bool
        value = int(value) if ok else value
    elif annotation is float:
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not is_bool
        value = float(value) if ok else value
    elif annotation is str:
        ok = isinstance(value, str)
    else:
        raise ConfigError(f"{where} has a type this kit cannot set ({annotation})")
    if not ok:
        name = getattr(annotation, "__name__", str(annotation))
        raise ConfigError(f"bad value for {where}: expected {name}, got {value!r}")
    return value


def hparam_value(value: Any, where: str = "value") -> Any:
    """A traced hyperparameter: text or a number becomes a float; an array, or a pytree of
    arrays (dicts, lists, tuples), becomes float32 arrays of the same structure."""
    if isinstance(value, str):
        return parse_text(value, float, where)
    if isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"bad value for {where}: expected a number or arrays, got {value!r}")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    try:
        return jax.tree.map(lambda leaf: np.asarray(leaf, np.float32), value)
    except (TypeError, ValueError):
        raise ConfigError(f"bad value for {where}: expected a number or arrays, got {type(value).__name__}") from None
