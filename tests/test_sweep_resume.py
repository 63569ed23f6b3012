"""Sweep checkpoints: a sweep interrupted mid-way and resumed writes results.csv bitwise equal to
an uninterrupted one, and a checkpoint of a different sweep is refused on one line without
touching the directory.

Tiny budgets (8 updates of 4 envs x 128 steps, two structural groups of 2 lrs x 2 seeds): the
tests check bookkeeping and exactness, not learning."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import jaxrl
from jaxrl.core.contract import ConfigError
from jaxrl.cli import main

SMALL = {"total_steps": 4096, "num_envs": 4}
GRID = {"lr": [1e-4, 1e-3], "num_minibatches": [2, 4]}  # num_minibatches is structural: 2 groups
EVERY = 1024  # env steps per run: a checkpoint every 2 of a group's 8 updates
GROUP_STEPS = 4 * 4096  # env steps of one group, summed over its 4 runs


class Interrupted(Exception):
    """Stands in for a crash partway through a sweep."""


def _sweep(out: Path, **kwargs):
    return jaxrl.sweep(
        "ppo", "CartPole-v1", grid=GRID, seeds=2, overrides=SMALL, run_dir=out, checkpoint_every=EVERY, **kwargs
    )


def _tree_digest(path: Path) -> dict[str, str]:
    """Every file under ``path`` with a hash of its bytes: equal digests mean nothing changed."""
    return {str(f.relative_to(path)): hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(path.rglob("*")) if f.is_file()}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "full"
    _sweep(out)
    return out


def test_checkpointing_changes_no_result(tmp_path, uninterrupted):
    # Checkpoints force shorter chunks; a chunked run computes exactly what one call would.
    plain = jaxrl.sweep("ppo", "CartPole-v1", grid=GRID, seeds=2, overrides=SMALL)
    plain.write(tmp_path)
    assert (tmp_path / "results.csv").read_bytes() == (uninterrupted / "results.csv").read_bytes()


def _interrupt_after(calls_past: int, past_steps: int):
    """A progress callback that raises on its ``calls_past``-th call beyond ``past_steps`` env steps:
    after at least one checkpoint of the group that is running then."""
    seen = [0]

    def progress(done: int, total: int) -> None:
        if done > past_steps:
            seen[0] += 1
            if seen[0] >= calls_past:
                raise Interrupted

    return progress


@pytest.mark.parametrize(
    "calls_past, past_steps",
    [(3, GROUP_STEPS), (3, 0)],  # inside the second group, then the first; one log per chunk,
    # a checkpoint every second chunk: the third chunk raises after the group's first checkpoint
    ids=["second-group", "first-group"],
)
def test_resumed_sweep_equals_uninterrupted(tmp_path, uninterrupted, calls_past, past_steps):
    out = tmp_path / "s"
    with pytest.raises(Interrupted):
        _sweep(out, progress=_interrupt_after(calls_past, past_steps))
    assert not (out / "results.csv").exists()
    assert (out / "checkpoints").is_dir()
    # A fresh sweep into the interrupted one's directory is refused without --overwrite.
    with pytest.raises(ConfigError, match="--resume"):
        _sweep(out)
    _sweep(out, resume=True)
    assert (out / "results.csv").read_bytes() == (uninterrupted / "results.csv").read_bytes()
    assert (out / "summary.csv").read_bytes() == (uninterrupted / "summary.csv").read_bytes()


def test_resume_of_a_different_sweep_is_refused_and_changes_nothing(tmp_path, capsys):
    out = tmp_path / "s"
    with pytest.raises(Interrupted):
        _sweep(out, progress=_interrupt_after(3, GROUP_STEPS))
    before = _tree_digest(out)
    base = [
        "sweep", "ppo", "--env", "CartPole-v1", "--grid", "lr=1e-4,1e-3", "--grid", "num_minibatches=2,4",
        "--seeds", "2", "--set", "num_envs=4", "--total-steps", "4096", "--checkpoint-every", str(EVERY),
        "--resume", str(out), "--quiet",
    ]
    changes = {
        "configs": ["--grid", "lr=1e-4,3e-4"],  # another lr grid: other configurations
        "seeds": ["--seeds", "3"],
        "overrides": ["--set", "gamma=0.9"],
        "env": ["--env", "Acrobot-v1"],
    }
    for field, extra in changes.items():
        args = list(base)
        if extra[0] == "--grid":
            args[args.index("lr=1e-4,1e-3")] = extra[1]
        elif extra[0] in ("--seeds", "--env"):
            args[args.index(extra[0]) + 1] = extra[1]
        else:
            args += extra
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and field in err, (field, err)
        assert _tree_digest(out) == before, field
    # The same sweep resumes from the command line and completes.
    assert main(base) == 0
    assert (out / "results.csv").is_file()
