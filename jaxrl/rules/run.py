"""The host driver of meta-gradient meta-training (``jaxrl meta-train lpg | ta-lpg | groove | disco``):
meta-steps of ``jaxrl.rules.meta.MetaGradient`` (``jaxrl.rules.disco_meta.DiscoMetaGradient`` for
disco; each one compiled program), a progress bar, ``meta.csv`` and ``meta.png``, Orbax checkpoints
of the whole meta state every ``checkpoint_every`` meta-steps with an exact ``resume``, and the
learned rule in ``rule/`` for ``jaxrl train lpg --rule DIR`` (``jaxrl train disco --rule DIR``).

Layout of a directory::

    config.json            # the rule and its settings (kind "meta-train-rule"), written at the end
    meta.csv               # one row per meta-step
    meta.png               # return, meta-objective, entropies and the critic's loss over meta-steps
    checkpoints/<step>/    # the meta state: rule weights, Adam, every agent, keys
    rule/<step>/           # the rule's weights at that meta-step (the newest is the trained rule)
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import jax
import numpy as np

from jaxrl.core.values import ConfigError
from jaxrl.driver import rundir
from jaxrl.driver.checkpoint import CheckpointError, CheckpointStore
from jaxrl.driver.loggers import ProgressBar
from jaxrl.driver.resume import progress_metadata, resume_from, write_table
from jaxrl.driver.spec import arrays_spec, arrays_template
from jaxrl.rules.meta import MetaConfig, MetaGradient

KIND = "meta-train-rule"
CHECKPOINTS, RULE = "checkpoints", "rule"
PLOTTED = (("mean_return", "mean episode return"), ("meta_loss", "meta-objective"),
           ("pi_entropy", "entropy of pi"), ("critic_loss", "critic's loss"))
DISCO_PLOTTED = (("mean_return", "mean episode return (all rollouts)"), ("meta_loss", "meta-objective"),
                 ("pi_entropy", "entropy of pi (validation rollout)"), ("critic_loss", "domain value function's loss"))


@dataclass
class RuleResult:
    path: Path
    rows: dict[str, np.ndarray]
    rule_params: Any
    wall_time: float
    compile_time: float


METHODS = {"lpg": ("lpg", "uniform"), "ta-lpg": ("ta-lpg", "uniform"), "groove": ("lpg", "groove"), "disco": ("disco", None)}


def meta_config(method: str, settings: Mapping[str, Any]) -> MetaConfig:
    """``MetaConfig`` for ``method`` (lpg, ta-lpg: levels drawn uniformly; groove: LPG's rule on
    levels chosen by GROOVE's curator) with ``settings`` (text from ``--set`` or values), each checked."""
    if method not in METHODS or method == "disco":
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(m for m in METHODS if m != 'disco')}")
    rule, curator = METHODS[method]
    fields = {f.name: f for f in dataclasses.fields(MetaConfig)}
    values: dict[str, Any] = {"rule": rule, "curator": curator}
    for name, value in settings.items():
        if name not in fields or name in ("rule", "curator"):
            close = difflib.get_close_matches(name, sorted(fields), n=2, cutoff=0.5)
            raise ConfigError(f"meta-train {method} has no setting {name!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
        default = fields[name].default
        try:
            if isinstance(default, bool):
                if str(value).lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                value = str(value).lower() in ("true", "1")
            elif isinstance(default, (int, float)):
                value = type(default)(float(value) if isinstance(default, float) else int(value))
        except ValueError:
            raise ConfigError(f"meta-train {method}: {name} must be {type(default).__name__}, got {value!r}") from None
        values[name] = value
    from envs.gridworld import SPACES

    if values.get("levels", MetaConfig.levels) not in SPACES:
        raise ConfigError(f"levels must be one of {', '.join(SPACES)}, got {values['levels']!r}")
    config = MetaConfig(**values)
    config.check()
    return config


def meta_train_rule(method: str, out: str | Path, *, meta_steps: int, settings: Mapping[str, Any] | None = None,
                    seed: int = 0, checkpoint_every: int = 10, keep_checkpoints: int = 2, resume: bool = False,
                    overwrite: bool = False, progress: bool = True) -> RuleResult:
    for name, value, low in (("meta_steps", meta_steps, 1), ("checkpoint_every", checkpoint_every, 0),
                             ("keep_checkpoints", keep_checkpoints, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "disco":
        from jaxrl.rules.disco_meta import DiscoMetaGradient, disco_meta_config

        config = disco_meta_config(settings or {})
        rule, where, plotted = "disco", config.env, DISCO_PLOTTED
        title = (f"meta-train disco: {config.num_agents} agents x {config.num_envs} envs on {config.env}, "
                 f"{config.inner_steps} inner steps of {config.num_steps}")
    else:
        config = meta_config(method, settings or {})
        rule, where, plotted = config.rule, f"{config.levels} levels", PLOTTED
        title = f"meta-train {method}: {config.num_agents} agents on {config.levels} levels, K={config.inner_updates}"
    spec = {"kind": KIND, "method": method, "rule": rule, "config": dataclasses.asdict(config), "seed": int(seed)}
    path = Path(out).expanduser().resolve()
    program = DiscoMetaGradient(config) if method == "disco" else MetaGradient(config)
    state = program.init(jax.random.PRNGKey(seed))
    rows: dict[str, list[float]] = {}
    done, wall_before = 0, 0.0
    if resume:
        if not (path / CHECKPOINTS).is_dir():
            raise CheckpointError(f"{path} is not a meta-training directory with checkpoints to resume")
        state, rows, done, wall_before = resume_from(path / CHECKPOINTS, state, spec, count_key="meta_steps_done",
                                                total=meta_steps, unit="meta-steps")
    else:
        path = rundir.prepare(path, overwrite)
    store = CheckpointStore(path / CHECKPOINTS, keep=keep_checkpoints, writable=True)
    rules = CheckpointStore(path / RULE, keep=1, writable=True)
    if method == "disco":
        env_steps = program.env_steps
    else:
        env_steps = config.num_agents * config.num_envs * config.num_steps * (config.inner_updates + 1)
    bar = ProgressBar(meta_steps, f"meta-train {method} ({where})", done) if progress else None
    start, compile_time = time.perf_counter(), 0.0

    def save(steps_done: int) -> None:
        store.save(steps_done, state, progress_metadata(spec, "meta_steps_done", steps_done,
                                                        wall_before + time.perf_counter() - start, rows))
        weights = jax.tree.map(np.asarray, state.rule_params)
        rules.save(steps_done, weights, {"spec": spec, "meta_step": steps_done, "rule_params": arrays_spec(weights)})
        write_table(path, rows, ("meta_step", "env_steps"))

    try:
        for step in range(done, meta_steps):
            tick = time.perf_counter()
            state, row = program.step(state)
            row = {k: float(v) for k, v in jax.device_get(row).items()}
            if step == done:
                compile_time = time.perf_counter() - tick
            for name, value in {"meta_step": step + 1, "env_steps": (step + 1) * env_steps,
                                "wall_time": wall_before + time.perf_counter() - start, **row}.items():
                rows.setdefault(name, []).append(value)
            if bar is not None:
                bar.bar.set_postfix(ret=f"{row['mean_return']:.2f}", loss=f"{row['meta_loss']:.3f}")
                bar.show(step + 1)
            if step + 1 == meta_steps or checkpoint_every and (step + 1) % checkpoint_every == 0:
                save(step + 1)
        store.wait()
        rules.wait()
    finally:
        if bar is not None:
            bar.close()
        store.close()
        rules.close()
    write_table(path, rows, ("meta_step", "env_steps"))
    _plot(path, rows, title, plotted)
    rundir._atomic_write(path / "config.json", lambda p: p.write_text(json.dumps(spec, indent=2) + "\n"))
    return RuleResult(path, {k: np.asarray(v) for k, v in rows.items()}, state.rule_params,
                      wall_before + time.perf_counter() - start, compile_time)


def _plot(path: Path, rows: Mapping[str, list[float]], title: str, plotted=PLOTTED) -> None:
    import matplotlib.pyplot as plt

    step = np.asarray(rows["meta_step"])
    fig, axes = plt.subplots(2, 2, figsize=(9, 6), dpi=110, sharex=True)
    window = max(1, len(step) // 50)
    for ax, (name, label) in zip(axes.flat, plotted):
        values = np.asarray(rows[name], float)
        ax.plot(step, values, color="tab:blue", alpha=0.3)
        if window > 1:
            smooth = np.convolve(values, np.ones(window) / window, mode="valid")
            ax.plot(step[window - 1:], smooth, color="tab:blue", label=f"mean of {window}")
            ax.legend(fontsize=8)
        ax.set_title(label, fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("meta-step")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    rundir._atomic_write(path / "meta.png", lambda p: fig.savefig(p))
    plt.close(fig)


def load_rule(meta_dir: str | Path) -> tuple[Any, dict[str, Any]]:
    """The newest saved rule of a ``jaxrl meta-train lpg | ta-lpg | disco`` directory and the
    settings a fresh agent needs to use it (``rule``, and for lpg ``num_bins``, ``rule_hidden``);
    ``ConfigError`` for a missing directory or one that is not such a run."""
    path = Path(meta_dir).expanduser().resolve()
    if not path.is_dir():
        raise ConfigError(f"--rule {meta_dir}: no such directory")
    if not (path / RULE).is_dir() and (path / "objective").is_dir():  # evolved: `jaxrl meta-train ta-lpg --evolve`
        from jaxrl.meta.run import _load_learned

        weights, spec = _load_learned(path, "rule_params", "--rule ")
        config = spec["config"]
        return weights, {"rule": config["rule"], "num_bins": config["num_bins"], "rule_hidden": config["rule_hidden"]}
    if not (path / RULE).is_dir():
        raise ConfigError(f"--rule {meta_dir}: not a rule meta-training directory (no {RULE}/ in it; "
                          "write one with `jaxrl meta-train lpg`)")
    with CheckpointStore(path / RULE) as store:
        metadata = store.read_metadata()
        spec = metadata.get("spec", {})
        if spec.get("kind") != KIND:
            raise ConfigError(f"--rule {meta_dir}: not a meta-trained update rule")
        weights, _ = store.restore(arrays_template(metadata.get("rule_params"), "rule_params"))
    config = spec["config"]
    if spec.get("rule") == "disco":  # the rule's shapes are fixed (Disco103's); its names use ":" for "/"
        return jax.tree.map(np.asarray, weights), {"rule": "disco"}
    return jax.tree.map(np.asarray, weights), {"rule": spec["rule"], "num_bins": config["num_bins"],
                                               "rule_hidden": config["hidden_size"]}
