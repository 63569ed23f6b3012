"""Sweeps: every run equals its configuration trained alone, sharding changes nothing beyond
float rounding, shapes of grid and random searches, the statistics, and the CLI's bad specs.

Budgets are tiny (8 updates of 4 envs x 128 steps): these tests check plumbing and exactness,
not learning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import jaxrl
from jaxrl.analysis import stats
from jaxrl.core import train as core_train
from jaxrl.driver import runner
from jaxrl.cli import main
from jaxrl.core.distributions import parse_distribution
from jaxrl.sweeps.plan import plan
from jaxrl.sweeps.result import summarize

SMALL = {"total_steps": 4096, "num_envs": 4}
METRICS = ["episode_return", "episode_length", "policy_loss", "value_loss", "entropy", "approx_kl"]


@pytest.fixture(scope="module")
def grid_result():
    # Forget programs built by earlier tests in this process, so the compilation count below
    # does not depend on which tests ran first.
    runner.clear_caches()
    # lr is traced (varies inside a program); num_minibatches is structural (one program each).
    return jaxrl.sweep(
        "ppo", "CartPole-v1", grid={"lr": [1e-4, 1e-3], "num_minibatches": [2, 4]}, seeds=2, overrides=SMALL
    )


def _runs(result, config_id: int, name: str) -> np.ndarray:
    """[seeds, logs] of one metric of one configuration from the tidy frame."""
    rows = result.results[result.results["config_id"] == config_id]
    return rows.pivot(index="seed", columns="step", values=name).to_numpy()


def test_every_run_equals_its_configuration_trained_alone(grid_result):
    config_id = next(i for i, c in enumerate(grid_result.configs) if c == {"lr": 1e-3, "num_minibatches": 2})
    alone = jaxrl.train("ppo", "CartPole-v1", num_seeds=2, overrides={**SMALL, "lr": 1e-3, "num_minibatches": 2})
    for name in METRICS:
        swept = _runs(grid_result, config_id, name)
        # Bit for bit: the same key per (config, seed index), and lr as one entry of a batched
        # leaf computes exactly what a shared scalar lr does.
        np.testing.assert_array_equal(swept, alone.metrics[name], err_msg=name)
    np.testing.assert_array_equal(grid_result.final_returns[config_id], alone.final_returns)


def test_grid_shapes_columns_and_compilations(grid_result):
    result = grid_result
    num_logs = SMALL["total_steps"] // (4 * 128)
    assert result.num_compilations == 2  # one per num_minibatches value; lr never recompiles
    assert [c for c in result.configs] == [
        {"lr": 1e-4, "num_minibatches": 2},
        {"lr": 1e-4, "num_minibatches": 4},
        {"lr": 1e-3, "num_minibatches": 2},
        {"lr": 1e-3, "num_minibatches": 4},
    ]
    frame = result.results
    assert len(frame) == 4 * 2 * num_logs
    assert list(frame.columns[:5]) == ["config_id", "lr", "num_minibatches", "seed", "step"]
    for name in METRICS + ["lr_logged"]:  # PPO's logged (annealed) lr keeps a suffix
        assert name in frame.columns
    assert sorted(frame["seed"].unique()) == [0, 1]
    assert frame.groupby(["config_id", "seed"]).size().eq(num_logs).all()
    assert (frame.groupby("config_id")["lr"].nunique() == 1).all()
    summary = result.summary
    assert list(summary.columns) == [
        "config_id", "lr", "num_minibatches", "mean", "iqm", "ci_low", "ci_high", "num_finite", "num_seeds"
    ]
    assert len(summary) == 4 and (summary["num_seeds"] == 2).all()
    assert (summary["ci_low"] <= summary["mean"]).all() and (summary["mean"] <= summary["ci_high"]).all()
    best = result.best_config_id
    assert summary["iqm"].iloc[best] == summary["iqm"].max()
    assert result.best == result.configs[best]


def test_random_search_reuses_the_compiled_program(grid_result):
    # Same structure (num_minibatches=4), same swept leaf (lr), same number of runs as one group
    # of the grid: the compiled program is reused, so nothing compiles.
    result = jaxrl.sweep(
        "ppo", "CartPole-v1", random={"lr": "loguniform:1e-4:1e-2"}, samples=2, seeds=2,
        overrides={**SMALL, "num_minibatches": 4}, seed=3,
    )
    assert result.num_compilations == 0
    assert result.kind == "random" and len(result.configs) == 2
    assert all(1e-4 <= c["lr"] <= 1e-2 for c in result.configs)
    assert list(result.results.columns[:4]) == ["config_id", "lr", "seed", "step"]
    assert len(result.results) == 2 * 2 * (SMALL["total_steps"] // 512)


def test_random_plans_are_seeded_and_group_structural_choices():
    spec = {"lr": "loguniform:1e-5:1e-2", "ent_coef": "uniform:0:0.05", "hidden_sizes": "choice:32,64x64",
            "update_epochs": "int-uniform:1:3"}
    first = plan("ppo", "CartPole-v1", random=spec, samples=12, seeds=3, overrides=SMALL, seed=7)
    again = plan("ppo", "CartPole-v1", random=spec, samples=12, seeds=3, overrides=SMALL, seed=7)
    other = plan("ppo", "CartPole-v1", random=spec, samples=12, seeds=3, overrides=SMALL, seed=8)
    assert first.values == again.values and first.values != other.values
    assert len(first.values) == 12 and first.num_runs == 36
    for values in first.values:
        assert 1e-5 <= values["lr"] <= 1e-2 and 0 <= values["ent_coef"] <= 0.05
        assert values["hidden_sizes"] in ((32,), (64, 64)) and values["update_epochs"] in (1, 2, 3)
    structures = {(v["hidden_sizes"], v["update_epochs"]) for v in first.values}
    assert len(first.groups) == len(structures)
    assert sorted(i for g in first.groups for i in g.config_ids) == list(range(12))


def test_distribution_parsing():
    assert parse_distribution("lr", "loguniform:1e-5:1e-2").kind == "loguniform"
    assert parse_distribution("n", "int-uniform:1:4").kind == "int-uniform"
    assert parse_distribution("h", "choice:64x64,32").choices == ("64x64", "32")
    assert parse_distribution("h", [1, 2]).choices == (1, 2)
    draws = parse_distribution("n", "int-uniform:1:3").sample(np.random.default_rng(0), 200)
    assert set(draws) == {1, 2, 3}  # both bounds inclusive
    logs = np.log10(parse_distribution("lr", "loguniform:1e-4:1e-2").sample(np.random.default_rng(0), 2000))
    assert logs.min() >= -4 and logs.max() <= -2 and abs(np.mean(logs) + 3) < 0.05  # uniform in log space
    for bad in ["loguniform:0:1", "uniform:2:1", "uniform:1", "normal:0:1", "choice:", "int-uniform:0.5:2", "uniform:a:b"]:
        with pytest.raises(jaxrl.ConfigError):
            parse_distribution("x", bad)


SHARDED = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import jax
    import jaxrl
    assert jax.device_count() == 4, jax.devices()
    kwargs = dict(grid={"lr": [1e-4, 3e-4, 1e-3]}, seeds=2, overrides={"total_steps": 4096, "num_envs": 4})
    sharded = jaxrl.sweep("ppo", "CartPole-v1", **kwargs)
    single = jaxrl.sweep("ppo", "CartPole-v1", devices=jax.devices()[:1], **kwargs)
    out = {"devices": [sharded.num_devices, single.num_devices], "rows": [len(sharded.results), len(single.results)]}
    for name in %r:
        a, b = sharded.results[name].to_numpy(), single.results[name].to_numpy()
        out[name] = [bool(np.array_equal(a, b, equal_nan=True)), bool(np.allclose(a, b, rtol=1e-4, atol=1e-5, equal_nan=True))]
    out["keys"] = bool((sharded.results[["config_id", "seed", "step"]] == single.results[["config_id", "seed", "step"]]).all().all())
    print("RESULT " + json.dumps(out))
    """
    % (METRICS,)
)


def test_sharded_sweep_matches_unsharded():
    # XLA reads the device count once, at backend start: hence a fresh process.
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
    env["JAX_PLATFORMS"] = "cpu"
    done = subprocess.run([sys.executable, "-c", SHARDED], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(l for l in done.stdout.splitlines() if l.startswith("RESULT "))
    out = json.loads(line[len("RESULT "):])
    # 6 runs padded to 8 over 4 devices; the 2 padding runs are gone from the results.
    assert out["devices"] == [4, 1]
    assert out["rows"][0] == out["rows"][1] == 3 * 2 * 8
    assert out["keys"]
    for name in METRICS:
        # Not bit-identical: the partitioned program's floating-point rounding differs slightly
        # from the single-device one's (README, "Devices and hosts"); ~1e-6 relative here.
        assert out[name][1], f"{name} differs beyond float rounding: {out[name]}"


# --------------------------------------------------------------------------------------------
# Statistics, against values computed by hand


def test_mean_and_iqm_by_hand():
    values = np.array([7.0, 1.0, 3.0, 100.0, 5.0, 2.0, 4.0, 6.0])
    assert stats.mean(values) == pytest.approx(128.0 / 8)
    # 8 values: drop the 2 lowest (1, 2) and 2 highest (7, 100) -> mean of 3, 4, 5, 6.
    assert stats.iqm(values) == pytest.approx(4.5)
    # 5 values: floor(5 / 4) = 1 dropped at each end -> mean of 2, 3, 4.
    assert stats.iqm(np.array([1.0, 2.0, 3.0, 4.0, 50.0])) == pytest.approx(3.0)
    # Fewer than 4 values: nothing dropped.
    assert stats.iqm(np.array([1.0, 2.0, 9.0])) == pytest.approx(4.0)
    # NaN (a run that never finished an episode) is left out.
    assert stats.mean(np.array([1.0, np.nan, 3.0])) == pytest.approx(2.0)
    assert np.isnan(stats.mean(np.array([np.nan, np.nan])))
    # Along an axis: per column.
    np.testing.assert_allclose(stats.iqm(np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]]), axis=0), [2.5, 25.0])


def test_bootstrap_ci_by_hand():
    # Two seeds: resampled means are 0 (1/4), 0.5 (1/2), 1 (1/4); the 2.5% and 97.5% quantiles
    # of 2,000 resamples are then 0 and 1.
    low, high = stats.bootstrap_ci(np.array([0.0, 1.0]))
    assert (low, high) == (0.0, 1.0)
    # Identical seeds: no spread.
    assert stats.bootstrap_ci(np.array([3.0, 3.0, 3.0])) == (3.0, 3.0)
    # The same procedure written out: fixed generator, resample indices, percentile interval.
    values = np.array([12.0, 15.0, 9.0, 30.0, 18.0])
    picks = np.random.default_rng(stats.BOOTSTRAP_SEED).integers(0, 5, size=(stats.BOOTSTRAP_RESAMPLES, 5))
    means = values[picks].mean(axis=1)
    expected = (np.quantile(means, 0.025), np.quantile(means, 0.975))
    assert stats.bootstrap_ci(values) == pytest.approx(expected)
    # Fixed generator: the same interval every time.
    assert stats.bootstrap_ci(values) == stats.bootstrap_ci(values)
    low, high = stats.bootstrap_ci(values, "iqm", confidence=0.5)
    assert 9.0 <= low <= high <= 30.0


def test_summary_table_by_hand():
    finals = np.array([[10.0, 20.0, 30.0, 40.0], [5.0, 5.0, 5.0, np.nan], [np.nan] * 4])
    table = summarize(["lr"], [{"lr": 1e-3}, {"lr": 1e-4}, {"lr": 1e-5}], finals)
    assert table["mean"].iloc[0] == pytest.approx(25.0)
    assert table["iqm"].iloc[0] == pytest.approx(25.0)  # 4 values: drop 10 and 40
    assert table["ci_low"].iloc[0] >= 10.0 and table["ci_high"].iloc[0] <= 40.0
    assert (table["mean"].iloc[1], table["ci_low"].iloc[1], table["ci_high"].iloc[1]) == (5.0, 5.0, 5.0)
    assert list(table["num_finite"]) == [4, 3, 0]
    assert np.isnan(table["mean"].iloc[2])


# --------------------------------------------------------------------------------------------
# The command line


def test_cli_sweep_writes_results_and_plots(grid_result, tmp_path, capsys):
    # The same structure and run count as a group of the grid fixture: no compilation here.
    out = tmp_path / "s"
    code = main([
        "sweep", "ppo", "--env", "CartPole-v1", "--grid", "lr=1e-4,1e-3", "--seeds", "2", "--total-steps", "4096",
        "--set", "num_envs=4", "--set", "num_minibatches=4", "--out", str(out), "--quiet",
    ])
    assert code == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and printed[0].startswith("best of 2 configurations x 2 seeds: lr=")
    assert {p.name for p in out.iterdir()} == {"config.json", "results.csv", "summary.csv", "curves.png", "sensitivity.png"}
    meta = json.loads((out / "config.json").read_text())
    assert meta["swept"] == ["lr"] and meta["seeds"] == 2 and len(meta["configs"]) == 2
    import pandas as pd

    summary = pd.read_csv(out / "summary.csv")
    grid_rows = grid_result.summary[grid_result.summary["num_minibatches"] == 4]
    np.testing.assert_allclose(summary["mean"].to_numpy(), grid_rows["mean"].to_numpy())
    # An existing sweep is not overwritten.
    assert main(["sweep", "ppo", "--env", "CartPole-v1", "--grid", "lr=1e-3", "--out", str(out), "--quiet"]) == 2


BAD_SPECS = [
    ["--grid", "lrr=1e-3,1e-4"],  # unknown hyperparameter
    ["--grid", "lr="],  # empty grid
    ["--grid", "lr"],  # no '='
    ["--random", "lr=loguniform:1e-5", "--samples", "4"],  # malformed distribution
    ["--random", "lr=gauss:0:1", "--samples", "4"],  # unknown distribution
    ["--random", "lr=loguniform:1e-5:1e-2"],  # no --samples
    ["--random", "num_envs=uniform:1:8", "--samples", "4"],  # continuous draw of a structural int
    ["--grid", "num_minibatches=3,4"],  # invalid structural value (3 does not divide the batch)
    ["--grid", "lr=-1e-3,1e-3"],  # rejected by the algorithm's check
    ["--grid", "lr=1e-3", "--random", "ent_coef=uniform:0:1", "--samples", "2"],  # both
    [],  # neither
    ["--grid", "lr=1e-3", "--grid", "lr=1e-4"],  # the same setting twice
    ["--grid", "lr=1e-3", "--set", "lr=1e-4"],  # swept and fixed
    ["--grid", "lr=1e-3", "--seeds", "0"],
    ["--grid", "lr=1e-3", "--final-fraction", "0"],
]


@pytest.mark.parametrize("extra", BAD_SPECS, ids=[" ".join(s) or "nothing" for s in BAD_SPECS])
def test_cli_bad_specs_exit_2_with_one_line(extra, tmp_path, capsys):
    out = tmp_path / "never"
    traces = core_train.trace_count()
    code = main(["sweep", "ppo", "--env", "CartPole-v1", "--out", str(out), *extra])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert not out.exists()  # checked before the run directory is made
    assert core_train.trace_count() == traces  # and before anything compiles
