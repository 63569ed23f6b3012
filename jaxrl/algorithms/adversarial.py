"""Robust adversarial RL with two SAC players in one program: RARL (Pinto et al., 2017, "Robust
Adversarial Reinforcement Learning", here with SAC players as in the QARL paper's baseline) and
QARL (Reddi et al., ICLR 2024, "Robust Adversarial Reinforcement Learning via Bounded Rationality
Curricula").

The environment is ``envs.adversarial.TwoPlayer`` around the ``--env`` given: the protagonist
acts, the adversary perturbs (a force on named bodies, or its actuators), rewards are zero-sum.
Both players are the kit's continuous SAC (``jaxrl.algorithms.sac``'s critic step, tanh-Gaussian
actors, twin critics). What differs is where the adversary's entropy temperature comes from
(``adversary_temperature``):

* ``learned`` (RARL): SAC's own, tuned towards the target entropy like the protagonist's;
* ``fixed`` (RARL at a given rationality): ``adversary_alpha``, never learned;
* ``curriculum`` (QARL): a quantal-response adversary whose temperature tau is drawn for every
  episode (``envs.adversarial.TemperatureContext``), appended to both players' observations
  (``temperature_feature``) and used, sample by sample, as the adversary's entropy coefficient in
  its critic target and actor loss. ``curriculum`` chooses tau's distribution: ``self_paced``
  (Gamma(k, rate) with k moved towards the target's under a KL trust region and a performance
  threshold on the protagonist's discounted returns, ``jaxrl.components.temperature_curriculum``),
  ``annealed`` (linear from ``anneal_start`` to ``anneal_end`` over ``anneal_fraction`` of the run)
  or ``fixed`` (``fixed_temperature``).

``schedule``: ``alternating`` (the papers': ``phase_steps`` environment steps in which only the
adversary learns, then as many in which only the protagonist does, each player's replay holding
only its own phases' transitions, as in the reference code; the warm-up's random transitions go to
both), ``simultaneous`` (both learn every update from every transition) or ``adversary`` (only the
adversary learns, against ``frozen_protagonist``'s deterministic policy: the worst-case attack of
``jaxrl.analysis.robustness``). The player that does not learn still acts with its stochastic
policy (the reference's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

import envs
from envs.adversarial import TemperatureContext, TwoPlayer, set_temperature_distribution
from jaxrl.algorithms.sac import SACLearner, soft_critic_step
from jaxrl.components import temperature_curriculum as tc
from jaxrl.components.actor_critic import (
    OffPolicyConfig,
    check_off_policy,
    check_target_entropy_scale,
    default_config,
    mlp_torso,
    polyak,
    tanh_gaussian_sample,
    target_entropy,
    temperature_loss,
    twin_critics,
)
from jaxrl.components.networks import TanhGaussianActor
from jaxrl.components.optim import apply, optimizer
from jaxrl.components.replay import Replay
from jaxrl.components.rollout import EnvCarry, env_reset, episode_metrics, per_env, rollout
from jaxrl.core.contract import Agent, Algorithm, Progress, register, require
from jaxrl.core.values import ConfigError

SCHEDULES = ("alternating", "simultaneous", "adversary")
TEMPERATURES = ("learned", "fixed", "curriculum")
CURRICULA = ("self_paced", "annealed", "fixed")


@dataclass(frozen=True)
class AdversarialConfig(OffPolicyConfig):
    schedule: str = "alternating"
    phase_steps: int = 2_000  # environment steps (all copies) of one player's learning phase
    adversary_temperature: str = "learned"  # learned | fixed | curriculum (QARL)
    curriculum: str = "self_paced"  # QARL's temperature distribution: self_paced | annealed | fixed
    temperature_feature: bool = True  # QARL: tau is the last input of both players' networks
    curriculum_samples: int = 30  # (tau, return) pairs per self-paced update (the reference's 30)
    curriculum_grid: int = 257  # candidates per grid of the self-paced update's search
    frozen_takes_temperature: bool = False  # schedule=adversary: the frozen protagonist reads tau = 0


@struct.dataclass
class AdversarialHParams:
    actor_lr: Any = 3e-4
    critic_lr: Any = 1e-3
    alpha_lr: Any = 1e-3
    gamma: Any = 0.99
    tau: Any = 0.005
    init_alpha: Any = 1.0  # both players' initial temperature where it is learned
    target_entropy_scale: Any = 1.0
    adversary_alpha: Any = 0.05  # the adversary's temperature when fixed
    # QARL's curriculum (the reference's values): Gamma(k, rate) from k = 50 towards k = 1
    initial_concentration: Any = 50.0
    rate: Any = 1000.0
    target_concentration: Any = 1.0
    kl_bound: Any = 0.5
    return_threshold: Any = 10.0  # xi: the protagonist's mean discounted return needed to move
    fixed_temperature: Any = 0.05
    anneal_start: Any = 0.05
    anneal_end: Any = 0.001
    anneal_fraction: Any = 2.0 / 3.0
    optimizer_params: Any = None
    frozen_protagonist: Any = None  # schedule=adversary: the protagonist actor's weights


@struct.dataclass
class AdversarialState:
    protagonist: SACLearner
    adversary: SACLearner
    protagonist_replay: Any
    adversary_replay: Any
    env: EnvCarry
    curriculum: tc.CurriculumState
    discounted_return: jax.Array  # [num_envs] the protagonist's, of the running episodes
    discount: jax.Array  # [num_envs] gamma^t
    key: jax.Array


def phase_of(step: jax.Array, schedule: str, phase_updates: int) -> tuple[jax.Array, jax.Array]:
    """(protagonist learns, adversary learns) at update ``step``: alternating phases of
    ``phase_updates`` updates, the adversary's first (the reference's order)."""
    if schedule == "simultaneous":
        return jnp.asarray(True), jnp.asarray(True)
    if schedule == "adversary":
        return jnp.asarray(False), jnp.asarray(True)
    adversary_turn = (step // phase_updates) % 2 == 0
    return ~adversary_turn, adversary_turn


def temperature_now(hparams: AdversarialHParams, curriculum: str, progress: Progress) -> jax.Array:
    """The fixed or annealed variants' tau at this point of the run."""
    if curriculum == "annealed":
        return tc.annealed_temperature(progress.fraction, hparams.anneal_start, hparams.anneal_end, hparams.anneal_fraction)
    return jnp.asarray(hparams.fixed_temperature, jnp.float32)


def build(config: AdversarialConfig, env: envs.Environment) -> Agent:
    two_player = _two_player(env)
    qarl = config.adversary_temperature == "curriculum"
    vec_env = envs.make_vector(env, config.num_envs)
    obs_dim = envs.observation_shape(env, env.default_params)[0]
    # Network inputs: QARL's observations end with tau, which the players read unless told not to.
    strip = qarl and not config.temperature_feature
    input_dim = obs_dim - 1 if strip else obs_dim
    pro_dim, adv_dim = two_player.protagonist_dim, two_player.adversary_dim
    actors = (TanhGaussianActor(pro_dim, mlp_torso(config)), TanhGaussianActor(adv_dim, mlp_torso(config)))
    critic = twin_critics(config)
    replays = tuple(Replay(config.num_envs, config.buffer_size, config.batch_size) for _ in range(2))
    steps_per_update = config.num_envs * config.num_steps
    num_updates = config.total_steps // steps_per_update
    phase_updates = max(1, config.phase_steps // steps_per_update)
    first_learning_update = max(0, -(-config.learning_starts // steps_per_update) - 1)

    def inputs(obs: jax.Array) -> jax.Array:
        return obs[..., :-1] if strip else obs

    def make_tx(hparams, step):
        progress = Progress(step, num_updates)
        return lambda lr: optimizer(config.optimizer, lr=lr, progress=progress, params=hparams.optimizer_params)

    def init_player(key, actor, action_dim, hparams, tx):
        actor_key, critic_key = jax.random.split(key)
        obs = jnp.zeros((1, input_dim), jnp.float32)
        actor_params = actor.init(actor_key, obs)
        critic_params = critic.init(critic_key, obs, jnp.zeros((1, action_dim), jnp.float32))
        log_alpha = jnp.log(jnp.asarray(hparams.init_alpha, jnp.float32))
        return SACLearner(actor_params, critic_params, critic_params, log_alpha, tx(hparams.actor_lr).init(actor_params),
                      tx(hparams.critic_lr).init(critic_params), tx(hparams.alpha_lr).init(log_alpha))

    def distribution(hparams, curriculum, step) -> dict[str, jax.Array]:
        """tau's distribution as the run has it at update ``step``."""
        return {"concentration": curriculum.concentration, "rate": curriculum.rate, "use_fixed": config.curriculum != "self_paced",
                "fixed": temperature_now(hparams, config.curriculum, Progress(step, num_updates))}

    def init(key, hparams, env_params):
        key, env_key, pro_key, adv_key = jax.random.split(key, 4)
        tx = make_tx(hparams, jnp.zeros((), jnp.int32))
        protagonist = init_player(pro_key, actors[0], pro_dim, hparams, tx)
        if config.schedule == "adversary":
            protagonist = protagonist.replace(actor=hparams.frozen_protagonist)
        adversary = init_player(adv_key, actors[1], adv_dim, hparams, tx)
        curriculum = tc.init_curriculum(hparams.initial_concentration, hparams.rate, config.curriculum_samples)
        params = envs.per_copy_params(env_params, env.default_params, config.num_envs)
        if qarl:
            # The first episodes draw tau from the parameters, with the curriculum's start; the
            # run's parameters stay the shared ones (the driver keeps one set for all runs).
            start = distribution(hparams, curriculum, jnp.zeros((), jnp.int32))
            carry = env_reset(vec_env, params.replace(**{k: jnp.broadcast_to(v, params.rate.shape) for k, v in start.items()}), env_key)
            carry = carry.replace(params=params)
        else:
            carry = env_reset(vec_env, params, env_key)
        example_obs = carry.obs[0]
        pro_replay = replays[0].init(inputs(example_obs), jnp.zeros(pro_dim))
        adv_replay = replays[1].init(inputs(example_obs), jnp.zeros(adv_dim), {"temperature": jnp.zeros(())})
        zeros = jnp.zeros(config.num_envs, jnp.float32)
        return AdversarialState(protagonist, adversary, pro_replay, adv_replay, carry, curriculum, zeros, zeros + 1.0, key)

    def protagonist_action(actor_params, obs, key, deterministic):
        x = inputs(obs)
        if config.schedule == "adversary" and config.frozen_takes_temperature:
            x = jnp.concatenate([x, jnp.zeros((*x.shape[:-1], 1), x.dtype)], axis=-1)
        mean, log_std = actors[0].apply(actor_params, x)
        return jnp.tanh(mean) if deterministic else tanh_gaussian_sample(key, mean, log_std)[0]

    def adversary_action(actor_params, obs, key, deterministic):
        mean, log_std = actors[1].apply(actor_params, inputs(obs))
        return jnp.tanh(mean) if deterministic else tanh_gaussian_sample(key, mean, log_std)[0]

    def collect(state: AdversarialState, hparams, step):
        key, rollout_key, learn_key = jax.random.split(state.key, 3)
        warming_up = step * steps_per_update < config.learning_starts

        def policy(act_key, obs):
            random_key, pro_key, adv_key = jax.random.split(act_key, 3)
            frozen = config.schedule == "adversary"
            acted = jnp.concatenate([protagonist_action(state.protagonist.actor, obs, pro_key, frozen),
                                     adversary_action(state.adversary.actor, obs, adv_key, False)], axis=-1)
            uniform = jax.random.uniform(random_key, acted.shape, minval=-1.0, maxval=1.0)
            if frozen:  # the frozen protagonist is never replaced by random actions
                uniform = uniform.at[:, :pro_dim].set(acted[:, :pro_dim])
            return jnp.where(warming_up, uniform, acted), {}

        carry, traj = rollout(vec_env, policy, state.env, rollout_key, config.num_steps)
        pro_learns, adv_learns = phase_of(step, config.schedule, phase_updates)
        # The replays hold the networks' inputs, and the adversary's its temperature per transition
        # (QARL's tau of the episode, or the fixed one): RARL at a fixed temperature and QARL with
        # every tau equal to it then run the same learner arithmetic on the same data (tested).
        seen = traj.replace(obs=inputs(traj.obs), next_obs=inputs(traj.next_obs))
        pro_traj = seen.replace(action=traj.action[..., :pro_dim])
        adv_traj = seen.replace(action=traj.action[..., pro_dim:], reward=-traj.reward)
        if qarl:
            temperature = traj.obs[..., -1]
        else:
            temperature = jnp.full(traj.reward.shape, hparams.adversary_alpha, jnp.float32)
        keep = lambda learns, replay, buffer, part, extras=None: jax.lax.cond(  # noqa: E731
            learns | warming_up, lambda b: replay.add(b, part, extras), lambda b: b, buffer)
        state = state.replace(
            protagonist_replay=keep(pro_learns, replays[0], state.protagonist_replay, pro_traj),
            adversary_replay=keep(adv_learns, replays[1], state.adversary_replay, adv_traj, {"temperature": temperature}),
            env=carry,
            key=key,
        )
        return _track_returns(state, traj, hparams), (traj, learn_key)

    def _track_returns(state, traj, hparams):
        """The protagonist's discounted return of every episode that ended, with its tau, into the
        curriculum's batch (QARL)."""
        if not qarl:
            return state

        def step_returns(carry, t):
            discounted, discount, curriculum = carry
            discounted = discounted + discount * t.reward
            curriculum = tc.add_episodes(curriculum, t.obs[:, -1], discounted, t.done)
            return (jnp.where(t.done, 0.0, discounted), jnp.where(t.done, 1.0, discount * hparams.gamma), curriculum), None

        (discounted, discount, curriculum), _ = jax.lax.scan(step_returns, (state.discounted_return, state.discount, state.curriculum), traj)
        return state.replace(discounted_return=discounted, discount=discount, curriculum=curriculum)

    def player_step(player: SACLearner, actor, batch, key, hparams, tx, alpha, learns_alpha: bool, action_dim: int):
        next_key, actor_key = jax.random.split(key)
        critic_params, critic_opt, q_loss, q = soft_critic_step(actor, critic, player, batch, next_key, hparams, tx, alpha)

        def actor_loss(params):
            mean, log_std = actor.apply(params, batch["obs"])
            action, log_prob = tanh_gaussian_sample(actor_key, mean, log_std)
            q_new = critic.apply(critic_params, batch["obs"], action).min(axis=0)
            return (alpha * log_prob - q_new).mean(), -log_prob

        (pi_loss, entropy), grads = jax.value_and_grad(actor_loss, has_aux=True)(player.actor)
        actor_params, actor_opt = apply(tx(hparams.actor_lr), grads, player.actor_opt, player.actor)
        log_alpha, alpha_opt = player.log_alpha, player.alpha_opt
        if learns_alpha:
            goal = target_entropy(hparams.target_entropy_scale, action_dim, False)
            alpha_grad = jax.grad(temperature_loss)(player.log_alpha, entropy, goal)
            log_alpha, alpha_opt = apply(tx(hparams.alpha_lr), alpha_grad, player.alpha_opt, player.log_alpha)
        player = SACLearner(actor_params, critic_params, polyak(critic_params, player.target_critic, hparams.tau),
                        log_alpha, actor_opt, critic_opt, alpha_opt)
        return player, {"critic_loss": q_loss, "actor_loss": pi_loss, "q_value": q.mean(), "entropy": entropy.mean(),
                        "alpha": jnp.mean(alpha)}

    def adversary_alpha(player, batch, hparams):
        if config.adversary_temperature == "learned":
            return jnp.exp(player.log_alpha)
        return batch["temperature"]  # fixed, or QARL's: the temperature the sample was played at

    def learn_player(index, player, buffer, key, hparams, tx, learns):
        replay, actor, action_dim = replays[index], actors[index], (pro_dim, adv_dim)[index]

        def one_step(player, step_key):
            sample_key, learner_key = jax.random.split(step_key)
            batch = jax.tree.map(lambda x: x[0], replay.sample(buffer, sample_key))
            if index == 0:
                alpha, learns_alpha = jnp.exp(player.log_alpha), True
            else:
                alpha, learns_alpha = adversary_alpha(player, batch, hparams), config.adversary_temperature == "learned"
            return player_step(player, actor, batch, learner_key, hparams, tx, alpha, learns_alpha, action_dim)

        keys = jax.random.split(key, config.gradient_steps)
        shapes = jax.eval_shape(one_step, player, keys[0])[1]

        def learning(player):
            player, metrics = jax.lax.scan(one_step, player, keys)
            return player, jax.tree.map(jnp.mean, metrics)

        def idle(player):
            return player, jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), shapes)

        return jax.lax.cond(learns, learning, idle, player)

    def learn(state: AdversarialState, hparams, batch, step):
        traj, key = batch
        pro_key, adv_key = jax.random.split(key)
        tx = make_tx(hparams, step)
        pro_learns, adv_learns = phase_of(step, config.schedule, phase_updates)
        started = step >= first_learning_update
        if config.schedule == "adversary":  # frozen (its weights may not even fit this env's inputs)
            protagonist, pro_metrics = state.protagonist, {}
        else:
            protagonist, pro_metrics = learn_player(0, state.protagonist, state.protagonist_replay, pro_key, hparams, tx,
                                                    pro_learns & started)
        adversary, adv_metrics = learn_player(1, state.adversary, state.adversary_replay, adv_key, hparams, tx, adv_learns & started)
        curriculum, metrics = state.curriculum, {}
        if qarl and config.curriculum == "self_paced":
            # a real branch on an unbatched run: the search runs only when the batch of pairs is full
            curriculum = jax.lax.cond(
                curriculum.count >= config.curriculum_samples,
                lambda c: tc.self_paced_update(c, hparams.target_concentration, hparams.rate, hparams.kl_bound,
                                               hparams.return_threshold, grid=config.curriculum_grid)[0],
                lambda c: c, curriculum)
            metrics["curriculum_updates"] = curriculum.updates.astype(jnp.float32)
        if qarl:
            now = distribution(hparams, curriculum, step + 1)
            metrics["concentration"] = curriculum.concentration
            metrics["temperature_mean"] = now["fixed"] if now["use_fixed"] else curriculum.concentration / curriculum.rate
            state = state.replace(env=state.env.replace(env_state=set_temperature_distribution(state.env.env_state, **now)))
        metrics.update({f"protagonist_{k}": v for k, v in pro_metrics.items()})
        metrics.update({f"adversary_{k}": v for k, v in adv_metrics.items()})
        metrics["adversary_phase"] = adv_learns.astype(jnp.float32)
        metrics.update(episode_metrics(traj))
        metrics["per_env"] = per_env(traj)
        state = state.replace(protagonist=protagonist, adversary=adversary, curriculum=curriculum)
        return state, metrics

    def update(state, hparams, step):
        state, batch = collect(state, hparams, step)
        return learn(state, hparams, batch, step)

    def act(policy_params, obs, key, deterministic: bool = False):
        """The joint action [protagonist, adversary x adversary_on]: ``adversary_on`` 0 (the
        default of ``policy_params``) evaluates the protagonist alone, 1 against the adversary."""
        pro_key, adv_key = jax.random.split(key)
        protagonist = protagonist_action(policy_params["protagonist"], obs, pro_key, deterministic)
        adversary = adversary_action(policy_params["adversary"], obs, adv_key, deterministic)
        return jnp.concatenate([protagonist, policy_params["adversary_on"] * adversary], axis=-1)

    def policy_params(state: AdversarialState):
        return {"protagonist": state.protagonist.actor, "adversary": state.adversary.actor,
                "adversary_on": jnp.zeros_like(state.protagonist.log_alpha)}  # one per run, like the weights

    return Agent(init=init, update=update, act=act, policy_params=policy_params, steps_per_update=steps_per_update,
                 num_updates=num_updates, collect=collect, learn=learn)


def _two_player(env: envs.Environment) -> TwoPlayer:
    inner = env.env if isinstance(env, TemperatureContext) else env
    if not isinstance(inner, TwoPlayer):
        raise ConfigError("rarl and qarl train on an envs.adversarial.TwoPlayer environment (the CLI wraps --env in one)")
    return inner


# --------------------------------------------------------------------------------------------
# The environment options (--env-set), defaults, checks and the two registrations

ENV_OPTIONS = {"perturbation": "auto", "perturbation_strength": None, "perturbation_bodies": "", "perturbation_axes": ""}
# xi, the protagonist's mean discounted return the self-paced curriculum needs before it moves:
# the reference's 10 for DM Control (1 for the hopper); rewards of other scales need their own,
# between failing and succeeding (estimated from the rewards): point_mass_wind's discounted
# returns run from about -70 (stuck at the wall) to -35 (straight through the gap), Pendulum's
# from about -850 (hanging down) to -250 (swung up at once).
RETURN_THRESHOLDS = {"Pendulum-v1": -300.0, "point_mass_wind": -50.0, "playground/HopperHop": 1.0,
                     "playground/HopperStand": 1.0, "brax/hopper": 1.0}


def env_options(env_name: str) -> dict[str, Any]:
    return dict(ENV_OPTIONS)


def wrap_env(env_name: str, env: envs.Environment, env_params: Any, options: dict[str, Any], temperature: bool):
    """``TwoPlayer`` around the environment (and QARL's ``TemperatureContext``), from the
    ``perturbation*`` options; ConfigError for a bad one."""
    from envs.adversarial import TemperatureParams, TwoPlayerParams

    strength = options.get("perturbation_strength")
    if strength is not None:
        try:
            strength = float(strength)
        except (TypeError, ValueError):
            raise ConfigError(f"perturbation_strength must be a number, got {strength!r}") from None
    bodies = tuple(b for b in str(options.get("perturbation_bodies") or "").split(",") if b) or None
    try:
        two_player = TwoPlayer(env, str(options.get("perturbation", "auto")), strength, bodies,
                               str(options.get("perturbation_axes") or "") or None, name=env_name)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    params = TwoPlayerParams(env_params, two_player.strength)
    if not temperature:
        return two_player, params
    return TemperatureContext(two_player), TemperatureParams(params)


def defaults(env_name: str, discrete: bool, adversary_temperature: str) -> tuple[AdversarialConfig, AdversarialHParams]:
    config = default_config(AdversarialConfig, env_name)
    config = AdversarialConfig(**{**config.__dict__, "total_steps": 2 * config.total_steps,
                                  "adversary_temperature": adversary_temperature})
    return config, AdversarialHParams(return_threshold=RETURN_THRESHOLDS.get(env_name, 10.0))


def check(config: AdversarialConfig, hparams: AdversarialHParams, discrete: bool, qarl: bool) -> None:
    check_off_policy(config, hparams)
    check_target_entropy_scale(hparams.target_entropy_scale, False)
    require(config.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}, got {config.schedule!r}")
    require(config.curriculum in CURRICULA, f"curriculum must be one of {', '.join(CURRICULA)}, got {config.curriculum!r}")
    allowed = ("curriculum",) if qarl else ("learned", "fixed")
    require(config.adversary_temperature in allowed,
            f"{'qarl' if qarl else 'rarl'}'s adversary_temperature must be {' or '.join(allowed)}, got {config.adversary_temperature!r}")
    require(config.phase_steps >= config.num_envs * config.num_steps,
            f"phase_steps ({config.phase_steps}) must be at least one update's steps ({config.num_envs * config.num_steps})")
    require(config.curriculum_samples >= 2, f"curriculum_samples must be >= 2, got {config.curriculum_samples}")
    require(config.curriculum_grid >= 3, f"curriculum_grid must be >= 3, got {config.curriculum_grid}")
    require(hparams.init_alpha > 0, f"init_alpha must be positive, got {hparams.init_alpha}")
    require(hparams.adversary_alpha >= 0, f"adversary_alpha must be >= 0, got {hparams.adversary_alpha}")
    for name in ("initial_concentration", "rate", "target_concentration", "kl_bound"):
        require(getattr(hparams, name) > 0, f"{name} must be positive, got {getattr(hparams, name)}")
    for name in ("fixed_temperature", "anneal_start", "anneal_end"):
        require(getattr(hparams, name) >= 0, f"{name} must be >= 0, got {getattr(hparams, name)}")
    require((hparams.anneal_fraction > 0) & (hparams.anneal_fraction <= 1),
            f"anneal_fraction must be in (0, 1], got {hparams.anneal_fraction}")
    if config.schedule == "adversary":
        require(hparams.frozen_protagonist is not None, "schedule=adversary needs frozen_protagonist (a protagonist actor's weights)")


def _register(name: str, qarl: bool, summary: str) -> Algorithm:
    temperature = "curriculum" if qarl else "learned"
    return register(Algorithm(
        name=name,
        summary=summary,
        config_type=AdversarialConfig,
        hparams_type=AdversarialHParams,
        build=build,
        defaults=lambda env_name, discrete: defaults(env_name, discrete, temperature),
        check=lambda config, hparams, discrete: check(config, hparams, discrete, qarl),
        discrete=False,
        env_options=env_options,
        wrap_env=lambda env_name, env, params, options: wrap_env(env_name, env, params, options, qarl),
    ))


RARL = _register("rarl", False, "Robust adversarial RL: a SAC protagonist against a SAC adversary that perturbs the env")
QARL = _register("qarl", True, "Quantal adversarial RL: RARL with a temperature curriculum on the adversary's rationality")
