"""What a run is, as JSON: the description saved in every checkpoint and in ``config.json``, and
its checks.

Config fields are plain values. A hyperparameter is a number, or, when it is an array or a pytree
of arrays (a learned objective's or optimizer's weights), its structure with each leaf's shape,
dtype and sha256 digest: never the numbers, which a checkpoint keeps as Orbax arrays
(``array_fields``). Two runs whose JSON is equal therefore trained with the same values, and a
resume compares them exactly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import typing
import warnings
from pathlib import Path
from typing import Any, Mapping

import jax
import numpy as np

from jaxrl.core.contract import Algorithm, canonical_name, get_algorithm
from jaxrl.core.values import ConfigError, coerce
from jaxrl.driver.checkpoint import CheckpointError, first_difference

METADATA_FORMAT = 2


def json_normal(value: Any) -> Any:
    """JSON-normal form (tuples become lists, numpy scalars Python numbers), so that a freshly
    built spec compares equal to one read back from a checkpoint."""
    return json.loads(json.dumps(value, default=lambda x: np.asarray(x).tolist()))


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).reshape(-1).view(np.uint8).data).hexdigest()


def is_arrays(value: Any) -> bool:
    """Whether a hyperparameter holds arrays (saved as arrays) rather than one number."""
    return value is not None and not (np.ndim(value) == 0 and not isinstance(value, (dict, list, tuple)))


def arrays_spec(value: Any) -> Any:
    """The structure of an array-valued hyperparameter with each leaf's shape, dtype and digest."""
    if isinstance(value, dict):
        return {"dict": {str(k): arrays_spec(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {type(value).__name__: [arrays_spec(v) for v in value]}
    if value is None:
        return None
    array = np.asarray(value)
    return {"shape": list(array.shape), "dtype": str(array.dtype), "sha256": _digest(array)}


def arrays_template(spec: Any, where: str) -> Any:
    """``jax.ShapeDtypeStruct`` leaves in the structure ``arrays_spec`` wrote."""
    if spec is None:
        return None
    if not isinstance(spec, dict) or len(spec) != 1 and "shape" not in spec:
        raise CheckpointError(f"{where} is not a valid array description in the checkpoint")
    if "dict" in spec and isinstance(spec["dict"], dict):
        return {k: arrays_template(v, f"{where}.{k}") for k, v in spec["dict"].items()}
    for kind, cast in (("list", list), ("tuple", tuple)):
        if kind in spec and isinstance(spec[kind], list):
            return cast(arrays_template(v, f"{where}[{i}]") for i, v in enumerate(spec[kind]))
    try:
        return jax.ShapeDtypeStruct(tuple(int(d) for d in spec["shape"]), np.dtype(spec["dtype"]))
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{where} is not a valid array description in the checkpoint") from None


def hparams_json(hparams: Any) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(hparams):
        value = getattr(hparams, f.name)
        out[f.name] = {"arrays": arrays_spec(value)} if is_arrays(value) else (None if value is None else float(np.asarray(value)))
    return out


def array_fields(hparams: Any) -> dict[str, Any]:
    """The array-valued hyperparameters, by field name: what a checkpoint stores as arrays."""
    return {f.name: getattr(hparams, f.name) for f in dataclasses.fields(hparams) if is_arrays(getattr(hparams, f.name))}


def config_dict(config: Any, hparams: Any) -> dict[str, Any]:
    """JSON-ready view of a config and its hyperparameters."""
    return json_normal({"config": dataclasses.asdict(config), "hparams": hparams_json(hparams)})


def versions() -> dict[str, str]:
    from jaxrl import __version__

    return {"jaxrl": __version__, "jax": jax.__version__, "python": platform.python_version()}


def spec_from_metadata(metadata: Mapping[str, Any], kind: str = "train") -> tuple[Algorithm, Any, Any]:
    """The algorithm, config and hyperparameters a checkpoint's metadata describes, every value
    checked against the algorithm's dataclasses. Array-valued hyperparameters come back as
    ``jax.ShapeDtypeStruct`` templates; their arrays are in the checkpoint."""
    if metadata.get("format") != METADATA_FORMAT or metadata.get("kind") != kind:
        raise CheckpointError(
            f"not a {kind} checkpoint of this kit (format {metadata.get('format')!r}, kind {metadata.get('kind')!r})"
        )
    name = metadata.get("algorithm")
    if not isinstance(name, str):
        raise CheckpointError("the checkpoint names no algorithm")
    algo = get_algorithm(name)
    saved_config, saved_hparams = metadata.get("config"), metadata.get("hparams")
    if not isinstance(saved_config, dict) or not isinstance(saved_hparams, dict):
        raise CheckpointError("the checkpoint has no config or hyperparameters")
    config_fields, hparam_fields = algo.field_names()
    for saved, fields, what in ((saved_config, config_fields, "config"), (saved_hparams, hparam_fields, "hparams")):
        difference = first_difference(sorted(saved), sorted(fields), what)
        if difference:
            raise CheckpointError(f"the checkpoint's {what} fields are not {algo.name}'s: {difference}")
    hints = typing.get_type_hints(algo.config_type)
    try:
        config = algo.config_type(**{k: coerce(saved_config[k], hints[k], f"config.{k}") for k in config_fields})
    except ConfigError as error:
        raise CheckpointError(f"the checkpoint's {error}") from None
    hparams = {}
    for k in hparam_fields:
        value = saved_hparams[k]
        if isinstance(value, dict) and set(value) == {"arrays"}:
            hparams[k] = arrays_template(value["arrays"], f"hparams.{k}")
        elif value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
            hparams[k] = value if value is None else float(value)
        else:
            raise CheckpointError(f"hparams.{k} should be a number or arrays in the checkpoint, got {type(value).__name__}")
    return algo, config, algo.hparams_type(**hparams)


def canonical_metadata(saved: Mapping[str, Any]) -> dict[str, Any]:
    """``saved`` with the algorithm's and the objective's names in their hyphenated spelling: runs
    written before it was the only one name ``ta_lpo`` or ``lpo_zero``, and compare by name alike."""
    saved = dict(saved)
    if isinstance(saved.get("algorithm"), str):
        saved["algorithm"] = canonical_name(saved["algorithm"])
    config = saved.get("config")
    if isinstance(config, dict) and isinstance(config.get("objective"), str):
        saved["config"] = {**config, "objective": canonical_name(config["objective"])}
    return saved


def check_resumable(
    path: Path, step: int, saved: Mapping[str, Any], spec: Mapping[str, Any], fields: tuple[str, ...], what: str
) -> None:
    """Refuses (``CheckpointError``, one line) to resume ``path`` from checkpoint ``step`` unless
    its metadata ``saved`` is of the same kind and format as ``spec`` and agrees with it on every
    one of ``fields``, checked in order; the first difference is named. Shared by training runs
    and sweeps, so both refuse an incompatible resume the same way."""
    if saved.get("kind") != spec["kind"] or saved.get("format") != spec["format"]:
        raise CheckpointError(f"cannot resume {path}: checkpoint {step} is not a {what} checkpoint of this kit")
    saved = canonical_metadata(saved)
    for field in fields:
        difference = first_difference(saved.get(field), spec[field], field)
        if difference:
            raise CheckpointError(f"cannot resume {path}: {difference}")


def warn_if_other_jax(saved: Mapping[str, Any], stacklevel: int = 3) -> None:
    """Warns when the checkpoint was written by another jax version: resuming is still allowed,
    but bitwise equality with an uninterrupted run is then not promised."""
    saved_jax = (saved.get("versions") or {}).get("jax")
    if saved_jax != jax.__version__:
        warnings.warn(
            f"checkpoint written with jax {saved_jax}, resuming with jax {jax.__version__}: "
            "the continued run may differ from an uninterrupted one in the last bits",
            stacklevel=stacklevel,
        )
