"""Compress a batch of sources to one dsc bitstream and decompress it at any decoder.

    data = compress(model, sources, setting)                     # bytes (dsc.bitstream)
    out = decompress(data, model, side_information, setting, decoder=k)
    out.reconstruction, out.accepted                             # [n, ...], [n]

``model`` is a :class:`dsc.pipeline.CodingModel`: :class:`GaussianModel` (the quadratic-Gaussian
source, closed-form weights) or :class:`ImageModel` (a trained MNIST codec's networks); the
encoding and decoding are :func:`dsc.pipeline.encode` and :func:`dsc.pipeline.decode`. The
encoder sends, per source, the label of its GLS candidate (log2(L_max) bits) and, with
``check_bits`` = c > 0, c bits of a keyed hash of that candidate's index. Decoder k picks its own
candidate from the label; it *accepts* it when the candidate's hash equals the received check
value, and otherwise returns the model's fallback reconstruction from its side information
alone. Without check bits every found candidate is accepted (the paper's setting).

A decoder must use the encoder's model and setting: the stream's header carries them (seed, N,
L_max, K, c explicitly, the model as a fingerprint), and a mismatch raises
:class:`dsc.FingerprintMismatchError` before anything is decoded. An optional ``context`` (JSON
values, e.g. the command line's source name and options) enters the fingerprint as well, so a
decoder given other data options is refused too. Sizes are checked against the limits of
:mod:`dsc.bitstream` before any work, and messages are coded :data:`MESSAGE_CHUNK` at a time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping, Union

import torch
from torch import Tensor

from dsc.bitstream import MAX_CHECK_BITS, MAX_LABEL_BITS, MAX_MESSAGES, StreamHeader, read_stream, write_stream
from dsc.coding import CodingPoint, GaussianPrior, ImportanceCoder
from dsc.coding.streams import check_messages
from dsc.environment import strict_float32
from dsc.errors import CorruptStreamError, FingerprintMismatchError, InvalidArgumentError, ShapeMismatchError
from dsc.models.gaussian import GaussianModel
from dsc.models.image_codec import ImageModel
from dsc.pipeline import CodingModel, check_values, decode, encode, first_accepted

MESSAGE_CHUNK = 4096  # messages encoded / decoded at once: the coder's memory does not grow with n

__all__ = ["CodingSetting", "Decompressed", "GaussianModel", "ImageModel", "check_values", "compress", "decompress",
           "first_accepted", "fingerprint", "setting_of", "verify_setting"]


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
        point = CodingPoint(self.scheme, self.num_decoders, self.rate_bits, self.num_candidates, self.check_bits)
        return point.coder(self.seed, prior)

    @property
    def bits_per_message(self) -> int:
        """log2(L_max) + c: what every message costs in the stream's payload."""
        return self.rate_bits + self.check_bits



def fingerprint(model: CodingModel, setting: CodingSetting, context: Mapping[str, Any] | None = None) -> bytes:
    """16 bytes identifying the model, the coding setting and, when given, the ``context``
    (JSON values that change what a decoder computes, e.g. the command line's source and its
    options): BLAKE2b of canonical JSON. Without a context it covers model and setting alone."""
    record = {"model": model.identity(), "setting": asdict(setting)}
    if context is not None:
        record["context"] = context
    try:
        text = json.dumps(record, sort_keys=True)
    except (TypeError, ValueError) as error:
        raise InvalidArgumentError(f"a stream's context must be JSON values (numbers, text, lists, dicts): {error}"
                                   ) from None
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def message_ids(first_message: int, count: int, device) -> Tensor:
    return check_messages(torch.arange(first_message, first_message + count, device=device))


Rows = Union[Tensor, Callable[[Tensor], Tensor]]
"""Per-message inputs: a tensor ``[n, ...]`` (row i for message i of the stream) or a function
of message ids ``[b]`` (on the CPU) -> rows ``[b, ...]``, called :data:`MESSAGE_CHUNK` ids at a
time, so the whole batch never has to exist at once."""


def _count(rows: Rows, count: int | None, what: str) -> int:
    """n: the rows' length, or ``count`` when rows come from a function; at most MAX_MESSAGES."""
    if callable(rows) and not isinstance(rows, Tensor):
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidArgumentError(f"{what} given as a function need count (messages, >= 1), got {count!r}")
        n = count
    elif not isinstance(rows, Tensor) or rows.dim() == 0 or rows.shape[0] == 0:
        raise ShapeMismatchError(f"{what} must be a tensor [n, ...] with n >= 1 (or a function of message ids)")
    else:
        n = rows.shape[0]
        if count is not None and count != n:
            raise ShapeMismatchError(f"{what} hold {n} rows, count says {count}")
    if n > MAX_MESSAGES:
        raise InvalidArgumentError(f"{n} messages do not fit one stream (at most {MAX_MESSAGES}, "
                                   "dsc.bitstream.MAX_MESSAGES): code them as several streams, first message ids apart")
    return n


def _rows_of(rows: Rows, start: int, ids: Tensor, what: str) -> Tensor:
    """Rows ``[b, ...]`` of messages ``ids`` ``[b]`` (stream positions start .. start + b - 1)."""
    got = rows(ids) if callable(rows) and not isinstance(rows, Tensor) else rows[start:start + ids.shape[0]]
    if not isinstance(got, Tensor) or got.dim() == 0 or got.shape[0] != ids.shape[0]:
        raise ShapeMismatchError(f"{what} for {ids.shape[0]} messages must be a tensor [{ids.shape[0]}, ...], "
                                 f"got {tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__}")
    return got


@torch.no_grad()
@strict_float32()
def compress(model: CodingModel, sources: Rows, setting: CodingSetting, first_message: int = 0,
             context: Mapping[str, Any] | None = None, count: int | None = None) -> bytes:
    """Encode ``sources`` ``[n, ...]`` (message ids ``first_message`` .. + n - 1) -> one bitstream.

    ``sources`` may also be a function of message ids (see :data:`Rows`; ``count`` = n then).
    ``context``: JSON values that enter the fingerprint (a decoder must give the same); None
    keeps the fingerprint of model and setting alone. Sizes are checked before any work;
    messages are encoded :data:`MESSAGE_CHUNK` at a time."""
    n = _count(sources, count, "sources")
    header = StreamHeader(fingerprint(model, setting, context), setting.seed, setting.num_candidates,
                          setting.rate_bits, setting.num_decoders, setting.check_bits, first_message, n)
    coder = setting.coder(model.prior)
    labels, checks = [], []
    for start in range(0, n, MESSAGE_CHUNK):
        ids = message_ids(first_message + start, min(MESSAGE_CHUNK, n - start), "cpu")
        rows = _rows_of(sources, start, ids, "sources")
        sent = encode(model, coder, ids.to(rows.device), rows, setting.check_bits)
        labels.append(sent.label.cpu())
        checks.append(sent.check.cpu())
    return write_stream(header, torch.cat(labels), torch.cat(checks))


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


def verify_setting(header: StreamHeader, model: CodingModel, setting: CodingSetting,
                   context: Mapping[str, Any] | None = None) -> None:
    """Raise :class:`FingerprintMismatchError` naming what differs between the stream and the decoder."""
    ours = {"seed": setting.seed, "num_candidates": setting.num_candidates, "label_bits": setting.rate_bits,
            "num_decoders": setting.num_decoders, "check_bits": setting.check_bits}
    differ = [f"{name}: stream {getattr(header, name)}, decoder {value}" for name, value in ours.items()
              if getattr(header, name) != value]
    if differ:
        raise FingerprintMismatchError("the stream was coded with another setting (" + "; ".join(differ) + ")")
    if header.fingerprint != fingerprint(model, setting, context):
        what = "for other source options or " if context is not None else ""
        raise FingerprintMismatchError(f"the stream was written {what}by another model (weights, model settings "
                                       "or scheme differ); decode it with the encoder's options and checkpoint")


@torch.no_grad()
@strict_float32()
def decompress(data: bytes, model: CodingModel, side_information: Rows,
               setting: CodingSetting | None = None, decoder: int = 0,
               context: Mapping[str, Any] | None = None) -> Decompressed:
    """Decode ``data`` at decoder ``decoder`` (0 .. K-1) with its side information ``[n, ...]``
    (or a function of message ids, see :data:`Rows`). ``setting`` None: the stream's own (seed,
    N, L_max, K, c; scheme gls), still checked against the fingerprint, so a stream from another
    model, scheme or ``context`` is refused before anything is decoded. Messages are decoded
    :data:`MESSAGE_CHUNK` at a time: memory beyond the outputs does not grow with n."""
    stream = read_stream(data)
    header = stream.header
    if setting is None:
        setting = setting_of(header)
    verify_setting(header, model, setting, context)
    if isinstance(decoder, bool) or not isinstance(decoder, int) or not 0 <= decoder < header.num_decoders:
        raise InvalidArgumentError(f"decoder must be an integer in [0, {header.num_decoders}), got {decoder!r}")
    n = header.num_messages
    if n == 0:
        raise CorruptStreamError("the stream holds no messages: there is nothing to decode")
    if isinstance(side_information, Tensor) and (side_information.dim() == 0 or side_information.shape[0] != n):
        raise ShapeMismatchError(f"side information must be a tensor [{n}, ...] (one row per message in the stream)")
    coder = setting.coder(model.prior)
    parts = []
    for start in range(0, n, MESSAGE_CHUNK):
        ids = message_ids(header.first_message + start, min(MESSAGE_CHUNK, n - start), "cpu")
        side = _rows_of(side_information, start, ids, "side information")
        device, stop = side.device, start + ids.shape[0]
        got = decode(model, coder, ids.to(device), stream.labels[start:stop].to(device),
                     stream.checks[start:stop].to(device), side[:, None], decoders=[decoder],
                     check_bits=header.check_bits)
        parts.append((got.output[:, 0], got.accepted[:, 0], got.index[:, 0]))
    reconstruction, accepted, index = (torch.cat(column) for column in zip(*parts))
    return Decompressed(reconstruction, accepted, index, header)
