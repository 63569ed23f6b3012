"""Checkpoints of a run state pytree plus JSON metadata, kept with Orbax's ``CheckpointManager``.

A checkpoint directory holds one sub-directory per saved step with three items:

* ``state``: the run state's leaves, stored as plain arrays under index names (``"00000"``...).
  PRNG keys (new-style typed ``jax.random.key`` arrays) are stored as their raw ``uint32`` data
  and wrapped again on restore.
* ``layout``: JSON describing each leaf (tree path, shape, dtype, key implementation), checked
  against the state the caller expects before any array is read, so a checkpoint of another
  configuration is refused with the first leaf that differs.
* ``metadata``: whatever JSON the caller saves with the state (algorithm, config, progress,
  logged metrics...). This module does not interpret it.

Loading never unpickles or executes anything: arrays come from Orbax's tensorstore format and
the rest is JSON. Orbax writes each step into a temporary directory and renames it into place
when complete (on local file systems; ``AtomicRenameTemporaryPath``), so a process killed while
writing leaves the previous checkpoints intact and the partial one invisible.

>>> store = CheckpointStore("runs/x/checkpoints", keep=2, writable=True)  # doctest: +SKIP
>>> store.save(1024, state, {"updates_done": 2})                           # doctest: +SKIP
>>> state, metadata = store.restore(jax.eval_shape(init, key))            # doctest: +SKIP
"""

from __future__ import annotations

import functools
import hashlib
import math
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from jaxrl.core.values import ConfigError

LAYOUT_FORMAT = "jaxrl-state-layout/1"
_ITEMS = ("state", "layout", "metadata")


class CheckpointError(ConfigError):
    """A checkpoint that is missing, unreadable, or belongs to another configuration. A
    ``ConfigError``, so the CLI prints it on one line and exits 2."""


def _is_key(leaf: Any) -> bool:
    return jax.dtypes.issubdtype(getattr(leaf, "dtype", np.float32), jax.dtypes.prng_key)


def state_layout(state: Any) -> list[dict[str, Any]]:
    """One entry per leaf of ``state`` (arrays or ``jax.ShapeDtypeStruct``): tree path, shape and
    dtype as the caller sees them (typed keys keep their key dtype, e.g. ``key<fry>``)."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(state)
    return [
        {"path": jax.tree_util.keystr(path), "shape": [int(d) for d in np.shape(leaf)], "dtype": str(leaf.dtype)}
        for path, leaf in leaves
    ]


def host_copy(state: Any) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """The leaves of ``state`` as fresh host arrays under index names, and their layout.

    A copy, not a view: the runner donates the state's device buffers to its next chunk while
    an asynchronous save may still be reading these."""
    leaves = jax.tree_util.tree_leaves(state)
    layout = state_layout(state)
    arrays = {}
    for index, (leaf, entry) in enumerate(zip(leaves, layout)):
        if _is_key(leaf):
            entry["key_impl"] = str(jax.random.key_impl(leaf))
            leaf = jax.random.key_data(leaf)
        array = np.array(leaf, copy=True)
        entry["sha256"] = _digest(array)
        arrays[f"{index:05d}"] = array
    return arrays, layout


def _digest(array: np.ndarray) -> str:
    # Restores are checked against it: a flipped bit inside compressed data can decode silently.
    return hashlib.sha256(np.ascontiguousarray(array).reshape(-1).view(np.uint8).data).hexdigest()


def _first_layout_difference(saved: Sequence[Mapping[str, Any]], expected: Sequence[Mapping[str, Any]]) -> str | None:
    for saved_leaf, expected_leaf in zip(saved, expected):
        if saved_leaf.get("path") != expected_leaf["path"]:
            return f"state leaf {expected_leaf['path']} is {saved_leaf.get('path')} in the checkpoint"
        for field in ("shape", "dtype"):
            if saved_leaf.get(field) != expected_leaf[field]:
                return (
                    f"state leaf {expected_leaf['path']} has {field} {saved_leaf.get(field)} in the checkpoint, "
                    f"{expected_leaf[field]} now"
                )
    if len(saved) != len(expected):
        return f"the checkpoint's state has {len(saved)} leaves, {len(expected)} expected"
    return None


def first_difference(saved: Any, requested: Any, path: str = "") -> str | None:
    """The first place two JSON-like values differ, as ``"config.num_envs is 4 in the
    checkpoint, 8 now"``; ``None`` when they are equal. Tuples and lists compare alike."""
    if isinstance(saved, Mapping) and isinstance(requested, Mapping):
        for key in sorted(set(saved) | set(requested), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in saved:
                return f"{where} is missing from the checkpoint"
            if key not in requested:
                return f"{where} is in the checkpoint but not known now"
            found = first_difference(saved[key], requested[key], where)
            if found:
                return found
        return None
    if isinstance(saved, (list, tuple)) and isinstance(requested, (list, tuple)):
        if len(saved) == len(requested) and all(first_difference(a, b) is None for a, b in zip(saved, requested)):
            return None
    elif _same_scalar(saved, requested):
        return None
    return f"{path or 'value'} is {_short(saved)} in the checkpoint, {_short(requested)} now"


def _same_scalar(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and a == b


def _short(value: Any) -> str:
    text = repr(list(value) if isinstance(value, tuple) else value)
    return text if len(text) <= 60 else text[:57] + "..."


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    if not text:
        return type(error).__name__
    line = text[0].split(" [tensorstore_spec=")[0]  # the spec is a page of JSON, not a reason
    return f"{type(error).__name__}: {line[:200]}"


def _quiet_orphaned_reads() -> None:
    """Orbax gathers a restore's tensorstore reads on a private event loop and closes it as soon
    as one read fails; the other reads then complete into the closed loop, and each reports a
    harmless "Event loop is closed" through ``sys.unraisablehook``, after our one-line error.
    Drops exactly those reports (everything else goes to the previous hook)."""
    previous = sys.unraisablehook
    if getattr(previous, "_jaxrl_quiet", False):
        return

    def hook(unraisable: Any) -> None:
        error = unraisable.exc_value
        if isinstance(error, RuntimeError) and str(error) == "Event loop is closed":
            return
        previous(unraisable)

    hook._jaxrl_quiet = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook


class CheckpointStore:
    """The checkpoints of one run (or one sweep): a directory of Orbax steps, the newest ``keep``
    retained. Open it ``writable`` to save (the directory is created, and temporary directories
    that a killed writer left behind are removed); read-only otherwise, which never creates,
    changes or deletes anything on disk."""

    def __init__(self, directory: str | Path, *, keep: int | None = 2, writable: bool = False):
        self.directory = Path(directory)
        if self.directory.is_symlink():
            # A link would let a run directory send writes (or deletions of old steps) elsewhere.
            raise CheckpointError(f"{self.directory} is a symbolic link; refusing to use it for checkpoints")
        if writable:
            self.directory.mkdir(parents=True, exist_ok=True)
        elif not self.directory.is_dir():
            raise CheckpointError(f"no checkpoint found: {self.directory} does not exist")
        if keep is not None and keep < 1:
            raise ConfigError(f"keep must be >= 1, got {keep}")
        self.writable, self.keep = writable, keep
        if not writable:
            self._manager  # noqa: B018 - a reader opens now, so that an unreadable directory fails here

    @functools.cached_property
    def _manager(self) -> Any:
        """Orbax's manager, opened on first use: a writer opens it at its first save, so that
        importing Orbax (0.15 s) overlaps training instead of preceding it (see ``execute``'s
        ``warm_imports``)."""
        import orbax.checkpoint as ocp

        options = ocp.CheckpointManagerOptions(
            max_to_keep=self.keep if self.writable else None,
            create=False,
            cleanup_tmp_directories=self.writable,
            enable_async_checkpointing=True,
        )
        handlers = {
            "state": ocp.StandardCheckpointHandler(),
            "layout": ocp.JsonCheckpointHandler(),
            "metadata": ocp.JsonCheckpointHandler(),
        }
        try:
            return ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)
        except Exception as error:  # noqa: BLE001 - any failure to open is reported as unreadable
            raise CheckpointError(f"cannot open checkpoints in {self.directory} ({_first_line(error)})") from None

    # -- reading ----------------------------------------------------------------------------

    def steps(self) -> list[int]:
        """The complete checkpoints, oldest first (partial writes are not listed)."""
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int:
        """The newest complete checkpoint; ``CheckpointError`` when there is none."""
        steps = self.steps()
        if not steps:
            raise CheckpointError(f"no checkpoint found in {self.directory}")
        return steps[-1]

    def read_metadata(self, step: int | None = None) -> dict[str, Any]:
        """The JSON metadata saved with ``step`` (default: the newest), without reading arrays."""
        import orbax.checkpoint as ocp

        step = self.latest_step() if step is None else step
        restored = self._restore(step, ocp.args.Composite(metadata=ocp.args.JsonRestore()))
        metadata = restored["metadata"]
        if not isinstance(metadata, dict):
            raise CheckpointError(f"checkpoint {step} in {self.directory} is unreadable (its metadata is not a JSON object)")
        return metadata

    def restore(self, template: Any, step: int | None = None) -> tuple[Any, dict[str, Any]]:
        """The state saved at ``step`` (default: the newest) and its metadata.

        ``template`` is a pytree of the expected structure (arrays or ``jax.ShapeDtypeStruct``,
        e.g. from ``jax.eval_shape`` of an init function); a checkpoint whose leaves differ in
        path, shape or dtype raises ``CheckpointError`` naming the first one. Leaves come back as
        arrays on the default device."""
        import orbax.checkpoint as ocp

        step = self.latest_step() if step is None else step
        expected = state_layout(template)
        layout = self._restore(step, ocp.args.Composite(layout=ocp.args.JsonRestore()))["layout"]
        if not isinstance(layout, dict) or layout.get("format") != LAYOUT_FORMAT or not isinstance(layout.get("leaves"), list):
            raise CheckpointError(f"checkpoint {step} in {self.directory} is unreadable (unknown state layout)")
        saved = layout["leaves"]
        difference = _first_layout_difference(saved, expected)
        if difference:
            raise CheckpointError(f"checkpoint {step} in {self.directory} does not fit: {difference}")
        template_leaves, treedef = jax.tree_util.tree_flatten(template)
        abstract = {}
        for index, leaf in enumerate(template_leaves):
            stored = jax.eval_shape(jax.random.key_data, leaf) if _is_key(leaf) else leaf
            abstract[f"{index:05d}"] = jax.ShapeDtypeStruct(stored.shape, stored.dtype)
        restored = self._restore(
            step, ocp.args.Composite(state=ocp.args.StandardRestore(abstract), metadata=ocp.args.JsonRestore())
        )
        arrays, metadata = restored["state"], restored["metadata"]
        leaves = []
        for index, (leaf, entry) in enumerate(zip(template_leaves, saved)):
            value = arrays[f"{index:05d}"]
            value = np.asarray(value)
            if value.shape != abstract[f"{index:05d}"].shape or _digest(value) != entry.get("sha256"):
                raise CheckpointError(f"checkpoint {step} in {self.directory} is corrupt (state leaf {entry['path']} fails its checksum)")
            value = jax.device_put(value)
            if _is_key(leaf):
                value = jax.random.wrap_key_data(value, impl=str(entry.get("key_impl")))
            leaves.append(value)
        return jax.tree_util.tree_unflatten(treedef, leaves), metadata

    def _restore(self, step: int, args: Any) -> Any:
        if step not in self.steps():
            raise CheckpointError(f"no checkpoint {step} in {self.directory}")
        _quiet_orphaned_reads()  # before: the first orphaned read can finish before we catch
        try:
            return self._manager.restore(step, args=args)
        except CheckpointError:
            raise
        except Exception as error:  # noqa: BLE001 - corrupt files surface as many error types
            raise CheckpointError(f"checkpoint {step} in {self.directory} is unreadable ({_first_line(error)})") from None

    # -- writing ----------------------------------------------------------------------------

    def save(self, step: int, state: Any, metadata: Mapping[str, Any]) -> None:
        """Starts saving ``state`` and ``metadata`` as ``step``; returns once the arrays are copied
        to host memory (the write itself finishes in the background, see ``wait``). Older steps
        beyond ``keep`` are deleted once it is complete. Saving a step that exists is a no-op."""
        import orbax.checkpoint as ocp

        if not self.writable:
            raise RuntimeError("this CheckpointStore was opened read-only")
        if step in self.steps():
            return
        arrays, layout = host_copy(state)
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(arrays),
                layout=ocp.args.JsonSave({"format": LAYOUT_FORMAT, "leaves": layout}),
                metadata=ocp.args.JsonSave(dict(metadata)),
            ),
        )

    def wait(self) -> None:
        """Blocks until every started save is complete on disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Finishes pending saves and releases Orbax's background threads."""
        if "_manager" not in self.__dict__:  # never opened: nothing to finish
            return
        self._manager.wait_until_finished()
        self._manager.close()

    def __enter__(self) -> "CheckpointStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def json_float(value: Any) -> float | None:
    """A float for JSON, ``None`` for NaN (strict JSON has no NaN). Exact: a float32 widened to
    float64 is printed with a repr that parses back to the same bits."""
    value = float(value)
    return None if math.isnan(value) else value


def encode_rows(rows: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Metric rows ``name -> [runs, rows]`` as JSON (dtype kept, NaN as null)."""
    return {
        name: {"dtype": str(values.dtype), "values": [[json_float(v) for v in run] for run in np.asarray(values)]}
        for name, values in rows.items()
    }


def decode_rows(encoded: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The inverse of ``encode_rows``, bit for bit."""
    rows = {}
    for name, entry in encoded.items():
        dtype = np.dtype(entry["dtype"])
        if dtype.kind != "f":
            raise CheckpointError(f"metric {name!r} has non-float dtype {dtype} in the checkpoint")
        values = [[np.nan if v is None else float(v) for v in run] for run in entry["values"]]
        rows[str(name)] = np.asarray(values, np.float64).astype(dtype)
    return rows
