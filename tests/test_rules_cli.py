"""`jaxrl meta-train lpg` and `jaxrl train lpg --rule`: the saved rule is the trained one, a fresh
agent trains with it, resume after kill -9 is exact, bad input is one line and exit code 2."""

import signal

import jax
import numpy as np
import pandas as pd
import pytest

from jaxrl.cli import main
from jaxrl.driver.run import load_run
from jaxrl.rules.agent import LPGConfig, initial_rule_params
from jaxrl.rules.run import load_rule

from killing import complete_steps, run_until_killed

TINY = ["--set", "num_agents=2", "--set", "num_envs=2", "--set", "num_steps=5", "--set", "inner_updates=2",
        "--set", "hidden_size=8", "--set", "num_bins=4"]
META = ["meta-train", "lpg", "--quiet", *TINY]


def leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_saved_rule_is_the_trained_one_and_trains_a_fresh_agent(tmp_path):
    out = tmp_path / "m"
    assert main([*META, "--meta-steps", "3", "--checkpoint-every", "2", "--out", str(out)]) == 0
    frame = pd.read_csv(out / "meta.csv")
    assert list(frame["meta_step"]) == [1, 2, 3] and (out / "meta.png").exists() and (out / "config.json").exists()
    weights, settings = load_rule(out)
    assert settings == {"rule": "lpg", "num_bins": 4, "rule_hidden": 8}
    initial = initial_rule_params(LPGConfig(num_bins=4, rule_hidden=8), jax.random.split(jax.random.PRNGKey(0), 3)[0])
    assert [a.shape for a in leaves(weights)] == [a.shape for a in leaves(initial)]
    assert any(not np.array_equal(a, b) for a, b in zip(leaves(weights), leaves(initial)))  # trained, not initial
    run = tmp_path / "t"
    assert main(["train", "lpg", "--env", "gridworld/sparse", "--rule", str(out), "--total-steps", "3200", "--quiet",
                 "--out", str(run)]) == 0
    loaded = load_run(run)
    for a, b in zip(leaves(loaded.train.default_hparams.rule_params), leaves(weights)):
        np.testing.assert_array_equal(a, b)
    assert loaded.train.config.num_bins == 4 and loaded.train.config.rule_hidden == 8
    assert main(["eval", str(run), "--episodes", "3"]) == 0 and (run / "eval.json").exists()


def test_rule_meta_training_resumes_exactly_after_sigkill(tmp_path):
    args = [*META, "--meta-steps", "5", "--checkpoint-every", "1"]
    reference = tmp_path / "reference"
    assert main([*args, "--out", str(reference)]) == 0
    run = tmp_path / "run"
    proc = run_until_killed(args, run, tmp_path / "stderr.txt")
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "config.json").exists(), "the kill came too late: the run had finished"
    assert complete_steps(run / "checkpoints")[-1] < 5
    assert main([*args, "--resume", str(run)]) == 0
    resumed, expected = pd.read_csv(run / "meta.csv"), pd.read_csv(reference / "meta.csv")
    pd.testing.assert_frame_equal(resumed.drop(columns="wall_time"), expected.drop(columns="wall_time"), check_exact=True)
    for a, b in zip(leaves(load_rule(run)[0]), leaves(load_rule(reference)[0])):
        np.testing.assert_array_equal(a, b)
    assert main([*args, "--set", "meta_lr=0.5", "--resume", str(run)]) == 2  # other settings: refused


@pytest.mark.parametrize("argv, message", [
    (["meta-train", "lpg", "--set", "num_agnts=2"], "no setting 'num_agnts' (did you mean num_agents"),
    (["meta-train", "lpg", "--set", "levels=huge"], "levels must be one of"),
    (["meta-train", "lpg", "--set", "inner_updates=0"], "inner_updates must be >= 1"),
    (["meta-train", "lpg", "--set", "remat=maybe"], "remat must be bool"),
    (["meta-train", "lpg", "--env", "CartPole-v1"], "grid-world levels"),
    (["meta-train", "groove", "--set", "min_fill=5000"], "min_fill <= buffer_size"),
    (["train", "lpg", "--env", "gridworld", "--env-set", "observation=grid"], "not one-hot"),
    (["meta-train", "lpg", "--meta-steps", "0"], "meta_steps must be an integer >= 1"),
    (["train", "ppo", "--env", "CartPole-v1", "--rule", "x"], "--rule goes with lpg, ta-lpg or disco"),
    (["train", "lpg", "--env", "gridworld", "--rule", "nowhere"], "no such directory"),
    (["train", "lpg", "--env", "gridworld", "--set", "rule=sarsa"], "rule must be one of"),
])
def test_bad_rule_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    out = tmp_path / "m"
    assert main([*argv, "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()
