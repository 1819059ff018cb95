"""Weights-only snapshots every few epochs, for convergence curves (evaluate them like best.ckpt)."""

from __future__ import annotations

from pathlib import Path

import lightning as L

from dsc.coding.validation import check_positive_int


class EpochSnapshots(L.Callback):
    """After every ``every_n_epochs``-th epoch's validation, save the weights (and the
    hyper-parameters that rebuild the networks) as ``dirpath/epoch_<E>.ckpt``, E the number of
    epochs completed. ``last.ckpt`` stays the file to resume from."""

    def __init__(self, dirpath: str | Path, every_n_epochs: int) -> None:
        self.dirpath = Path(dirpath)
        self.every_n_epochs = check_positive_int(every_n_epochs, "checkpoint_every_n_epochs")

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        done = trainer.current_epoch + 1
        if trainer.sanity_checking or trainer.fast_dev_run or done % self.every_n_epochs:
            return
        trainer.save_checkpoint(self.dirpath / f"epoch_{done}.ckpt", weights_only=True)
