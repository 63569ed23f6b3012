"""The command line: bad input ends in one line and exit code 2; a run writes its directory."""

import dataclasses
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from jaxrl.core.contract import Algorithm, register
from jaxrl.algorithms.ppo import PPO
from jaxrl.cli import main
from jaxrl.driver.run import load_run

register(Algorithm(**{**{f.name: getattr(PPO, f.name) for f in dataclasses.fields(PPO)}, "name": "test-discrete-only", "continuous": False}))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "ppo", "--env", "CartPol-v1"], "did you mean CartPole-v1"),
        (["train", "pppo", "--env", "CartPole-v1"], "unknown algorithm 'pppo'"),
        (["train", "ppo", "--env", "CartPole-v1", "--total-steps", "100"], "below one batch"),
        (["train", "ppo", "--env", "CartPole-v1", "--set", "num_minibatches=3"], "does not divide"),
        (["train", "ppo", "--env", "CartPole-v1", "--set", "lr=-3e-4"], "lr must be positive"),
        (["train", "ppo", "--env", "CartPole-v1", "--set", "learning_rate=3e-4"], "no setting 'learning_rate'"),
        (["train", "ppo", "--env", "CartPole-v1", "--set", "lr"], "KEY=VALUE"),
        (["train", "ppo", "--env", "CartPole-v1", "--seeds", "0"], "--seeds"),
        (["train", "ppo", "--env", "CartPole-v1", "--final-fraction", "1.5"], "final_fraction must be a number in (0, 1]"),
        (["train", "test-discrete-only", "--env", "Pendulum-v1"], "needs discrete actions"),
        (["train", "ppo"], "required: --env"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, message, capsys, tmp_path):
    code = main(argv + ["--out", str(tmp_path / "run")] if argv[0] == "train" and "--env" in argv else argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "run" / "config.json").exists()


def test_help_and_list(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--total-steps" in capsys.readouterr().out
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "ppo" in out and "CartPole-v1" in out and "brax/hopper" in out


def test_background_imports_load_a_deferred_module():
    # envs defers matplotlib.pyplot to its first use; the driver's background imports (started
    # while the device trains) must load the real module, not just look up the stand-in.
    code = ("import sys, envs; from jaxrl.driver.runner import _import_in_background; "
            "assert type(sys.modules['matplotlib.pyplot']).__name__ == '_ImportedOnUse'; "
            "_import_in_background(['matplotlib.pyplot']).join(); "
            "assert type(sys.modules['matplotlib.pyplot']).__name__ == 'module' and hasattr(sys.modules['matplotlib.pyplot'], 'subplots')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_train_writes_run_directory_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "jaxrl.cli", "train", "ppo", "--env", "CartPole-v1", "--seeds", "2",
           "--total-steps", "10240", "--set", "lr=3e-4", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy(), timeout=600)
    assert done.returncode == 0, done.stderr
    assert "final return" in done.stdout and "+-" in done.stdout
    config = json.loads((out / "config.json").read_text())
    assert config["algorithm"] == "ppo" and config["hparams"]["lr"] == pytest.approx(3e-4)
    frame = pd.read_csv(out / "metrics.csv")
    assert {"step", "seed", "episode_return", "episode_length", "policy_loss", "value_loss"} <= set(frame.columns)
    assert sorted(frame.seed.unique()) == [0, 1]
    assert (out / "curve.png").stat().st_size > 1000
    # The command ends without the interpreter's teardown (cli.entry): its checkpoint is complete.
    assert load_run(out).step == config["env_steps"]
    before = (out / "metrics.csv").read_bytes()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 2 and "--overwrite" in again.stderr and "Traceback" not in again.stderr
    assert (out / "metrics.csv").read_bytes() == before


def test_command_line_layers_import_downwards_only():
    """The command line is a package in layers: ``common`` imports no other command module, each
    subcommand imports only ``common``, and only the package's top registers them (no circle)."""
    import ast
    from pathlib import Path

    import jaxrl.cli

    package = Path(jaxrl.cli.__file__).parent
    for path in package.glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jaxrl.cli"):
                imported |= {node.module} if node.module != "jaxrl.cli" else {f"jaxrl.cli.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names if a.name.startswith("jaxrl.cli")}
        if path.stem == "common":
            assert not imported, imported
        elif path.stem not in ("__init__", "__main__"):
            assert imported <= {"jaxrl.cli.common"}, (path.name, imported)
