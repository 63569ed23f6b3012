"""Curricula over continuous task spaces (ALP-GMM, AGAIN): the task space and its errors; ALP
against a hand-computed history; sampling in proportion to ALP; the classroom's nearest-student
lookup and the expert's curriculum; the per-episode task log; the batched fit; runs that resume
exactly; the command line. The mixture fit itself is tested against scikit-learn in test_gmm.py."""

import json
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
import jaxrl
from jaxrl.cli import main
from jaxrl.core.values import ConfigError
from jaxrl.curricula import again as ag
from jaxrl.curricula import alp_gmm, gmm
from jaxrl.curricula.task_space import Task, TaskEpisodes, TaskSampler, parse_task_space, sample_task, uniform_sampler
from jaxrl.driver.run import load_run

SPACE = {"task_space": "gravity=2:60,force_mag=0.5:20"}
SMALL = {"num_envs": 4, "num_steps": 64, "hidden_sizes": "16,16", "fit_rate": 20, "min_components": 2,
         "max_components": 3, "history_size": 64, "log_fits": 8, "test_tasks": 8, "eval_every": 2}


def _same(a, b):
    return all(bool(jnp.array_equal(x, y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _params():
    return envs.make("CartPole-v1")[1]


def test_task_space_maps_the_unit_cube_onto_the_parameters():
    space = parse_task_space("CartPole-v1", ["gravity=2:60", "max_steps_in_episode=100:300"], _params())
    assert space.text == "gravity=2:60,max_steps_in_episode=100:300" and space.integer == (False, True)
    params = space.apply(_params(), jnp.array([0.25, 0.5026]))
    assert float(params.gravity) == pytest.approx(2 + 0.25 * 58)
    assert int(params.max_steps_in_episode) == 201 and params.max_steps_in_episode.dtype == jnp.int32  # rounded


@pytest.mark.parametrize("items, message", [
    (["gravty=1:2"], "has no parameter 'gravty' (did you mean gravity?)"),
    (["gravity=3:1"], "interval for gravity is empty: 3:1"),
    (["gravity=2:2"], "interval for gravity is empty"),
    (["gravity=a:9"], "bounds for gravity must be numbers"),
    (["gravity=1:inf"], "must be finite"),
    (["gravity"], "write NAME=LOW:HIGH"),
    (["gravity=1:2", "gravity=3:4"], "given twice"),
    ([], "the task space is empty"),
])
def test_bad_task_spaces_are_one_line_errors(items, message):
    with pytest.raises(ConfigError, match=None) as error:
        parse_task_space("CartPole-v1", items, _params())
    assert message in str(error.value) and "\n" not in str(error.value)


def test_alp_against_a_hand_computed_history():
    history = alp_gmm.init_teacher(1, 16, 2, 2, 4).history
    # Five earlier tasks (1-D) with their returns.
    old = jnp.array([[0.0], [0.2], [0.4], [0.6], [0.8]])
    history = alp_gmm.add_records(history, old, jnp.array([0.1, 0.2, 0.3, 0.4, 0.5]), jnp.zeros(5), jnp.ones(5, bool))
    values = jnp.array([[0.21], [0.5], [0.79], [0.52], [0.0]])
    returns = jnp.array([0.9, 0.0, 0.45, 0.3, 0.7])
    valid = jnp.array([True, True, True, True, False])
    alp = alp_gmm.absolute_learning_progress(history, values, returns, valid)
    # record 0 has 5 records before it: no ALP yet (the reference: more than 5 needed); record 1
    # (6 before) is nearest to 0.4 (0.6 is as near in decimals, farther in float32; 0.4 -> 0.3): |0 - 0.3|; record 2
    # to 0.8 (0.5): 0.05; record 3 to record 1 of the same batch (0.5 -> 0.0): 0.3; record 4 is
    # not real: 0.
    np.testing.assert_allclose(np.asarray(alp), [0.0, 0.3, 0.05, 0.3, 0.0], atol=1e-6)
    history = alp_gmm.add_records(history, values, returns, alp, valid)
    assert int(history.count) == 9
    rows = alp_gmm.newest(history, 3)  # oldest first: records 1..3 of the batch
    np.testing.assert_allclose(np.asarray(rows), [[0.5, 0.3], [0.79, 0.05], [0.52, 0.3]], atol=1e-6)


def test_history_is_a_ring_of_the_newest_records():
    history = alp_gmm.init_teacher(1, 4, 2, 2, 4).history
    for start in (0, 3):
        values = jnp.arange(start, start + 3, dtype=jnp.float32)[:, None]
        history = alp_gmm.add_records(history, values, values[:, 0], values[:, 0], jnp.ones(3, bool))
    np.testing.assert_allclose(np.asarray(alp_gmm.newest(history, 4))[:, 0], [2, 3, 4, 5])


def _sampler(alp, active, random_ratio):
    count = len(alp)
    means = jnp.tile(jnp.array([0.3, 0.7, 0.0]), (count, 1))
    return TaskSampler(jnp.float32(random_ratio), means, jnp.tile(0.01 * jnp.eye(3), (count, 1, 1)),
                       jnp.asarray(alp, jnp.float32), jnp.asarray(active))


def test_tasks_are_sampled_in_proportion_to_alp():
    sampler = _sampler([0.1, 0.3, 0.0, 5.0], [True, True, True, False], 0.2)
    tasks = jax.vmap(lambda k: sample_task(k, sampler))(jax.random.split(jax.random.key(0), 40_000))
    share = [float((tasks.origin == c).mean()) for c in (-1, 0, 1, 2, 3)]
    np.testing.assert_allclose(share, [0.2, 0.8 * 0.25, 0.8 * 0.75, 0.0, 0.0], atol=0.01)
    drawn = np.asarray(tasks.values[tasks.origin >= 0])
    assert drawn.min() >= 0 and drawn.max() <= 1 and abs(drawn[:, 0].mean() - 0.3) < 0.01
    # no progress anywhere: uniform among the active components; none active: uniform tasks
    flat = jax.vmap(lambda k: sample_task(k, _sampler([0, 0, 0], [True, False, True], 0.0)))(jax.random.split(jax.random.key(1), 20_000))
    np.testing.assert_allclose([float((flat.origin == c).mean()) for c in (0, 1, 2)], [0.5, 0.0, 0.5], atol=0.015)
    none = jax.vmap(lambda k: sample_task(k, uniform_sampler(2, 3)))(jax.random.split(jax.random.key(2), 2000))
    assert bool((none.origin == -1).all()) and abs(float(none.values.mean()) - 0.5) < 0.02


def test_a_mixture_component_is_sampled_with_its_mean_and_covariance():
    # the teacher's path: a fitted mixture -> make_sampler (Cholesky factors) -> sample_task
    cov = np.array([[0.010, 0.004, 0.0], [0.004, 0.008, -0.002], [0.0, -0.002, 0.005]], np.float32)
    means = jnp.array([[0.2, 0.2, 0.1], [0.5, 0.45, 0.3]])
    mixture = gmm.Mixture(jnp.array([0.5, 0.5]), means, jnp.stack([jnp.eye(3) * 0.01, jnp.asarray(cov)]),
                                  jnp.array([False, True]))
    sampler = alp_gmm.make_sampler(0.0, [alp_gmm.components(mixture)])
    tasks = jax.jit(jax.vmap(lambda k: sample_task(k, sampler)))(jax.random.split(jax.random.key(3), 40_000))
    assert bool((tasks.origin == 1).all())
    values = np.asarray(tasks.values)  # the ALP coordinate dropped; 4 standard deviations inside the cube
    np.testing.assert_allclose(values.mean(0), [0.5, 0.45], atol=0.003)
    np.testing.assert_allclose(np.cov(values.T), cov[:2, :2], atol=4e-4)


def test_nearest_students_and_the_expert_they_give():
    pretest = jnp.array([[0.0, 0.0], [1.0, 1.0], [0.1, 0.0], [0.9, 1.0], [0.0, 0.3]])
    assert np.asarray(ag.nearest_students(pretest, jnp.array([0.05, 0.05]), 3)).tolist() == [0, 2, 4]
    assert np.asarray(ag.nearest_students(pretest, jnp.array([1.0, 0.9]), 2)).tolist() == [1, 3]
    final = jnp.array([3.0, 9.0, 5.0, 1.0, 4.0])
    classroom = SimpleNamespace(pretest=pretest, final=final)
    assert int(ag.choose_expert(classroom, jnp.array([0.05, 0.05]), 3)) == 2  # best of 0, 2, 4
    assert int(ag.choose_expert(classroom, jnp.array([0.05, 0.05]), 1)) == 0
    assert int(ag.choose_expert(classroom, jnp.array([0.95, 1.0]), 2)) == 1


def _classroom():
    """One student, 4 logged mixtures of 2 components in a 1-D task space (ALP last)."""
    means = jnp.array([[[0.1, 0.5], [0.2, 0.1]],    # mixture 0: component 0 kept
                       [[0.3, 0.05], [0.4, 0.1]],   # mixture 1: nothing above 0.2: skipped
                       [[0.5, 0.3], [0.6, 0.4]],    # mixture 2: both kept
                       [[0.7, 0.9], [0.8, 0.9]]])   # mixture 3: not made (num_fits = 3)
    return ag.Classroom(pretest=jnp.zeros((1, 2)), final=jnp.zeros(1), means=means[None],
                        covariances=jnp.tile(jnp.eye(2), (1, 4, 2, 1, 1)), active=jnp.ones((1, 4, 2), bool),
                        reward=jnp.array([[0.5, 0.0, 0.8, 0.0]]), num_fits=jnp.array([3]))


def test_the_expert_curriculum_keeps_high_alp_components_and_advances():
    classroom = _classroom()
    expert = ag.start_expert(classroom, jnp.int32(0), 0.2, window=4)
    assert int(expert.count) == 2 and np.asarray(expert.order[:2]).tolist() == [0, 2]
    _, _, alp, active = ag.expert_components(classroom, expert, "R")
    assert np.asarray(active).tolist() == [True, False] and float(alp[0]) == pytest.approx(0.5)
    pooled = ag.expert_components(classroom, expert, "P")[3]
    assert np.asarray(pooled).tolist() == [True, False, False, False, True, True, False, False]
    config = SimpleNamespace(fit_rate=10, tol_ratio=1.0)
    # R: four returns from the expert's components averaging 0.45 < 0.5: stay; 0.55: next mixture
    low = ag.advance(expert, classroom, "R", jnp.int32(20), jnp.full(4, 0.45), jnp.ones(4, bool), config)
    assert int(low.pointer) == 0 and int(low.written) == 4
    high = ag.advance(low, classroom, "R", jnp.int32(24), jnp.full(4, 0.65), jnp.ones(4, bool), config)
    assert int(high.pointer) == 1 and int(high.written) == 0 and int(high.end_records) == 24
    # the last mixture: ALP-GMM takes over fit_rate records later
    assert not bool(ag.advance(high, classroom, "R", jnp.int32(30), jnp.zeros(4), jnp.zeros(4, bool), config).over)
    done = ag.advance(high, classroom, "R", jnp.int32(34), jnp.zeros(4), jnp.zeros(4, bool), config)
    assert bool(done.over) and not bool(ag.expert_components(classroom, done, "R")[3].any())
    # T: by record count
    assert int(ag.advance(expert, classroom, "T", jnp.int32(9), jnp.zeros(1), jnp.zeros(1, bool), config).pointer) == 0
    assert int(ag.advance(expert, classroom, "T", jnp.int32(12), jnp.zeros(1), jnp.zeros(1, bool), config).pointer) == 1
    # before the pre-test there is no expert
    none = ag.no_expert(4, 2, 4)
    assert not bool(ag.expert_components(classroom, none, "T")[3].any())


def test_cond_any_computes_only_where_due_and_matches_a_cond():
    calls = []

    def fn(operand):
        x, key = operand
        jax.debug.callback(lambda: calls.append(1))
        return x + jax.random.normal(key, x.shape), key

    xs, keys = jnp.arange(6.0).reshape(3, 2), jax.random.split(jax.random.key(0), 3)
    batched = jax.jit(jax.vmap(lambda p, x, k: alp_gmm.cond_any(p, fn, (x, k))))
    select = jax.jit(jax.vmap(lambda p, x, k: jax.lax.cond(p, fn, lambda o: o, (x, k))))
    for pred in (jnp.array([True, False, True]), jnp.array([False, False, False])):
        calls.clear()
        got = jax.block_until_ready(batched(pred, xs, keys))
        jax.effects_barrier()
        assert (len(calls) > 0) == bool(pred.any())  # computed only when some run is due
        assert _same(got[0], select(pred, xs, keys)[0])
    calls.clear()
    jax.block_until_ready(select(jnp.zeros(3, bool), xs, keys))
    jax.effects_barrier()
    assert calls  # a batched lax.cond computes the branch even when no run is due


def test_every_finished_episode_is_logged_with_its_task_and_return():
    base, params = envs.make("CartPole-v1")
    space = parse_task_space("CartPole-v1", ["gravity=2:60"], params)
    env = TaskEpisodes(base, space, observe_task=True, components=2, log_size=64)
    obs, state = env.reset_to_level(jax.random.key(0), Task(jnp.array([0.5]), jnp.int32(-1)), params)
    assert obs.shape == (5,) and float(obs[-1]) == 0.5
    total, tasks, key = 0.0, [], jax.random.key(1)
    step = jax.jit(env.step)
    for _ in range(200):
        key, k = jax.random.split(key)
        tasks.append(float(state.task.values[0]))
        obs, state, reward, terminated, truncated, _ = step(k, state, jnp.int32(0), params)  # always push left: short episodes
        total += float(reward)
    count = int(state.log.count)
    assert count > 5 and float(state.log.returns[:count].sum()) + float(state.episode_return) == pytest.approx(total)
    firsts = [tasks[0]] + [tasks[i] for i in range(1, 200) if tasks[i] != tasks[i - 1]]
    np.testing.assert_allclose(np.asarray(state.log.values[:count, 0]), firsts[:count], rtol=1e-6)


def test_alp_gmm_runs_vmapped_fits_and_resumes_exactly(tmp_path):
    overrides = {**SMALL, "total_steps": 8 * 256}
    full = jaxrl.train_run("alp-gmm", "CartPole-v1", tmp_path / "run", overrides=overrides, env_overrides=SPACE,
                           num_seeds=2, checkpoint_every=4 * 256, log_every=1)
    state = full.state
    assert int(state.teacher.log.count.min()) >= 1 and int(state.teacher.history.count.min()) >= 20
    assert bool((state.teacher.mixture.active.sum(axis=1) >= 2).all()) and bool((state.final > 0).all())
    assert np.isfinite(full.metrics["test_mastered"][:, 1::2]).all()  # every second update evaluates
    middle = load_run(tmp_path / "run", step=4 * 256)
    resumed = jaxrl.train("alp-gmm", "CartPole-v1", num_seeds=2, overrides=overrides, env_overrides=SPACE,
                          state=middle.state, start_window=middle.metadata["windows_done"], log_every=1)
    assert _same(resumed.state, full.state)
    assert not _same(state.teacher.history.values[0], state.teacher.history.values[1])


def _write_classroom(path, log_fits=SMALL["log_fits"]):
    """A hand-made classroom of 3 students for SPACE and SMALL's test tasks (2-D tasks, K = 3)."""
    from jaxrl.curricula.task_curriculum import test_task_set

    rng = np.random.default_rng(0)
    k, d1 = SMALL["max_components"], 3
    means = rng.random((3, log_fits, k, d1)).astype(np.float32)
    np.savez(path, pretest=rng.random((3, SMALL["test_tasks"])), final=np.array([2.0, 5.0, 3.0]), means=means,
             covariances=np.tile(0.01 * np.eye(d1, dtype=np.float32), (3, log_fits, k, 1, 1)),
             active=np.ones((3, log_fits, k), bool), reward=rng.random((3, log_fits)), num_fits=np.array([4, 6, 8]),
             task_space=np.asarray("gravity=2:60,force_mag=0.5:20"),
             test_tasks=np.asarray(test_task_set(2, SMALL["test_tasks"], 12_345).values))


@pytest.mark.parametrize("variant", ["R", "P"])
def test_again_replays_an_expert_and_resumes_exactly(tmp_path, variant):
    _write_classroom(tmp_path / "classroom.npz")
    overrides = {**SMALL, "total_steps": 8 * 256, "classroom": str(tmp_path / "classroom.npz"), "pretest_fraction": 0.25,
                 "again_variant": variant}
    full = jaxrl.train_run("again", "CartPole-v1", tmp_path / "run", overrides=overrides, env_overrides=SPACE,
                           num_seeds=2, checkpoint_every=4 * 256, log_every=1)
    expert = full.state.expert
    assert np.asarray(expert.student).min() >= 0 and int(expert.count.min()) >= 1  # chosen at update 1 of 8
    assert np.isfinite(full.metrics["test_mastered"]).any()
    middle = load_run(tmp_path / "run", step=4 * 256)
    resumed = jaxrl.train("again", "CartPole-v1", num_seeds=2, overrides=overrides, env_overrides=SPACE,
                          state=middle.state, start_window=middle.metadata["windows_done"], log_every=1)
    assert _same(resumed.state, full.state)


def test_cli_again_trains_its_classroom_then_eval(tmp_path, capsys):
    settings = [f"--set={k}={v}" for k, v in SMALL.items()] + ["--total-steps", str(8 * 256), "--quiet"]
    space = ["--task-space", "gravity=2:60", "--task-space", "force_mag=0.5:20"]
    out = tmp_path / "again"
    assert main(["ued", "again", "--env", "CartPole-v1", *space, "--seeds", "2", "--classroom-size", "3",
                 "--out", str(out), *settings, "--set", "pretest_fraction=0.5"]) == 0
    classroom = out / "classroom"  # an alp-gmm run of 3 seeds, trained first
    report = json.loads((classroom / "task_eval.json").read_text())
    assert report["teacher"] == "alp-gmm" and len(report["mastered"]) == 3
    assert np.asarray(report["test_returns"]).shape == (3, 8)
    with np.load(classroom / "classroom.npz") as data:
        assert data["pretest"].shape == (3, 8) and data["means"].shape == (3, 8, 3, 3)
    again = load_run(out)
    assert np.asarray(again.state.expert.student).min() >= 0  # an expert was chosen at the pre-test
    assert json.loads((out / "task_eval.json").read_text())["teacher"] == "again"
    assert main(["eval", str(out), "--episodes", "2"]) == 0
    assert "mean return" in capsys.readouterr().out
    # a classroom is for its own task space only
    code = main(["ued", "again", "--env", "CartPole-v1", "--task-space", "gravity=2:50", "--classroom", str(classroom),
                 "--out", str(tmp_path / "other"), *settings])
    assert code == 2 and "task space" in capsys.readouterr().err
    # ... and for its fit log's size
    _write_classroom(tmp_path / "small.npz", log_fits=4)
    code = main(["ued", "again", "--env", "CartPole-v1", *space, "--classroom", str(tmp_path / "small.npz"),
                 "--out", str(tmp_path / "third"), *settings])
    err = capsys.readouterr().err
    assert code == 2 and "log_fits=4" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["alp-gmm", "--task-space", "gravty=1:2"], "has no parameter 'gravty'"),
    (["alp-gmm", "--task-space", "gravity=5:1"], "interval for gravity is empty"),
    (["alp-gmm", "--task-space", "gravity=low:9"], "must be numbers"),
    (["alp-gmm"], "needs a task space"),
    (["again", "--task-space", "gravity=1:9"], "again needs a classroom"),
    (["again", "--task-space", "gravity=1:9", "--classroom", "/nonexistent"], "no classroom at /nonexistent"),
    (["plr", "--task-space", "gravity=1:9"], "--task-space goes with dr, alp-gmm or again"),
    (["alp-gmm", "--task-space", "gravity=1:9", "--classroom-size", "3"], "go with again"),
    (["again", "--task-space", "gravity=1:9", "--classroom", "x", "--classroom-size", "3"], "not both"),
    (["alp-gmm", "--task-space", "gravity=1:9", "--env-set", "force_mag=uniform:1:2"], "cannot be combined"),
    (["alp-gmm", "--task-space", "gravity=1:9", "--set", "random_ratio=2"], "random_ratio must be in [0, 1]"),
])
def test_bad_task_curriculum_input_exits_2(argv, message, capsys, tmp_path):
    code = main(["ued", *argv, "--env", "CartPole-v1", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_alp_gmm_learns_to_master_held_out_tasks():
    # PPO's CartPole defaults, 600 updates (300k steps): these 2 seeds master 63% and 80% of the
    # 64 held-out tasks at the end, against 52% and 12% at the pre-test (10% of training); over
    # 500k steps ALP-GMM's students reach 91-98% (experiments/task_curricula, moderate).
    train = jaxrl.train("alp-gmm", "CartPole-v1", num_seeds=2, overrides={"total_steps": 600 * 512},
                        env_overrides={**SPACE, "observe_task": "1"})
    mastered = (np.asarray(train.state.final) >= 475).mean(axis=1)
    before = (np.asarray(train.state.pretest) >= 475).mean(axis=1)
    assert mastered.mean() >= 0.5 and mastered.mean() > before.mean() + 0.2, (mastered, before)
    assert int(train.state.teacher.log.count.min()) >= 5  # it fitted its mixture along the way
