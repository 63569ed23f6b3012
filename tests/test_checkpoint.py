"""Runs that survive: chunking computes what one call does, checkpoints restore bit for bit, a run
killed with SIGKILL resumes to the uninterrupted run's metrics, and bad resumes are refused with
one line, exit code 2 and the run directory untouched."""

import dataclasses
import hashlib
import os
import shutil
import signal
import struct
import subprocess
import sys
import types
from importlib.machinery import ModuleSpec
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct as flax_struct

from killing import complete_steps, kill_at_first_checkpoint

from jaxrl.driver import run as session
from jaxrl.driver import runner
from jaxrl.core.contract import register
from jaxrl.algorithms.ppo import PPO
from jaxrl.driver.checkpoint import CheckpointError, CheckpointStore, decode_rows, encode_rows, first_difference
from jaxrl.cli import main
from jaxrl.driver.training import train
from jaxrl.driver.run import load_run, plan_checkpoints

# One configuration for every CLI run in this file, so they share compiled programs. Long enough
# (195 updates, ~1.5 s on a loaded 2-core CPU) that a kill after the first checkpoint lands
# mid-run; a checkpoint every 8192 env steps is every 16 updates = 2 chunks of 8.
TRAIN = ["train", "ppo", "--env", "CartPole-v1", "--total-steps", "100000", "--set", "num_envs=4",
         "--checkpoint-every", "8192", "--quiet"]


# The same algorithm under another name: a checkpoint of "ppo" must not resume as it.
register(dataclasses.replace(PPO, name="ppo-twin"))


def _snapshot(path: Path) -> dict[str, str]:
    """Every file and directory under ``path`` with a hash of its content."""
    out = {}
    for item in sorted(path.rglob("*")):
        rel = str(item.relative_to(path))
        out[rel] = "dir" if item.is_dir() else hashlib.sha256(item.read_bytes()).hexdigest()
    return out


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    """An uninterrupted run of TRAIN (with TensorBoard events)."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert main(TRAIN + ["--tensorboard", "--out", str(out)]) == 0
    return out


# --------------------------------------------------------------------------------------------
# Chunking and planning


def _leaves(tree):
    return [np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x) for x in jax.tree.leaves(tree)]


def test_chunked_run_equals_single_call_bitwise():
    # 39 updates: 19 windows of 2 and one of 1; 3 windows a chunk leaves a padded last chunk.
    kwargs = dict(overrides={"total_steps": 20_000, "num_envs": 4}, num_seeds=1, log_every=2)
    chunked = train("ppo", "CartPole-v1", chunk_windows=3, **kwargs)
    single = train("ppo", "CartPole-v1", chunk_windows=20, **kwargs)
    seen = []
    hooked = session.run_seeds(chunked.train, seed=0, num_seeds=1, chunk_windows=3, on_chunk=lambda state, done: seen.append(done))
    assert seen == [3, 6, 9, 12, 15, 18, 20]
    for other in (single, hooked):
        np.testing.assert_array_equal(chunked.steps, other.steps)
        assert chunked.metrics.keys() == other.metrics.keys()
        _assert_run_equals(chunked, other.state, other.metrics)
    # The driver runs windows of the one pure function: ``Train.init`` and then all windows of
    # ``Train.run`` in one call give the same bits. One run is run off the run axis, unbatched
    # (runner.py); several are vmapped, their shared env parameters unbatched.
    train_fn = chunked.train
    hparams = train_fn.default_hparams
    state = jax.jit(lambda key: train_fn.init(key, hparams))(runner.run_keys(0, np.arange(1))[0])
    state, rows = jax.jit(lambda state: train_fn.run(state, hparams))(state)
    _assert_run_equals(chunked, runner._put_run(state, runner.state_axes(state)), jax.tree.map(lambda x: x[None], rows))
    two = train("ppo", "CartPole-v1", chunk_windows=3, **{**kwargs, "num_seeds": 2})
    states = jax.jit(lambda keys: jax.lax.map(lambda key: train_fn.init(key, hparams), keys))(runner.run_keys(0, np.arange(2)))
    states = states.replace(env=states.env.replace(params=jax.tree.map(lambda x: x[0], states.env.params)))
    axes = runner.state_axes(states)
    _assert_run_equals(two, *jax.jit(jax.vmap(lambda state: train_fn.run(state, hparams), in_axes=(axes,), out_axes=(axes, 0)))(states))


def _assert_run_equals(result, state, rows):
    for name in result.metrics:
        np.testing.assert_array_equal(np.asarray(rows[name]), result.metrics[name], err_msg=name)
    for a, b in zip(_leaves(result.state), _leaves(state)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "num_logs, log_every, checkpoint_every, expected",
    [
        (195, 1, 8192, (16, 16)),  # 16 windows, within one default chunk (20 windows): chunks of 16
        (195, 1, 2048, (4, 4)),  # shorter than a default chunk: the chunk shrinks to it
        (195, 1, 0, (None, 20)),  # only the final checkpoint; default chunks (195 windows / 10)
        (195, 1, None, (20, 20)),  # default: about ten a run
        (200, 10, 97 * 10 * 512, (100, 20)),  # 97 windows (prime): rounded to 100, whole chunks of 20
    ],
)
def test_plan_checkpoints_falls_on_chunk_boundaries(num_logs, log_every, checkpoint_every, expected):
    plan = plan_checkpoints(num_logs, log_every, 512, checkpoint_every)
    assert (plan.every_windows, plan.chunk_windows) == expected
    if plan.every_windows is not None:
        assert plan.every_windows % plan.chunk_windows == 0


# --------------------------------------------------------------------------------------------
# The store


@flax_struct.dataclass
class _Toy:
    params: dict
    key: jax.Array
    step: jax.Array
    flags: jax.Array


def _toy(seed: int) -> _Toy:
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(seed), i))(jnp.arange(3))
    return _Toy(
        params={"w": jax.random.normal(jax.random.key(seed), (3, 5)), "b": jnp.full((3,), np.nan)},
        key=keys,
        step=jnp.asarray(seed, jnp.int32),
        flags=jnp.asarray([True, False, True]),
    )


def test_store_round_trips_typed_keys_and_keeps_the_newest(tmp_path):
    directory = tmp_path / "checkpoints"
    with CheckpointStore(directory, keep=2, writable=True) as store:
        for step in (10, 20, 30):
            store.save(step, _toy(step), {"step": step, "note": "x"})
    reader = CheckpointStore(directory)
    assert reader.steps() == [20, 30]
    template = jax.eval_shape(lambda: _toy(0))
    state, metadata = reader.restore(template)
    assert metadata == {"step": 30, "note": "x"}
    expected = _toy(30)
    assert jax.dtypes.issubdtype(state.key.dtype, jax.dtypes.prng_key)
    np.testing.assert_array_equal(jax.random.key_data(state.key), jax.random.key_data(expected.key))
    # The restored key draws the same numbers: it is the same key, not just the same bits.
    np.testing.assert_array_equal(jax.random.uniform(state.key[1]), jax.random.uniform(expected.key[1]))
    for a, b in zip(jax.tree.leaves(state.params) + [state.step, state.flags], jax.tree.leaves(expected.params) + [expected.step, expected.flags]):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    reader.close()


def test_store_refuses_another_shape_naming_the_leaf(tmp_path):
    with CheckpointStore(tmp_path / "c", writable=True) as store:
        store.save(1, _toy(1), {})
    wider = jax.eval_shape(lambda: _toy(1).replace(params={"w": jnp.zeros((3, 6)), "b": jnp.zeros(3)}))
    with pytest.raises(CheckpointError, match=r"\.params\['w'\] has shape \[3, 5\] in the checkpoint, \[3, 6\] now"):
        CheckpointStore(tmp_path / "c").restore(wider)


def test_read_only_store_creates_nothing(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        CheckpointStore(tmp_path / "missing")
    assert not (tmp_path / "missing").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        CheckpointStore(tmp_path / "empty").latest_step()
    assert list((tmp_path / "empty").iterdir()) == []


def test_metric_rows_survive_json_bit_for_bit():
    values = np.asarray([[np.nan, 1 / 3, 3.4028235e38, 1e-45, -0.0, 26.411764]], np.float32)
    decoded = decode_rows(encode_rows({"episode_return": values}))["episode_return"]
    assert decoded.dtype == np.float32
    assert decoded.tobytes() == values.tobytes()


def test_first_difference_names_the_field():
    assert first_difference({"a": 1, "b": [64, 64]}, {"a": 1, "b": (64, 64)}) is None
    assert first_difference({"b": [64, 64]}, {"b": [64, 32]}, "config") == "config.b is [64, 64] in the checkpoint, [64, 32] now"
    assert first_difference(0.5, 0.25, "hparams.lr") == "hparams.lr is 0.5 in the checkpoint, 0.25 now"


# --------------------------------------------------------------------------------------------
# Resume


def test_sigkill_then_resume_matches_uninterrupted_run(reference_run, tmp_path, monkeypatch):
    run = tmp_path / "run"
    stderr = tmp_path / "stderr.txt"
    with stderr.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "jaxrl.cli", *TRAIN, "--out", str(run)],
                                stdout=subprocess.DEVNULL, stderr=err, env=os.environ.copy())
        kill_at_first_checkpoint(proc, run / "checkpoints", stderr.read_text)
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "config.json").exists(), "the kill came too late: the run had finished"
    killed_at = complete_steps(run / "checkpoints")[-1]
    assert killed_at < 99_840

    started = []
    real_run = session.run_seeds
    monkeypatch.setattr(session, "run_seeds", lambda *a, **k: started.append(k["start_window"]) or real_run(*a, **k))
    assert main(TRAIN + ["--resume", str(run)]) == 0
    assert started == [killed_at // 512]  # it continued from the newest checkpoint (one update a window)
    assert (run / "metrics.csv").read_bytes() == (reference_run / "metrics.csv").read_bytes()
    assert complete_steps(run / "checkpoints") == [98_304, 99_840]  # the newest two (keep 2)


@pytest.mark.parametrize(
    "change, message",
    [
        (["--set", "num_envs=8"], "config.num_envs is 4 in the checkpoint, 8 now"),
        (["--set", "lr=1e-3"], "hparams.lr is 0.00025 in the checkpoint, 0.001 now"),
        (["--seeds", "2"], "num_seeds is 1 in the checkpoint, 2 now"),
        (["--seed", "3"], "seed is 0 in the checkpoint, 3 now"),
        (["--log-every", "3"], "log_every is 1 in the checkpoint, 3 now"),
        (["--env", "Acrobot-v1"], "env is 'CartPole-v1' in the checkpoint, 'Acrobot-v1' now"),
        (["--env-set", "max_steps_in_episode=200"], "env_overrides.max_steps_in_episode is missing from the checkpoint"),
    ],
)
def test_resume_refuses_another_run(reference_run, tmp_path, capsys, change, message):
    run = tmp_path / "run"
    shutil.copytree(reference_run, run)
    before = _snapshot(run)
    assert main(TRAIN + change + ["--resume", str(run)]) == 2
    assert message in _one_line_error(capsys)
    assert _snapshot(run) == before


def test_resume_refuses_another_algorithm(reference_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(reference_run, run)
    before = _snapshot(run)
    argv = [("ppo-twin" if arg == "ppo" else arg) for arg in TRAIN]
    assert main(argv + ["--resume", str(run)]) == 2
    assert "algorithm is 'ppo' in the checkpoint, 'ppo-twin' now" in _one_line_error(capsys)
    assert _snapshot(run) == before


def _latest(run: Path) -> Path:
    return run / "checkpoints" / str(complete_steps(run / "checkpoints")[-1])


def _corrupt_data(run: Path) -> None:
    for data in (_latest(run) / "state").rglob("d/*"):
        data.write_bytes(data.read_bytes()[:20])


def _wrong_digest(run: Path) -> None:
    # What a flipped bit inside a stored array looks like to the loader: data that decodes but
    # no longer matches the digest saved with it (compressed data can decode silently wrong).
    layout_file = _latest(run) / "layout" / "metadata"
    text = layout_file.read_text()
    first = text.index('"sha256": "') + len('"sha256": "')
    layout_file.write_text(text[:first] + ("1" if text[first] == "0" else "0") + text[first + 1:])


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda run: shutil.rmtree(run / "checkpoints"), "has no checkpoints to load"),
        (lambda run: [shutil.rmtree(p) for p in (run / "checkpoints").iterdir()], "no checkpoint found"),
        (lambda run: (_latest(run) / "metadata" / "metadata").write_text("{oops"), "is unreadable (JSONDecodeError"),
        (lambda run: (_latest(run) / "layout" / "metadata").write_text('{"format": 7}'), "unknown state layout"),
        (_corrupt_data, "is unreadable"),
        (_wrong_digest, "fails its checksum"),
    ],
)
def test_corrupt_or_missing_checkpoint_is_a_clear_error(reference_run, tmp_path, capsys, damage, message):
    run = tmp_path / "run"
    shutil.copytree(reference_run, run)
    damage(run)
    before = _snapshot(run)
    assert main(TRAIN + ["--resume", str(run)]) == 2
    assert message in _one_line_error(capsys)
    assert _snapshot(run) == before
    assert main(["eval", str(run), "--episodes", "2"]) == 2
    assert message in _one_line_error(capsys)
    assert _snapshot(run) == before


def test_a_partial_write_is_invisible(reference_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference_run, run)
    # What a process killed while writing step 200000 leaves behind (orbax's temporary name).
    partial = run / "checkpoints" / "200000.orbax-checkpoint-tmp-1234567890"
    (partial / "state").mkdir(parents=True)
    (partial / "state" / "junk").write_bytes(b"\x00" * 10)
    assert load_run(run).step == 99_840


def test_new_run_refuses_a_directory_with_checkpoints(reference_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(reference_run, run)
    (run / "config.json").unlink()  # a run that crashed before finishing
    before = _snapshot(run)
    assert main(TRAIN + ["--out", str(run)]) == 2
    assert "--resume" in _one_line_error(capsys)
    assert _snapshot(run) == before


def test_resume_and_out_must_agree(reference_run, tmp_path, capsys):
    assert main(TRAIN + ["--resume", str(reference_run), "--out", str(tmp_path / "elsewhere")]) == 2
    assert "--resume" in _one_line_error(capsys)
    assert not (tmp_path / "elsewhere").exists()


# --------------------------------------------------------------------------------------------
# Logs


def _tensorboard_scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    """Reads TFRecord event files with tensorboardX's protobufs (no TensorFlow needed)."""
    from tensorboardX.proto import event_pb2

    scalars: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
            offset += 12 + length + 4
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def test_tensorboard_events_hold_the_logged_rows(reference_run):
    import pandas as pd

    pytest.importorskip("tensorboardX")
    frame = pd.read_csv(reference_run / "metrics.csv")
    scalars = _tensorboard_scalars(reference_run / "tensorboard")
    assert [step for step, _ in scalars["entropy"]] == frame["step"].tolist()
    np.testing.assert_allclose([v for _, v in scalars["entropy"]], frame["entropy"], rtol=1e-6)
    finite = frame.dropna(subset=["episode_return"])
    assert [step for step, _ in scalars["episode_return"]] == finite["step"].tolist()


def test_missing_logging_package_is_a_clear_error(tmp_path, capsys, monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("wandb", "tensorboardX") else real_find_spec(name, *a))
    for flag, package in (("--wandb", "wandb"), ("--tensorboard", "tensorboardX")):
        assert main(TRAIN + [flag, "--out", str(tmp_path / "run")]) == 2
        assert f"needs the {package} package" in _one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_wandb_receives_every_row_once(tmp_path, monkeypatch):
    logged = []

    class FakeRun:
        def log(self, values, step):
            logged.append((step, values))

        def finish(self):
            logged.append("finished")

    fake = types.ModuleType("wandb")
    fake.__spec__ = ModuleSpec("wandb", None)
    fake.init = lambda **kwargs: logged.append(kwargs) or FakeRun()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    result = session.train_run("ppo", "CartPole-v1", tmp_path / "run", overrides={"total_steps": 100_000, "num_envs": 4},
                               checkpoint_every=8192, wandb=True)
    init, *rows, finished = logged
    assert init["id"] and init["dir"] == str((tmp_path / "run").resolve()) and init["config"]["algorithm"] == "ppo"
    assert finished == "finished"
    assert [step for step, _ in rows] == result.steps.tolist()
    assert rows[-1][1]["entropy"] == pytest.approx(float(result.metrics["entropy"][0, -1]))
