"""Saving checkpoints so that a failed or killed save never costs the previous one.

Lightning's own save writes through a temporary file wherever ``TMPDIR`` points and moves it;
across file systems that move is a copy, so a process killed mid-save leaves a truncated
checkpoint, and a save that fails for lack of permission is logged and ignored while the run
goes on. :class:`AtomicCheckpointIO` writes beside the target instead (:mod:`dsc.io`: same
folder, fsync, rename), keeps the previous file until the new one is complete, and turns any
failure into a :class:`dsc.CheckpointSaveError` that stops the run with the path in the message.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from dsc.errors import CheckpointSaveError
from dsc.io import atomic_write_bytes


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O with atomic, checked saves to local paths (URLs such as
    ``s3://`` go through Lightning's own path)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        try:
            atomic_write_bytes(Path(path), buffer.getbuffer())
        except OSError as error:
            reason = error.strerror or type(error).__name__
            raise CheckpointSaveError(
                f"could not save checkpoint {path}: {reason}. The run stops so that it does not go on without "
                "its weights; earlier checkpoints in that folder are intact. Make the folder writable (or free "
                "space) and resume with ckpt_path=<run>/checkpoints/last.ckpt") from None
