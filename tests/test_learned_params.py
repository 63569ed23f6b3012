"""A hyperparameter that is a weight pytree (a learned objective's network) end to end: it trains,
sweeps with a population axis per leaf, checkpoints as Orbax arrays (JSON holds only shapes and
digests), resumes exactly after SIGKILL, is compared on resume, and the run evaluates and loads."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import jaxrl
import learned_objective
from killing import kill_at_first_checkpoint
from jaxrl.core.contract import ConfigError
from jaxrl.driver.checkpoint import CheckpointError
from jaxrl.driver.run import load_run, train_run

OVERRIDES = {"total_steps": 50_000, "num_envs": 4, "objective": "test-weighted"}
WEIGHTS = learned_objective.weights(1.5, 0.1)
EVERY = 8192  # env steps: every 16 of the 97 updates

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    import learned_objective
    from jaxrl.driver.run import train_run
    train_run("ppo", "CartPole-v1", {run!r}, overrides={{**{overrides!r}, "objective_params": learned_objective.weights(1.5, 0.1)}},
              checkpoint_every={every})
    """
)


def _leaves_arrays(tree):
    return {k: np.asarray(v) for k, v in [("scale", tree["scale"]), ("kl.coef", tree["kl"]["coef"])]}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("learned") / "run"
    train_run("ppo", "CartPole-v1", out, overrides={**OVERRIDES, "objective_params": WEIGHTS}, checkpoint_every=EVERY)
    return out


def test_config_json_holds_shapes_and_digests_not_weights(uninterrupted):
    saved = json.loads((uninterrupted / "config.json").read_text())["hparams"]["objective_params"]
    leaf = saved["arrays"]["dict"]["scale"]
    assert leaf["shape"] == [1] and leaf["dtype"] == "float32" and len(leaf["sha256"]) == 64
    assert saved["arrays"]["dict"]["kl"]["dict"]["coef"]["shape"] == []

    def numbers(node):
        if isinstance(node, dict):
            return [x for k, v in node.items() if k != "shape" for x in numbers(v)]
        if isinstance(node, list):
            return [x for v in node for x in numbers(v)]
        return [node] if isinstance(node, float) else []

    assert numbers(saved) == []  # no weight values anywhere in the JSON


def test_sigkill_then_resume_matches_and_the_run_loads(uninterrupted, tmp_path):
    run = tmp_path / "run"
    script = SCRIPT.format(tests=str(Path(__file__).parent), run=str(run), overrides=OVERRIDES, every=EVERY)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
    kill_at_first_checkpoint(proc, run / "checkpoints", lambda: proc.stderr.read().decode())
    assert not (run / "config.json").exists(), "the kill came too late: the run had finished"
    train_run("ppo", "CartPole-v1", run, overrides={**OVERRIDES, "objective_params": WEIGHTS}, checkpoint_every=EVERY, resume=True)
    assert (run / "metrics.csv").read_bytes() == (uninterrupted / "metrics.csv").read_bytes()
    # The checkpoint's arrays are the weights, rebuilt without being given again.
    loaded = load_run(run)
    for name, value in _leaves_arrays(loaded.hparams.objective_params).items():
        np.testing.assert_array_equal(value, _leaves_arrays(WEIGHTS)[name], err_msg=name)
    report = jaxrl.evaluate(run, episodes=4)
    assert report.returns.shape == (1, 4) and np.isfinite(report.mean_return)
    act = jaxrl.load_policy(run)
    assert act(np.zeros((3, 4), np.float32), jax_key()).shape == (3,)


def jax_key():
    import jax

    return jax.random.key(0)


def test_resume_with_other_weights_is_refused(uninterrupted, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(uninterrupted, run)
    (run / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"hparams\.objective_params\.arrays\.dict\.scale\.sha256"):
        train_run("ppo", "CartPole-v1", run, overrides={**OVERRIDES, "objective_params": learned_objective.weights(1.4, 0.1)},
                  checkpoint_every=EVERY, resume=True)


def test_sweep_over_weight_pytrees_is_one_program_and_equals_runs_alone():
    small = {"total_steps": 4096, "num_envs": 4, "objective": "test-weighted"}
    population = [learned_objective.weights(1.0, 0.0), learned_objective.weights(2.0, 0.5)]
    result = jaxrl.sweep("ppo", "CartPole-v1", grid={"objective_params": population}, seeds=2, overrides=small)
    assert result.num_compilations <= 1 and len(result.configs) == 2
    assert result.results["objective_params"].str.startswith("arrays:").all()
    alone = jaxrl.train("ppo", "CartPole-v1", num_seeds=2, overrides={**small, "objective_params": population[1]})
    swept = result.results[result.results["config_id"] == 1].pivot(index="seed", columns="step", values="value_loss")
    np.testing.assert_array_equal(swept.to_numpy(), alone.metrics["value_loss"])
    with pytest.raises(ConfigError, match="same structure"):
        jaxrl.sweep("ppo", "CartPole-v1", grid={"objective_params": [population[0], {"scale": np.ones(1, np.float32)}]},
                    seeds=1, overrides=small)
