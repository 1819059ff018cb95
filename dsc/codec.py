"""Compress a batch of sources to one dsc bitstream and decompress it at any decoder.

    data = compress(model, sources, setting)                     # bytes (dsc.bitstream)
    out = decompress(data, model, side_information, setting, decoder=k)
    out.reconstruction, out.accepted                             # [n, ...], [n]

``model`` is a :class:`dsc.pipeline.CodingModel`: :class:`GaussianModel` (the quadratic-Gaussian
source, closed-form weights) or :class:`MnistModel` (a trained MNIST codec's networks); the
encoding and decoding are :func:`dsc.pipeline.encode` and :func:`dsc.pipeline.decode`. The
encoder sends, per source, the label of its GLS candidate (log2(L_max) bits) and, with
``check_bits`` = c > 0, c bits of a keyed hash of that candidate's index. Decoder k picks its own
candidate from the label; it *accepts* it when the candidate's hash equals the received check
value, and otherwise returns the model's fallback reconstruction from its side information
alone. Without check bits every found candidate is accepted (the paper's setting).

A decoder must use the encoder's model and setting: the stream's header carries them (seed, N,
L_max, K, c explicitly, the model as a fingerprint), and a mismatch raises
:class:`dsc.FingerprintMismatchError` before anything is decoded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from dsc.bitstream import MAX_CHECK_BITS, MAX_LABEL_BITS, StreamHeader, read_stream, write_stream
from dsc.coding import GaussianPrior, ImportanceCoder
from dsc.coding.streams import check_messages
from dsc.environment import strict_float32
from dsc.errors import FingerprintMismatchError, InvalidArgumentError, ShapeMismatchError
from dsc.models.gaussian import GaussianModel
from dsc.models.mnist import MnistModel
from dsc.pipeline import CodingModel, check_values, decode, encode, first_accepted

__all__ = ["CodingSetting", "Decompressed", "GaussianModel", "MnistModel", "SideInformationModel", "check_values",
           "compress", "decompress", "first_accepted", "fingerprint", "setting_of", "verify_setting"]


@dataclass(frozen=True)
class CodingSetting:
    """What encoder and decoders share besides the model: seed, N, log2(L_max), K, check bits."""

    seed: int = 0
    num_candidates: int = 128
    rate_bits: int = 2
    num_decoders: int = 4
    check_bits: int = 0
    scheme: str = "gls"

    def __post_init__(self) -> None:
        if not (isinstance(self.rate_bits, int) and 1 <= self.rate_bits <= MAX_LABEL_BITS):
            raise InvalidArgumentError(f"rate_bits (log2 L_max) must be an integer in [1, {MAX_LABEL_BITS}], "
                                       f"got {self.rate_bits!r}")
        if isinstance(self.check_bits, bool) or not (isinstance(self.check_bits, int)
                                                     and 0 <= self.check_bits <= MAX_CHECK_BITS):
            raise InvalidArgumentError(f"check_bits must be an integer in [0, {MAX_CHECK_BITS}], "
                                       f"got {self.check_bits!r}")
        self.coder(GaussianPrior())  # validates seed, N, K and scheme

    def coder(self, prior) -> ImportanceCoder:
        return ImportanceCoder(seed=self.seed, prior=prior, num_candidates=self.num_candidates,
                               num_labels=2**self.rate_bits, num_decoders=self.num_decoders, scheme=self.scheme)

    @property
    def bits_per_message(self) -> int:
        """log2(L_max) + c: what every message costs in the stream's payload."""
        return self.rate_bits + self.check_bits


SideInformationModel = CodingModel  # the name this module used before dsc.pipeline existed


def fingerprint(model: CodingModel, setting: CodingSetting) -> bytes:
    """16 bytes identifying the model and the coding setting (BLAKE2b of canonical JSON)."""
    text = json.dumps({"model": model.identity(), "setting": asdict(setting)}, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def message_ids(first_message: int, count: int, device) -> Tensor:
    return check_messages(torch.arange(first_message, first_message + count, device=device))


@torch.no_grad()
@strict_float32()
def compress(model: CodingModel, sources: Tensor, setting: CodingSetting, first_message: int = 0) -> bytes:
    """Encode ``sources`` ``[n, ...]`` (message ids ``first_message`` .. + n - 1) -> one bitstream."""
    if not isinstance(sources, Tensor) or sources.dim() == 0 or sources.shape[0] == 0:
        raise ShapeMismatchError("sources must be a tensor [n, ...] with n >= 1")
    messages = message_ids(first_message, sources.shape[0], sources.device)
    sent = encode(model, setting.coder(model.prior), messages, sources, setting.check_bits)
    header = StreamHeader(fingerprint(model, setting), setting.seed, setting.num_candidates, setting.rate_bits,
                          setting.num_decoders, setting.check_bits, first_message, sources.shape[0])
    return write_stream(header, sent.label, sent.check)


@dataclass(frozen=True)
class Decompressed:
    """Decoder k's output: ``reconstruction`` ``[n, ...]``, ``accepted`` ``[n]`` (its pick passed
    the check; False rows hold the fallback), ``index`` ``[n]`` (its pick, -1 if none) and the
    stream's ``header``."""

    reconstruction: Tensor
    accepted: Tensor
    index: Tensor
    header: StreamHeader


def setting_of(header: StreamHeader, scheme: str = "gls") -> CodingSetting:
    """The coding setting a stream's header records."""
    return CodingSetting(seed=header.seed, num_candidates=header.num_candidates, rate_bits=header.label_bits,
                         num_decoders=header.num_decoders, check_bits=header.check_bits, scheme=scheme)


def verify_setting(header: StreamHeader, model: CodingModel, setting: CodingSetting) -> None:
    """Raise :class:`FingerprintMismatchError` naming what differs between the stream and the decoder."""
    ours = {"seed": setting.seed, "num_candidates": setting.num_candidates, "label_bits": setting.rate_bits,
            "num_decoders": setting.num_decoders, "check_bits": setting.check_bits}
    differ = [f"{name}: stream {getattr(header, name)}, decoder {value}" for name, value in ours.items()
              if getattr(header, name) != value]
    if differ:
        raise FingerprintMismatchError("the stream was coded with another setting (" + "; ".join(differ) + ")")
    if header.fingerprint != fingerprint(model, setting):
        raise FingerprintMismatchError("the stream was written by another model (weights, model settings or "
                                       "scheme differ); decode it with the encoder's checkpoint")


@torch.no_grad()
@strict_float32()
def decompress(data: bytes, model: CodingModel, side_information: Tensor,
               setting: CodingSetting | None = None, decoder: int = 0) -> Decompressed:
    """Decode ``data`` at decoder ``decoder`` (0 .. K-1) with its side information ``[n, ...]``.
    ``setting`` None: the stream's own (seed, N, L_max, K, c; scheme gls), still checked against
    the fingerprint, so a stream from another model or scheme is refused all the same."""
    stream = read_stream(data)
    header = stream.header
    if setting is None:
        setting = setting_of(header)
    verify_setting(header, model, setting)
    if isinstance(decoder, bool) or not isinstance(decoder, int) or not 0 <= decoder < header.num_decoders:
        raise InvalidArgumentError(f"decoder must be an integer in [0, {header.num_decoders}), got {decoder!r}")
    if not isinstance(side_information, Tensor) or side_information.dim() == 0 or \
            side_information.shape[0] != header.num_messages:
        raise ShapeMismatchError(f"side information must be a tensor [{header.num_messages}, ...] (one row per "
                                 "message in the stream)")
    device = side_information.device
    messages = message_ids(header.first_message, header.num_messages, device)
    got = decode(model, setting.coder(model.prior), messages, stream.labels.to(device), stream.checks.to(device),
                 side_information[:, None], decoders=[decoder], check_bits=header.check_bits)
    return Decompressed(got.output[:, 0], got.accepted[:, 0], got.index[:, 0], header)
