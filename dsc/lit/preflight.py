"""Checks before a training run fits, each failure a ConfigError that names what is missing: the
run has data and a model (:func:`check_configured`), a config sets every argument its class
needs (:func:`check_config`), the data module has its loaders (:func:`check_data_module`) and
its batches keep the batch contract (:data:`dsc.registry.BATCH_CONTRACT`,
:class:`FirstBatchCheck`), instead of an error deep inside Lightning's loop."""

from __future__ import annotations

import inspect
from typing import Any, Mapping

import lightning as L
import numpy as np
from hydra.utils import get_object
from lightning.pytorch.utilities.model_helpers import is_overridden
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue
from torch import Tensor

from dsc.errors import ConfigError
from dsc.lit.resume import capture_random_state, restore_random_state
from dsc.registry import BATCH_CONTRACT

DECLARED = {"data": "training data (the `data` of its record: a LightningDataModule config)",
            "model": "codec (the `codec` of its record: a LightningModule config)"}


def check_configured(cfg: DictConfig) -> None:
    """``data``, ``model`` and ``trainer`` are configured; a source that declares no training
    data or codec is named."""
    name = (cfg.get("source") or {}).get("name")
    for key in ("data", "model", "trainer"):
        if cfg.get(key):
            continue
        if name and key in DECLARED:
            raise ConfigError(f"source {name} declares no {DECLARED[key]}: give its record one (docs/sources.md) or "
                              f"choose one with {key}=NAME")
        raise ConfigError(f"nothing to train: `{key}` is not configured (try source=mnist or source=gaussian)")


def check_config(node: DictConfig, what: str, given: Mapping[str, Any] | None = None) -> None:
    """The first key the config ``what`` lacks, as a ConfigError: a mandatory value (``???``), an
    interpolation that does not resolve, or an argument its ``_target_`` requires that neither
    the config nor ``given`` (arguments passed beside it) sets."""
    try:
        OmegaConf.to_container(node, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as error:
        raise ConfigError(f"{error.full_key} is required but not set (???): set it, e.g. {error.full_key}=VALUE on "
                          "the command line") from None
    except InterpolationResolutionError as error:
        raise ConfigError(f"{error.full_key} cannot be resolved: {str(error).splitlines()[0]}") from None
    target = node.get("_target_")
    if not isinstance(target, str) or "_args_" in node:
        return
    try:
        parameters = inspect.signature(get_object(target)).parameters.values()
    except Exception:  # an unknown target or one without a signature: building it reports that
        return
    for parameter in parameters:
        if (parameter.default is parameter.empty and parameter.name not in node and parameter.name not in (given or {})
                and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)):
            raise ConfigError(f"{what}.{parameter.name} is missing: {target} requires it; add it to the {what} config "
                              f"or set +{what}.{parameter.name}=VALUE on the command line")


def check_data_module(datamodule: Any) -> None:
    """A LightningDataModule with its own ``train_dataloader`` and ``val_dataloader``."""
    name = type(datamodule).__name__
    if not isinstance(datamodule, L.LightningDataModule):
        raise ConfigError(f"`data` builds a {name}, not a LightningDataModule (one with train_dataloader and "
                          "val_dataloader; docs/sources.md)")
    missing = [hook for hook in ("train_dataloader", "val_dataloader")
               if not is_overridden(hook, datamodule, L.LightningDataModule)]
    if missing:
        raise ConfigError(f"the data module {name} has no {' and no '.join(missing)}: a training data module "
                          "defines both (docs/sources.md)")


def check_batch(batch: Any, what: str) -> None:
    """A ConfigError naming ``what`` unless ``batch`` keeps the batch contract: a sequence whose
    first two entries are tensors ``source`` ``[B, ...]`` and ``side_info`` ``[B, K, ...]`` of one B."""
    if (isinstance(batch, (tuple, list)) and len(batch) >= 2 and all(isinstance(x, Tensor) for x in batch[:2])
            and batch[0].dim() >= 1 and batch[1].dim() >= 2 and batch[0].shape[0] == batch[1].shape[0]):
        return
    raise ConfigError(f"{what} is not {BATCH_CONTRACT} (docs/sources.md): it is {describe(batch)}")


def describe(value: Any, nested: bool = False) -> str:
    """What ``value`` is, in a few words: a tensor's shape, a mapping's keys, a sequence's items."""
    if isinstance(value, Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, Mapping):
        return f"a {type(value).__name__} with keys {', '.join(map(str, value)) or '(none)'}"
    if isinstance(value, (tuple, list)) and not nested:
        items = "; ".join(describe(item, True) for item in value[:4]) + ("; ..." if len(value) > 4 else "")
        return f"a {type(value).__name__} of {len(value)}" + (f": {items}" if value else "")
    return f"a {type(value).__name__}"


class FirstBatchCheck(L.Callback):
    """Pulls the data module's first training and validation batches (unless validation is off)
    when the fit starts (after the data module's setup, before the sanity check and any step)
    and checks them with :func:`check_batch`. The generators' states are put back afterwards, so
    the run draws the same random numbers as without the check (a resumed run continues its
    stream exactly)."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        datamodule = trainer.datamodule
        if datamodule is None:
            return
        state, numpy_state = capture_random_state(), np.random.get_state()
        try:
            for split in ("training", "validation") if trainer.limit_val_batches else ("training",):
                check_batch(first_batch(datamodule, split), f"the first {split} batch of {type(datamodule).__name__}")
        finally:
            restore_random_state(state)
            np.random.set_state(numpy_state)


def first_batch(datamodule: L.LightningDataModule, split: str) -> Any:
    """The first batch of the data module's ``training`` or ``validation`` loader."""
    hook = "train_dataloader" if split == "training" else "val_dataloader"
    loader = getattr(datamodule, hook)()
    where = f"{type(datamodule).__name__}.{hook}()"
    try:
        batches = iter(loader)
    except TypeError:
        raise ConfigError(f"{where} returns {describe(loader)}, not batches") from None
    batch = next(batches, None)
    if batch is None:
        raise ConfigError(f"{where} yields no batch: is its data set empty?")
    return batch
