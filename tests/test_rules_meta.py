"""Meta-gradient meta-training of an update rule: the meta-gradient agrees with forward mode, a
population member alone equals itself in the population, the meta-objective's critic learns,
lifetimes end and restart, and the update network's gradient is clipped."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from envs.gridworld import make_level
from jaxrl.curricula.buffer import replay_probabilities
from jaxrl.rules.meta import MetaConfig, MetaGradient

TINY = dict(num_agents=3, num_envs=2, num_steps=5, inner_updates=2, hidden_size=8, num_bins=4)


@pytest.fixture(scope="module")
def tiny():
    program = MetaGradient(MetaConfig(**TINY))
    return program, program.init(jax.random.PRNGKey(0))


def population_loss(program, state, rule_params):
    losses, _ = jax.vmap(program._segment, in_axes=(None, 0))(rule_params, state.slots)
    return losses.mean()


def test_meta_gradient_agrees_with_forward_mode(tiny):
    program, state = tiny
    loss = lambda p: population_loss(program, state, p)  # noqa: E731
    grads = jax.grad(loss)(state.rule_params)
    direction = jax.tree.map(lambda x, k: jax.random.normal(k, x.shape), state.rule_params,
                             jax.tree.unflatten(jax.tree.structure(state.rule_params),
                                                list(jax.random.split(jax.random.PRNGKey(1), len(jax.tree.leaves(state.rule_params))))))
    _, forward = jax.jvp(loss, (state.rule_params,), (direction,))
    reverse = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grads), jax.tree.leaves(direction)))
    assert abs(float(forward)) > 1e-6
    np.testing.assert_allclose(float(reverse), float(forward), rtol=2e-3)


def test_a_member_alone_equals_itself_in_the_population(tiny):
    program, state = tiny
    losses, (slots, out) = jax.vmap(program._segment, in_axes=(None, 0))(state.rule_params, state.slots)
    member = jax.tree.map(lambda x: x[1], state.slots)
    loss, (slot, alone) = program._segment(state.rule_params, member)
    np.testing.assert_allclose(loss, losses[1], rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(slot), jax.tree.leaves(jax.tree.map(lambda x: x[1], slots))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_critic_learns_and_lifetimes_restart():
    program = MetaGradient(MetaConfig(**{**TINY, "num_envs": 8, "num_steps": 20}))
    state = program.init(jax.random.PRNGKey(2))
    lifetimes = np.asarray(state.slots.lifetime)
    assert (lifetimes % 2 == 0).all() and (lifetimes >= 250).all()
    # shorten every lifetime to 3 meta-steps (6 updates) so that they end here
    state = state.replace(slots=state.slots.replace(lifetime=jnp.full_like(state.slots.lifetime, 6)))
    first_level = np.asarray(state.slots.level.walls)
    ended = []
    for _ in range(3):
        critic = np.asarray(jax.tree.leaves(state.slots.critic)[0])  # the step donates its input
        state, row = program.step(state)
        ended.append(int(row["lifetimes_ended"]))
        # the critic's updates are kept (a public implementation discarded them) and fit its data
        assert float(row["critic_loss_after"]) < float(row["critic_loss"])
        if ended[-1] == 0:
            assert not np.allclose(jax.tree.leaves(state.slots.critic)[0], critic)
    assert ended == [0, 0, 3] and (np.asarray(state.slots.n) == 0).all()
    assert not np.array_equal(np.asarray(state.slots.level.walls), first_level)  # new levels


def test_update_network_gradient_is_clipped():
    """Adam's first moment after one meta-step is (1 - b1) x the gradient it was given: the clipped
    one, of norm ``meta_max_grad_norm``, though the raw gradient is far larger."""
    program = MetaGradient(MetaConfig(**{**TINY, "meta_max_grad_norm": 1e-4}))
    state = program.init(jax.random.PRNGKey(0))
    raw = optax.global_norm(jax.grad(lambda p: population_loss(program, state, p))(state.rule_params))
    state, row = program.step(state)
    adam = next(s for s in jax.tree.leaves(state.opt_state, is_leaf=lambda x: hasattr(x, "mu")) if hasattr(s, "mu"))
    assert float(raw) > 1e-3 and float(row["grad_norm"]) == pytest.approx(float(raw), rel=1e-4)
    assert float(optax.global_norm(adam.mu)) == pytest.approx(0.1 * 1e-4, rel=1e-3)


GROOVE = dict(TINY, curator="groove", num_envs=4, num_steps=10, min_fill=2)


@pytest.fixture(scope="module")
def groove():
    return MetaGradient(MetaConfig(**GROOVE))


def test_regret_against_hand_computed_returns(groove):
    """A corridor with +1 to the right and -1 to the left, both ending the episode: an antagonist
    that always steps right earns 1, an agent that always steps left -1; regret 2 exactly (each
    copy's first episode only: the restarts after it do not count)."""
    walls = [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]
    level = make_level(3, start=(0, 1), objects=[((0, 2), 1.0, 1.0, 0.0), ((0, 0), -1.0, 1.0, 0.0)], walls=walls,
                       max_steps=20, grid=6, max_objects=3)
    slot = groove._new_slot(jax.random.PRNGKey(1), level)

    def always(params, action):  # a table whose every row prefers ``action`` overwhelmingly
        kernel = params["params"]["policy"]["kernel"]
        return {"params": {**params["params"], "policy": {"kernel": kernel.at[:, action].set(50.0)}}}

    slot = slot.replace(agent=slot.agent.replace(params=always(slot.agent.params, 2)),
                        antagonist=slot.antagonist.replace(params=always(slot.antagonist.params, 3)))
    regret, a2c, lpg = groove.regret(jax.random.PRNGKey(2), slot)
    assert (float(a2c), float(lpg), float(regret)) == (1.0, -1.0, 2.0)


def test_curator_scores_only_ended_lifetimes_and_replays_only_scored_levels(groove):
    state = groove.init(jax.random.PRNGKey(3))
    state = state.replace(slots=state.slots.replace(lifetime=jnp.array([2, 4, 10**6], jnp.int32)))
    state, row = groove.step(state)  # agent 0's lifetime ends
    buffer = state.buffer
    assert int(buffer.size) == 1 and int(row["lifetimes_ended"]) == 1
    assert float(buffer.scores[np.argmax(np.asarray(buffer.filled))]) == pytest.approx(float(row["regret"]))
    for _ in range(3):  # no lifetime ends: nothing is scored, whatever is played
        state = state.replace(slots=state.slots.replace(lifetime=jnp.full((3,), 10**6, jnp.int32)))
        state, row = groove.step(state)
        assert int(state.buffer.size) == 1 and int(row["lifetimes_ended"]) == 0 and np.isnan(float(row["regret"]))
    # the one scored level is the only one that can be replayed
    probabilities = np.asarray(replay_probabilities(state.buffer, state.step, 1.0, 0.0))
    assert probabilities.sum() == pytest.approx(1.0) and (probabilities[~np.asarray(state.buffer.filled)] == 0).all()
