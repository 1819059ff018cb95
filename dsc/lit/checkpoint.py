"""Loading trained LightningModules for evaluation, with a clear error for a bad checkpoint.

A checkpoint is read with ``weights_only`` (a file that would run code when unpickled is
refused, never executed), and its hyper-parameters are checked against its stored weights'
shapes on the ``meta`` device before any network is built, so a damaged or crafted file cannot
make the loader allocate more than the weights it actually holds.
"""

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


class CorruptCheckpointError(ConfigError):
    """A checkpoint file that cannot be read at all: truncated, damaged, or not a PyTorch file."""


def read_checkpoint(path: str | Path, train_command: str) -> dict:
    """The checkpoint dict at ``path`` (tensors only, on the CPU). A file torch cannot read
    raises :class:`CorruptCheckpointError` naming the file and what to do instead, whatever
    torch's own error was (a damaged file reaches its reader as any of a dozen exception types)."""
    path = Path(path)
    instead = f"Use a run's checkpoints/best.ckpt or last.ckpt, or train a new one with `{train_command}`"
    if path.is_dir():
        raise CorruptCheckpointError(f"{path} is a directory, not a checkpoint file. {instead}")
    if not path.exists():
        raise CorruptCheckpointError(f"{path} does not exist. {instead}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Unsupported global" in str(error):  # torch's weights-only unpickler met a reference to code
            raise CorruptCheckpointError(
                f"{path} is not a plain weights file (refused: loading it would run code it names). Only "
                f"checkpoints that hold tensors and plain values are read. {instead}") from None
        raise CorruptCheckpointError(f"{path} cannot be read as a checkpoint (UnpicklingError): the file is "
                                     f"damaged or not a PyTorch checkpoint. {instead}") from None
    except Exception as error:  # every other way of failing means an unreadable file here
        raise CorruptCheckpointError(
            f"{path} cannot be read as a checkpoint ({type(error).__name__}): the file is truncated, damaged or "
            f"not a PyTorch checkpoint. {instead}") from None
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
    checkpoint = read_checkpoint(path, train_command)
    try:
        hparams = {**getattr(module_cls, "LEGACY_HPARAMS", {}), **checkpoint["hyper_parameters"]}
        with torch.device("meta"):  # shapes only: nothing is allocated for a network the weights do not fill
            check_weights(module_cls(**hparams), checkpoint["state_dict"])
        module = module_cls(**hparams)
        module.load_state_dict(checkpoint["state_dict"])
    except (KeyError, TypeError, RuntimeError, ValueError, NotImplementedError) as error:
        raise CheckpointMismatchError(f"{path} is not a checkpoint of {what}: {type(error).__name__}: {error}; train "
                                      f"one with `{train_command}`") from None
    module.trained_with = training_record(path, checkpoint)
    return module.eval()


def check_weights(module: torch.nn.Module, state_dict: object) -> None:
    """A ValueError naming the first difference between ``module``'s parameters and buffers
    (names and shapes; ``module`` may live on the meta device) and ``state_dict``."""
    if not isinstance(state_dict, dict):
        raise ValueError(f"the state_dict is a {type(state_dict).__name__}, not a mapping of tensors")
    expected = {name: tuple(value.shape) for name, value in module.state_dict().items()}
    stored = {name: tuple(value.shape) for name, value in state_dict.items() if isinstance(value, torch.Tensor)}
    missing, unexpected = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    if missing or unexpected:
        raise ValueError(f"weights missing: {', '.join(missing[:5]) or 'none'}; unexpected: "
                         f"{', '.join(unexpected[:5]) or 'none'}")
    for name, shape in expected.items():
        if stored[name] != shape:
            raise ValueError(f"{name} has shape {list(stored[name])} in the file but {list(shape)} in the network its "
                             "hyper-parameters describe")


def check_resume(module: torch.nn.Module, ckpt_path: str | Path, train_command: str) -> int:
    """Epochs already done in the checkpoint a training run resumes from, after checking that
    its weights fit ``module`` (the network this run's config builds): a checkpoint of another
    source or model is a :class:`CheckpointMismatchError` before the run writes anything."""
    checkpoint = read_checkpoint(ckpt_path, train_command)
    try:
        check_weights(module, checkpoint.get("state_dict"))
    except ValueError as error:
        raise CheckpointMismatchError(f"cannot resume from {ckpt_path}: it is a checkpoint of another model or source "
                                      f"than this run's config builds ({error}). Resume with the same source and "
                                      f"model overrides the checkpoint was trained with, or start afresh with "
                                      f"`{train_command}`") from None
    return int(checkpoint.get("epoch", -1)) + 1


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
