"""Training runner: a Hydra config in, a fitted Lightning run with checkpoints out."""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint, Timer
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from omegaconf import DictConfig, OmegaConf, open_dict

from dsc.config import build
from dsc.environment import environment_record, resolve_device
from dsc.errors import CheckpointSaveError, ConfigError
from dsc.io import atomic_write_json, remove_stale_temporaries
from dsc.lit.checkpoint import check_resume
from dsc.lit.checkpoint_io import AtomicCheckpointIO
from dsc.lit.replicas import ReplicaCheck
from dsc.lit.resume import ResumableRandomState
from dsc.lit.snapshots import EpochSnapshots
from dsc.progress import lightning_progress_bar
from dsc.rundir import hold_run_directory

log = logging.getLogger(__name__)


def build_loggers(cfg: DictConfig | None) -> list:
    """``logger`` config: a mapping of name -> Lightning logger config (empty for none)."""
    return [build(node, f"logger.{name}") for name, node in (cfg or {}).items()]


def run_training(cfg: DictConfig, extra_callbacks: list[L.Callback] | None = None) -> dict:
    """Seed, build data, model, loggers and checkpoints from ``cfg``; fit (resuming from
    ``cfg.ckpt_path`` when given); return the final metrics. The resolved config and the
    environment are saved as ``run_config.json`` in the output directory first, and the config
    is handed to every logger (``log_hyperparams``).

    Distributed runs (``trainer=ddp``) run this in every process; only global rank zero writes
    run_config.json, train_summary.json, checkpoints and log lines. The summary's metrics are
    means over the ranks, and it records whether every rank ended with the same parameters
    (:class:`dsc.lit.replicas.ReplicaCheck`; a mismatch raises after the summary is written).
    ``extra_callbacks`` join the trainer's own (e.g. a benchmark's timer).

    Nothing is lost on a fault: the run holds its directory (a second run there stops with a
    RunDirectoryInUseError), checkpoints are saved atomically beside their target and a save
    that fails stops the run with a CheckpointSaveError (:mod:`dsc.lit.checkpoint_io`), and a
    checkpoint to resume from is checked against this config's model before anything is written."""
    for key in ("data", "model", "trainer"):
        if cfg.get(key) is None:
            raise ConfigError(f"nothing to train: `{key}` is not configured (try source=mnist model=mnist_vae)")
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(int(cfg.seed), workers=True)
    device = resolve_device(cfg.get("device", "auto"))
    datamodule = build(cfg.data, "data")
    module = build(cfg.model, "model")
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    check_precision(trainer_cfg.get("precision"))
    if device.index is not None and trainer_cfg.get("devices", 1) == 1:
        trainer_cfg["devices"] = [device.index]  # device=cuda:N on one GPU: that GPU
    checkpoints = ModelCheckpoint(dirpath=output_dir / "checkpoints", filename="best", monitor="val/loss",
                                  mode="min", enable_version_counter=False)
    # last.ckpt after every epoch: Lightning's save_last rewrites it only when best.ckpt improves
    latest = ModelCheckpoint(dirpath=output_dir / "checkpoints", filename="last", monitor=None, save_top_k=1,
                             enable_version_counter=False)
    timer, replicas = Timer(), ReplicaCheck()
    callbacks = [checkpoints, latest, timer, ResumableRandomState(), replicas, *(extra_callbacks or [])]
    if cfg.get("checkpoint_every_n_epochs"):
        callbacks.append(EpochSnapshots(output_dir / "checkpoints", cfg.checkpoint_every_n_epochs))
    if trainer_cfg.get("enable_progress_bar", True):
        callbacks.append(lightning_progress_bar())  # a line per few hundred steps when logging to a file
    try:
        trainer = L.Trainer(
            **trainer_cfg,
            accelerator=device.type if device.type != "cuda" else "gpu",
            default_root_dir=str(output_dir),
            logger=build_loggers(cfg.get("logger")) or False,
            callbacks=callbacks,
            plugins=[AtomicCheckpointIO()],
        )
    except MisconfigurationException as error:
        raise ConfigError(f"the trainer config cannot run on {device}: {error}") from None
    _refuse_multirun_launches(trainer)
    with contextlib.ExitStack() as held:
        if trainer.is_global_zero:  # the other ranks of a distributed run share rank zero's directory
            held.enter_context(hold_run_directory(output_dir))
            remove_stale_temporaries(output_dir / "checkpoints")  # left by a save that was killed
        ckpt_path = cfg.get("ckpt_path")
        first_epoch = 0 if ckpt_path is None else check_resume(
            module, ckpt_path, "python train.py (without ckpt_path) to start afresh")
        return _fit(cfg, trainer, module, datamodule, device, ckpt_path, first_epoch, checkpoints, timer, replicas)


def _fit(cfg: DictConfig, trainer: L.Trainer, module: L.LightningModule, datamodule, device, ckpt_path: str | None,
         first_epoch: int, checkpoints: ModelCheckpoint, timer: Timer, replicas: ReplicaCheck) -> dict:
    """Record the config, fit, check that the checkpoints exist, write the summary."""
    output_dir = Path(cfg.paths.output_dir)
    config = OmegaConf.to_container(_without(cfg, "job"), resolve=True)  # a source's evaluation job: not ours
    config.pop("hydra", None)
    if trainer.is_global_zero:  # the Trainer knows the process's global rank (env of the launcher)
        atomic_write_json(output_dir / "run_config.json", {"config": config, "environment": environment_record(device)})
    for logger in trainer.loggers:  # the resolved config travels with the run (wandb config, CSV hparams.yaml)
        logger.log_hyperparams(config)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    finally:
        if "wandb" in sys.modules:
            sys.modules["wandb"].finish()
    if trainer.is_global_zero and checkpoints.best_model_path and not Path(checkpoints.best_model_path).is_file():
        raise CheckpointSaveError(f"training ended but its best checkpoint {checkpoints.best_model_path} is not on "
                                  "disk; no summary is written")
    record = replicas.record or {"world_size": trainer.world_size, "replicas_identical": None,
                                 "parameter_sha256": None,
                                 "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()}}
    metrics = record["metrics"]
    epochs = trainer.current_epoch - first_epoch
    train_s = timer.time_elapsed("train")  # the whole fit loop, validation included
    summary = {
        "epochs": epochs, "train_s": train_s,
        "seconds_per_epoch": train_s / epochs if epochs else None,
        "batch_size": int(cfg.data.batch_size), "precision": str(trainer.precision), "device": str(device),
        "data": datamodule.origin,
        "best_checkpoint": checkpoints.best_model_path, **record,
    }
    if trainer.is_global_zero:
        atomic_write_json(output_dir / "train_summary.json", summary)
        log.info("data: %s | device: %s x %d, precision %s | %d epochs, %.1f s per epoch at batch %d per process "
                 "(validation included) | best checkpoint: %s", datamodule.origin, device, trainer.world_size,
                 trainer.precision, epochs, summary["seconds_per_epoch"] or 0.0, summary["batch_size"],
                 checkpoints.best_model_path)
    replicas.raise_if_different()
    return metrics


PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true")
_PRECISION_ALIASES = {32: "32-true", "32": "32-true", 16: "16-mixed", "16": "16-mixed", "bf16": "bf16-mixed",
                      64: "64-true", "64": "64-true"}


def check_precision(precision: object) -> None:
    """A ConfigError for a ``trainer.precision`` that Lightning would not take (None: its default)."""
    if precision is None or precision in PRECISIONS or precision in _PRECISION_ALIASES:
        return
    raise ConfigError(f"trainer.precision={precision!r} is not a precision; use one of {', '.join(PRECISIONS)} "
                      "(32-true: float32; bf16-mixed: bfloat16 autocast, on a GPU or a CPU with bf16 support)")


def _without(cfg: DictConfig, key: str) -> DictConfig:
    """A copy of ``cfg`` without ``key`` (interpolations elsewhere still resolve)."""
    copy = cfg.copy()
    with open_dict(copy):
        copy.pop(key, None)
    return copy


def _refuse_multirun_launches(trainer: L.Trainer) -> None:
    """Lightning's DDP launcher starts ranks 1.. by re-running the command line; under a Hydra
    multirun (``-m``) each would re-run the whole sweep and the processes would not pair up."""
    launcher = trainer.strategy.launcher
    if (isinstance(launcher, _SubprocessScriptLauncher) and launcher.num_processes > 1
            and not launcher.cluster_environment.creates_processes_externally
            and HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN):
        raise ConfigError("trainer=ddp with several devices cannot run inside a Hydra multirun (-m): Lightning "
                          "starts the other ranks by re-running the command. Run the sweep's points one by one "
                          "(a shell loop over `python train.py trainer=ddp ...`)")
