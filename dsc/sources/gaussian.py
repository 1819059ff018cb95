"""The Gaussian source with K independent side-information channels: scalar (the paper's) or
d-dimensional with i.i.d. components, and the data set that trains learned codecs on it (its
Lightning data module: :class:`dsc.sources.datamodules.GaussianDataModule`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from dsc.coding.randomness import CounterRandomness
from dsc.coding.streams import Purpose, check_messages, decoder_ids, stream_id
from dsc.errors import InvalidArgumentError

SOURCE_ROW = 0  # row of the SOURCE stream holding A (counter 0)
SIDE_INFO_ROW = 1  # row of the SOURCE stream holding decoder k's noise (counter k)


class GaussianDraw(NamedTuple):
    """One draw per message: ``source`` A ``[B]`` and ``side_info`` T ``[B, K]`` (float64)."""

    source: Tensor
    side_info: Tensor


@dataclass(frozen=True)
class GaussianSource:
    """A ~ N(0, 1) and T_k = A + Z_k, Z_k ~ N(0, noise_var) independent, k = 0..K-1.

    Draws are keyed by message id through the SOURCE streams of the shared generator, so a
    trial's source and side information do not depend on batching or on which worker runs it.
    """

    noise_var: float = 0.5

    def __post_init__(self) -> None:
        if not (isinstance(self.noise_var, (int, float)) and self.noise_var > 0):
            raise InvalidArgumentError(
                f"side-information noise variance must be > 0, got {self.noise_var!r}"
            )

    @property
    def posterior_var(self) -> float:
        """var(A | T_k) = noise_var / (1 + noise_var): 1/3 for the default 0.5."""
        return self.noise_var / (1 + self.noise_var)

    def sample(self, rng: CounterRandomness, messages: Tensor, num_decoders: int | None = None, *,
               decoders: Tensor | None = None) -> GaussianDraw:
        """Draw A ``[B]`` and T ``[B, K]`` for messages ``[B]``: decoders 0..K-1, or exactly the
        decoder ids ``decoders`` ``[K']`` (decoder k's T is the same whichever others are drawn)."""
        messages = check_messages(messages)
        ids = decoder_ids(num_decoders, decoders, messages.device)
        a = rng.normal(
            stream_id(Purpose.SOURCE, messages, SOURCE_ROW), torch.zeros_like(messages), torch.float64
        )
        z = rng.normal(stream_id(Purpose.SOURCE, messages, SIDE_INFO_ROW)[:, None], ids[None, :], torch.float64)
        return GaussianDraw(a, a[:, None] + math.sqrt(self.noise_var) * z)

    def sample_vectors(self, rng: CounterRandomness, messages: Tensor, num_decoders: int | None, dim: int, *,
                       decoders: Tensor | None = None) -> GaussianDraw:
        """The d-dimensional source with i.i.d. components: A ``[B, d]`` ~ N(0, I) and
        T ``[B, K, d]`` = A + N(0, noise_var I), independent per decoder (0..K-1, or the ids
        ``decoders`` ``[K']``). Component c of A is counter c of the source row and decoder k's
        noise counter k d + c of the side-information row, so d = 1 draws exactly :meth:`sample`'s
        values."""
        messages = check_messages(messages)
        ids = decoder_ids(num_decoders, decoders, messages.device)
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise InvalidArgumentError(f"dim must be a positive integer, got {dim!r}")
        device = messages.device
        a = rng.normal(stream_id(Purpose.SOURCE, messages, SOURCE_ROW)[:, None],
                       torch.arange(dim, device=device)[None, :], torch.float64)
        counters = (ids[:, None] * dim + torch.arange(dim, device=device)).reshape(-1)
        z = rng.normal(stream_id(Purpose.SOURCE, messages, SIDE_INFO_ROW)[:, None], counters[None, :], torch.float64)
        return GaussianDraw(a, a[:, None, :] + math.sqrt(self.noise_var) * z.view(-1, ids.shape[0], dim))


class SourceBatch(NamedTuple):
    """A training batch: ``source`` ``[B, ...]``, ``side_info`` ``[B, K, ...]``, message ids ``index``."""

    source: Tensor
    side_info: Tensor
    index: Tensor


# Message-id ranges of the learned codecs' data: training draws fresh ids every epoch from
# TRAIN_IDS on, validation reuses VAL_IDS ..; evaluations use ids from 0, so no evaluated
# source was ever trained on.
TRAIN_IDS, VAL_IDS = 2**41, 2**40


class GaussianVectors(torch.utils.data.Dataset):
    """Draws of the d-dimensional source by message id (batched: ``__getitems__``), float32.
    Any id is a message, so it has no length: sample it by ids (:class:`dsc.sources.epochs.EpochIds`), or take a
    :meth:`window` of fixed items."""

    def __init__(self, source: GaussianSource, num_decoders: int, dim: int, seed: int) -> None:
        self.source, self.num_decoders, self.dim, self.rng = source, num_decoders, dim, CounterRandomness(seed)

    def __getitems__(self, ids: list[int]) -> SourceBatch:
        messages = torch.as_tensor(ids, dtype=torch.long)
        draw = self.source.sample_vectors(self.rng, messages, self.num_decoders, self.dim)
        return SourceBatch(draw.source.float(), draw.side_info.float(), messages)

    def window(self, first: int, size: int) -> "MessageWindow":
        """Messages ``first`` .. ``first + size - 1`` as a data set of ``size`` fixed items."""
        return MessageWindow(self, first, size)


class MessageWindow(torch.utils.data.Dataset):
    """Messages ``first + i`` of ``draws`` for positions i < ``size``: a data set with a length,
    read in order by the default (sequential) sampler, the same items every epoch."""

    def __init__(self, draws: GaussianVectors, first: int, size: int) -> None:
        self.draws, self.first, self.size = draws, first, size

    def __len__(self) -> int:
        return self.size

    def __getitems__(self, positions: list[int]) -> SourceBatch:
        if any(not 0 <= i < self.size for i in positions):
            raise InvalidArgumentError(f"positions must be in [0, {self.size}), got {min(positions)} .. "
                                       f"{max(positions)}")
        return self.draws.__getitems__([self.first + i for i in positions])
