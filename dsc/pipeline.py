"""The one coding pipeline: encode -> K decoder picks -> check values -> accept or fall back.

Every path that codes sources goes through these three functions: the bitstream codec
(:mod:`dsc.codec`: :func:`encode` on the encoder's side, :func:`decode` at one decoder), every
evaluation job (:func:`code`: both sides at once), the cross-device tool (each side on its own
device) and the figures. So an evaluation measures exactly what a bitstream ships.

A model is anything with the :class:`CodingModel` methods; shapes for B sources and the K'
decoders being decoded (any subset of the coder's K rows, in the order given):

- sources ``[B, ...]``, side information ``[B, K', ...]``, candidates ``[B, n, d]``;
- reconstructions and fallbacks ``[B, K', ...]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import torch
from torch import Tensor

from dsc.coding import GaussianPrior, ImportanceCoder
from dsc.coding.randomness import random_words
from dsc.coding.streams import Purpose, stream_id


class CodingModel(Protocol):
    """What the pipeline needs of a source model (shapes in the module docstring)."""

    prior: GaussianPrior

    def identity(self) -> dict:
        """JSON-serialisable values that identify the model (a bitstream's fingerprint)."""

    def encoder_log_weight(self, sources: Tensor):
        """Sources ``[B, ...]`` -> a function of candidates ``[B, n, d]`` -> ``[B, n]``, with a
        ``maximum()`` ``[B]`` when the weight has a known bound (exact early stopping)."""

    def decoder_log_weight(self, side_information: Tensor):
        """Side information ``[B, K', ...]`` -> a function of candidates ``[B, n, d]`` ->
        ``[B, K', n]`` (optionally with ``maximum()`` ``[B, K']``; ``maximum = None`` declares that
        it has none)."""

    def reconstruct(self, candidates: Tensor, side_information: Tensor) -> Tensor:
        """Picked candidates ``[B, K', d]`` with side information ``[B, K', ...]`` -> ``[B, K', ...]``."""

    def fallback(self, side_information: Tensor) -> Tensor:
        """Reconstructions from the side information alone ``[B, K', ...]``."""

    def to(self, device) -> "CodingModel":
        """The same model on ``device`` (encoder and decoders on different machines)."""


def check_values(seed: int, messages: Tensor, index: Tensor, check_bits: int) -> Tensor:
    """c-bit check values of candidates ``index`` ``[B, ...]`` of messages ``[B]`` (a keyed hash
    of (seed, message, candidate index) from the shared randomness) -> int64 ``[B, ...]``."""
    if check_bits == 0:
        return torch.zeros_like(index)
    streams = stream_id(Purpose.CHECK, messages).view(-1, *([1] * (index.dim() - 1)))
    return random_words(seed, streams, index.clamp(min=0), 0) & ((1 << check_bits) - 1)


def first_accepted(accepted: Tensor) -> Tensor:
    """The any-pass receiver's choice among K decoders: the first whose check passed, decoder 0
    (with its fallback) when none did; ``accepted`` ``[B, K]`` -> ``[B]``."""
    none = torch.zeros_like(accepted[:, 0], dtype=torch.long)
    return torch.where(accepted.any(dim=1), accepted.int().argmax(dim=1), none)


@dataclass(frozen=True)
class Encoded:
    """The encoder's side for B messages: its candidate ``index`` ``[B]``, the ``label`` it
    sends ``[B]`` and the ``check`` value it sends with it ``[B]`` (zeros with no check bits)."""

    index: Tensor
    label: Tensor
    check: Tensor


@dataclass(frozen=True)
class Decoded:
    """K' decoders' side: ``index`` ``[B, K']`` (their picks, -1 where the bin was empty),
    ``accepted`` ``[B, K']`` (a pick was found and its check value equals the received one;
    every found pick with no check bits), ``picked`` ``[B, K', ...]`` (the reconstruction from
    the pick, what the paper's oracle scores) and ``fallback`` ``[B, K', ...]`` (from the side
    information alone; None when not asked for)."""

    index: Tensor
    accepted: Tensor
    picked: Tensor
    fallback: Tensor | None

    @property
    def output(self) -> Tensor:
        """What each decoder outputs ``[B, K', ...]``: its reconstruction where it accepted its
        pick, its fallback elsewhere."""
        if self.fallback is None:
            raise ValueError("decoded without fallbacks: call decode(..., fallback=True)")
        shape = self.accepted.shape + (1,) * (self.picked.dim() - self.accepted.dim())
        return torch.where(self.accepted.view(shape), self.picked, self.fallback.to(self.picked.dtype))


@dataclass(frozen=True)
class Coded:
    """Both sides of one batch (:func:`code`)."""

    encoded: Encoded
    decoded: Decoded

    @property
    def match(self) -> Tensor:
        """``[B, K']``: decoder k picked the encoder's candidate."""
        return self.decoded.index == self.encoded.index[:, None]


def encode(model: CodingModel, coder: ImportanceCoder, messages: Tensor, sources: Tensor,
           check_bits: int = 0) -> Encoded:
    """The encoder: message ids ``messages`` ``[B]`` and their ``sources`` -> :class:`Encoded`."""
    weight = model.encoder_log_weight(sources)
    sent = coder.encode(messages, weight)  # the coder stops early with the weight's maximum() where it has one
    return Encoded(sent.index, sent.label, check_values(coder.seed, messages, sent.index, check_bits))


def decode(model: CodingModel, coder: ImportanceCoder, messages: Tensor, labels: Tensor, checks: Tensor,
           side_information: Tensor, decoders: Sequence[int] | None = None, check_bits: int = 0,
           fallback: bool = True) -> Decoded:
    """Decoders ``decoders`` (default all K rows, in order) of messages ``[B]``, each with its
    side information ``[B, K', ...]``, given the received ``labels`` ``[B]`` and ``checks``
    ``[B]`` -> :class:`Decoded` (with fallbacks when ``fallback``)."""
    weight = model.decoder_log_weight(side_information)
    got = coder.decode(messages, labels, weight, decoders=decoders)
    expected = check_values(coder.seed, messages, got.index, check_bits)
    accepted = got.found & (expected == checks[:, None])
    picked = model.reconstruct(got.candidate, side_information)
    return Decoded(got.index, accepted, picked, model.fallback(side_information) if fallback else None)


def code(model: CodingModel, coder: ImportanceCoder, messages: Tensor, sources: Tensor, side_information: Tensor,
         check_bits: int = 0, fallback: bool = True) -> Coded:
    """Encode ``sources`` and decode at all K decoders (side information ``[B, K, ...]``)."""
    encoded = encode(model, coder, messages, sources, check_bits)
    decoded = decode(model, coder, messages, encoded.label, encoded.check, side_information, None, check_bits,
                     fallback)
    return Coded(encoded, decoded)
