"""Evaluation and deployment from a run directory: eval.json, load_policy, bootstrap intervals,
rendering."""

import json
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import envs
from jaxrl import load_policy
from jaxrl.cli import main
from jaxrl.analysis.evaluation import episode_program, eval_keys, evaluate
from jaxrl.analysis.plotting import return_curves
from jaxrl.analysis.stats import nested_bootstrap_ci as bootstrap_ci
from jaxrl.driver.run import load_run, train_run

EPISODES = 8


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished 2-seed run with an observation normaliser, and its in-memory result."""
    run_dir = tmp_path_factory.mktemp("eval") / "run"
    result = train_run(
        "ppo", "CartPole-v1", run_dir, num_seeds=2,
        overrides={"total_steps": 20_000, "num_envs": 4, "normalize_obs": True}, checkpoint_every=0,
    )
    return run_dir, result


def test_eval_writes_eval_json(trained, capsys):
    run_dir, _ = trained
    assert main(["eval", str(run_dir), "--episodes", str(EPISODES)]) == 0
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1 and "95% CI" in out
    report = json.loads((run_dir / "eval.json").read_text())
    assert report["env"] == "CartPole-v1" and report["algorithm"] == "ppo"
    assert report["episodes"] == EPISODES and report["num_seeds"] == 2
    assert report["policy"] == "deterministic" and report["checkpoint_env_steps"] == 19_968
    per_seed = report["per_seed_mean_return"]
    assert len(per_seed) == 2 and all(1.0 <= r <= 500.0 for r in per_seed)  # CartPole's bounds
    assert report["mean_return"] == pytest.approx(np.mean(per_seed))
    low, high = report["ci95"]
    assert low <= report["mean_return"] <= high
    assert report["unfinished_episodes"] == 0


def test_load_policy_reproduces_the_trained_policy(trained):
    run_dir, result = trained
    trained_params = jax.tree.map(lambda x: x[0], result.train.policy_params(result.state))
    assert trained_params["obs_stats"] is not None  # the normaliser travels with the policy
    loaded_params = load_run(run_dir).policy_params(0)
    for a, b in zip(jax.tree.leaves(trained_params), jax.tree.leaves(loaded_params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    act = load_policy(run_dir)
    obs = 2.0 * jax.random.normal(jax.random.key(1), (256, 4))
    expected = jax.jit(lambda p, o: result.train.act(p, o, jax.random.key(0), True))(trained_params, obs)
    np.testing.assert_array_equal(act(obs, jax.random.key(0)), expected)

    # The same episodes played by the loaded act and by the trained agent give the same returns.
    env, env_params = envs.make("CartPole-v1")
    keys = eval_keys(0, 2)[:1]
    by_agent = episode_program(env, env_params, lambda p, o, k: result.train.act(p, o, k, True), EPISODES, 10_000)
    by_loaded = episode_program(env, env_params, lambda _, o, k: act(o, k), EPISODES, 10_000)
    returns_agent = by_agent(jax.tree.map(lambda x: x[None], trained_params), keys)[0]
    returns_loaded = by_loaded(jnp.zeros(1), keys)[0]
    np.testing.assert_array_equal(returns_loaded, returns_agent)
    np.testing.assert_array_equal(evaluate(run_dir, EPISODES, max_steps=10_000).returns[:1], returns_agent)


def test_load_policy_checks_the_seed_index(trained):
    from jaxrl import ConfigError

    with pytest.raises(ConfigError, match="out of range"):
        load_policy(trained[0], seed_index=2)


def test_bootstrap_interval():
    assert bootstrap_ci(np.full((3, 10), 7.0)) == (7.0, 7.0)
    rng = np.random.default_rng(0)
    returns = rng.normal(100.0, 10.0, size=(1, 400))
    low, high = bootstrap_ci(returns)
    # One seed: close to the normal interval mean +- 1.96 sd / sqrt(n) = +- 0.98.
    assert low == pytest.approx(returns.mean() - 0.98, abs=0.15)
    assert high == pytest.approx(returns.mean() + 0.98, abs=0.15)
    assert bootstrap_ci(returns) == (low, high)  # deterministic
    # Seeds that disagree widen the interval beyond what their episodes alone would give.
    spread = np.stack([np.full(50, 10.0), np.full(50, 20.0), np.full(50, 30.0)])
    low, high = bootstrap_ci(spread)
    assert low < 15.0 and high > 25.0


def test_eval_refuses_bad_input_with_one_line(tmp_path, capsys):
    for argv, message in [
        (["eval", str(tmp_path)], "has no checkpoints"),
        (["eval", str(tmp_path / "missing")], "is not a run directory"),
        (["eval", str(tmp_path), "--episodes", "0"], "--episodes must be >= 1"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_render_writes_a_gif(tmp_path):
    run_dir = tmp_path / "catch"
    assert main(["train", "ppo", "--env", "Catch-bsuite", "--total-steps", "1024", "--set", "num_envs=4",
                 "--quiet", "--out", str(run_dir)]) == 0
    assert main(["eval", str(run_dir), "--episodes", "2", "--render"]) == 0
    gif = (run_dir / "episode.gif").read_bytes()
    assert gif[:6] == b"GIF89a"
    from PIL import Image

    with Image.open(run_dir / "episode.gif") as image:
        assert image.n_frames >= 9  # a Catch episode: the ball falls through 10 rows


def test_render_refusal_leaves_no_files(trained, capsys):
    run_dir, _ = trained
    import importlib.util

    if importlib.util.find_spec("pygame") is not None:
        pytest.skip("pygame is installed, so CartPole can be rendered")
    (run_dir / "eval.json").unlink(missing_ok=True)
    assert main(["eval", str(run_dir), "--episodes", "2", "--render"]) == 2
    assert "needs pygame" in capsys.readouterr().err
    assert not (run_dir / "eval.json").exists() and not (run_dir / "episode.gif").exists()


def test_envs_gymnax_cannot_draw_are_refused():
    from jaxrl.core.contract import ConfigError
    from jaxrl.analysis.evaluation import _renderable_env

    with pytest.raises(ConfigError, match="DeepSea-bsuite cannot be rendered"):
        _renderable_env("DeepSea-bsuite", {})


def test_return_curves_carry_the_last_finished_episode_forward():
    # Seed 0 finishes episodes in windows 1 and 3, seed 1 only in window 2: the windows without a
    # finished episode show the seed's last finished return, and none is shown before the first.
    nan = float("nan")
    frame = pd.DataFrame(
        {
            "step": [1, 2, 3, 1, 2, 3],
            "seed": [0, 0, 0, 1, 1, 1],
            "episode_return": [10.0, nan, 30.0, nan, 20.0, nan],
        }
    )
    curves = return_curves(frame)
    np.testing.assert_array_equal(curves.index, [1, 2, 3])
    np.testing.assert_array_equal(curves[0], [10.0, 10.0, 30.0])
    np.testing.assert_array_equal(curves[1], [nan, 20.0, 20.0])


def test_episodes_reports_an_info_statistic_at_each_episode_end():
    # A random CartPole policy: the episode length read from the wrapper's info where each episode
    # ends is the length the loop counted itself, and episodes that never end report 0.
    from jaxrl.analysis.evaluation import episodes

    env, params = envs.make("CartPole-v1")
    act = lambda p, obs, key: jax.random.bernoulli(key, 0.5, obs.shape[:1]).astype(jnp.int32)  # noqa: E731
    stat = lambda info: info["episode_length"].astype(jnp.float32)  # noqa: E731
    returns, lengths, finished, ended_lengths = jax.jit(episodes(env, act, 6, 15, info_stat=stat))(None, jax.random.key(3), params)
    finished = np.asarray(finished)
    assert finished.any() and not finished.all()  # some random episodes outlast 15 steps
    np.testing.assert_array_equal(np.asarray(ended_lengths)[finished], np.asarray(lengths)[finished])
    np.testing.assert_array_equal(np.asarray(ended_lengths)[~finished], 0.0)
    np.testing.assert_array_equal(np.asarray(returns), np.asarray(lengths))  # CartPole pays 1 per step
