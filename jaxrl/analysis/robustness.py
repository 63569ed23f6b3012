"""Robustness of a trained protagonist (SAC, RARL or QARL) to an adversary's perturbations, as the
QARL paper measures it (Reddi et al., ICLR 2024): the return of the deterministic policy

* under fixed perturbations of increasing magnitude (``perturbation_returns``): the adversary's
  action held at +1 in every component (odd episodes: -1) and scaled by each ``strength`` of the
  sweep, a constant push or actuator offset; the magnitudes are the ``TwoPlayer`` environment's
  ``strength`` parameter, so the whole sweep is one ``vmap``;
* against a worst-case adversary (``worst_case_returns``): a fresh SAC adversary trained to attack
  the frozen final protagonist (``rarl`` with ``schedule=adversary``), then played against it.

Every protagonist is evaluated in the same two-player environment, built from the environment's
name and options (``perturbation``, ``perturbation_strength``... as ``jaxrl train rarl`` takes
them). A QARL protagonist reads the temperature as its last input; it is given 0, the paper's
evaluation setting.

>>> hero = protagonist(load_run("runs/qarl"))                                  # doctest: +SKIP
>>> returns = perturbation_returns(hero, "point_mass_wind", {}, [0.0, 1.0, 2.0])  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.analysis.evaluation import eval_keys, episodes as episode_function
from jaxrl.components.actor_critic import mlp_torso
from jaxrl.components.networks import TanhGaussianActor
from jaxrl.core.contract import ConfigError

_ATTACK_STREAM = 0xA77AC  # folded into the attack's seeds: never a training run's keys


@dataclass
class Protagonist:
    """A trained protagonist: its actor's weights for every seed (leading axis), how to apply
    them, and what it reads."""

    label: str
    params: Any
    config: Any  # the run's config: the network's widths
    action_dim: int
    takes_temperature: bool  # QARL's: tau as the last input

    @property
    def actor(self) -> TanhGaussianActor:
        return TanhGaussianActor(self.action_dim, mlp_torso(self.config))

    @property
    def num_seeds(self) -> int:
        return int(jax.tree.leaves(self.params)[0].shape[0])

    def act(self, params: Any, obs: jax.Array) -> jax.Array:
        """The deterministic action (the tanh of the Gaussian's mean) for observations without tau."""
        if self.takes_temperature:
            obs = jnp.concatenate([obs, jnp.zeros((*obs.shape[:-1], 1), obs.dtype)], axis=-1)
        return jnp.tanh(self.actor.apply(params, obs)[0])


def protagonist(run: Any, label: str | None = None) -> Protagonist:
    """The protagonist of a run of sac, rarl or qarl, loaded (``jaxrl.driver.run.load_run``) or
    just trained (``jaxrl.train``'s result)."""
    name, config = run.train.algorithm.name, run.train.config
    params = run.train.policy_params(run.state)
    if name == "sac":
        return Protagonist(label or name, params["actor"], config, _action_dim(params["actor"]), False)
    if name in ("rarl", "qarl"):
        takes = name == "qarl" and bool(config.temperature_feature)
        return Protagonist(label or name, params["protagonist"], config, _action_dim(params["protagonist"]), takes)
    raise ConfigError(f"robustness evaluates sac, rarl and qarl protagonists, not {name}")


def _action_dim(actor_params: Any) -> int:
    # TanhGaussianActor's mean head (its first Dense after the torso) has action_dim outputs
    return int(actor_params["params"]["Dense_0"]["kernel"].shape[-1])


def two_player_env(env_name: str, env_overrides: dict[str, Any] | None = None):
    """(env, params): ``TwoPlayer`` around ``env_name``, its ``perturbation*`` options from
    ``env_overrides`` (the rest go to the environment)."""
    from jaxrl.algorithms.adversarial import ENV_OPTIONS, wrap_env
    from jaxrl.core.environments import make_env

    overrides = dict(env_overrides or {})
    env, params = make_env(env_name, {k: v for k, v in overrides.items() if k not in ENV_OPTIONS})
    return wrap_env(env_name, env, params, {k: v for k, v in overrides.items() if k in ENV_OPTIONS}, False)


def _max_steps(env_params: Any, max_steps: int | None) -> int:
    return int(max_steps or getattr(env_params, "max_steps_in_episode", 1000))


def perturbation_returns(hero: Protagonist, env_name: str, env_overrides: dict[str, Any] | None, strengths: Sequence[float],
                         *, episodes: int = 20, seed: int = 0, max_steps: int | None = None) -> np.ndarray:
    """Returns [strengths, seeds, episodes] of ``hero`` under a constant perturbation of each
    magnitude (even episodes pushed by +strength, odd by -strength in every component)."""
    env, env_params = two_player_env(env_name, env_overrides)
    if env.protagonist_dim != hero.action_dim:
        raise ConfigError(f"the protagonist acts in {hero.action_dim} dimensions, {env_name} in {env.protagonist_dim}")
    signs = jnp.where(jnp.arange(episodes) % 2 == 0, 1.0, -1.0)[:, None]
    push = signs * jnp.ones((episodes, env.adversary_dim))

    def act(params, obs, key):
        return jnp.concatenate([hero.act(params, obs), push], axis=-1)

    one_run = episode_function(env, act, episodes, _max_steps(env_params, max_steps))
    sweep = [env_params.replace(strength=jnp.asarray(s, jnp.float32)) for s in strengths]
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *sweep)
    keys = eval_keys(seed, hero.num_seeds)
    per_seed = jax.vmap(lambda params, key, env_params: one_run(params, key, env_params)[0], in_axes=(0, 0, None))
    program = jax.jit(jax.vmap(per_seed, in_axes=(None, None, 0)))
    return np.asarray(program(hero.params, keys, stacked))


def worst_case_returns(hero: Protagonist, env_name: str, env_overrides: dict[str, Any] | None, *, attack_steps: int,
                       episodes: int = 20, seed: int = 0, overrides: dict[str, Any] | None = None,
                       max_steps: int | None = None) -> tuple[np.ndarray, Any]:
    """(returns [seeds, episodes], the adversaries' actor weights [seeds, ...]): for every seed of
    ``hero``, a fresh adversary (rarl's SAC, ``schedule=adversary``) trains for ``attack_steps``
    environment steps against the frozen protagonist's deterministic policy, then both play
    deterministically. ``overrides`` set the attacker's rarl settings (its widths are the
    protagonist's)."""
    from jaxrl.algorithms.adversarial import AdversarialHParams, RETURN_THRESHOLDS
    from jaxrl.core.train import build
    from jaxrl.driver.runner import init_runs, run_keys, state_axes

    one = jax.tree.map(lambda x: x[0], hero.params)
    settings = {"schedule": "adversary", "total_steps": attack_steps, "frozen_takes_temperature": hero.takes_temperature,
                "hidden_sizes": tuple(hero.config.hidden_sizes), "activation": hero.config.activation,
                "layer_norm": hero.config.layer_norm, **(overrides or {})}
    hparams = AdversarialHParams(return_threshold=RETURN_THRESHOLDS.get(env_name, 10.0), frozen_protagonist=one)
    train = build("rarl", env_name, hparams=hparams, overrides=settings, env_overrides=env_overrides)
    keys = jax.vmap(lambda k: jax.random.fold_in(k, _ATTACK_STREAM))(run_keys(seed, np.arange(hero.num_seeds)))
    hparams = train.default_hparams.replace(frozen_protagonist=hero.params)
    axes = train.hparams_axes(frozen_protagonist=0)
    # The driver's initialisation (one seed after another: a vmapped orthogonal initialiser, a
    # batched QR, can deadlock XLA's CPU runtime on 2 cores) and run layout.
    states = jax.jit(init_runs(train.program, axes))(keys, hparams, train.default_env_params)
    state, _ = jax.jit(jax.vmap(train.run, in_axes=(state_axes(states), axes), out_axes=(state_axes(states), 0)))(states, hparams)
    adversary = state.adversary.actor
    adversary_act = train.agent.act

    env, env_params = two_player_env(env_name, env_overrides)

    def act(params, obs, key):
        protagonist_params, adversary_params = params
        both = adversary_act({"protagonist": protagonist_params, "adversary": adversary_params, "adversary_on": 1.0}, obs, key, True)
        return jnp.concatenate([hero.act(protagonist_params, obs), both[..., hero.action_dim:]], axis=-1)

    one_run = episode_function(env, act, episodes, _max_steps(env_params, max_steps))
    program = jax.jit(jax.vmap(lambda params, key: one_run(params, key, env_params)[0]))
    returns = program((hero.params, adversary), eval_keys(seed, hero.num_seeds))
    return np.asarray(returns), adversary


def with_adversary(run: Any, spec: str) -> tuple[Any, str]:
    """(policy parameters, description) for ``jaxrl eval RUN --adversary SPEC`` of a rarl or qarl
    run: ``none`` (the protagonist alone), ``trained`` (against the run's own adversary) or the
    path of another rarl/qarl run whose adversary (same shapes; one seed, or one per seed) plays."""
    from jaxrl.driver.run import load_run

    if run.algorithm.name not in ("rarl", "qarl"):
        raise ConfigError(f"--adversary needs a rarl or qarl run; {run.algorithm.name} has no adversary")
    params, seeds = run.policy_params(), len(run.seeds)
    if spec == "none":
        return dict(params, adversary_on=jnp.zeros(seeds)), "no adversary"
    if spec == "trained":
        return dict(params, adversary_on=jnp.ones(seeds)), "its trained adversary"
    other = load_run(spec)
    if other.algorithm.name not in ("rarl", "qarl"):
        raise ConfigError(f"--adversary {spec}: a {other.algorithm.name} run has no adversary")
    adversary = other.policy_params()["adversary"]
    if len(other.seeds) == 1:
        adversary = jax.tree.map(lambda x: jnp.repeat(x, seeds, axis=0), adversary)
    shapes = lambda tree: [x.shape for x in jax.tree.leaves(tree)]  # noqa: E731
    if shapes(adversary) != shapes(params["adversary"]):
        raise ConfigError(f"--adversary {spec}: its adversary's networks (or seeds) do not fit this run's")
    return dict(params, adversary=adversary, adversary_on=jnp.ones(seeds)), f"the adversary of {spec}"
