"""What the kill -9 tests share: wait for a training process's first complete checkpoint, then
SIGKILL it."""

import os
import signal
import subprocess
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
