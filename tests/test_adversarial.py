"""RARL and QARL (``jaxrl.algorithms.adversarial``), their two-player environments
(``envs.adversarial``, ``envs.point_mass``) and the robustness evaluation
(``jaxrl.analysis.robustness``): zero-sum rewards, perturbations bounded as configured, an
adversary at a huge temperature acting uniformly at random, RARL at a fixed temperature equal to
QARL with its curriculum frozen there, exact resume with the curriculum's state, evaluation with
and without the adversary, and one-line errors. The curriculum's update itself is tested in
``test_temperature_curriculum.py``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
import jaxrl
from envs.adversarial import TemperatureContext, TwoPlayer
from jaxrl.analysis import robustness
from jaxrl.analysis.evaluation import evaluate_loaded
from jaxrl.cli import main
from jaxrl.core.train import make_train
from jaxrl.driver.run import load_run
from tests.trees import assert_trees_equal


class Recorder(envs.Wrapper):
    """Puts the action the inner environment received into ``info``."""

    def step(self, key, state, action, params=None):
        out = self.env.step(key, state, action, params)
        return (*out[:5], dict(out[5], applied=action))


def _random_episode(env, params, steps=64, scale=3.0, seed=0):
    """Steps one env copy with joint actions uniform in [-scale, scale] (beyond every bound)."""
    dim = env.action_space(params).shape[0]

    def step(carry, key):
        state = carry
        act_key, step_key = jax.random.split(key)
        action = jax.random.uniform(act_key, (dim,), minval=-scale, maxval=scale)
        _, state, reward, _, _, info = env.step(step_key, state, action, params)
        return state, (action, reward, info)

    _, state = env.reset(jax.random.key(seed), params)
    return jax.jit(lambda s: jax.lax.scan(step, s, jax.random.split(jax.random.key(seed + 1), steps)))(state)[1]


def test_action_perturbation_is_zero_sum_and_bounded():
    inner, inner_params = envs.make("Pendulum-v1")
    env = TwoPlayer(Recorder(inner), "action", strength=0.25)
    params = env.default_params.replace(env=inner_params)
    actions, rewards, info = _random_episode(env, params)
    np.testing.assert_array_equal(np.asarray(info["adversary_reward"]), -np.asarray(rewards))
    applied, protagonist, adversary = (np.asarray(info["applied"])[:, 0], np.asarray(actions[:, 0]), np.asarray(actions[:, 1]))
    high = float(inner_params.max_torque)
    assert np.all(np.abs(applied) <= high)
    # the perturbation is the adversary's clipped action x strength x half the range (2 for [-2, 2])
    expected = np.clip(protagonist + 0.25 * high * np.clip(adversary, -1, 1), -high, high)
    np.testing.assert_allclose(applied, expected, rtol=1e-6)
    assert np.abs(0.25 * high * np.clip(adversary, -1, 1)).max() <= 0.25 * high


def test_wind_is_bounded_and_blows_only_in_its_band():
    inner, inner_params = envs.make("point_mass_wind")
    env = TwoPlayer(inner, "force", strength=1.5)
    assert (env.kind, env.adversary_dim, env.body_ids) == ("force", 1, (1,))
    _, adversary = env.split(jnp.array([0.0, 0.0, 7.0]))
    np.testing.assert_allclose(np.asarray(env.forces(adversary, 1.5)), [[1.5, 0.0, 0.0]])
    params = env.default_params.replace(env=inner_params)
    _, state = env.reset(jax.random.key(0), params)
    pushed = lambda s, a: env.step(jax.random.key(1), s, jnp.array([0.0, 0.0, a]), params)[1]  # noqa: E731
    # in the band (y = -0.5) the wind moves the mass along x, at most as far as 1.5 N can
    band = state.replace(position=jnp.array([0.0, -0.5]))
    dx = float(pushed(band, 1.0).position[0])
    assert dx > 0 and np.isclose(dx, float(pushed(band, 99.0).position[0]))
    # outside it (the start, y = -1.5) it does nothing
    np.testing.assert_array_equal(np.asarray(pushed(state, 1.0).position), np.asarray(pushed(state, 0.0).position))


def test_brax_mjx_force_reaches_the_named_body_bounded():
    inner, inner_params = envs.make("brax/inverted_pendulum", backend="mjx", episode_length=50)
    env = TwoPlayer(inner, "auto", strength=2.0, bodies=("pole",), axes="xz")
    assert env.kind == "force"
    params = env.default_params.replace(env=inner_params)
    _, state = env.reset(jax.random.key(0), params)
    pushed = env.env.push(state, env.body_ids, env.forces(jnp.array([5.0, -0.5]).clip(-1, 1), 2.0))
    applied = np.asarray(pushed.brax_state.pipeline_state.xfrc_applied)
    expected = np.zeros_like(applied)
    expected[2, 0], expected[2, 2] = 2.0, -1.0  # the pole is body 2; x and z
    np.testing.assert_array_equal(applied, expected)
    # the paper's hopper adversary (a force on the foot, x and z) on MJX; its actuators elsewhere
    hopper = TwoPlayer(envs.make("brax/hopper", backend="mjx")[0], name="brax/hopper")
    assert (hopper.kind, hopper.body_ids, hopper.adversary_dim) == ("force", (4,), 2)
    assert TwoPlayer(envs.make("brax/hopper")[0], name="brax/hopper").kind == "action"
    # a discrete environment has no adversary; the positional backend no force
    with pytest.raises(ValueError, match="discrete"):
        TwoPlayer(envs.make("CartPole-v1")[0])
    with pytest.raises(ValueError, match="no external force"):
        TwoPlayer(envs.make("brax/inverted_pendulum")[0], "force")


def test_playground_force_reaches_the_named_body_and_vectorises():
    pytest.importorskip("mujoco_playground")
    inner, inner_params = envs.make("playground/CartpoleBalance", episode_length=20)
    env = TwoPlayer(inner, name="playground/CartpoleBalance")
    assert (env.kind, env.body_ids, env.adversary_dim, env.strength) == ("force", (2,), 2, 2.0)  # the reference's pole_1, x and z, 2 N
    params = env.default_params.replace(env=inner_params)
    vec = envs.make_vector(env, 2)
    obs, state = vec.reset(jax.random.key(0), envs.tile_params(params, 2))
    step = jax.jit(vec.step)
    push = jnp.array([[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]])  # cart still, the pole pushed +x and -x
    for _ in range(5):
        obs, state, reward, *_ = step(jax.random.key(1), state, push, envs.tile_params(params, 2))
    applied = np.asarray(state.env_state.env_state.data.xfrc_applied)
    np.testing.assert_array_equal(applied[:, 2, 0], [2.0, -2.0])
    np.testing.assert_array_equal(applied[:, :2], 0.0)
    assert not np.allclose(np.asarray(obs[0]), np.asarray(obs[1]))  # opposite pushes, different states


def test_qarl_protagonist_learns_pendulum():
    # Random play scores about -1200; the protagonist alone (no adversary, tau = 0) after 40k steps.
    result = jaxrl.train("qarl", "Pendulum-v1", num_seeds=2, overrides={"total_steps": 40_000})
    returns = robustness.perturbation_returns(robustness.protagonist(result), "Pendulum-v1", {}, [0.0], episodes=8)
    assert np.all(returns.mean(axis=-1) > -500), returns.mean(axis=-1)
    assert np.all(np.asarray(result.state.curriculum.concentration) < 50)  # the curriculum moved


def test_temperature_is_drawn_per_episode_and_appended():
    inner, inner_params = envs.make("Pendulum-v1", max_steps_in_episode=5)
    two = TwoPlayer(inner, "action")
    env = TemperatureContext(two)
    params = env.default_params.replace(env=two.default_params.replace(env=inner_params), use_fixed=False, concentration=50.0)
    obs, state = env.reset(jax.random.key(0), params)
    assert obs.shape == (4,) and float(obs[-1]) == float(state.temperature) > 0
    actions, rewards, info = _random_episode(env, params, steps=12)
    temperatures = np.asarray(info["temperature"])
    assert len(np.unique(temperatures)) == 3  # one per (5-step) episode: steps 0-4, 5-9, 10-11
    assert np.all(temperatures[:5] == temperatures[0]) and temperatures[5] != temperatures[4]
    # tau ~ Gamma(50, rate 1000): mean 0.05, within 4 standard errors over 20,000 draws
    draws = jax.vmap(env.draw, in_axes=(0, None))(jax.random.split(jax.random.key(1), 20_000), params)
    assert abs(float(draws.mean()) - 0.05) < 4 * 0.05 / np.sqrt(50) / np.sqrt(20_000)
    # the defaults are the paper's evaluation setting: tau = 0
    assert float(env.reset(jax.random.key(0), env.default_params.replace(env=params.env))[0][-1]) == 0.0


def test_simultaneous_players_learn_from_opposite_rewards():
    train = make_train("rarl", "Pendulum-v1", total_steps=400, overrides={"schedule": "simultaneous", "learning_starts": 100})
    state, _ = jax.jit(train)(jax.random.key(0), train.default_hparams)
    pro, adv = state.protagonist_replay.experience, state.adversary_replay.experience
    filled = int(state.protagonist_replay.current_index)
    assert filled == 100  # 400 steps over 4 envs
    np.testing.assert_array_equal(np.asarray(adv["reward"])[:, :filled], -np.asarray(pro["reward"])[:, :filled])
    np.testing.assert_array_equal(np.asarray(adv["obs"]), np.asarray(pro["obs"]))


def test_alternating_phases_fill_only_the_learning_players_replay():
    # 40 updates of 4 steps: the warm-up's 80 steps are 20 updates, a phase's 40 steps 10
    train = make_train("rarl", "Pendulum-v1", total_steps=160, overrides={"learning_starts": 80, "phase_steps": 40})
    state, metrics = jax.jit(train)(jax.random.key(0), train.default_hparams)
    # updates 0-19 warm up (both replays); 20-29 are the adversary's phase, 30-39 the protagonist's
    assert int(state.adversary_replay.current_index) == 30 and int(state.protagonist_replay.current_index) == 30


def test_adversary_at_a_huge_temperature_acts_uniformly_at_random():
    def adversary_actions(temperature):
        train = make_train("qarl", "Pendulum-v1", total_steps=2000,
                           overrides={"curriculum": "fixed", "schedule": "simultaneous", "learning_starts": 200})
        state, _ = jax.jit(train)(jax.random.key(0), train.default_hparams.replace(fixed_temperature=temperature))
        obs = state.adversary_replay.experience["obs"].reshape(-1, 4)[:2000]
        params = dict(train.policy_params(state), adversary_on=1.0)
        return np.asarray(train.act(params, obs, jax.random.key(5)))[:, 1]

    def ks_to_uniform(x):
        x = np.sort(x)
        cdf = (x + 1) / 2
        n = len(x)
        return max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))

    # the most uniform a tanh-Gaussian gets is within about 0.03 of U(-1, 1) in KS distance
    assert ks_to_uniform(adversary_actions(1e3)) < 0.06
    assert ks_to_uniform(adversary_actions(1e-4)) > 0.15  # a rational adversary is not uniform


def test_rarl_at_a_fixed_temperature_equals_qarl_with_its_curriculum_frozen_there():
    settings = {"total_steps": 1200, "learning_starts": 200, "phase_steps": 200}
    rarl = make_train("rarl", "Pendulum-v1", overrides={**settings, "adversary_temperature": "fixed"})
    qarl = make_train("qarl", "Pendulum-v1", overrides={**settings, "curriculum": "fixed", "temperature_feature": False})
    key = jax.random.key(3)
    rarl_state, rarl_metrics = jax.jit(rarl)(key, rarl.default_hparams.replace(adversary_alpha=0.02))
    qarl_state, qarl_metrics = jax.jit(qarl)(key, qarl.default_hparams.replace(fixed_temperature=0.02))
    # The two programs differ by QARL's wrapper (it appends tau), so XLA may round the
    # environment's arithmetic differently by an ulp (seen at some run lengths); the learners are
    # the same arithmetic on the same data (the replays hold inputs and temperatures alike).
    close = lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)  # noqa: E731
    jax.tree.map(close, (rarl_state.protagonist, rarl_state.adversary), (qarl_state.protagonist, qarl_state.adversary))
    close(rarl_metrics["episode_return"], qarl_metrics["episode_return"])
    rarl_data, qarl_data = rarl_state.adversary_replay.experience, qarl_state.adversary_replay.experience
    close(rarl_data["obs"], qarl_data["obs"])
    filled = int(qarl_state.adversary_replay.current_index)
    assert filled > 0 and np.all(np.asarray(qarl_data["temperature"])[:, :filled] == np.float32(0.02))
    np.testing.assert_array_equal(np.asarray(rarl_data["temperature"]), np.asarray(qarl_data["temperature"]))


def test_cli_resume_is_exact_with_the_curriculum_and_eval_takes_an_adversary(tmp_path, capsys):
    # a threshold every return passes and 4 episodes per update: the curriculum moves before the
    # first checkpoint
    settings = ["--set", "total_steps=2400", "--set", "learning_starts=200", "--set", "phase_steps=400",
                "--set", "curriculum_samples=4", "--set", "return_threshold=-1e9"]
    env_set = ["--env-set", "max_steps_in_episode=50", "--env-set", "perturbation_strength=0.5"]
    argv = ["train", "qarl", "--env", "Pendulum-v1", "--seeds", "2", *settings, *env_set, "--checkpoint-every", "1200"]
    assert main(argv + ["--out", str(tmp_path / "full")]) == 0
    full = load_run(tmp_path / "full")
    assert np.all(np.asarray(full.state.curriculum.updates) >= 2)
    assert np.all(np.asarray(full.state.curriculum.concentration) < 50)
    middle = load_run(tmp_path / "full", step=1200)
    resumed = jaxrl.train("qarl", "Pendulum-v1", num_seeds=2, state=middle.state, start_window=middle.metadata["windows_done"],
                          log_every=middle.metadata["log_every"], env_overrides={"max_steps_in_episode": "50", "perturbation_strength": "0.5"},
                          overrides={"total_steps": 2400, "learning_starts": 200, "phase_steps": 400, "curriculum_samples": 4,
                                     "return_threshold": -1e9})
    assert_trees_equal(resumed.state, full.state)
    # evaluation: alone by default, against its own adversary on request
    alone = evaluate_loaded(full, 4)
    assert main(["eval", str(tmp_path / "full"), "--episodes", "4", "--adversary", "trained"]) == 0
    assert "against its trained adversary" in capsys.readouterr().out
    params = dict(full.policy_params(), adversary_on=jnp.ones(2))
    against = evaluate_loaded(full, 4, policy_params=params)
    assert not np.array_equal(alone.returns, against.returns)


def test_robustness_at_zero_strength_is_the_plain_evaluation_and_the_attack_leaves_the_protagonist(tmp_path):
    assert main(["train", "sac", "--env", "Pendulum-v1", "--seeds", "2", "--set", "total_steps=2000", "--out", str(tmp_path / "sac")]) == 0
    run = load_run(tmp_path / "sac")
    hero = robustness.protagonist(run)
    returns = robustness.perturbation_returns(hero, "Pendulum-v1", {}, [0.0, 0.5], episodes=4)
    assert returns.shape == (2, 2, 4)
    # the same episodes (keys, actions) in another program: equal up to XLA's rounding
    np.testing.assert_allclose(returns[0], evaluate_loaded(run, 4).returns, rtol=1e-5)
    assert not np.array_equal(returns[1], returns[0])
    attacked, adversary = robustness.worst_case_returns(hero, "Pendulum-v1", {}, attack_steps=800, episodes=4,
                                                        overrides={"learning_starts": 200})
    assert attacked.shape == (2, 4) and jax.tree.leaves(adversary)[0].shape[0] == 2


@pytest.mark.parametrize("argv, message", [
    (["train", "qarl", "--env", "CartPole-v1"], "continuous"),
    (["train", "rarl", "--env", "Pendulum-v1", "--env-set", "perturbation=wind"], "perturbation must be one of"),
    (["train", "rarl", "--env", "Pendulum-v1", "--env-set", "perturbation=force"], "no external force"),
    (["train", "rarl", "--env", "point_mass_wind", "--env-set", "perturbation_bodies=nose"], "no body 'nose'"),
    (["train", "rarl", "--env", "Pendulum-v1", "--env-set", "perturbation_strength=lots"], "must be a number"),
    (["train", "rarl", "--env", "Pendulum-v1", "--set", "adversary_temperature=curriculum"], "rarl's adversary_temperature"),
    (["train", "qarl", "--env", "Pendulum-v1", "--set", "curriculum=linear"], "curriculum must be one of"),
    (["train", "rarl", "--env", "Pendulum-v1", "--set", "schedule=adversary"], "frozen_protagonist"),
])
def test_bad_settings_are_one_line_errors(argv, message, capsys, tmp_path):
    assert main(argv + ["--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "run").exists()
