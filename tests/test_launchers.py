"""Sweeps through Hydra's parallel launchers give the points of the basic (sequential) launcher:
the joblib launcher (local processes) and submitit's local executor (the SLURM launcher's code
path without a cluster)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

for plugin in ("hydra_plugins.hydra_joblib_launcher", "hydra_plugins.hydra_submitit_launcher"):
    pytest.importorskip(plugin, reason='the launchers are the sweep extra: pip install -e ".[sweep]"')

ROOT = Path(__file__).resolve().parent.parent
SWEEP = ["evaluate.py", "-m", "num_decoders=1,2", "rate_bits=1", "num_candidates=256", "job.trials=400",
         "job.selection_trials=200", "job.test_channel_variances=[0.005,0.002]", "device=cpu"]


def sweep(directory: Path, *launcher: str) -> dict[str, list]:
    run = subprocess.run([sys.executable, *SWEEP, *launcher, f"hydra.sweep.dir={directory}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert (directory / "results.csv").exists() and (directory / "rd_plot.png").exists()
    return {job: json.loads((directory / job / "metrics.json").read_text())["points"] for job in ("0", "1")}


@pytest.fixture(scope="module")
def basic(tmp_path_factory):
    return sweep(tmp_path_factory.mktemp("basic"))


@pytest.mark.parametrize("launcher", [["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
                                      ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"]],
                         ids=["joblib", "submitit_local"])
def test_parallel_launchers_reproduce_the_sequential_sweep(basic, tmp_path, launcher):
    points = sweep(tmp_path, *launcher)
    assert points == basic
    assert [p[0]["num_decoders"] for p in points.values()] == [1, 2]


def test_slurm_launcher_settings_are_config_values():
    """Nothing is submitted: the SLURM launcher's config composes with the documented keys."""
    from hydra import compose, initialize_config_module

    overrides = ["hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=120",
                 "hydra.launcher.gpus_per_node=4", "hydra.launcher.tasks_per_node=4", "hydra.launcher.nodes=2"]
    with initialize_config_module("dsc.conf", version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.timeout_min, launcher.gpus_per_node, launcher.nodes) == ("gpu", 120, 4, 2)
