"""One evolution-strategy interface over evosax 0.3 (OpenAI-ES, SNES, CMA-ES) that always
*maximises*, with the search scale set explicitly.

evosax minimises fitness; this module negates returns once, in ``Strategy.tell``, and nowhere else.
evosax's default search scale (std 1.0) is far too wide for network weights, so ``sigma`` is
required. Fitness shaping is by rank, so only the order of returns matters: OpenAI-ES uses centred
ranks in [-0.5, 0.5]; SNES and CMA-ES use their own rank-based recombination weights, which their
updates are derived for (giving SNES centred ranks instead would flip its direction: it expects
the best member to carry the largest weight).

>>> es = make_strategy("open_es", {"w": jnp.zeros(3)}, population=8, sigma=0.1)  # doctest: +SKIP
>>> state = es.init(key, {"w": jnp.zeros(3)})                                     # doctest: +SKIP
>>> members, state = es.ask(ask_key, state)           # {"w": [8, 3]}               # doctest: +SKIP
>>> state, metrics = es.tell(tell_key, members, returns, state)  # returns: [8], higher is better
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

from jaxrl.core.values import ConfigError

STRATEGIES = ("open_es", "snes", "cma_es")
# The mean's step size when --lr is not given: Adam's for OpenAI-ES (Salimans et al., 2017, use
# Adam), and SNES's natural-gradient step of 1 (Wierstra et al., 2014). CMA-ES sets its own.
DEFAULT_LR = {"open_es": 0.01, "snes": 1.0, "cma_es": None}


@dataclass(frozen=True, eq=False)
class Strategy:
    """An evosax algorithm and its parameters; ``ask``/``tell`` are pure (jit and scan them)."""

    name: str
    population: int
    sigma: float
    lr: float | None
    algorithm: Any  # the evosax object (static: its methods are jitted with it as a constant)
    params: Any  # its parameters (a pytree)
    unravel: Any  # flat mean -> the solution's pytree (evosax's own ravelling: ravel_pytree)

    def init(self, key: jax.Array, mean: Any) -> Any:
        return self.algorithm.init(key, mean, self.params)

    def ask(self, key: jax.Array, state: Any) -> tuple[Any, Any]:
        """The population (the mean's pytree with a leading [population] axis) and the state."""
        return self.algorithm.ask(key, state, self.params)

    def tell(self, key: jax.Array, members: Any, returns: jax.Array, state: Any) -> tuple[Any, dict[str, jax.Array]]:
        """Updates the search distribution towards higher ``returns`` [population]. A NaN return
        (a member whose runs never finished an episode) ranks below every other."""
        state, metrics = self.algorithm.tell(key, members, -returns, state, self.params)
        return state, {"best_return_ever": -metrics["best_fitness"]}

    def set_hyperparams(self, state: Any, sigma: jax.Array, lr: jax.Array) -> Any:
        """``state`` searching at scale ``sigma`` with step size ``lr`` (traced values; a
        strategy made with ``traced=True``, open_es only)."""
        hyperparams = {**state.opt_state.hyperparams, "learning_rate": jnp.asarray(lr, jnp.float32)}
        return state.replace(std=jnp.asarray(sigma, jnp.float32), opt_state=state.opt_state._replace(hyperparams=hyperparams))

    def mean(self, state: Any) -> Any:
        """The search distribution's mean, in the structure of the solution (with the state's
        leading axes, if it has any: the states of several vmapped runs)."""
        unravel = self.unravel
        for _ in range(state.mean.ndim - 1):
            unravel = jax.vmap(unravel)
        return unravel(state.mean)


def make_strategy(
    name: str, template: Any, *, population: int, sigma: float, lr: float | None = None, traced: bool = False
) -> Strategy:
    """``name`` (open_es | snes | cma_es) searching around pytrees shaped like ``template``, with
    ``population`` members per generation at search scale ``sigma`` (the initial scale for SNES
    and CMA-ES, which adapt it). ``lr`` is the mean's step size (default ``DEFAULT_LR``).
    ``traced=True`` (open_es) keeps sigma and lr in the state, for ``Strategy.set_hyperparams``."""
    from evosax.algorithms import CMA_ES, SNES, Open_ES
    import optax

    if name not in STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    if isinstance(population, bool) or not isinstance(population, (int, np.integer)) or population < 2:
        raise ConfigError(f"population must be an integer >= 2, got {population!r}")
    if name == "open_es" and population % 2:
        raise ConfigError(
            f"open_es samples antithetic pairs (mean +- sigma z), so the population must be even, got {population}"
        )
    if not np.isfinite(sigma) or sigma <= 0:
        raise ConfigError(f"sigma must be positive, got {sigma}")
    if name == "cma_es" and lr is not None:
        raise ConfigError("cma_es adapts its own step sizes; --lr applies to open_es and snes only")
    lr = DEFAULT_LR[name] if lr is None else lr
    if lr is not None and (not np.isfinite(lr) or lr <= 0):
        raise ConfigError(f"lr must be positive, got {lr}")
    population, sigma = int(population), float(sigma)
    if traced and name != "open_es":
        raise ConfigError(f"{name} adapts its own search scale; traced hyperparameters are for open_es")
    if name == "open_es":
        adam = optax.inject_hyperparams(optax.adam)(learning_rate=lr) if traced else optax.adam(lr)
        algorithm = Open_ES(population, template, optimizer=adam, std_schedule=optax.constant_schedule(sigma))
        params = algorithm.default_params
    elif name == "snes":
        algorithm = SNES(population, template, optimizer=optax.sgd(lr))
        params = algorithm.default_params.replace(std_init=jnp.asarray(sigma, jnp.float32))
    else:
        algorithm = CMA_ES(population, template)
        params = algorithm.default_params.replace(std_init=jnp.asarray(sigma, jnp.float32))
    return Strategy(name, population, sigma, lr, algorithm, params, jax.flatten_util.ravel_pytree(template)[1])
