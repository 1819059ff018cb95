"""Logging a module's loss terms without a cost per step.

Lightning's ``self.log`` costs about 2 ms of Python per call (it walks the stored metric's
attributes to move them to the value's device), whatever the device: six loss terms logged
every step cost more than a GPU's whole training step. :class:`EpochMeanLogging` instead adds
each batch's terms into one on-device sum (a torchmetrics metric, summed across processes at
the epoch's end) and calls ``self.log`` only on the steps the loggers write and once per epoch.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric


class BatchMeans(Metric):
    """Batch-size-weighted means of named scalar terms over an epoch, on the terms' device;
    under torch.distributed the sums and counts of every process are added at :meth:`compute`."""

    full_state_update = False

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__()
        self.names = tuple(names)
        self.add_state("sums", default=torch.zeros(len(self.names)), dist_reduce_fx="sum")
        self.add_state("count", default=torch.zeros(()), dist_reduce_fx="sum")

    def update(self, values: dict[str, Tensor], batch_size: int) -> None:
        """Add one batch: ``values`` maps every name to a scalar tensor (its mean over the batch)."""
        self.sums += torch.stack([values[name].detach().float() for name in self.names]) * batch_size
        self.count += batch_size

    def compute(self) -> dict[str, Tensor]:
        means = self.sums / self.count
        return dict(zip(self.names, means.unbind()))


class EpochMeanLogging:
    """LightningModule mixin: :meth:`log_losses` once per batch. Training terms are logged as
    ``train/<name>_step`` on the steps the loggers write (every ``log_every_n_steps``) and as
    ``train/<name>_epoch`` at the epoch's end; validation and test terms as ``<split>/<name>``
    (epoch means over every process, on the progress bar for validation). Use as
    ``class M(EpochMeanLogging, FiniteLossGuard, L.LightningModule)``."""

    def log_losses(self, losses: dict[str, Tensor], split: str, batch_size: int,
                   step_extras: dict[str, float] | None = None) -> None:
        pending = self.__dict__.setdefault("_epoch_means", {})  # plain attribute: not a submodule
        if split not in pending:
            pending[split] = BatchMeans(list(losses)).to(next(iter(losses.values())).device)
        pending[split].update(losses, batch_size)
        if split == "train" and (self.global_step + 1) % max(self.trainer.log_every_n_steps, 1) == 0:
            values = {f"train/{name}_step": value.detach() for name, value in losses.items()}
            values.update({f"train/{name}": value for name, value in (step_extras or {}).items()})
            self.log_dict(values, on_step=True, on_epoch=False, batch_size=batch_size)

    def _log_epoch_means(self, split: str) -> None:
        means = self.__dict__.get("_epoch_means", {}).pop(split, None)
        if means is None:
            return
        suffix = "_epoch" if split == "train" else ""
        self.log_dict({f"{split}/{name}{suffix}": value for name, value in means.compute().items()},
                      prog_bar=split == "val", on_step=False, on_epoch=True)  # already summed over processes

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        self._log_epoch_means("train")

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self._log_epoch_means("val")

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self._log_epoch_means("test")
