"""Evaluate with Hydra: ``python evaluate.py [experiment=...] [key=value ...]``.

Each run writes metrics.json (resolved config, environment, points) and its figures into the
Hydra output directory.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from dsc.eval.runner import run_evaluation


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    run_evaluation(cfg)


if __name__ == "__main__":
    main()
