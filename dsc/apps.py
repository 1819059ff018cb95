"""The Hydra applications ``dsc-train`` and ``dsc-evaluate`` (in a checkout also ``python
train.py`` / ``python evaluate.py``), composed from the configs shipped in :mod:`dsc.conf`.

Both take Hydra's command line: overrides (``experiment=gaussian_demo model.beta=0.15``),
``-m`` sweeps, ``--cfg job``. Run and sweep directories (``outputs/<app>/...``,
``multirun/<app>/...``) lie under the working directory. ``--config-dir DIR`` adds your own
configs to the shipped ones (``DIR/experiment/mine.yaml`` is then ``experiment=mine``).
"""

from __future__ import annotations

import sys
from typing import Callable, Sequence

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from dsc.errors import MissingDependencyError
from dsc.optional import require

# hydra/launcher=NAME -> (the plugin module, its distribution), all in the ``sweep`` extra
LAUNCHERS = {"joblib": ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher"),
             "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher"),
             "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher")}


def check_launcher(argv: Sequence[str]) -> None:
    """A MissingDependencyError naming the ``sweep`` extra when ``argv`` picks a launcher
    (``hydra/launcher=NAME``) whose plugin is not installed (Hydra itself would only say that
    no such option exists)."""
    for arg in argv:
        key, _, name = arg.partition("=")
        if key.lstrip("+") == "hydra/launcher" and name in LAUNCHERS:
            module, package = LAUNCHERS[name]
            require(module, "sweep", package=package, needed_by=arg)


def _launch(app: Callable[[], None]) -> None:
    try:
        check_launcher(sys.argv[1:])
    except MissingDependencyError as error:
        sys.exit(f"error: {error}")
    app()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def _train(cfg: DictConfig) -> None:
    from dsc.lit.train import run_training  # torch and Lightning load only for a run, not for --help or --cfg

    run_training(cfg)


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def _evaluate(cfg: DictConfig) -> None:
    from dsc.eval.runner import run_evaluation

    # in a sweep a failing job is recorded and the others still run (the sweep fails at the end)
    run_evaluation(cfg, keep_going=HydraConfig.get().mode == RunMode.MULTIRUN)


def train() -> None:
    """``dsc-train``: fit a model (:func:`dsc.lit.train.run_training`); writes run_config.json,
    checkpoints/last.ckpt and best.ckpt and the logger's files into the run directory."""
    _launch(_train)


def evaluate() -> None:
    """``dsc-evaluate``: RD points and figures (:func:`dsc.eval.runner.run_evaluation`) with a
    metrics.json per run; in a sweep a failing job is recorded, the others still run and the
    sweep exits with an error at the end."""
    _launch(_evaluate)
