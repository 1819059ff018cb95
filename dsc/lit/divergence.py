"""Stop a training run whose loss is not finite, without a host sync per step."""

from __future__ import annotations

import torch
from torch import Tensor

from dsc.errors import TrainingDivergedError

CHECK_EVERY_STEPS = 50  # training steps between reads of an on-device flag
ADVICE = "lower model.lr or check the data"


class FiniteLossGuard:
    """LightningModule mixin: :meth:`check_loss` raises :class:`TrainingDivergedError` for a NaN
    or infinite loss.

    Validation and test losses, and every loss on the CPU, are checked at once. A training loss
    on a GPU only sets a flag there (reading a CUDA value every step stalls the GPU); the flag is
    read every ``CHECK_EVERY_STEPS`` steps, at the end of each epoch and before any checkpoint is
    written, so a diverged run stops within that many steps and never leaves a checkpoint of
    NaN weights. Use as ``class M(FiniteLossGuard, L.LightningModule)``.
    """

    _nonfinite: Tensor | None = None
    _first_unchecked_step: int = 0

    def check_loss(self, loss: Tensor, split: str) -> None:
        if split != "train" or not self.defers_loss_checks(loss):
            if not torch.isfinite(loss):
                raise TrainingDivergedError(f"{split} loss is not finite; {ADVICE}")
            return
        bad = ~torch.isfinite(loss.detach())
        if self._nonfinite is None:
            self._nonfinite, self._first_unchecked_step = bad, self.global_step
        else:
            self._nonfinite = self._nonfinite | bad
        if self.global_step % CHECK_EVERY_STEPS == 0:
            self.raise_if_diverged()

    @staticmethod
    def defers_loss_checks(loss: Tensor) -> bool:
        """Training losses on an accelerator are checked in batches of steps; on the CPU at once."""
        return loss.device.type != "cpu"

    def raise_if_diverged(self) -> None:
        """Read the flag (one host sync) and raise if a training loss since the last read was not finite."""
        bad, self._nonfinite = self._nonfinite, None
        if bad is not None and bool(bad):
            raise TrainingDivergedError(
                f"train loss is not finite (between steps {self._first_unchecked_step} and "
                f"{self.global_step}); {ADVICE}"
            )

    def on_train_epoch_end(self) -> None:
        self.raise_if_diverged()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self.raise_if_diverged()
