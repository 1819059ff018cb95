"""Loading trained LightningModules for evaluation, with a clear error for a bad checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

import lightning as L
import torch

from dsc.errors import ConfigError

Module = TypeVar("Module", bound=L.LightningModule)


class CheckpointMismatchError(ConfigError):
    """A checkpoint was trained with settings other than the ones its evaluation asks for."""


class CorruptCheckpointError(ConfigError):
    """A checkpoint file that cannot be read at all: truncated, damaged, or not a PyTorch file."""


def read_checkpoint(path: str | Path, train_command: str) -> dict:
    """The checkpoint dict at ``path`` (tensors only, on the CPU). A file torch cannot read
    raises :class:`CorruptCheckpointError` naming the file and what to do instead, whatever
    torch's own error was (a damaged file reaches its reader as any of a dozen exception types)."""
    path = Path(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # every way of failing means an unreadable file here
        raise CorruptCheckpointError(
            f"{path} cannot be read as a checkpoint ({type(error).__name__}): the file is truncated, damaged or "
            f"not a PyTorch checkpoint. Use a run's checkpoints/best.ckpt or last.ckpt, or train a new one with "
            f"`{train_command}`") from error
    if not isinstance(checkpoint, dict):
        raise CorruptCheckpointError(f"{path} holds a {type(checkpoint).__name__}, not a checkpoint; train one with "
                                     f"`{train_command}`")
    return checkpoint


def load_module(module_cls: type[Module], ckpt_path: str | Path | None, what: str, train_command: str) -> Module:
    """``module_cls`` from ``ckpt_path`` (weights only; its saved hyper-parameters rebuild the
    networks), in eval mode on the CPU. Hyper-parameters a checkpoint predates are taken from
    ``module_cls.LEGACY_HPARAMS`` (what such checkpoints were trained with), never from today's
    defaults. A missing path is a ConfigError, an unreadable file a :class:`CorruptCheckpointError`
    and a checkpoint of another kind a :class:`CheckpointMismatchError`, each naming ``what`` it
    should be and the ``train_command`` that makes one. The module's ``trained_with`` attribute
    holds :func:`training_record` of the checkpoint."""
    if ckpt_path is None:
        raise ConfigError(f"no checkpoint given: pass ckpt_path=<run>/checkpoints/best.ckpt (train with "
                          f"`{train_command}`)")
    path = Path(ckpt_path)
    if not path.is_file():
        raise ConfigError(f"ckpt_path {path} does not exist; train with `{train_command}`")
    checkpoint = read_checkpoint(path, train_command)
    try:
        hparams = {**getattr(module_cls, "LEGACY_HPARAMS", {}), **checkpoint["hyper_parameters"]}
        module = module_cls(**hparams)
        module.load_state_dict(checkpoint["state_dict"])
    except (KeyError, TypeError, RuntimeError, ValueError) as error:
        raise CheckpointMismatchError(f"{path} is not a checkpoint of {what}: {type(error).__name__}: {error}; train "
                                      f"one with `{train_command}`") from error
    module.trained_with = training_record(path, checkpoint)
    return module.eval()


def training_record(path: Path, checkpoint: dict) -> dict:
    """How the checkpoint at ``path`` was trained: ``epochs`` completed (from the checkpoint), and
    ``precision`` and ``device`` from the ``run_config.json`` of the run directory it sits in
    (``<run>/checkpoints/<name>.ckpt``); None where unknown."""
    epoch = checkpoint.get("epoch")
    record = {"epochs": None if epoch is None else int(epoch) + 1, "precision": None, "device": None}
    run_config = path.resolve().parent.parent / "run_config.json"
    try:
        saved = json.loads(run_config.read_text())
        record["precision"] = str((saved["config"].get("trainer") or {}).get("precision", "32-true"))
        record["device"] = saved["environment"]["device"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return record
