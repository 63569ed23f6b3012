"""Meta-training by evolution (jaxrl.meta): the strategies maximise, antithetic pairs and every
member share tasks and seeds, a member alone equals itself in the population, one compilation
serves every generation, a killed meta-training run resumes exactly, and bad input ends with one
line and exit code 2."""

import json
import os
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from jaxrl.cli import main
from jaxrl.core.contract import ConfigError
from jaxrl.core.train import trace_count
from jaxrl.meta.es import make_strategy
from jaxrl.meta.run import build_program, load_objective
from killing import complete_steps, kill_at_first_checkpoint

INNER = ["--set", "num_envs=2", "--set", "num_steps=32", "--set", "hidden_sizes=8", "--set", "num_minibatches=1", "--set", "update_epochs=1"]
INNER_OVERRIDES = {"num_envs": 2, "num_steps": 32, "hidden_sizes": (8,), "num_minibatches": 1, "update_epochs": 1}
META = ["meta-train", "lpo", "--env", "CartPole-v1", "--population", "4", "--inner-steps", "1024", "--quiet", *INNER]


@pytest.mark.parametrize("strategy", ["open_es", "snes", "cma_es"])
def test_strategies_maximise_a_toy_quadratic(strategy):
    target = jnp.linspace(-0.5, 0.5, 6)
    es = make_strategy(strategy, {"x": jnp.zeros(6)}, population=16, sigma=0.1, lr=0.05 if strategy == "open_es" else None)

    def generation(state, key):
        ask_key, tell_key = jax.random.split(key)
        members, state = es.ask(ask_key, state)
        returns = -jax.vmap(lambda m: jnp.sum((m["x"] - target) ** 2))(members)  # higher is better
        return es.tell(tell_key, members, returns, state)[0], None

    state = es.init(jax.random.key(0), {"x": jnp.zeros(6)})
    start = -float(jnp.sum(target**2))
    state, _ = jax.jit(lambda s: jax.lax.scan(generation, s, jax.random.split(jax.random.key(1), 60)))(state)
    final = -float(jnp.sum((es.mean(state)["x"] - target) ** 2))
    # A minimising strategy would walk away from the target (return falling below `start`).
    assert final > 0.1 * start, (start, final)


def test_strategy_settings_are_checked():
    template = {"x": jnp.zeros(3)}
    with pytest.raises(ConfigError, match="antithetic pairs .* must be even, got 5"):
        make_strategy("open_es", template, population=5, sigma=0.1)
    with pytest.raises(ConfigError, match="unknown strategy 'pso'"):
        make_strategy("pso", template, population=4, sigma=0.1)
    with pytest.raises(ConfigError, match="sigma must be positive"):
        make_strategy("snes", template, population=4, sigma=-0.1)
    with pytest.raises(ConfigError, match="cma_es adapts its own step sizes"):
        make_strategy("cma_es", template, population=4, sigma=0.1, lr=0.1)
    assert make_strategy("snes", template, population=5, sigma=0.1).population == 5  # odd is fine without pairs


@pytest.fixture(scope="module")
def program():
    program, _ = build_program("lpo", "CartPole-v1", population=4, sigma=0.5, seeds=2, tasks=2, inner_steps=1024,
                               overrides=INNER_OVERRIDES, env_overrides={"gravity": "uniform:5:15"}, track_mean=False)
    return program


def test_pairs_share_task_and_seed_and_a_member_alone_equals_itself_in_the_population(program):
    members, _ = program.strategy.ask(jax.random.key(0), program.init(jax.random.key(0)).es)
    # Antithetic: member i + 2 mirrors member i around the mean.
    mean = program.baseline
    np.testing.assert_allclose(members["out"][0] + members["out"][2], 2 * mean["out"], atol=1e-6)
    # Two identical members get identical returns on every (task, seed): the same draws.
    twins = jax.tree.map(lambda x: jnp.stack([x[0], x[1], x[0]]), members)
    returns = np.asarray(program.evaluate(twins, jax.random.key(3)))
    assert returns.shape == (3, 2, 2)
    np.testing.assert_array_equal(returns[0], returns[2])
    assert len(np.unique(returns[0])) > 1, "tasks and seeds should differ from each other"
    alone = np.asarray(program.evaluate(jax.tree.map(lambda x: x[1:2], twins), jax.random.key(3)))
    np.testing.assert_array_equal(alone[0], returns[1])


def test_several_environments_are_more_tasks_of_the_same_members():
    both, _ = build_program("lpo", "CartPole-v1,Acrobot-v1", population=2, sigma=0.5, inner_steps=1024,
                            overrides=INNER_OVERRIDES, track_mean=False)
    alone, _ = build_program("lpo", "CartPole-v1", population=2, sigma=0.5, inner_steps=1024, overrides=INNER_OVERRIDES, track_mean=False)
    members, _ = both.strategy.ask(jax.random.key(0), both.init(jax.random.key(0)).es)
    returns = np.asarray(both.evaluate(members, jax.random.key(1)))
    assert returns.shape == (2, 2, 1) and both.total_tasks == 2
    np.testing.assert_array_equal(returns[:, :1], np.asarray(alone.evaluate(members, jax.random.key(1))))
    assert np.all(returns[:, 1] <= -8) and np.all(returns[:, 0] >= 8)  # Acrobot's returns are negative, CartPole's positive


def test_greedy_fitness_scores_members_on_the_same_episodes():
    program, _ = build_program("lpo", "CartPole-v1", population=2, sigma=0.5, inner_steps=1024, overrides=INNER_OVERRIDES,
                               fitness="greedy", eval_episodes=3, track_mean=False)
    members, _ = program.strategy.ask(jax.random.key(0), program.init(jax.random.key(0)).es)
    twins = jax.tree.map(lambda x: jnp.stack([x[0], x[0], x[1]]), members)
    returns = np.asarray(program.evaluate(twins, jax.random.key(1)))
    assert returns[0, 0, 0] == returns[1, 0, 0] and 8 <= returns[0, 0, 0] <= 500  # CartPole: 8+ steps


def test_auc_fitness_is_the_learning_curve_mean_of_the_same_runs():
    kwargs = dict(population=2, sigma=0.5, inner_steps=2048, overrides=INNER_OVERRIDES, track_mean=False)
    by_auc, _ = build_program("lpo", "CartPole-v1", fitness="auc", **kwargs)
    by_final, _ = build_program("lpo", "CartPole-v1", final_fraction=1.0, **kwargs)
    members, _ = by_auc.strategy.ask(jax.random.key(0), by_auc.init(jax.random.key(0)).es)
    auc = np.asarray(by_auc.evaluate(members, jax.random.key(1)))
    # The same runs (same keys): every episode's mean (final fraction 1) weighs short early
    # episodes more than the per-update curve does, so the two differ, and both are returns.
    everything = np.asarray(by_final.evaluate(members, jax.random.key(1)))
    assert np.all((auc >= 8) & (auc <= 500)) and np.all(np.abs(auc - everything) > 1e-3)
    assert np.all(auc > everything)  # CartPole: the many short early episodes pull the episode mean down


def test_normalised_fitness_scores_the_handcrafted_rule_as_one():
    # sigma tiny: every member is PPO's drift to within 1e-7, so it trains like the baseline.
    program, _ = build_program("lpo", "Acrobot-v1", population=2, sigma=1e-7, inner_steps=2048, overrides=INNER_OVERRIDES,
                               normalise=True, track_mean=False)
    _, row = program.generation(program.init(jax.random.key(0)))
    assert float(row["baseline_return"]) < 0  # Acrobot's returns are negative: R / |B| would give -1
    np.testing.assert_allclose(float(row["fitness_mean"]), 1.0, atol=0.02)


def test_one_compilation_serves_every_generation(program):
    state = program.init(jax.random.key(0))
    state, row = program.generation(state)
    traced = trace_count()
    for _ in range(2):
        state, row = program.generation(state)
    assert trace_count() == traced
    assert np.isfinite(float(row["fitness_mean"]))


def test_meta_train_writes_its_directory_and_the_objective_trains(tmp_path):
    out = tmp_path / "m"
    assert main([*META, "--generations", "2", "--out", str(out)]) == 0
    frame = pd.read_csv(out / "meta.csv")
    assert list(frame["generation"]) == [1, 2]
    assert {"fitness_best", "fitness_mean", "fitness_worst", "mean_member_return", "wall_time", "env_steps"} <= set(frame)
    # --noise-every 5: measured before the first generation and at the last.
    assert frame["fitness_noise_std"].notna().all() and (frame["fitness_noise_std"] > 0).all()
    assert (frame["fitness_population_std"] >= 0).all()  # 0 here: 1,024 steps leave every member at PPO
    assert (out / "fitness.png").stat().st_size > 0
    weights, objective = load_objective(out, algorithm="lpo")
    assert objective == "lpo" and weights["hidden"].shape == (8, 32)
    run = tmp_path / "t"
    assert main(["train", "lpo", "--env", "CartPole-v1", "--objective", str(out), "--total-steps", "1024", "--quiet", "--out", str(run), *INNER]) == 0
    assert main(["train", "ta_lpo", "--env", "CartPole-v1", "--objective", str(out), "--quiet", "--out", str(tmp_path / "x")]) == 2
    saved = pd.read_json(run / "config.json", typ="series")
    assert saved["hparams"]["objective_params"]["arrays"]["dict"]["out"]["shape"] == [32]


def test_meta_training_resumes_exactly_after_sigkill(tmp_path):
    args = [*META, "--generations", "4", "--checkpoint-every", "1"]
    reference = tmp_path / "reference"
    assert main([*args, "--out", str(reference)]) == 0
    run = tmp_path / "run"
    stderr = tmp_path / "stderr.txt"
    with stderr.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "jaxrl.cli", *args, "--out", str(run)],
                                stdout=subprocess.DEVNULL, stderr=err, env=os.environ.copy())
        kill_at_first_checkpoint(proc, run / "checkpoints", stderr.read_text)
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "config.json").exists(), "the kill came too late: the run had finished"
    assert complete_steps(run / "checkpoints")[-1] < 4
    assert main([*args, "--resume", str(run)]) == 0
    resumed, expected = pd.read_csv(run / "meta.csv"), pd.read_csv(reference / "meta.csv")
    pd.testing.assert_frame_equal(resumed.drop(columns="wall_time"), expected.drop(columns="wall_time"), check_exact=True)
    np.testing.assert_array_equal(load_objective(run)[0]["out"], load_objective(reference)[0]["out"])
    # A resume with other settings is refused, naming the difference.
    assert main([*args[:-2], "--checkpoint-every", "1", "--sigma", "0.5", "--resume", str(run)]) == 2


@pytest.mark.parametrize("argv, message", [
    (["--strategy", "bogus"], "unknown strategy 'bogus'"),
    (["--sigma", "-1"], "sigma must be positive"),
    (["--population", "5"], "must be even, got 5"),
    (["--tasks", "2"], "several tasks need a task distribution"),
    (["--fitness", "best"], "unknown fitness 'best'"),
])
def test_bad_meta_train_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    out = tmp_path / "m"
    assert main([*META, "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_bad_objective_directories_are_refused(tmp_path, capsys):
    train = ["train", "lpo", "--env", "CartPole-v1", "--quiet", "--out", str(tmp_path / "t")]
    assert main([*train, "--objective", str(tmp_path / "missing")]) == 2
    assert "no such directory" in capsys.readouterr().err
    (tmp_path / "foreign").mkdir()
    assert main([*train, "--objective", str(tmp_path / "foreign")]) == 2
    assert "not a meta-training directory" in capsys.readouterr().err
    assert main(["meta-train", "ppo", "--env", "CartPole-v1", "--out", str(tmp_path / "p")]) == 2
    assert "ppo has no learned weights" in capsys.readouterr().err
    assert main(["meta-train", "lpo", "--env", "CartPole-v1", "--set", "objective=clip", "--out", str(tmp_path / "p")]) == 2
    assert "objective clip does not read objective_params" in capsys.readouterr().err
    assert main(["train", "ppo", "--env", "CartPole-v1", "--set", "objective=lpo", "--out", str(tmp_path / "p")]) == 2
    assert "objective lpo needs drift weights" in capsys.readouterr().err
    assert main(["train", "lpo", "--env", "CartPole-v1", "--set", "objective_params=0.5", "--out", str(tmp_path / "p")]) == 2
    assert "objective lpo needs drift weights" in capsys.readouterr().err
    assert not (tmp_path / "t").exists() and not (tmp_path / "p").exists()


SHARDED = """
import json
import jax, numpy as np
import jaxrl
from jaxrl.meta.engine import MetaProgram
from jaxrl.meta.run import build_program
program, _ = build_program("lpo", "CartPole-v1", strategy="snes", population=3, sigma=0.5, inner_steps=1024,
                           overrides=%r, track_mean=False)
single = MetaProgram(program.train, program.strategy, program.field, devices=1)
members, _ = program.strategy.ask(jax.random.key(0), program.init(jax.random.key(0)).es)
a = np.asarray(program.evaluate(members, jax.random.key(1)))
b = np.asarray(single.evaluate(members, jax.random.key(1)))
print("RESULT " + json.dumps({"devices": program.devices, "shape": list(a.shape), "close": bool(np.allclose(a, b, rtol=1e-4)),
                              "a": a.ravel().tolist(), "b": b.ravel().tolist()}))
""" % (INNER_OVERRIDES,)


def test_population_is_padded_and_sharded_over_devices():
    # XLA reads the device count once, at backend start: hence a fresh process.
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
    env["JAX_PLATFORMS"] = "cpu"
    done = subprocess.run([sys.executable, "-c", SHARDED], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[len("RESULT "):])
    # 3 runs padded to 4 over 2 devices; the padding run is dropped.
    assert out["devices"] == 2 and out["shape"] == [3, 1, 1]
    assert out["close"], out


class _NoisyTrain:
    """A stand-in for an inner training run whose final return is known: -|w - 1|^2 plus Gaussian
    noise of std ``NOISE`` drawn from the run's key (so the members of a generation, which share
    their seeds, share it too, as in the engine's real runs)."""

    NOISE = 3.0

    def __init__(self):
        from types import SimpleNamespace

        from flax import struct

        @struct.dataclass
        class HParams:
            objective_params: dict

        self.algorithm, self.config = SimpleNamespace(name="noisy"), SimpleNamespace(objective="learned")
        self.env_name, self.default_env_params = "noisy", None
        self.default_hparams = HParams({"w": jnp.zeros(4)})

    def __call__(self, key, hparams, env_params=None):
        w = hparams.objective_params["w"]
        return None, {"final_return": -jnp.sum((w - 1.0) ** 2) + self.NOISE * jax.random.normal(key)}


@pytest.mark.parametrize("sigma", [1e-6, 1.0])
def test_noise_is_one_members_spread_and_the_population_std_is_the_members(sigma):
    from jaxrl.meta.engine import MetaProgram

    train = _NoisyTrain()
    seeds = 4
    es = make_strategy("open_es", train.default_hparams.objective_params, population=16, sigma=sigma)
    program = MetaProgram(train, es, "objective_params", num_seeds=seeds, noise_repeats=64)
    state = program.init(jax.random.key(0))
    noise = program.noise(state)
    # One member's fitness is the mean over `seeds` seeds: its std is NOISE / sqrt(seeds) (= 1.5);
    # 64 repeats estimate it to about 9%.
    np.testing.assert_allclose(float(noise["fitness_noise_std"]), train.NOISE / np.sqrt(seeds), rtol=0.3)
    # The mean at w = 0 has fitness -4, inside its interval.
    assert float(noise["mean_fitness_ci_low"]) < -4.0 < float(noise["mean_fitness_ci_high"])
    same = program.noise(state)
    assert float(same["fitness_noise_std"]) == float(noise["fitness_noise_std"])  # measuring leaves the state as it was
    _, row = program.generation(state)
    # Members share their seeds' noise, so the population's spread is the spread of -|w - 1|^2 alone:
    # about 0 at sigma 1e-6, about 4.9 at sigma 1 (the std of a noncentral chi-squared, k = 4, lambda = 4).
    if sigma < 1e-3:
        assert float(row["fitness_population_std"]) < 1e-3
    else:
        assert 2.0 < float(row["fitness_population_std"]) < 12.0
    np.testing.assert_allclose(float(row["mean_member_fitness"]), float(row["mean_member_return"]))


def test_a_scalar_is_searched_in_log_space_and_reported():
    program, spec = build_program("ppo", "CartPole-v1", field="lr", log_space=True, population=2, sigma=0.5,
                                  inner_steps=1024, overrides={**INNER_OVERRIDES, "lr": 1e-3}, track_mean=False)
    state = program.init(jax.random.key(0))
    np.testing.assert_allclose(float(program.strategy.mean(state.es)), np.log(1e-3), rtol=1e-6)  # searches log(lr)
    _, row = program.generation(state)
    assert spec["log_space"] and 1e-4 < float(row["mean_value"]) < 1e-2 and float(row["mean_value"]) != pytest.approx(1e-3)
    with pytest.raises(ConfigError, match="no hyperparameter 'lrr'"):
        build_program("ppo", "CartPole-v1", field="lrr", population=2)
    with pytest.raises(ConfigError, match="default must be positive"):
        build_program("ppo", "CartPole-v1", field="ent_coef", log_space=True, population=2, overrides={"ent_coef": 0.0})


@pytest.mark.slow
def test_the_search_lands_in_the_best_region_a_sweep_finds(tmp_path):
    # experiments/known_optimum/run.py at a smaller size: ES over PPO's log learning rate, from
    # 1e-3, must end where a grid sweep of the same inner runs finds the best score. The score is
    # the mean return over all of training (final fraction 1): at 16,384 steps the last 10% is
    # too few episodes for a landscape that peaks where a short search can find it.
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "experiments" / "known_optimum" / "run.py"
    spec = importlib.util.spec_from_file_location("known_optimum", path)
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    result = study.run(tmp_path, inner_steps=16_384, seeds=4, grid=7, population=4, generations=12, sigma=0.3,
                       es_lr=0.4, start_lr=1e-3, final_fraction=1.0)
    assert result["best_region"][0] > 2e-3, result  # the answer is well away from the start
    assert result["landed"], result
