"""Training runner: a Hydra config in, a fitted Lightning run with checkpoints out."""

from __future__ import annotations

import contextlib
import inspect
import logging
from pathlib import Path
from typing import NamedTuple

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar, Timer
from lightning.pytorch.plugins.io import CheckpointIO
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from omegaconf import DictConfig, OmegaConf

from dsc.config import build
from dsc.environment import environment_record, resolve_device
from dsc.errors import CheckpointSaveError, ConfigError
from dsc.io import atomic_write_json, remove_stale_temporaries
from dsc.lit.checkpoint import check_resume
from dsc.lit.checkpoint_io import AtomicCheckpointIO
from dsc.lit.loggers import build_loggers, finish_runs
from dsc.lit.preflight import FirstBatchCheck, check_config, check_configured, check_data_module
from dsc.lit.replicas import ReplicaCheck
from dsc.lit.resume import ResumableRandomState
from dsc.lit.snapshots import EpochSnapshots
from dsc.progress import lightning_progress_bar
from dsc.registry import import_sources
from dsc.rundir import hold_run_directory

log = logging.getLogger(__name__)


def build_callbacks(cfg: DictConfig | None) -> list[L.Callback]:
    """``callbacks`` config: a mapping of name -> Lightning callback config (``NAME: null`` drops one)."""
    callbacks = []
    for name, node in (cfg or {}).items():
        if node is None:
            continue
        callback = build(node, f"callbacks.{name}")
        if not isinstance(callback, L.Callback):
            raise ConfigError(f"callbacks.{name} builds a {type(callback).__name__}, not a Lightning callback; give "
                              "it the _target_ of a lightning.pytorch.callbacks.Callback subclass")
        callbacks.append(callback)
    return callbacks


# Trainer arguments dsc sets itself: where to set them instead
SET_ELSEWHERE = {
    "logger": "choose loggers with the logger group instead (logger=wandb|csv|none, +logger.NAME._target_=...)",
    "callbacks": "add callbacks with the callbacks group instead (callbacks=early_stopping, "
                 "+callbacks.NAME._target_=...)",
}
ACCELERATORS = {"cpu": "cpu", "gpu": "cuda", "cuda": "cuda", "auto": "auto"}  # trainer.accelerator -> device type


def trainer_arguments(cfg: DictConfig) -> dict:
    """The ``trainer`` config as keyword arguments of ``lightning.Trainer``: nulls dropped,
    ``_target_`` nodes (a profiler, a strategy, plugins) built. A key that is no Trainer
    argument, or one dsc sets from another config key, is a ConfigError naming what to use."""
    args = {key: value for key, value in build(cfg, "trainer").items() if value is not None}
    known = set(inspect.signature(L.Trainer.__init__).parameters) - {"self"}
    for key in args:
        if key in SET_ELSEWHERE:
            raise ConfigError(f"trainer.{key} is set by dsc: {SET_ELSEWHERE[key]}")
        if key not in known:
            raise ConfigError(f"trainer.{key} is not an argument of lightning.Trainer {L.__version__}; the "
                              "arguments are the keys of dsc/conf/trainer/default.yaml (`python train.py --cfg job` "
                              "lists them)")
    if args.get("enable_checkpointing") is False:
        raise ConfigError("trainer.enable_checkpointing=false: dsc always keeps checkpoints/best.ckpt and last.ckpt; "
                          "for a run that writes none use debug=fdr (trainer.fast_dev_run=true)")
    if any(isinstance(plugin, CheckpointIO) for plugin in _as_list(args.get("plugins"))):
        raise ConfigError("trainer.plugins holds a CheckpointIO: dsc writes checkpoints through its own "
                          "(atomic files, dsc.lit.checkpoint_io); drop that plugin")
    return args


def training_device(device: str, accelerator: object) -> torch.device:
    """The device of ``device`` (auto, cpu, cuda, cuda:N) and ``trainer.accelerator`` (null, cpu,
    gpu, cuda, auto): an accelerator given beside ``device=auto`` chooses; both given must agree."""
    if accelerator is None:
        return resolve_device(device)
    kind = ACCELERATORS.get(accelerator) if isinstance(accelerator, str) else None
    if kind is None:
        raise ConfigError(f"trainer.accelerator={accelerator!r}: dsc trains on the CPU or CUDA GPUs; use "
                          "device=cpu|cuda|cuda:N (trainer.accelerator follows it) or trainer.accelerator=cpu|gpu")
    if device == "auto":
        if kind == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"trainer.accelerator={accelerator} but no CUDA device is present; use device=cpu (or "
                              "trainer.accelerator=cpu)")
        return resolve_device(kind)
    chosen = resolve_device(device)
    if kind not in ("auto", chosen.type):
        raise ConfigError(f"device={device} and trainer.accelerator={accelerator} disagree; set device alone "
                          "(trainer.accelerator follows it)")
    return chosen


def log_through_root_only() -> None:
    """One printed line per log record. Lightning's ``lightning`` logger prints with a console
    handler of its own and then passes the record on to the root logger, which under Hydra prints
    (and files) it again; ``lightning.pytorch``/``lightning.fabric``, when imported before logging
    was configured, keep a handler and stop there (their lines never reach the log file). With
    handlers on the root logger, those console handlers go and every record reaches the root."""
    if not logging.getLogger().handlers:
        return  # nothing configured: Lightning's own handlers are the only output
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:
                logger.removeHandler(handler)
        logger.propagate = True


def run_training(cfg: DictConfig, extra_callbacks: list[L.Callback] | None = None) -> dict:
    """Seed, build data, model, loggers and checkpoints from ``cfg``; fit (resuming from
    ``cfg.ckpt_path`` when given); return the final metrics. The resolved config and the
    environment are saved as ``run_config.json`` in the output directory first, and the config
    is handed to every logger once (``log_hyperparams``).

    ``cfg.trainer`` holds Lightning's Trainer arguments (:func:`trainer_arguments`); ``device``
    and ``trainer.accelerator`` choose the device (:func:`training_device`). ``cfg.callbacks``
    adds Lightning callbacks to dsc's own (best and last checkpoints, the generators' states,
    the replica check, the timer, the progress bar unless a configured callback is one);
    ``extra_callbacks`` join them too (e.g. a benchmark's timer).

    Distributed runs (``trainer=ddp``) run this in every process; only global rank zero writes
    run_config.json, train_summary.json, checkpoints and log lines. The summary's metrics are
    means over the ranks, and it records whether every rank ended with the same parameters
    (:class:`dsc.lit.replicas.ReplicaCheck`; a mismatch raises after the summary is written).

    Nothing is lost on a fault: the run holds its directory (a second run there stops with a
    RunDirectoryInUseError), checkpoints are saved atomically beside their target and a save
    that fails stops the run with a CheckpointSaveError (:mod:`dsc.lit.checkpoint_io`), and a
    checkpoint to resume from is checked against this config's model before anything is written."""
    check_configured(cfg)
    log_through_root_only()
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    trainer_args = trainer_arguments(cfg.trainer)
    check_precision(trainer_args.get("precision"))
    device = training_device(cfg.get("device", "auto"), trainer_args.pop("accelerator", None))
    L.seed_everything(int(cfg.seed), workers=True)
    if cfg.get("imports"):  # a source of one's own: its module holds the data module's and codec's classes
        import_sources(cfg.imports, "imports")
    check_config(cfg.data, "data")
    datamodule = build(cfg.data, "data")
    check_data_module(datamodule)
    check_config(cfg.model, "model", shapes_from_data(cfg.model, datamodule))
    module = build(cfg.model, "model", **shapes_from_data(cfg.model, datamodule))
    if device.index is not None and trainer_args.get("devices", 1) == 1:
        trainer_args["devices"] = [device.index]  # device=cuda:N on one GPU: that GPU
    trainer_args.setdefault("default_root_dir", str(output_dir))
    checkpoints = ModelCheckpoint(dirpath=output_dir / "checkpoints", filename="best", monitor="val/loss",
                                  mode="min", enable_version_counter=False)
    # last.ckpt after every epoch: Lightning's save_last rewrites it only when best.ckpt improves
    latest = ModelCheckpoint(dirpath=output_dir / "checkpoints", filename="last", monitor=None, save_top_k=1,
                             enable_version_counter=False)
    try:  # our Timer takes trainer.max_time (Lightning would ignore max_time beside a Timer of ours)
        timer, replicas = Timer(duration=trainer_args.pop("max_time", None), interval="step"), ReplicaCheck()
    except MisconfigurationException as error:
        raise ConfigError(f"trainer.max_time: {error}") from None
    configured = build_callbacks(cfg.get("callbacks"))
    callbacks = [FirstBatchCheck(), checkpoints, latest, timer, ResumableRandomState(), replicas,
                 *(extra_callbacks or []), *configured]
    if cfg.get("checkpoint_every_n_epochs"):
        callbacks.append(EpochSnapshots(output_dir / "checkpoints", cfg.checkpoint_every_n_epochs))
    if trainer_args.get("enable_progress_bar", True) and not any(isinstance(c, ProgressBar) for c in configured):
        callbacks.append(lightning_progress_bar())  # a line per few hundred steps when logging to a file
    plugins = [AtomicCheckpointIO(), *_as_list(trainer_args.pop("plugins", None))]
    try:
        trainer = L.Trainer(
            **trainer_args,
            accelerator=device.type if device.type != "cuda" else "gpu",
            logger=build_loggers(cfg.get("logger")) or False,
            callbacks=callbacks,
            plugins=plugins,
        )
    except MisconfigurationException as error:
        raise ConfigError(f"Lightning refuses this trainer config (on {device}): {error}") from None
    _refuse_multirun_launches(trainer)
    with contextlib.ExitStack() as held:
        if trainer.is_global_zero:  # the other ranks of a distributed run share rank zero's directory
            held.enter_context(hold_run_directory(output_dir))
            remove_stale_temporaries(output_dir / "checkpoints")  # left by a save that was killed
        ckpt_path = cfg.get("ckpt_path")
        first_epoch = 0 if ckpt_path is None else check_resume(
            module, ckpt_path, "python train.py (without ckpt_path) to start afresh")
        return _fit(cfg, trainer, module, datamodule, device, ckpt_path, first_epoch,
                    _Checkpoints(checkpoints, latest), timer, replicas)


def shapes_from_data(model: DictConfig, datamodule: L.LightningDataModule) -> dict:
    """The model options the data determine (``datamodule.model_options()``, e.g. an image
    source's ``image_shape``) that the model config leaves null; a data module without that
    method determines none."""
    options = getattr(datamodule, "model_options", None)
    if options is None:
        return {}
    return {key: value for key, value in options().items() if key in model and model.get(key) is None}


def _as_list(value: object) -> list:
    return [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]


class _Checkpoints(NamedTuple):
    best: ModelCheckpoint  # checkpoints/best.ckpt, lowest val/loss
    last: ModelCheckpoint  # checkpoints/last.ckpt, every epoch

    def outcome(self, trainer: L.Trainer) -> str:
        """What the run left behind, for the log's last line."""
        if self.best.best_model_path:
            return f"best checkpoint: {self.best.best_model_path}"
        if trainer.fast_dev_run:
            return "no checkpoint written (fast_dev_run writes none)"
        if self.last.best_model_path:
            return (f"no best checkpoint (val/loss was never computed: no validation ran); last checkpoint: "
                    f"{self.last.best_model_path}")
        return "no checkpoint written (no training epoch ended)"


def _fit(cfg: DictConfig, trainer: L.Trainer, module: L.LightningModule, datamodule, device, ckpt_path: str | None,
         first_epoch: int, checkpoints: _Checkpoints, timer: Timer, replicas: ReplicaCheck) -> dict:
    """Record the config, fit, check that the checkpoints exist, write the summary."""
    output_dir = Path(cfg.paths.output_dir)
    origin = getattr(datamodule, "origin", None) or type(datamodule).__name__  # `origin` is optional
    config = OmegaConf.to_container(cfg, resolve=True)
    config.pop("hydra", None)
    if trainer.is_global_zero:  # the Trainer knows the process's global rank (env of the launcher)
        atomic_write_json(output_dir / "run_config.json", {"config": config, "environment": environment_record(device)})
    for logger in trainer.loggers:  # the resolved config travels with the run (wandb config, CSV hparams.yaml)
        logger.log_hyperparams(config)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    finally:
        finish_runs()
    best = checkpoints.best.best_model_path
    if trainer.is_global_zero and best and not Path(best).is_file():
        raise CheckpointSaveError(f"training ended but its best checkpoint {best} is not on disk; no summary is "
                                  "written")
    record = replicas.record or {"world_size": trainer.world_size, "replicas_identical": None,
                                 "parameter_sha256": None,
                                 "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()}}
    metrics = record["metrics"]
    epochs = trainer.current_epoch - first_epoch
    train_s = this_run_seconds(timer)  # the fit loop, validation included; not the time before a resume
    summary = {
        "epochs": epochs, "train_s": train_s,
        "seconds_per_epoch": train_s / epochs if epochs else None,
        "batch_size": cfg.data.get("batch_size"), "precision": str(trainer.precision), "device": str(device),
        "data": origin,
        "best_checkpoint": best or None, **record,
    }
    if trainer.is_global_zero:
        atomic_write_json(output_dir / "train_summary.json", summary)
        log.info("data: %s | device: %s x %d, precision %s | %d epochs, %s at batch %s per process "
                 "(validation included) | %s", origin, device, trainer.world_size, trainer.precision,
                 epochs, "no epoch ended" if not epochs else f"{summary['seconds_per_epoch']:.1f} s per epoch",
                 summary["batch_size"], checkpoints.outcome(trainer))
    replicas.raise_if_different()
    return metrics


def this_run_seconds(timer: Timer) -> float:
    """Seconds of this process's fit loop. ``Timer.time_elapsed`` also counts the time of the
    runs before a resume (it is restored from the checkpoint, for ``max_time``)."""
    start, end = timer.start_time("train"), timer.end_time("train")
    return end - start if start is not None and end is not None else 0.0


PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true")
_PRECISION_ALIASES = {32: "32-true", "32": "32-true", 16: "16-mixed", "16": "16-mixed", "bf16": "bf16-mixed",
                      64: "64-true", "64": "64-true"}


def check_precision(precision: object) -> None:
    """A ConfigError for a ``trainer.precision`` that Lightning would not take (None: its default)."""
    if precision is None or precision in PRECISIONS or precision in _PRECISION_ALIASES:
        return
    raise ConfigError(f"trainer.precision={precision!r} is not a precision; use one of {', '.join(PRECISIONS)} "
                      "(32-true: float32; bf16-mixed: bfloat16 autocast, on a GPU or a CPU with bf16 support)")


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
