"""Training runner: a Hydra config in, a fitted Lightning run with checkpoints out."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, Timer
from omegaconf import DictConfig, OmegaConf

from dsc.config import build
from dsc.environment import environment_record, resolve_device
from dsc.errors import ConfigError
from dsc.io import atomic_write_json
from dsc.lit.resume import ResumableRandomState

log = logging.getLogger(__name__)


def build_loggers(cfg: DictConfig | None) -> list:
    """``logger`` config: a mapping of name -> Lightning logger config (empty for none)."""
    return [build(node, f"logger.{name}") for name, node in (cfg or {}).items()]


def run_training(cfg: DictConfig) -> dict:
    """Seed, build data, model, loggers and checkpoints from ``cfg``; fit (resuming from
    ``cfg.ckpt_path`` when given); return the final metrics. The resolved config and the
    environment are saved as ``run_config.json`` in the output directory first."""
    for key in ("data", "model", "trainer"):
        if cfg.get(key) is None:
            raise ConfigError(f"nothing to train: `{key}` is not configured (try source=mnist model=mnist_vae)")
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(int(cfg.seed), workers=True)
    device = resolve_device(cfg.get("device", "auto"))
    datamodule = build(cfg.data, "data")
    module = build(cfg.model, "model")
    config = OmegaConf.to_container(cfg, resolve=True)
    config.pop("hydra", None)
    atomic_write_json(output_dir / "run_config.json", {"config": config, "environment": environment_record(device)})
    checkpoints = ModelCheckpoint(dirpath=output_dir / "checkpoints", filename="best", monitor="val/loss",
                                  mode="min", save_last=True, enable_version_counter=False)
    timer = Timer()
    trainer = L.Trainer(
        **OmegaConf.to_container(cfg.trainer, resolve=True),
        accelerator=device.type if device.type != "cuda" else "gpu",
        default_root_dir=str(output_dir),
        logger=build_loggers(cfg.get("logger")) or False,
        callbacks=[checkpoints, timer, ResumableRandomState()],
    )
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is not None and not Path(ckpt_path).is_file():
        raise ConfigError(f"ckpt_path {ckpt_path} does not exist; pass the last.ckpt of an earlier run")
    first_epoch = _checkpoint_epoch(ckpt_path)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    finally:
        if "wandb" in sys.modules:
            sys.modules["wandb"].finish()
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    epochs = trainer.current_epoch - first_epoch
    train_s = timer.time_elapsed("train")  # the whole fit loop, validation included
    summary = {
        "epochs": epochs, "train_s": train_s,
        "seconds_per_epoch": train_s / epochs if epochs else None,
        "batch_size": int(cfg.data.batch_size), "device": str(device), "data": datamodule.origin,
        "best_checkpoint": checkpoints.best_model_path, "metrics": metrics,
    }
    atomic_write_json(output_dir / "train_summary.json", summary)
    log.info("data: %s | device: %s | %d epochs, %.1f s per epoch at batch %d (validation included) | "
             "best checkpoint: %s", datamodule.origin, device, epochs, summary["seconds_per_epoch"] or 0.0,
             summary["batch_size"], checkpoints.best_model_path)
    return metrics


def _checkpoint_epoch(ckpt_path: str | None) -> int:
    """Epochs already done in the checkpoint a run resumes from (0 for a fresh run)."""
    if ckpt_path is None:
        return 0
    return int(torch.load(ckpt_path, map_location="cpu", weights_only=True).get("epoch", -1)) + 1
