"""Loading trained LightningModules for evaluation, with a clear error for a bad checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import lightning as L

from dsc.errors import ConfigError

Module = TypeVar("Module", bound=L.LightningModule)


def load_module(module_cls: type[Module], ckpt_path: str | Path | None, what: str, train_command: str) -> Module:
    """``module_cls`` from ``ckpt_path`` (weights only; its saved hyper-parameters rebuild the
    networks), in eval mode on the CPU. A missing path or a checkpoint of another kind raises a
    ConfigError that names ``what`` it should be and the ``train_command`` that makes one."""
    if ckpt_path is None:
        raise ConfigError(f"no checkpoint given: pass ckpt_path=<run>/checkpoints/best.ckpt (train with "
                          f"`{train_command}`)")
    path = Path(ckpt_path)
    if not path.is_file():
        raise ConfigError(f"ckpt_path {path} does not exist; train with `{train_command}`")
    try:
        module = module_cls.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except (KeyError, TypeError, RuntimeError) as error:
        raise ConfigError(f"{path} is not a checkpoint of {what}: {error}") from error
    return module.eval()
