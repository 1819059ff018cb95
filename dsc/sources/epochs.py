"""Samplers whose order is a pure function of the epoch: Lightning calls ``set_epoch`` before
each epoch, so a resumed run and every process of a distributed run see the same data, and
nothing is drawn from the global generator."""

from __future__ import annotations

from typing import Iterable

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler[int]):
    """``size`` indices per epoch in the order :meth:`order` gives for the current epoch."""

    def __init__(self, size: int) -> None:
        self.size, self.epoch = size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        return iter(self.order(self.epoch))

    def order(self, epoch: int) -> Iterable[int]:
        raise NotImplementedError


class EpochShuffle(EpochSampler):
    """A fresh permutation of ``range(size)`` each epoch, keyed by (seed, epoch)."""

    def __init__(self, size: int, seed: int) -> None:
        super().__init__(size)
        self.seed = seed

    def order(self, epoch: int) -> list[int]:
        key = (self.seed * 0x9E3779B97F4A7C15 + epoch) % 2**63
        return torch.randperm(self.size, generator=torch.Generator().manual_seed(key)).tolist()


class EpochIds(EpochSampler):
    """Message ids ``offset + epoch * size + i`` for i < size: fresh draws every epoch."""

    def __init__(self, size: int, offset: int) -> None:
        super().__init__(size)
        self.offset = offset

    def order(self, epoch: int) -> range:
        start = self.offset + epoch * self.size
        return range(start, start + self.size)
