"""Loading trained LightningModules for evaluation, with a clear error for a bad checkpoint."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import TypeVar

import lightning as L
import torch

from dsc.errors import ConfigError

Module = TypeVar("Module", bound=L.LightningModule)


class CheckpointMismatchError(ConfigError):
    """A checkpoint was trained with settings other than the ones its evaluation asks for."""


def load_module(module_cls: type[Module], ckpt_path: str | Path | None, what: str, train_command: str) -> Module:
    """``module_cls`` from ``ckpt_path`` (weights only; its saved hyper-parameters rebuild the
    networks), in eval mode on the CPU. Hyper-parameters a checkpoint predates are taken from
    ``module_cls.LEGACY_HPARAMS`` (what such checkpoints were trained with), never from today's
    defaults. A missing path or a checkpoint of another kind raises a ConfigError that names
    ``what`` it should be and the ``train_command`` that makes one. The module's
    ``trained_with`` attribute holds :func:`training_record` of the checkpoint."""
    if ckpt_path is None:
        raise ConfigError(f"no checkpoint given: pass ckpt_path=<run>/checkpoints/best.ckpt (train with "
                          f"`{train_command}`)")
    path = Path(ckpt_path)
    if not path.is_file():
        raise ConfigError(f"ckpt_path {path} does not exist; train with `{train_command}`")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        hparams = {**getattr(module_cls, "LEGACY_HPARAMS", {}), **checkpoint["hyper_parameters"]}
        module = module_cls(**hparams)
        module.load_state_dict(checkpoint["state_dict"])
    except (KeyError, TypeError, RuntimeError, pickle.UnpicklingError, EOFError) as error:
        raise ConfigError(f"{path} is not a checkpoint of {what}: {error}") from error
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
