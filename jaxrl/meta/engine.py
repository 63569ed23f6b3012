"""Meta-training by evolution as one pure program: a generation asks the strategy for a population
of a hyperparameter that is a weight pytree (a learned drift, later a learned optimizer), trains
every member on every task and seed with the kit's pure training function, and tells the strategy
the returns. ``MetaProgram.generation`` is jitted once and run for every generation.

Runs are a vmap over the (task, seed) slots of a vmap over the members. Every member sees the same
tasks and seeds within a generation, so each antithetic pair (and any two members) is compared on
equal terms, and within a slot the key is shared, unbatched: the PRNG streams and the networks'
initialisation are computed once per slot, as in a plain ``vmap(train, in_axes=(None, 0))``. On
several devices the members are padded to a multiple of their number and split over them with
``shard_map``, as a sweep's runs are.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl.core.train import Train, learning_curve_mean
from jaxrl.core.values import ConfigError
from jaxrl.meta.es import Strategy

FITNESS = ("final_return", "auc", "greedy")
_TASK_STREAM, _SEED_STREAM, _GREEDY_STREAM, _NOISE_STREAM, _OTHER_ENVS = 1, 2, 3, 4, 1000


def _strong(tree: Any) -> Any:
    """Leaves with strong dtypes. evosax keeps some as Python numbers (weakly typed once traced);
    a generation must return the types it was given, or the next one compiles again."""
    return jax.tree.map(lambda x: jnp.asarray(x, dtype=jnp.result_type(x)), tree)


def learned_field(train: Train, field: str) -> Any:
    """The default value of the weights ``field`` of ``train``'s hyperparameters (the handcrafted
    rule a strategy starts from); ``ConfigError`` when there are none, or when the objective
    ignores them (every member would train alike and the search would never move)."""
    names = [f.name for f in dataclasses.fields(train.default_hparams)]
    if field not in names:
        raise ConfigError(f"{train.algorithm.name} has no hyperparameter {field!r} to meta-train (it has {', '.join(names)})")
    value = getattr(train.default_hparams, field)
    if value is None and field == "rule_params":  # a learned update rule starts from its untrained weights
        from jaxrl.rules.agent import initial_rule_params

        return initial_rule_params(train.config, jax.random.PRNGKey(0))
    if value is None and field == "optimizer_params":
        raise ConfigError(f"optimizer {train.config.optimizer} has no weights to meta-train; choose a learned one "
                          "(learned_mlp, learned_gru, learned_mlp_noise, learned_gru_noise)")
    if value is None:
        raise ConfigError(f"{train.algorithm.name} has no learned weights ({field}) to meta-train; try lpo or ta-lpo")
    if field == "objective_params" and getattr(train.config, "objective", None) in ("clip", "mdpo"):
        raise ConfigError(f"objective {train.config.objective} does not read objective_params: there is nothing to meta-train")
    return value


@struct.dataclass
class MetaState:
    es: Any  # the strategy's state (evosax), with the search distribution's mean
    key: jax.Array


@dataclass(eq=False)
class MetaProgram:
    """The pure functions of one meta-training configuration.

    ``field`` names the hyperparameter the strategy searches (``objective_params`` for LPO); every
    other hyperparameter is ``train.default_hparams``'s. ``sample_task(key, env_params)`` draws a
    task's environment parameters (``None``: one task, the default parameters). ``fitness`` is the
    inner runs' final training return; with ``"auc"`` the area under their learning curves (the
    mean return over all of training, ``learning_curve_mean``: it does not saturate when members
    reach a task's maximum); with ``"greedy"`` the mean return of ``eval_episodes`` deterministic
    episodes after training. With ``normalise`` each task's return R is scored as
    1 + (R - B) / |B| against the return B of the handcrafted rule (the field's default value: PPO's
    drift for lpo) on the same task and seeds, so tasks of different scales weigh alike.
    ``track_mean`` also trains the search distribution's mean each generation (reported, not used).
    ``noise`` re-evaluates the search mean ``noise_repeats`` times on fresh tasks and seeds: the
    spread of one member's fitness, to set beside the population's spread. ``field`` may also be a
    scalar hyperparameter (``lr``, ``clip_eps``); with ``log_space`` the strategy searches its
    logarithm (a multiplier of the default value), and each row reports the mean's value."""

    train: Train
    strategy: Strategy
    field: str
    num_seeds: int = 1
    num_tasks: int = 1
    sample_task: Callable[[jax.Array, Any], Any] | None = None
    fitness: str = "final_return"
    eval_episodes: int = 10
    normalise: bool = False
    track_mean: bool = True
    noise_repeats: int = 8
    log_space: bool = False
    devices: int | None = None
    other_envs: tuple[Train, ...] = ()  # more environments, one task each, after train's tasks

    def __post_init__(self):
        if self.fitness not in FITNESS:
            raise ConfigError(f"unknown fitness {self.fitness!r}; choose one of {', '.join(FITNESS)}")
        for name in ("num_seeds", "num_tasks", "eval_episodes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if self.num_tasks > 1 and self.sample_task is None:
            raise ConfigError("several tasks need a task distribution: give an environment parameter a distribution, "
                              "e.g. --env-set gravity=uniform:8:12")
        self.baseline = learned_field(self.train, self.field)
        if self.log_space and not all(bool(np.all(np.asarray(x) > 0)) for x in jax.tree.leaves(self.baseline)):
            raise ConfigError(f"log_space searches the logarithm of {self.field}, whose default must be positive")
        # Where the search starts, in its own coordinates (a log's for log_space).
        self.start = jax.tree.map(jnp.log, self.baseline) if self.log_space else self.baseline
        for other in self.other_envs:
            shapes = jax.tree.map(jnp.shape, learned_field(other, self.field))
            if shapes != jax.tree.map(jnp.shape, self.baseline):
                raise ConfigError(f"{self.field} of {other.env_name} has shapes {shapes}, of {self.train.env_name} "
                                  f"{jax.tree.map(jnp.shape, self.baseline)}: meta-training needs envs whose learned weights fit alike")
        self.devices = self.devices or jax.device_count()
        if isinstance(self.noise_repeats, bool) or not isinstance(self.noise_repeats, (int, np.integer)) or self.noise_repeats < 2:
            raise ConfigError(f"noise_repeats must be an integer >= 2, got {self.noise_repeats!r}")
        self._generation = jax.jit(self._generation_fn, donate_argnums=0)
        self._noise = jax.jit(self._noise_fn)

    @property
    def runs_per_generation(self) -> int:
        """Inner training runs a generation performs (the population, the search mean when
        tracked, the handcrafted rule when normalising; each on every task and seed)."""
        return (self.strategy.population + int(self.track_mean) + int(self.normalise)) * self.total_tasks * self.num_seeds

    @property
    def total_tasks(self) -> int:
        """Tasks per generation: ``num_tasks`` of the first environment and one of each other."""
        return self.num_tasks + len(self.other_envs)

    # -- the pure functions -------------------------------------------------------------------

    def init(self, key: jax.Array) -> MetaState:
        es_key, key = jax.random.split(key)
        return MetaState(_strong(self.strategy.init(es_key, self.start)), key)

    def tasks(self, key: jax.Array) -> Any:
        """The generation's task parameters, [num_tasks] leading (``None`` for the default task)."""
        if self.sample_task is None:
            return None
        params = self.train.default_env_params
        return jax.vmap(lambda k: self.sample_task(k, params))(jax.random.split(key, self.num_tasks))

    def evaluate(self, members: Any, key: jax.Array) -> jax.Array:
        """Returns [members, tasks, seeds] of each member (leading axis of ``members``) trained on
        each task and seed drawn from ``key``: the same tasks and seeds for every member. The
        tasks are ``num_tasks`` of the first environment, then one of each of ``other_envs``."""
        num_members = jax.tree.leaves(members)[0].shape[0]
        padded = -(-num_members // self.devices) * self.devices  # the last member repeated, then dropped
        members = jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], padded - num_members, axis=0)]), members)
        task_params = self.tasks(jax.random.fold_in(key, _TASK_STREAM))
        returns = [self._evaluate_env(self.train, members, key, task_params, self.num_tasks)]
        for index, other in enumerate(self.other_envs):
            returns.append(self._evaluate_env(other, members, jax.random.fold_in(key, _OTHER_ENVS + index), None, 1))
        seeds = self.num_seeds
        return jnp.concatenate([r[:, :num_members].T.reshape(num_members, -1, seeds) for r in returns], axis=1)

    def _evaluate_env(self, train: Train, members: Any, key: jax.Array, task_params: Any, tasks: int) -> jax.Array:
        """[tasks * seeds, padded members] returns on one environment."""
        seeds = self.num_seeds
        slots = jnp.arange(tasks * seeds)  # slot t * seeds + s: task t, seed s
        per_slot = (
            jax.random.split(jax.random.fold_in(key, _SEED_STREAM), tasks * seeds),
            None if task_params is None else jax.tree.map(lambda x: x[slots // seeds], task_params),
            jax.random.split(jax.random.fold_in(key, _GREEDY_STREAM), tasks * seeds),
        )
        return self._sharded(lambda *args: self._train_slots(train, *args))(members, *per_slot)

    def generation(self, state: MetaState) -> tuple[MetaState, dict[str, jax.Array]]:
        """One generation, jitted (compiled once; ``state`` is donated)."""
        return self._generation(state)

    def _scored(self, members: Any, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(fitness [members], returns [members, tasks]) of ``members`` on the tasks and seeds of
        ``key``. With ``normalise`` the handcrafted rule is trained beside them and each task's
        return R scores 1 + (R - B) / |B| against its return B: the rule scores 1 on every task
        whatever the sign of its return (R / |B| would make it -1 where returns are negative)."""
        if self.normalise:
            members = jax.tree.map(lambda m, b: jnp.concatenate([m, b[None]]), members, self.start)
        per_task = self.evaluate(members, key).mean(axis=-1)  # [members (+ the rule), tasks]
        if not self.normalise:
            return per_task.mean(axis=-1), per_task
        baseline = per_task[-1]
        scores = 1.0 + (per_task[:-1] - baseline) / jnp.maximum(jnp.abs(baseline), 1e-8)
        return scores.mean(axis=-1), per_task

    def _generation_fn(self, state: MetaState) -> tuple[MetaState, dict[str, jax.Array]]:
        key, ask_key, eval_key, tell_key = jax.random.split(state.key, 4)
        members, es = self.strategy.ask(ask_key, state.es)
        evaluated = members
        if self.track_mean:
            evaluated = jax.tree.map(lambda m, x: jnp.concatenate([m, x[None]]), members, self.strategy.mean(es))
        scores, per_task = self._scored(evaluated, eval_key)
        population = self.strategy.population
        fitness = scores[:population]
        es, tell_metrics = self.strategy.tell(tell_key, members, fitness, es)
        returns = per_task[:population].mean(axis=-1)
        row = {"baseline_return": per_task[-1].mean()} if self.normalise else {}
        row.update(
            fitness_best=jnp.nanmax(fitness),
            fitness_mean=jnp.nanmean(fitness),
            fitness_median=jnp.nanmedian(fitness),
            fitness_worst=jnp.nanmin(fitness),
            fitness_population_std=jnp.nanstd(fitness, ddof=1),
            return_best=jnp.nanmax(returns),
            return_mean=jnp.nanmean(returns),
            best_fitness_ever=tell_metrics["best_return_ever"],
        )
        if self.track_mean:
            row["mean_member_fitness"] = scores[population]
            row["mean_member_return"] = per_task[population].mean()
        mean = self.value(self.strategy.mean(es))
        if isinstance(mean, jax.Array) and mean.ndim == 0:  # a scalar hyperparameter: where the search is
            row["mean_value"] = mean
        return MetaState(_strong(es), key), row

    def value(self, point: Any) -> Any:
        """The hyperparameter's value at a point of the search (``exp`` of it for ``log_space``)."""
        return jax.tree.map(jnp.exp, point) if self.log_space else point

    def noise(self, state: MetaState) -> dict[str, jax.Array]:
        """The search mean re-evaluated ``noise_repeats`` times, each on fresh tasks and seeds (as
        many as a member gets in a generation): ``fitness_noise_std``, the spread of one member's
        fitness, and the mean of those fitnesses with a 95% interval. Its keys are folded from the
        state's, which it leaves as it is: measuring changes nothing of the search."""
        return self._noise(state)

    def _noise_fn(self, state: MetaState) -> dict[str, jax.Array]:
        mean = jax.tree.map(lambda x: x[None], self.strategy.mean(state.es))
        keys = jax.random.split(jax.random.fold_in(state.key, _NOISE_STREAM), self.noise_repeats)
        fitness = jax.lax.map(lambda key: self._scored(mean, key)[0][0], keys)
        std = jnp.nanstd(fitness, ddof=1)
        half = 1.96 * std / np.sqrt(self.noise_repeats)
        centre = jnp.nanmean(fitness)
        return {"fitness_noise_std": std, "mean_fitness_repeated": centre,
                "mean_fitness_ci_low": centre - half, "mean_fitness_ci_high": centre + half}

    # -- inner training ------------------------------------------------------------------------

    def _train_slots(self, train: Train, members: Any, keys: jax.Array, env_params: Any, greedy_keys: jax.Array) -> jax.Array:
        """[slots, members] final training (or greedy) returns: a vmap over the (task, seed) slots
        of a vmap over the members. Within a slot the key and the environment parameters are the
        same for every member and stay unbatched there, so what depends on them alone (the
        PRNG streams, the networks' initialisation) is computed once per slot, not per member,
        and a member computes the same alone as in a population."""

        def one_slot(key, env_params, greedy_key):
            def one_member(member):
                state, metrics = train(key, train.default_hparams.replace(**{self.field: self.value(member)}), env_params)
                if self.fitness == "final_return":
                    return metrics["final_return"]
                if self.fitness == "auc":
                    return learning_curve_mean(metrics["episode_return"], train.window_updates())
                return self._greedy_return(train, state, greedy_key, env_params)

            return jax.vmap(one_member)(members)

        if keys.shape[0] == 1:
            # One slot (one task, one seed): called without the slot axis and given it back after.
            # XLA:CPU compiles a vmap of size 1 into slower code than the function alone (the host
            # driver does the same for one run; experiments/bench/README.md, meta-training).
            first = lambda x: None if x is None else x[0]  # noqa: E731
            return one_slot(keys[0], jax.tree.map(first, env_params), greedy_keys[0])[None]
        return jax.vmap(one_slot, in_axes=(0, None if env_params is None else 0, 0))(keys, env_params, greedy_keys)

    def _greedy_return(self, train: Train, state: Any, key: jax.Array, env_params: Any) -> jax.Array:
        from jaxrl.analysis.evaluation import episodes

        act = lambda params, obs, key: train.act(params, obs, key, True)  # noqa: E731
        episode_returns = episodes(train.env, act, self.eval_episodes, max_steps=100_000)
        task = train.default_env_params if env_params is None else env_params
        return episode_returns(train.policy_params(state), key, task)[0].mean()

    def _sharded(self, fn: Callable) -> Callable:
        """``fn(members, *per_slot)`` with the members split over the devices (the slots' keys
        and parameters on every device)."""
        if self.devices == 1:
            return fn
        mesh = jax.sharding.Mesh(np.array(jax.devices()[: self.devices]), ("members",))
        split, shared = jax.sharding.PartitionSpec("members"), jax.sharding.PartitionSpec()
        return jax.shard_map(fn, mesh=mesh, in_specs=(split, shared, shared, shared),
                             out_specs=jax.sharding.PartitionSpec(None, "members"), check_vma=False)
