"""Run one evaluation job from a Hydra config and write its metrics.json atomically."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from dsc.config import build
from dsc.errors import ConfigError
from dsc.environment import device_name, environment_record, resolve_device
from dsc.io import atomic_write_json

log = logging.getLogger(__name__)


def run_evaluation(cfg: DictConfig) -> dict:
    """Instantiate ``cfg.job``, call its ``run(seed, device, output_dir)`` and save
    ``{config, environment, elapsed_s, points}`` to ``<output_dir>/metrics.json``."""
    device = resolve_device(cfg.device)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if cfg.get("job") is None:
        raise ConfigError("nothing to run: choose a source (source=gaussian) or an experiment")
    job = build(cfg.job, "job")
    log.info(
        "job %s | device %s (%s) | seed %d | torch %s | output %s",
        type(job).__name__, device, device_name(device), cfg.seed, torch.__version__, output_dir,
    )
    start = time.perf_counter()
    points = job.run(seed=int(cfg.seed), device=device, output_dir=output_dir)
    elapsed = time.perf_counter() - start
    config = OmegaConf.to_container(cfg, resolve=True)
    config.pop("hydra", None)
    metrics = {
        "config": config,
        "environment": environment_record(device),
        "elapsed_s": elapsed,
        "points": points,
    }
    if getattr(job, "skipped", None):
        metrics["skipped"] = job.skipped
    path = atomic_write_json(output_dir / "metrics.json", metrics)
    log.info("%d points in %.1f s -> %s", len(points), elapsed, path)
    return metrics
