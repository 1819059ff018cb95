"""Images split into a source region and per-decoder side information (any image data set).

An image ``[C, H, W]`` (W even) in [0, 1] is scaled to [-1, 1] (the decoder's tanh range). The
**source** is its right half ``[C, H, W/2]``. Decoder k's **side information** is one of
(:class:`SideInfo`):

- ``crop``: a ``crop_size`` x ``crop_size`` crop of the left half at a position drawn
  independently per decoder, ``[C, c, c]`` (the paper's MNIST setting);
- ``noisy``: the whole left half plus Gaussian noise of standard deviation ``noise_std`` (on the
  [0, 1] pixel scale), drawn independently per decoder, ``[C, H, W/2]``;
- ``lowres``: the whole image averaged over ``factor`` x ``factor`` blocks, ``[C, H/f, W/f]``
  (the same for every decoder: it carries no per-decoder diversity).

Training draws (crop positions, noise) are fresh at every access, so they change every epoch;
evaluation draws are fixed by (seed, image index, decoder) through the shared counter-based
generator, on every device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from dsc.coding.randomness import CounterRandomness
from dsc.coding.streams import Purpose, stream_id
from dsc.coding.validation import check_positive_int
from dsc.errors import ConfigError

SIDE_KINDS = ("crop", "noisy", "lowres")
CROP_ROW = 2  # SOURCE-stream row of the evaluation crop positions (rows 0, 1: Gaussian source)
NOISE_ROW = 3  # SOURCE-stream row of the evaluation side-information noise


class ImageItem(NamedTuple):
    """One image: ``source`` ``[C, H, W/2]``, ``side_info`` ``[K, *side_shape]``, ``index``."""

    source: Tensor
    side_info: Tensor
    index: int | Tensor  # [B] in a batch


@dataclass(frozen=True)
class SideInfo:
    """What each decoder knows about an image (see the module docstring): ``kind`` and the one
    setting that kind reads."""

    kind: str = "crop"
    crop_size: int = 7  # crop
    noise_std: float = 0.5  # noisy: on the [0, 1] pixel scale
    factor: int = 4  # lowres

    def __post_init__(self) -> None:
        if self.kind not in SIDE_KINDS:
            raise ConfigError(f"side information must be one of {', '.join(SIDE_KINDS)}, got {self.kind!r}")
        check_positive_int(self.crop_size, "crop_size")
        check_positive_int(self.factor, "factor")
        if not isinstance(self.noise_std, (int, float)) or not self.noise_std > 0:
            raise ConfigError(f"noise_std must be > 0, got {self.noise_std!r}")

    def shape(self, image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """The side information's shape ``(C, h, w)`` for images ``(C, H, W)``; a ConfigError
        when it does not fit."""
        channels, height, width = check_image_shape(image_shape)
        if self.kind == "crop":
            if self.crop_size > min(height, width // 2):
                raise ConfigError(f"crop_size {self.crop_size} does not fit in the {height}x{width // 2} left half; "
                                  f"use at most {min(height, width // 2)}")
            return channels, self.crop_size, self.crop_size
        if self.kind == "noisy":
            return channels, height, width // 2
        if height % self.factor or width % self.factor:
            raise ConfigError(f"lowres factor {self.factor} must divide the image size {height}x{width}")
        return channels, height // self.factor, width // self.factor


def check_image_shape(shape) -> tuple[int, int, int]:
    """``(C, H, W)`` with C in {1, 3} and W even (the halves), else a ConfigError."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or shape[0] not in (1, 3) or shape[1] < 1 or shape[2] < 2 or shape[2] % 2:
        raise ConfigError(f"images must be (C, H, W) with C = 1 or 3 channels and an even width W (split into "
                          f"halves), got {shape}")
    return shape


def scale(images: Tensor) -> Tensor:
    """[0, 1] pixels -> [-1, 1], the decoder's output range."""
    return images * 2 - 1


def crop(left: Tensor, top: Tensor, column: Tensor, crop_size: int) -> Tensor:
    """Crops of left halves ``[B, C, H, W/2]`` at corners ``top``, ``column`` ``[B, K]`` ->
    ``[B, K, C, c, c]``."""
    offsets = torch.arange(crop_size, device=left.device)
    rows = (top[..., None] + offsets)[..., :, None]  # [B, K, c, 1]
    cols = (column[..., None] + offsets)[..., None, :]  # [B, K, 1, c]
    batch = torch.arange(left.shape[0], device=left.device)[:, None, None, None]
    return torch.stack([channel[batch, rows, cols] for channel in left.unbind(1)], dim=2)  # [B, K, C, c, c]


class ImageHalves(Dataset):
    """Right halves and K side informations of ``images`` ``[n, C, H, W]`` (or ``[n, H, W]``:
    one channel) in [0, 1]. ``seed`` None: fresh draws at every access (training); an int:
    draws fixed by (seed, index, decoder) (evaluation, reproducible on every device)."""

    def __init__(self, images: Tensor, num_decoders: int, side: SideInfo, seed: int | None = None) -> None:
        if images.dim() == 3:
            images = images[:, None]
        if images.dim() != 4:
            raise ConfigError(f"images must be [n, C, H, W], got {tuple(images.shape)}")
        self.image_shape = check_image_shape(images.shape[1:])
        self.side = side
        self.side_shape = side.shape(self.image_shape)
        self.images = scale(images)
        self.num_decoders = check_positive_int(num_decoders, "num_decoders (K)")
        self.rng = None if seed is None else CounterRandomness(seed)

    @property
    def crop_size(self) -> int:
        return self.side.crop_size

    def __len__(self) -> int:
        return self.images.shape[0]

    def _decoders(self, decoders: Tensor | None) -> Tensor:
        return torch.arange(self.num_decoders) if decoders is None else decoders.cpu().long()

    def positions(self, index: Tensor, decoders: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Crop corners ``(top, column)``, each ``[B, K]``, for images ``index`` ``[B]``; with
        ``decoders`` ``[K']`` (decoder ids) only theirs, ``[B, K']``: decoder k's crop is the
        same whichever others are drawn."""
        _, height, width = self.image_shape
        high = (height - self.crop_size + 1, width // 2 - self.crop_size + 1)
        ids = self._decoders(decoders)
        shape = (index.shape[0], ids.shape[0])
        if self.rng is None:
            return tuple(torch.randint(h, shape) for h in high)
        counters = ids[None, :]
        streams = stream_id(Purpose.SOURCE, index[:, None], CROP_ROW)
        return tuple(self.rng.integers(streams, 2 * counters + part, h) for part, h in enumerate(high))

    def noise(self, index: Tensor, decoders: Tensor | None = None) -> Tensor:
        """Standard normal noise ``[B, K, C, H, W/2]`` of the ``noisy`` side information."""
        ids = self._decoders(decoders)
        shape = (index.shape[0], ids.shape[0], *self.side_shape)
        if self.rng is None:
            return torch.randn(shape)
        size = int(torch.tensor(self.side_shape).prod())
        counters = ids[:, None] * size + torch.arange(size)  # [K, size]: decoder k's values
        streams = stream_id(Purpose.SOURCE, index[:, None, None], NOISE_ROW)
        return self.rng.normal(streams, counters[None]).view(shape)

    def batch(self, index: Tensor, decoders: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``source`` ``[B, C, H, W/2]`` and ``side_info`` ``[B, K, *side_shape]`` for ``index``
        ``[B]`` (``[B, K', ...]`` of the decoder ids ``decoders`` ``[K']`` when given)."""
        images = self.images[index]
        half = images.shape[-1] // 2
        source, left = images[..., half:], images[..., :half]
        k = self._decoders(decoders).shape[0]
        if self.side.kind == "crop":
            top, column = self.positions(index, decoders)
            side = crop(left, top, column, self.crop_size)
        elif self.side.kind == "noisy":
            side = left[:, None] + 2 * self.side.noise_std * self.noise(index, decoders).to(left)
        else:
            side = F.avg_pool2d(images, self.side.factor)[:, None].expand(-1, k, -1, -1, -1).contiguous()
        return source, side

    def __getitem__(self, i: int) -> ImageItem:
        source, side_info = self.batch(torch.tensor([i]))
        return ImageItem(source[0], side_info[0], i)

    def __getitems__(self, indices: list[int]) -> ImageItem:
        """A whole batch at once (a DataLoader calls this instead of ``__getitem__`` per image):
        ``source`` ``[B, C, H, W/2]``, ``side_info`` ``[B, K, ...]``, ``index`` ``[B]``."""
        index = torch.as_tensor(indices, dtype=torch.long)
        return ImageItem(*self.batch(index), index)


def collate_batch(batch: ImageItem | list[ImageItem]) -> ImageItem:
    """DataLoader collate function for :class:`ImageHalves`: its ``__getitems__`` already returns
    a batch, passed through; a list of single images is stacked."""
    if isinstance(batch, ImageItem):
        return batch
    return ImageItem(torch.stack([item.source for item in batch]), torch.stack([item.side_info for item in batch]),
                     torch.tensor([item.index for item in batch]))
