"""Train with Hydra: ``python train.py source=mnist model=mnist_vae model.beta=0.15 ...``.

Writes run_config.json (resolved config and environment), checkpoints/last.ckpt and best.ckpt,
and the logger's files into the Hydra output directory. Resume with ckpt_path=.../last.ckpt.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from dsc.lit.train import run_training


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    run_training(cfg)


if __name__ == "__main__":
    main()
