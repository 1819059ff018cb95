"""MNIST halves with K side-information crops (their Lightning data module:
:class:`dsc.sources.datamodules.MnistDataModule`).

Source: the right half of each 28x28 digit, ``[1, 28, 14]``, scaled to [-1, 1] (the decoder's
tanh range). Side information of decoder k: a ``crop_size`` x ``crop_size`` crop of the left
half, at a position drawn independently per decoder, ``[K, 1, c, c]``, same scaling. Training
crops are drawn afresh at every access (so they change every epoch); evaluation crops are fixed
by (seed, digit index, decoder) through the shared counter-based generator.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from dsc.coding.randomness import CounterRandomness
from dsc.coding.streams import Purpose, stream_id
from dsc.coding.validation import check_positive_int
from dsc.errors import ConfigError

HALF_WIDTH = 14
HEIGHT = 28
CROP_ROW = 2  # SOURCE-stream row of the evaluation crop positions (rows 0, 1: Gaussian source)


class MnistItem(NamedTuple):
    """One digit: ``source`` ``[1, 28, 14]``, ``side_info`` ``[K, 1, c, c]``, ``index``."""

    source: Tensor
    side_info: Tensor
    index: int | Tensor  # [B] in a batch


def scale(images: Tensor) -> Tensor:
    """[0, 1] pixels -> [-1, 1], the decoder's output range."""
    return images * 2 - 1


def check_crop_size(crop_size: int) -> int:
    check_positive_int(crop_size, "crop_size")
    if crop_size > HALF_WIDTH:
        raise ConfigError(
            f"crop_size {crop_size} does not fit in the 28x14 left half; use at most 14 "
            "(the paper uses 7 or 14)"
        )
    return crop_size


def crop(left: Tensor, top: Tensor, column: Tensor, crop_size: int) -> Tensor:
    """Crops of left halves ``[B, 28, 14]`` at positions ``top``, ``column`` ``[B, K]`` ->
    ``[B, K, 1, c, c]``."""
    offsets = torch.arange(crop_size, device=left.device)
    rows = (top[..., None] + offsets)[..., :, None]  # [B, K, c, 1]
    cols = (column[..., None] + offsets)[..., None, :]  # [B, K, 1, c]
    batch = torch.arange(left.shape[0], device=left.device)[:, None, None, None]
    return left[batch, rows, cols].unsqueeze(2)


class MnistHalves(Dataset):
    """Right halves and K crops of the left halves of ``images`` ``[n, 28, 28]`` in [0, 1].

    ``seed`` None: crops drawn at random at every access (training); an int: crops fixed by
    (seed, index, decoder) (evaluation, reproducible on every device).
    """

    def __init__(self, images: Tensor, num_decoders: int, crop_size: int, seed: int | None = None) -> None:
        if images.dim() != 3 or tuple(images.shape[1:]) != (HEIGHT, 2 * HALF_WIDTH):
            raise ConfigError(f"images must be [n, 28, 28], got {tuple(images.shape)}")
        self.images = scale(images)
        self.num_decoders = check_positive_int(num_decoders, "num_decoders (K)")
        self.crop_size = check_crop_size(crop_size)
        self.rng = None if seed is None else CounterRandomness(seed)

    def __len__(self) -> int:
        return self.images.shape[0]

    def positions(self, index: Tensor, decoders: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Crop corners ``(top, column)``, each ``[B, K]``, for digits ``index`` ``[B]``; with
        ``decoders`` ``[K']`` (decoder ids) only theirs, ``[B, K']``: decoder k's crop is the
        same whichever others are drawn."""
        high = (HEIGHT - self.crop_size + 1, HALF_WIDTH - self.crop_size + 1)
        ids = torch.arange(self.num_decoders) if decoders is None else decoders.cpu().long()
        shape = (index.shape[0], ids.shape[0])
        if self.rng is None:
            return tuple(torch.randint(h, shape) for h in high)
        counters = ids[None, :]
        streams = stream_id(Purpose.SOURCE, index[:, None], CROP_ROW)
        return tuple(self.rng.integers(streams, 2 * counters + part, h) for part, h in enumerate(high))

    def batch(self, index: Tensor, decoders: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``source`` ``[B, 1, 28, 14]`` and ``side_info`` ``[B, K, 1, c, c]`` for ``index`` ``[B]``
        (``[B, K', 1, c, c]`` of the decoder ids ``decoders`` ``[K']`` when given)."""
        images = self.images[index]
        top, column = self.positions(index, decoders)
        return images[:, None, :, HALF_WIDTH:], crop(images[:, :, :HALF_WIDTH], top, column, self.crop_size)

    def __getitem__(self, i: int) -> MnistItem:
        source, side_info = self.batch(torch.tensor([i]))
        return MnistItem(source[0], side_info[0], i)

    def __getitems__(self, indices: list[int]) -> MnistItem:
        """A whole batch at once (a DataLoader calls this instead of ``__getitem__`` per digit):
        ``source`` ``[B, 1, 28, 14]``, ``side_info`` ``[B, K, 1, c, c]``, ``index`` ``[B]``."""
        index = torch.as_tensor(indices, dtype=torch.long)
        return MnistItem(*self.batch(index), index)


class EpochShuffle(Sampler[int]):
    """A fresh permutation of ``range(size)`` each epoch, a pure function of (seed, epoch): it
    never draws from the global generator, so a resumed run and every process of a distributed
    run see the same order. Lightning calls :meth:`set_epoch` before each epoch."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        key = (self.seed * 0x9E3779B97F4A7C15 + self.epoch) % 2**63
        return iter(torch.randperm(self.size, generator=torch.Generator().manual_seed(key)).tolist())


def collate_batch(batch: MnistItem | list[MnistItem]) -> MnistItem:
    """DataLoader collate function for :class:`MnistHalves`: its ``__getitems__`` already returns
    a batch, passed through; a list of single digits is stacked."""
    if isinstance(batch, MnistItem):
        return batch
    return MnistItem(torch.stack([item.source for item in batch]), torch.stack([item.side_info for item in batch]),
                     torch.tensor([item.index for item in batch]))
