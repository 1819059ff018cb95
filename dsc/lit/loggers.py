"""Lightning loggers built from the ``logger`` config group, shared by training and evaluation."""

from __future__ import annotations

import importlib.util
import sys

from omegaconf import DictConfig

from dsc.config import build
from dsc.optional import require


def build_loggers(cfg: DictConfig | None) -> list:
    """``logger`` config: a mapping of name -> Lightning logger config (empty for none). A
    TensorBoard logger without tensorboard or tensorboardX installed is a MissingDependencyError
    naming the extra."""
    loggers = []
    for name, node in (cfg or {}).items():
        if node is None:
            continue
        tensorboard = str(node.get("_target_", "")).endswith("TensorBoardLogger")
        if tensorboard and importlib.util.find_spec("tensorboard") is None:
            require("tensorboardX", "tensorboard", needed_by=f"logger.{name}")
        loggers.append(build(node, f"logger.{name}"))
    return loggers


def finish_runs() -> None:
    """End the W&B run a WandbLogger started (Lightning's ``finalize`` leaves it open), so that
    the next run of this process, e.g. the next job of a sweep, starts a run of its own."""
    if "wandb" in sys.modules:
        sys.modules["wandb"].finish()
