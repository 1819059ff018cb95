"""Evaluate with Hydra: ``python evaluate.py [experiment=...] [key=value ...]``.

Each run writes metrics.json (resolved config, environment, points) and its figures into the
Hydra output directory. In a multirun a failing job is recorded in its metrics.json and the
other jobs still run; the aggregation lists the failures and the sweep then exits with an error.
"""

from __future__ import annotations

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from dsc.eval.runner import run_evaluation


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    # in a sweep a failing job is recorded and the others still run (the sweep fails at the end)
    run_evaluation(cfg, keep_going=HydraConfig.get().mode == RunMode.MULTIRUN)


if __name__ == "__main__":
    main()
