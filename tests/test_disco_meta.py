"""Meta-training a Disco rule by meta-gradient (`jaxrl meta-train disco`): lifting the rule's
stop-gradient is what lets the meta-gradient reach it, through both inner steps and the lifetime
state between them; a meta-step changes the rule and carries the agents on; the run directory it
writes trains an agent with `jaxrl train disco --rule`; bad input is one line and exit code 2."""

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from jaxrl.cli import main
from jaxrl.cli.common import rule_overrides
from jaxrl.core.contract import apply_overrides, get_algorithm
from jaxrl.rules import disco
from jaxrl.rules.disco_agent import to_hparam
from jaxrl.rules.disco_meta import DiscoMetaConfig, DiscoMetaGradient
from jaxrl.rules.run import load_rule, meta_train_rule

TINY = dict(num_agents=2, num_envs=4, num_steps=5, valid_steps=6, hidden_sizes=(16,), action_hidden=8, value_hidden=(16,))
HEADS = ("lstm:linear_2:w", "lstm:linear_3:w", "lstm:linear_4:w")  # y_hat's, z_hat's and pi_hat's
META_LSTM = "lstm:~:meta_lstm:~unroll:lstm:linear:w"


@pytest.fixture(scope="module")
def tiny():
    program = DiscoMetaGradient(DiscoMetaConfig(**TINY))
    return program, program.init(jax.random.PRNGKey(0))


def test_lifting_the_stop_gradient_is_what_reaches_the_rule(tiny):
    """The part of the meta-objective on the validation rollout depends on the rule only through
    the agent's updated weights: with pi_hat, y_hat and z_hat stop-gradiented in the agent's loss
    its meta-gradient is exactly zero; with them lifted it reaches every head, and the meta-LSTM,
    whose state only the second inner step reads (it starts at zero, which switches off the
    lifetime interaction at the first); a step along it raises the objective."""
    program, state = tiny

    def gradients(weights, agents, values):
        agents, train, valid, _ = jax.vmap(program._gather)(agents)

        def objective(weights, backprop):
            _, (_, _, terms) = program.population_loss(weights, agents, values, train, valid, backprop)
            return terms["validation_loss"].mean()

        kept, lifted = jax.grad(objective)(weights, False), jax.grad(objective)(weights, True)
        # A small step along the unit meta-gradient: the objective must rise forwards and fall
        # backwards (a sign error anywhere on the meta-gradient's path would reverse them).
        norm = jnp.sqrt(sum(jnp.sum(g**2) for g in lifted.values()))
        along = lambda eps: objective({k: w + eps * lifted[k] / norm for k, w in weights.items()}, True)  # noqa: E731
        return kept, lifted, jnp.stack([along(-1e-2), objective(weights, True), along(1e-2)])

    kept, lifted, line = jax.device_get(jax.jit(gradients)(state.rule_params, state.agents, state.values))
    assert line[0] < line[1] < line[2], line
    assert all(np.all(g == 0.0) for g in kept.values())
    assert all(np.isfinite(g).all() for g in lifted.values())
    for name in (*HEADS, META_LSTM, "lstm:linear:w"):  # "lstm:linear": the lifetime interaction
        assert np.abs(lifted[name]).max() > 0.0, name


def test_a_meta_step_changes_the_rule_and_carries_the_agents(tiny):
    program, state = tiny
    state = jax.tree.map(lambda x: jnp.array(x, copy=True), state)  # the step donates its input
    before = jax.device_get(state)
    first, row = program.step(state)
    row, after = jax.device_get(row), jax.device_get(first)
    assert all(np.isfinite(v) for v in row.values()) and row["grad_norm"] > 0
    adam = after.opt_state[0]
    gradient = {k: v / 0.1 for k, v in adam.mu.items()}  # Adam's first moment after one step: (1 - b1) x the gradient
    assert all(np.isfinite(g).all() for g in gradient.values())
    for name in (*HEADS, META_LSTM):
        assert np.abs(gradient[name]).max() > 0.0 and not np.array_equal(after.rule_params[name], before.rule_params[name])
    # Both inner steps' states are kept: the agents' lifetime meta-LSTM state (zero at the start),
    # their weights, their normalisers (decayed once per update) and their value functions.
    assert np.all(before.agents.meta_state[0] == 0) and (np.abs(after.agents.meta_state[0]).max(-1) > 0).all()
    np.testing.assert_allclose(after.agents.adv_ema[2], 0.99**2, rtol=1e-6)
    np.testing.assert_allclose(after.values.adv_ema[2], 0.99**2, rtol=1e-6)
    assert (after.agents.opt_state[0].count == 2).all() and int(after.step) == 1
    assert not np.array_equal(jax.tree.leaves(after.agents.params)[0], jax.tree.leaves(before.agents.params)[0])
    assert not np.array_equal(jax.tree.leaves(after.values.params)[0], jax.tree.leaves(before.values.params)[0])
    second, _ = program.step(first)
    again = jax.device_get(second)
    np.testing.assert_allclose(again.agents.adv_ema[2], 0.99**4, rtol=1e-6)  # no lifetime reset
    assert not np.allclose(again.agents.meta_state[0], after.agents.meta_state[0])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("disco-meta") / "m"
    meta_train_rule("disco", out, meta_steps=2, settings=TINY, checkpoint_every=1, progress=False)
    return out


def test_run_directory_gives_the_rule_to_train_disco(run_dir):
    frame = pd.read_csv(run_dir / "meta.csv")
    assert list(frame["meta_step"]) == [1, 2] and (run_dir / "meta.png").exists() and (run_dir / "config.json").exists()
    assert list(frame["env_steps"]) == [2 * 4 * (2 * 5 + 6), 2 * 2 * 4 * (2 * 5 + 6)]
    weights, settings = load_rule(run_dir)
    assert settings == {"rule": "disco"}
    initial = to_hparam(disco.init_weights(jax.random.split(jax.random.PRNGKey(0), 3)[0]))
    assert {k: v.shape for k, v in weights.items()} == {k: v.shape for k, v in initial.items()}
    assert any(not np.array_equal(weights[k], initial[k]) for k in initial)  # trained, not initial
    overrides = rule_overrides(str(run_dir), "disco", {})  # what `jaxrl train disco --rule DIR` does
    algorithm = get_algorithm("disco")
    config, hparams = algorithm.defaults("Catch-bsuite", True)
    config, hparams = apply_overrides(algorithm, config, hparams, overrides)
    algorithm.check(config, hparams, True)
    for name, value in weights.items():
        np.testing.assert_array_equal(hparams.rule_params[name], value)


@pytest.mark.parametrize("argv, message", [
    (["train", "disco", "--env", "Catch-bsuite", "--rule", "EMPTY"], "not a rule meta-training directory"),
    (["train", "disco", "--env", "Catch-bsuite", "--rule", "nowhere"], "or a `jaxrl meta-train disco` directory"),
    (["train", "lpg", "--env", "gridworld", "--rule", "RUN"], "holds a disco rule; train it with `jaxrl train disco`"),
    (["train", "disco", "--env", "Catch-bsuite", "--rule", "RUN", "--set", "rule_params=1"], "not both"),
    (["meta-train", "disco", "--set", "num_agnts=2"], "no setting 'num_agnts' (did you mean num_agents"),
    (["meta-train", "disco", "--set", "hidden_sizes=16xa"], "expected a number"),
    (["meta-train", "disco", "--set", "inner_steps=0"], "inner_steps must be >= 1"),
    (["meta-train", "disco", "--env", "Pendulum-v1"], "needs discrete actions"),
    (["meta-train", "disco", "--env-set", "max_steps_in_episode=5"], "takes no --env-set"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, run_dir, argv, message):
    (tmp_path / "empty").mkdir()
    argv = [{"EMPTY": str(tmp_path / "empty"), "RUN": str(run_dir)}.get(a, a) for a in argv]
    out = tmp_path / "m"
    assert main([*argv, "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.slow
def test_cli_meta_trains_resumes_and_trains_an_agent(tmp_path):
    """`jaxrl meta-train disco` at tiny sizes, resumed to one more meta-step, then `jaxrl train disco
    --rule DIR` trains a small agent with the saved rule (about 2 min on 2 CPU cores)."""
    tiny = [item for k, v in TINY.items() for item in ("--set", f"{k}={'x'.join(map(str, v)) if isinstance(v, tuple) else v}")]
    out = tmp_path / "m"
    assert main(["meta-train", "disco", "--quiet", *tiny, "--meta-steps", "1", "--out", str(out)]) == 0
    assert main(["meta-train", "disco", "--quiet", *tiny, "--meta-steps", "2", "--resume", str(out)]) == 0
    assert list(pd.read_csv(out / "meta.csv")["meta_step"]) == [1, 2]
    run = tmp_path / "t"
    assert main(["train", "disco", "--env", "Catch-bsuite", "--rule", str(out), "--total-steps", "256", "--quiet",
                 "--set", "hidden_sizes=16", "--set", "action_hidden=8", "--set", "num_envs=4", "--set", "num_steps=8",
                 "--out", str(run)]) == 0
    assert np.isfinite(pd.read_csv(run / "metrics.csv")["loss"]).all()
