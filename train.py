"""Train with Hydra: ``python train.py model=<name> [key=value ...]``.

The trainable models are the config files in conf/model/; with none given, this lists them.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from dsc.errors import ConfigError

MODEL_DIR = Path(__file__).resolve().parent / "conf" / "model"


def available_models() -> list[str]:
    return sorted(path.stem for path in MODEL_DIR.glob("*.yaml"))


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    if cfg.get("model") is None:
        choices = ", ".join(available_models()) or "none are installed in this version"
        raise ConfigError(f"no model selected: pass model=<name>; available models: {choices}")
    raise ConfigError(f"model {cfg.model!r} has no training recipe in this version")


if __name__ == "__main__":
    main()
