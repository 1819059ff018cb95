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
from typing import NamedTuple, Protocol, Sequence

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
    every found pick with no check bits), ``picked`` ``[B, K', ...]`` (the decoder's estimate
    from its pick, what the paper's oracle scores; :mod:`dsc.estimates`), ``fallback``
    ``[B, K', ...]`` (what it outputs when its pick is not accepted: from the side information
    alone unless the estimate says otherwise; None when not asked for), ``score`` ``[B, K']``
    (the pick's race score, see :class:`dsc.coding.Decoded`) and ``estimate_se`` ``[B, K']``
    (the Monte Carlo standard error of a sampled estimate; None for exact ones)."""

    index: Tensor
    accepted: Tensor
    picked: Tensor
    fallback: Tensor | None
    score: Tensor | None = None
    estimate_se: Tensor | None = None

    @property
    def output(self) -> Tensor:
        """What each decoder outputs ``[B, K', ...]``: its reconstruction where it accepted its
        pick, its fallback elsewhere."""
        if self.fallback is None:
            raise ValueError("decoded without fallbacks: call decode(..., fallback=True)")
        shape = self.accepted.shape + (1,) * (self.picked.dim() - self.accepted.dim())
        return torch.where(self.accepted.view(shape), self.picked, self.fallback.to(self.picked.dtype))


class Picks(NamedTuple):
    """What the coder gave K' decoders of B messages, for an estimate to refine:
    ``messages``, ``labels``, ``checks`` ``[B]`` (received), ``side_information`` ``[B, K', ...]``,
    ``decoders`` (their ids), the coder's ``candidate`` ``[B, K', d]`` and ``score`` ``[B, K']``,
    ``accepted`` ``[B, K']``, ``picked`` and ``fallback`` (the pick's estimate and the
    side-information estimate, ``[B, K', ...]``), ``check_bits`` and the picks' ``index``
    ``[B, K']`` (-1 where the bin was empty)."""

    messages: Tensor
    labels: Tensor
    checks: Tensor
    side_information: Tensor
    decoders: Sequence[int]
    candidate: Tensor
    score: Tensor
    accepted: Tensor
    picked: Tensor
    fallback: Tensor
    check_bits: int
    index: Tensor


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


def decode_picks(model: CodingModel, coder: ImportanceCoder, messages: Tensor, labels: Tensor, checks: Tensor,
                 side_information: Tensor, decoders: Sequence[int] | None = None, check_bits: int = 0) -> Decoded:
    """:func:`decode` with the ``pick`` estimate (the pick's reconstruction, trusted), fallbacks included."""
    return _decoded(picks(model, coder, messages, labels, checks, side_information, decoders, check_bits))


def picks(model: CodingModel, coder: ImportanceCoder, messages: Tensor, labels: Tensor, checks: Tensor,
          side_information: Tensor, decoders: Sequence[int] | None = None, check_bits: int = 0) -> Picks:
    """What the coder gives decoders ``decoders`` (default all K) of messages ``[B]``: their
    picks with scores and acceptances, the picks' reconstructions and the fallbacks
    (:class:`Picks`, what an estimate refines and a decoder is trained on)."""
    rows = list(range(coder.num_decoders)) if decoders is None else list(decoders)
    weight = model.decoder_log_weight(side_information)
    got = coder.decode(messages, labels, weight, decoders=decoders)
    expected = check_values(coder.seed, messages, got.index, check_bits)
    accepted = got.found & (expected == checks[:, None])
    picked = model.reconstruct(got.candidate, side_information)
    return Picks(messages, labels, checks, side_information, rows, got.candidate, got.score, accepted, picked,
                 model.fallback(side_information), check_bits, got.index)


def _decoded(got: Picks) -> Decoded:
    return Decoded(got.index, got.accepted, got.picked, got.fallback, got.score)


def decode(model: CodingModel, coder: ImportanceCoder, messages: Tensor, labels: Tensor, checks: Tensor,
           side_information: Tensor, decoders: Sequence[int] | None = None, check_bits: int = 0,
           fallback: bool = True, estimate=None) -> Decoded:
    """Decoders ``decoders`` (default all K rows, in order) of messages ``[B]``, each with its
    side information ``[B, K', ...]``, given the received ``labels`` ``[B]`` and ``checks``
    ``[B]`` -> :class:`Decoded` (with fallbacks when ``fallback``). ``estimate`` (default: the
    model's ``estimate`` attribute where it has one, else the pick's reconstruction) turns picks
    into outputs (:mod:`dsc.estimates`)."""
    got = picks(model, coder, messages, labels, checks, side_information, decoders, check_bits)
    estimate = estimate if estimate is not None else getattr(model, "estimate", None)
    decoded = _decoded(got)
    if estimate is not None:
        out = estimate(model, coder, got)
        decoded = Decoded(got.index, got.accepted, out.picked, out.fallback, got.score, out.se)
    return decoded if fallback else Decoded(decoded.index, decoded.accepted, decoded.picked, None, decoded.score,
                                            decoded.estimate_se)


def code(model: CodingModel, coder: ImportanceCoder, messages: Tensor, sources: Tensor, side_information: Tensor,
         check_bits: int = 0, fallback: bool = True) -> Coded:
    """Encode ``sources`` and decode at all K decoders (side information ``[B, K, ...]``)."""
    encoded = encode(model, coder, messages, sources, check_bits)
    decoded = decode(model, coder, messages, encoded.label, encoded.check, side_information, None, check_bits,
                     fallback)
    return Coded(encoded, decoded)
