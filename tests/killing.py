"""What the kill -9 tests share: start a `jaxrl` command, wait for its first complete checkpoint,
then SIGKILL it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable


def complete_steps(checkpoints: Path) -> list[int]:
    """The env steps of the checkpoints in a run's ``checkpoints`` folder, oldest first."""
    if not checkpoints.is_dir():
        return []
    return sorted(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit())


def kill_at_first_checkpoint(proc: subprocess.Popen, checkpoints: Path, stderr: Callable[[], str], timeout: float = 300) -> None:
    """SIGKILLs ``proc`` as soon as ``checkpoints`` holds a complete checkpoint; fails if the
    process ends first (with ``stderr()`` in the message) or none appears within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not complete_steps(checkpoints):
        assert proc.poll() is None, f"the run ended before its first checkpoint: {stderr()[-2000:]}"
        assert time.monotonic() < deadline, f"no checkpoint within {timeout:.0f} s"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def run_until_killed(argv: list[str], run: Path, log: Path) -> subprocess.Popen:
    """Runs ``python -m jaxrl.cli *argv --out run`` (stderr to ``log``) and SIGKILLs it at its
    first complete checkpoint; returns the ended process."""
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "jaxrl.cli", *argv, "--out", str(run)],
                                stdout=subprocess.DEVNULL, stderr=err, env=os.environ.copy())
        kill_at_first_checkpoint(proc, run / "checkpoints", log.read_text)
    return proc
