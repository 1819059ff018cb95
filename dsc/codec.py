"""Compress a batch of sources to one dsc bitstream and decompress it at any decoder.

    data = compress(model, sources, setting)                     # bytes (dsc.bitstream)
    out = decompress(data, model, side_information, setting, decoder=k)
    out.reconstruction, out.accepted                             # [n, ...], [n]

``model`` is a :class:`SideInformationModel`: :class:`GaussianModel` (the quadratic-Gaussian
source, closed-form weights) or :class:`MnistModel` (a trained MNIST codec's networks). The
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
from typing import Protocol

import torch
from torch import Tensor

from dsc.bitstream import MAX_CHECK_BITS, MAX_LABEL_BITS, StreamHeader, read_stream, write_stream
from dsc.coding import GaussianPrior, ImportanceCoder, Scheme
from dsc.coding.randomness import random_words
from dsc.coding.streams import Purpose, check_messages, stream_id
from dsc.environment import strict_float32
from dsc.errors import FingerprintMismatchError, InvalidArgumentError, ShapeMismatchError
from dsc.models.gaussian import AnalyticGaussianModel
from dsc.models.mnist import DecoderLogRatio, MnistCodecNetworks, PosteriorLogRatio


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
            raise InvalidArgumentError(f"check_bits must be an integer in [0, {MAX_CHECK_BITS}], got {self.check_bits!r}")
        self.coder(GaussianPrior())  # validates seed, N, K and scheme

    def coder(self, prior) -> ImportanceCoder:
        return ImportanceCoder(seed=self.seed, prior=prior, num_candidates=self.num_candidates,
                               num_labels=2**self.rate_bits, num_decoders=self.num_decoders, scheme=self.scheme)

    @property
    def bits_per_message(self) -> int:
        """log2(L_max) + c: what every message costs in the stream's payload."""
        return self.rate_bits + self.check_bits


class SideInformationModel(Protocol):
    """A source model that compress/decompress can code (shapes for a batch of B sources)."""

    prior: GaussianPrior

    def identity(self) -> dict:
        """JSON-serialisable values that identify the model (enter the stream's fingerprint)."""

    def encoder_log_weight(self, sources: Tensor):
        """Sources ``[B, ...]`` -> a log-weight function of candidates ``[B, n, d]`` -> ``[B, n]``
        with a ``maximum()`` ``[B]`` (or None when unbounded)."""

    def decoder_log_weight(self, side_information: Tensor):
        """One decoder's side information ``[B, ...]`` -> candidates ``[B, n, d]`` -> ``[B, 1, n]``."""

    def reconstruct(self, candidates: Tensor, side_information: Tensor) -> Tensor:
        """Candidates ``[B, d]`` and side information ``[B, ...]`` -> reconstructions ``[B, ...]``."""

    def fallback(self, side_information: Tensor) -> Tensor:
        """A reconstruction from the side information alone ``[B, ...]``."""


@dataclass(frozen=True)
class GaussianModel:
    """The quadratic-Gaussian source A ~ N(0, 1), T_k = A + N(0, noise_var): sources ``[B]``,
    one decoder's side information T_k ``[B]``, reconstructions ``[B]`` (float64)."""

    test_channel_var: float = 0.005
    noise_var: float = 0.5

    def __post_init__(self) -> None:
        self.analytic  # validates both variances  # noqa: B018

    @property
    def analytic(self) -> AnalyticGaussianModel:
        return AnalyticGaussianModel(self.test_channel_var, self.noise_var)

    @property
    def prior(self) -> GaussianPrior:
        return self.analytic.prior

    def identity(self) -> dict:
        return {"model": "gaussian", "test_channel_var": self.test_channel_var, "noise_var": self.noise_var}

    def encoder_log_weight(self, sources: Tensor):
        return self.analytic.encoder_log_weight(_vector(sources, "sources"))

    def decoder_log_weight(self, side_information: Tensor):
        return self.analytic.decoder_log_weight(_vector(side_information, "side information")[:, None])

    def reconstruct(self, candidates: Tensor, side_information: Tensor) -> Tensor:
        return self.analytic.reconstruct(candidates[:, 0].double(), side_information.double())

    def fallback(self, side_information: Tensor) -> Tensor:
        return self.analytic.decoder_mean(side_information.double())  # E[A | T_k]


class MnistModel:
    """A trained MNIST codec: sources are right halves ``[B, 1, 28, 14]`` in [-1, 1], one
    decoder's side information is its crop ``[B, 1, c, c]``; the fallback decodes the prior
    mean (w = 0) with the crop."""

    def __init__(self, nets: MnistCodecNetworks) -> None:
        self.nets = nets.eval()
        self.prior = GaussianPrior(dim=nets.latent_dim)
        digest = hashlib.sha256()
        for name, value in sorted(nets.state_dict().items()):
            digest.update(name.encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        self._weights = digest.hexdigest()

    def identity(self) -> dict:
        return {"model": "mnist", "latent_dim": self.prior.dim, "weights_sha256": self._weights}

    def encoder_log_weight(self, sources: Tensor):
        return PosteriorLogRatio(self.nets.encoder(sources))

    def decoder_log_weight(self, side_information: Tensor):
        return DecoderLogRatio(self.nets.estimator, self.nets.estimator.crop_bias(side_information[:, None]))

    def reconstruct(self, candidates: Tensor, side_information: Tensor) -> Tensor:
        return self.nets.decoder(candidates.float(), self.nets.projection(side_information))

    def fallback(self, side_information: Tensor) -> Tensor:
        zeros = torch.zeros(side_information.shape[0], self.prior.dim, device=side_information.device)
        return self.reconstruct(zeros, side_information)


def _vector(x: Tensor, name: str) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() != 1:
        raise ShapeMismatchError(f"{name} must be a 1-D tensor [B] for the Gaussian model")
    return x.double()


def fingerprint(model: SideInformationModel, setting: CodingSetting) -> bytes:
    """16 bytes identifying the model and the coding setting (BLAKE2b of canonical JSON)."""
    text = json.dumps({"model": model.identity(), "setting": asdict(setting)}, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


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


def message_ids(first_message: int, count: int, device) -> Tensor:
    return check_messages(torch.arange(first_message, first_message + count, device=device))


@torch.no_grad()
@strict_float32()
def compress(model: SideInformationModel, sources: Tensor, setting: CodingSetting, first_message: int = 0) -> bytes:
    """Encode ``sources`` ``[n, ...]`` (message ids ``first_message`` .. + n - 1) -> one bitstream."""
    if not isinstance(sources, Tensor) or sources.dim() == 0 or sources.shape[0] == 0:
        raise ShapeMismatchError("sources must be a tensor [n, ...] with n >= 1")
    messages = message_ids(first_message, sources.shape[0], sources.device)
    coder = setting.coder(model.prior)
    weight = model.encoder_log_weight(sources)
    sent = coder.encode(messages, weight, weight.maximum())
    header = StreamHeader(fingerprint(model, setting), setting.seed, setting.num_candidates, setting.rate_bits,
                          setting.num_decoders, setting.check_bits, first_message, sources.shape[0])
    return write_stream(header, sent.label, check_values(setting.seed, messages, sent.index, setting.check_bits))


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


def verify_setting(header: StreamHeader, model: SideInformationModel, setting: CodingSetting) -> None:
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
def decompress(data: bytes, model: SideInformationModel, side_information: Tensor,
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
    coder = setting.coder(model.prior)
    weight = model.decoder_log_weight(side_information)
    got = coder.decode(messages, stream.labels.to(device), weight, decoders=[decoder],
                       log_weight_max=_maximum(weight))
    index, candidate, found = got.index[:, 0], got.candidate[:, 0], got.found[:, 0]
    expected = check_values(header.seed, messages, index, header.check_bits)
    accepted = found & (expected == stream.checks.to(device))
    picked = model.reconstruct(candidate, side_information)
    fallback = model.fallback(side_information)
    shape = (-1,) + (1,) * (picked.dim() - 1)
    reconstruction = torch.where(accepted.view(shape), picked, fallback.to(picked.dtype))
    return Decompressed(reconstruction, accepted, index, header)


def _maximum(weight) -> Tensor | None:
    """The log-weight's upper bound when it has one (exact early stopping), else None."""
    maximum = getattr(weight, "maximum", None)
    return None if maximum is None else maximum()
