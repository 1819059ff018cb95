"""Distributed (DDP) training: a check that every process ends with the same weights.

Data-parallel replicas apply the same all-reduced gradients, so their parameters must agree
bit for bit after ``fit``; a difference means a rank skipped a step, a non-deterministic
collective or a bug in the training loop, and the saved (rank-zero) checkpoint cannot be
trusted to be "the" model. :class:`ReplicaCheck` compares SHA-256 digests of the parameters
of all ranks at the end of training and averages the final metrics over the ranks (each rank
validated on its own shard of the data).
"""

from __future__ import annotations

import hashlib
import logging

import lightning as L
import torch
from lightning.pytorch.strategies import DDPStrategy
from torch import Tensor, nn

from dsc.errors import DscError

log = logging.getLogger(__name__)


class ReplicaMismatchError(DscError):
    """The processes of a distributed run ended training with different parameters."""


def parameter_digest(module: nn.Module) -> str:
    """SHA-256 (hex) of every parameter's name, dtype, shape and bytes, in registration order:
    equal exactly when the parameters are equal bit for bit."""
    sha = hashlib.sha256()
    for name, parameter in module.named_parameters():
        value = parameter.detach().cpu()
        sha.update(f"{name}:{value.dtype}:{tuple(value.shape)};".encode())
        sha.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return sha.hexdigest()


def digest_tensor(digest: str) -> Tensor:
    """A hex SHA-256 as 4 int64 words, for a tensor all-gather on any backend."""
    return torch.frombuffer(bytearray.fromhex(digest), dtype=torch.int64).clone()


def differing_ranks(digests: Tensor) -> list[int]:
    """Ranks whose digest (a row of ``digests`` ``[world_size, 4]``) differs from rank zero's."""
    return [rank for rank in range(1, digests.shape[0]) if not torch.equal(digests[rank], digests[0])]


class ReplicaCheck(L.Callback):
    """At the end of training, all-gathers the parameter digests of all ranks and the final
    metrics. :attr:`record` then holds ``world_size``, ``replicas_identical`` (trivially true for
    one process; null for strategies that shard the parameters, e.g. FSDP), ``parameter_sha256``
    (rank zero's) and ``metrics`` (means over the ranks); call :meth:`raise_if_different` once
    the record is saved."""

    def __init__(self) -> None:
        self.record: dict | None = None
        self.differing: list[int] = []

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        world_size = trainer.world_size
        names = sorted(trainer.callback_metrics)
        values = torch.tensor([float(trainer.callback_metrics[n]) for n in names], dtype=torch.float64)
        digests = digest_tensor(parameter_digest(pl_module))[None]
        replicated = world_size == 1 or isinstance(trainer.strategy, DDPStrategy)  # not sharded (FSDP, ...)
        if world_size > 1:
            if replicated:
                digests = trainer.strategy.all_gather(digests[0].to(pl_module.device)).reshape(world_size, -1).cpu()
            if names:
                values = trainer.strategy.all_gather(values.to(pl_module.device)).reshape(world_size, -1).mean(0).cpu()
        self.differing = differing_ranks(digests) if replicated else []
        self.record = {
            "world_size": world_size, "replicas_identical": not self.differing if replicated else None,
            "parameter_sha256": digests[0].numpy().tobytes().hex() if replicated else None,
            "metrics": dict(zip(names, values.tolist())),
        }
        if self.differing and trainer.is_global_zero:
            log.error("replicas differ: ranks %s ended training with parameters other than rank 0's", self.differing)

    def raise_if_different(self) -> None:
        if self.differing:
            raise ReplicaMismatchError(
                f"the {self.record['world_size']} training processes ended with different parameters (ranks "
                f"{self.differing} differ from rank 0); the checkpoint holds rank 0's. Rerun; if it persists, "
                "train with trainer.deterministic=true or on one device to find the cause"
            )
