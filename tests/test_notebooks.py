"""Every notebook in notebooks/ runs top to bottom at a small size (JAXRL_NOTEBOOK_QUICK=1) and
shows what it promises: the text, figures and tables listed in EXPECTED."""

import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

DISCO103 = Path(__file__).resolve().parents[2] / "shared" / "disco103" / "disco_103.npz"
NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))

# notebook -> (strings its printed output contains, number of figures, strings in an HTML table)
EXPECTED = {
    "quickstart": (["final return per seed", "mean return", "one episode with seed 0's policy"], 1, ["episode_return"]),
    "meta_training": (
        ["meta-trained 2 generations of 4", "held-out final returns, LPO:", "meta-trained the optimizer: 2 generations of 4",
         "held-out final returns, learned optimizer:"],
        3,  # fitness, drift, the learned optimizer's update
        ["fitness_mean", "mean_member_return"],
    ),
    "curricula": (
        ["shortest path (actions):", "dr: trained 2 seeds", "plr: holdout solve rate", "PLR buffer: best scores"],
        3,  # the holdout mazes, the buffer's best levels, the level diagnostics
        ["holdouts, sampled x10", "worst 10% (sampled)"],
    ),
    "lpg": (
        ["meta-trained 3 meta-steps", "fresh agents on 8 held-out levels: learned rule mean return"],
        2,  # the meta-training curve, pi_hat and y_hat along a trajectory
        ["mean_return", "critic_loss"],
    ),
    "discorl": (
        ["final return per seed", "correlation of the rule's push on the taken action with the advantage"],
        2,  # the learning curve, the rule's push beside the advantage along a trajectory
        ["rule_push", "advantage"],
    ),
    "sweeps": (
        # lr and ent_coef are traced: one program for the whole grid
        ["4 configurations x 2 seeds = 8 runs", "compilations: 1", "best of 4 configurations"],
        3,  # heatmap, curves, sensitivity
        ["ci_high", "iqm"],
    ),
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, monkeypatch):
    monkeypatch.setenv("JAXRL_NOTEBOOK_QUICK", "1")
    if path.stem == "discorl":  # it runs the published weights, which only the shared folder holds here
        if not DISCO103.exists():
            pytest.skip(f"Disco103's weights are not at {DISCO103}")
        monkeypatch.setenv("DISCO103_WEIGHTS", str(DISCO103))
    # The kernel spec runs `python`: put this interpreter's directory first so the kernel is the
    # test's own environment.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert path.stem in EXPECTED, f"add what {path.name} must show to EXPECTED"
    texts, figures, table_words = EXPECTED[path.stem]
    printed = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    for text in texts:
        assert text in printed
    assert len([o for o in outputs if "image/png" in o.get("data", {})]) == figures
    tables = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any(all(word in table for word in table_words) for table in tables)
