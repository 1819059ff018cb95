"""Resumed training continues the same random stream as an uninterrupted run."""

from __future__ import annotations

import random

import lightning as L
import torch

STATE_KEY = "dsc_random_state"


def capture_random_state() -> dict:
    """The states of the generators training draws from: torch (CPU and every CUDA device) and
    Python's ``random`` (plain types and tensors only, so checkpoints load with weights_only)."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def split_random_state(rank: int) -> None:
    """Give each process of a distributed run its own generators: a base drawn from the common
    state (the same on every rank), plus the rank. Crops, dropout and latent noise then differ
    across ranks while staying a pure function of the run's seed."""
    base = int(torch.randint(0, 2**62, ()))
    torch.manual_seed(base + rank)  # every CUDA device too
    random.seed(base + rank)


def restore_random_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


class ResumableRandomState(L.Callback):
    """Saves the generators' states with every checkpoint; a run resumed from it restores them
    when the checkpoint is loaded and again after a sanity check (which draws random numbers
    too), before the first training batch is fetched, so crops, dropout and the latent noise
    continue exactly as in an uninterrupted run (the data order is keyed by epoch anyway, see
    :class:`dsc.sources.epochs.EpochShuffle`).

    In a distributed run every rank starts from the same seeded state; at setup, and after a
    restore (the checkpoint holds rank zero's state), each rank splits off its own stream
    (:func:`split_random_state`), so ranks never draw the same crops. A resumed distributed run
    is reproducible but not bit-identical to an uninterrupted one."""

    def __init__(self) -> None:
        self._pending: dict | None = None
        self._rank, self._world = 0, 1

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._rank, self._world = trainer.global_rank, trainer.world_size
        if self._world > 1:
            split_random_state(self._rank)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint[STATE_KEY] = capture_random_state()

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        self._pending = checkpoint.get(STATE_KEY)
        self._restore()

    def on_sanity_check_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()  # the sanity check drew numbers (Lightning skips it when resuming, but be sure)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._pending = None

    def _restore(self) -> None:
        if self._pending is not None:
            restore_random_state(self._pending)
            if self._world > 1:
                split_random_state(self._rank)
