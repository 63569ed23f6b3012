"""Curricula on the maze through the command line: ACCEL runs vmapped, resumes exactly, keeps
its mutated levels valid and writes its evaluation and pictures; ``--levels FILE`` trains on a
fixed set and ``jaxrl eval RUN --levels FILE`` evaluates on one; bad level files are one line and
exit 2 and destroy nothing."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrl
from envs.maze import holdout_texts, is_valid_level, levels_from_text
from jaxrl.cli import main
from jaxrl.driver.run import load_run

TINY = ["--set", "num_envs=4", "--set", "num_steps=32", "--set", "buffer_size=8", "--set", "memory_size=8",
        "--set", "hidden_sizes=16", "--set", "num_minibatches=2", "--set", "replay_prob=0.5", "--set", "update_epochs=1"]
TINY_OVERRIDES = {"num_envs": 4, "num_steps": 32, "buffer_size": 8, "memory_size": 8, "hidden_sizes": "16",
                  "num_minibatches": 2, "replay_prob": 0.5, "update_epochs": 1}


def _same(a, b):
    return all(bool(jnp.array_equal(x, y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_accel_on_the_maze_resumes_exactly_keeps_levels_valid_and_reports(tmp_path):
    out = tmp_path / "accel"
    argv = ["ued", "accel", "--env", "maze", "--env-set", "n_walls=40", "--seeds", "2", "--total-steps", str(4 * 32 * 12), "--set", "eval_every=4",
            "--log-every", "1", "--checkpoint-every", str(4 * 32 * 6), "--eval-levels", "8", "--quiet", "--out", str(out), *TINY]
    assert main(argv) == 0
    full = load_run(out)
    middle = load_run(out, step=4 * 32 * 6)
    resumed = jaxrl.train("accel", "maze", num_seeds=2, overrides={**TINY_OVERRIDES, "total_steps": 4 * 32 * 12, "eval_every": 4},
                          env_overrides={"n_walls": "40"}, state=middle.state, start_window=middle.metadata["windows_done"], log_every=1)
    assert _same(resumed.state, full.state)
    buffer = full.state.buffer
    assert bool(buffer.filled.all())
    assert bool(jax.vmap(jax.vmap(is_valid_level))(buffer.levels).all())  # mutated children included
    report = json.loads((out / "ued_eval.json").read_text())
    assert set(report["holdout"]["per_level"]) == set(holdout_texts())
    assert report["random_solvable"]["levels"] == 8
    assert 0.0 <= report["holdout"]["solve_rate"] <= 1.0 and len(report["holdout"]["per_level"]["Labyrinth"]["per_seed_return"]) == 2
    assert (out / "buffer_levels.png").stat().st_size > 0 and (out / "episode.gif").stat().st_size > 0
    # the holdout evaluation logged during training: every 4th update, NaN in the windows between
    import pandas as pd

    rate = pd.read_csv(out / "metrics.csv").pivot(index="seed", columns="step", values="holdout_solve_rate").to_numpy()
    assert np.isfinite(rate[:, ::4]).all() and np.isnan(rate[:, 1::4]).all() and ((rate[:, ::4] >= 0) & (rate[:, ::4] <= 1)).all()


def test_training_on_a_levels_file_plays_only_those_levels(tmp_path):
    texts = holdout_texts()
    chosen = [texts["SixteenRooms"], texts["Labyrinth"]]
    path = tmp_path / "levels.txt"
    path.write_text("\n\n".join(chosen) + "\n")
    out = tmp_path / "fixed"
    assert main(["ued", "dr", "--env", "maze", "--levels", str(path), "--total-steps", str(4 * 32 * 3), "--eval-levels", "0",
                 "--quiet", "--out", str(out), *TINY]) == 0
    run = load_run(out)
    fixed = levels_from_text(run.train.config.train_levels)
    playing = run.state.agent.env.env_state.env_state.level  # [seeds, envs, ...]
    walls = np.asarray(playing.wall_map).reshape(-1, 13 * 13)
    allowed = np.asarray(fixed.wall_map).reshape(2, 13 * 13)
    assert all(any((w == a).all() for a in allowed) for w in walls)
    # evaluation on a file: one episode per level per seed
    assert main(["eval", str(out), "--levels", str(path)]) == 0
    report = json.loads((out / "eval_levels.json").read_text())
    assert report["levels"] == 2 and len(report["per_seed_solve_rate"]) == 1


@pytest.mark.parametrize("content, message", [
    ("#" * 13 + "\n", "rows"),  # wrong size
    ("\n".join(["." * 13] * 13), "goal"),  # no goal, no agent
    (None, "unsolvable"),
    ("X" * 13 + "\n" + "\n".join(["." * 13] * 12), "character"),
])
def test_bad_levels_files_are_one_line_and_exit_2(tmp_path, capsys, content, message):
    if content is None:  # the goal walled in
        rows = [list("." * 13) for _ in range(13)]
        rows[0][0], rows[12][12] = ">", "G"
        rows[11][12], rows[12][11], rows[11][11] = "#", "#", "#"
        content = "\n".join("".join(r) for r in rows)
    path = tmp_path / "bad.txt"
    path.write_text(content)
    out = tmp_path / "r"
    assert main(["ued", "dr", "--env", "maze", "--levels", str(path), "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()
    assert main(["ued", "dr", "--env", "maze", "--levels", str(tmp_path / "missing.txt"), "--quiet", "--out", str(out)]) == 2
    assert "missing.txt" in capsys.readouterr().err


def test_paired_runs_vmapped_resumes_exactly_evaluates_and_logs_its_levels(tmp_path):
    steps = 2 * 4 * 64 + 4 * 12  # both students' steps and the teacher's
    out = tmp_path / "run"
    tiny = [*TINY, "--set", "num_steps=64", "--set", "paired_walls=10", "--set", "eval_every=1"]
    assert main(["ued", "paired", "--env", "maze", "--seeds", "2", "--total-steps", str(steps * 6), "--log-every", "1",
                 "--checkpoint-every", str(3 * steps), "--eval-levels", "0", "--quiet", "--out", str(out), *tiny]) == 0
    full = load_run(out)
    assert full.train.steps_per_update == steps
    middle = load_run(out, step=3 * steps)
    overrides = {**TINY_OVERRIDES, "num_steps": 64, "paired_walls": 10, "eval_every": 1, "total_steps": steps * 6}
    resumed = jaxrl.train("paired", "maze", num_seeds=2, overrides=overrides, state=middle.state,
                          start_window=middle.metadata["windows_done"], log_every=1)
    assert _same(resumed.state, full.state)
    levels = full.state.parents  # the teacher's last levels: valid, with at most paired_walls walls
    assert bool(jax.vmap(jax.vmap(is_valid_level))(levels).all())
    assert (np.asarray(levels.wall_map).sum(axis=(2, 3)) <= 10).all()
    import pandas as pd

    metrics = pd.read_csv(out / "metrics.csv")
    assert np.isfinite(metrics["regret"]).all()
    # the protagonist evaluated on the holdout levels at every update
    assert len(metrics) == 2 * 6 and ((metrics["holdout_solve_rate"] >= 0) & (metrics["holdout_solve_rate"] <= 1)).all()
    # the teacher builds its own levels: their diagnostics within the teacher's walls bound
    assert ((metrics["train_walls"] >= 0) & (metrics["train_walls"] <= 10)).all()
    assert ((metrics["train_solvable"] >= 0) & (metrics["train_solvable"] <= 1)).all()
    assert "buffer_walls" not in metrics


def test_random_levels_evaluated_during_training_match_an_evaluation_after_it():
    # eval_random: every 2nd update the deterministic policy plays 16 random levels of the run's
    # generator (a fixed key), the unsolvable left out. The last update's evaluation sees the final
    # policy, so it must equal the host-side evaluation of the final state on the same levels.
    import envs
    from envs.maze import solvable, stack_levels, unstack_levels
    from jaxrl.curricula.evaluation import EVAL_LEVELS_SEED, cvar, play_levels

    overrides = {**TINY_OVERRIDES, "total_steps": 4 * 32 * 5, "eval_every": 2, "eval_random": 16}
    result = jaxrl.train("dr", "maze", num_seeds=2, overrides=overrides, env_overrides={"n_walls": "60"}, log_every=1)
    rate = result.metrics["random_solve_rate"]
    assert np.isfinite(rate[:, ::2]).all() and np.isnan(rate[:, 1::2]).all()
    assert np.isfinite(result.metrics["holdout_solve_rate"][:, ::2]).all()
    env, params = envs.make("maze", n_walls=60)
    drawn = jax.vmap(env.sample_level, in_axes=(0, None))(jax.random.split(jax.random.key(EVAL_LEVELS_SEED), 16), params)
    kept = [level for level in unstack_levels(drawn) if solvable(level)]
    assert 0 < len(kept) < 16
    returns, solved = play_levels(result.train, result.train.policy_params(result.state), stack_levels(kept))
    np.testing.assert_allclose(rate[:, -1], solved.mean(axis=1))
    np.testing.assert_allclose(result.metrics["random_return"][:, -1], returns.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(result.metrics["random_return_cvar10"][:, -1], [cvar(r) for r in returns], rtol=1e-5)


@pytest.mark.parametrize("curriculum", ["dr", "plr", "sfl"])
def test_level_diagnostics_are_logged_for_the_levels_played_and_kept(tmp_path, curriculum):
    """On a one-level training file every level played and kept is that level: the diagnostics
    must be its solver's figures (PAIRED's: in the test above)."""
    import pandas as pd

    from envs.maze import shortest_path_length

    text = holdout_texts()["Labyrinth"]
    path = tmp_path / "one.txt"
    path.write_text(text + "\n")
    level = levels_from_text(text)
    walls, shortest = int(np.asarray(level.wall_map).sum()), shortest_path_length(jax.tree.map(lambda x: x[0], level))
    out = tmp_path / curriculum
    sfl = ["--set", "sfl_levels=8", "--set", "sfl_batch=4", "--set", "sfl_rollout=16", "--set", "sfl_buffer=2", "--set", "sfl_refresh=2"]
    assert main(["ued", curriculum, "--env", "maze", "--levels", str(path), "--total-steps", str(4 * 32 * 4 + (256 if curriculum == "sfl" else 0)),
                 "--eval-levels", "0", "--log-every", "1", "--quiet", "--out", str(out), *TINY, *sfl]) == 0
    metrics = pd.read_csv(out / "metrics.csv")
    np.testing.assert_allclose(metrics["train_walls"], walls)
    np.testing.assert_allclose(metrics["train_solvable"], 1.0)
    np.testing.assert_allclose(metrics["train_shortest_path"], shortest)
    if curriculum == "dr":
        assert "buffer_walls" not in metrics
    else:
        np.testing.assert_allclose(metrics["buffer_walls"], walls)
        np.testing.assert_allclose(metrics["buffer_solvable"], 1.0)
        np.testing.assert_allclose(metrics["buffer_shortest_path"], shortest)


def test_sampled_attempts_solve_a_level_where_the_greedy_policy_loops():
    """A policy whose most likely action is always 'turn left' spins in place forever when
    greedy; sampling, it walks the three-cell corridor to the goal within 250 steps."""
    from envs.maze import from_text
    from jaxrl.curricula.evaluation import level_report

    rows = ["#" * 13] * 13
    rows[6] = "#" * 5 + ">.G" + "#" * 5
    level = jax.tree.map(lambda x: x[None], from_text("\n".join(rows)))
    train = jaxrl.make_train("dr", "maze", overrides={**TINY_OVERRIDES, "total_steps": 4 * 32})
    state = jax.vmap(train.init, in_axes=(0, None))(jax.random.split(jax.random.key(0), 2), train.default_hparams)
    params = train.policy_params(state)
    head = params["actor"]["params"]["Dense_0"]  # the actor's last layer: logits of left, right, forward
    assert head["kernel"].shape[-1] == 3
    actor = {**params["actor"]["params"], "Dense_0": {"kernel": jnp.zeros_like(head["kernel"]),
                                                      "bias": jnp.broadcast_to(jnp.array([0.6, 0.0, 0.3]), (2, 3))}}
    biased = {**params, "actor": {"params": actor}}
    report = level_report(train, biased, levels=level, seed=0)["levels_file"]
    assert report["solve_rate"] == 0.0  # greedy: turns left for ever
    assert report["sampled"]["solve_rate"] >= 0.9, report["sampled"]  # 10 attempts a seed


def test_jaxued_maze_agent_is_a_setting():
    """--set agent=jaxued: JaxUED's maze network (a 3x3 conv of 16 on the view, the direction
    through 5 units, an LSTM of 256, heads with a ReLU layer of 32), in actor and critic."""
    assert main(["ued", "plr", "--env", "maze", "--set", "agent=nope", "--quiet"]) == 2
    train = jaxrl.make_train("plr", "maze", overrides={**TINY_OVERRIDES, "agent": "jaxued", "total_steps": 4 * 32 * 2})
    state = jax.jit(train.init)(jax.random.key(0), train.default_hparams)
    shapes = jax.tree.map(lambda x: x.shape, state.agent.params)
    for net in ("actor", "critic"):
        layers = shapes[net]["params"]
        assert layers["torso"]["Conv_0"]["kernel"] == (3, 3, 2, 16) and layers["torso"]["Dense_0"]["kernel"] == (4, 5)
        assert layers["LSTMCore_0"]["lstm"]["hi"]["kernel"] == (256, 256)
        assert layers["LSTMCore_0"]["lstm"]["ii"]["kernel"] == (3 * 3 * 16 + 5, 256)
        assert (256, 32) in [layer["kernel"] for name, layer in layers.items() if name.startswith("Dense")]
    assert state.agent.env.memory["actor"].shape == (4, 512)  # an LSTM's cell and hidden state
    update = jax.jit(train.agent.update)
    for step in range(train.num_updates):
        state, metrics = update(state, train.default_hparams, jnp.int32(step))
    assert np.isfinite(float(metrics["policy_loss"])) and not _same(state.agent.params, train.init(jax.random.key(0), train.default_hparams).agent.params)
