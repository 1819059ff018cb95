"""The dsc bitstream: a header, bit-packed fixed-length messages and a CRC-32.

Layout of format version 1 (integers little-endian)::

    offset  size  field
    0       4     magic b"DSC\\x1a"
    4       1     format version (1)
    5       1     flags (0; any other value is refused)
    6       16    fingerprint of the model and coding setting (see dsc.codec)
    22      8     seed of the shared randomness
    30      4     N, candidates per message
    34      1     label bits log2(L_max), 1..24
    35      2     K, decoders the stream was coded for
    37      1     check bits c per message, 0..32
    38      8     id of the first message (message i of the stream has id first + i)
    46      4     number of messages n
    50      ...   payload: n fields of (label bits + c) bits, each the label followed by its
                  check value, most significant bit first, packed with no gaps; the last byte
                  is padded with zero bits
    end-4   4     CRC-32 (zlib) of everything before it

A message therefore costs exactly log2(L_max) + c bits in the payload; the header and CRC are a
fixed 54 bytes per stream. :func:`read_stream` verifies magic, length, checksum, version, flags,
field ranges and padding, and raises a :class:`dsc.BitstreamError` subclass on any failure.

Limits that writer and reader share (a stream past them is refused before anything is
allocated for it): K <= :data:`MAX_DECODERS` (2**16 - 1, the coder's limit too), n <=
:data:`MAX_MESSAGES` (2**20) messages per stream, so a stream is at most
:data:`MAX_STREAM_BYTES` long; messages are packed and unpacked :data:`PACK_CHUNK` at a time.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dsc.coding.point import MAX_CHECK_BITS
from dsc.coding.streams import MAX_MESSAGE, MAX_ROWS
from dsc.errors import (
    CorruptStreamError,
    ForeignStreamError,
    InvalidArgumentError,
    TruncatedStreamError,
    UnsupportedVersionError,
)

MAGIC = b"DSC\x1a"
VERSION = 1
FINGERPRINT_BYTES = 16
MAX_LABEL_BITS = 24
MAX_DECODERS = MAX_ROWS  # K: 2**16 - 1, the header's 16-bit field and the coder's row limit
MAX_MESSAGES = 2**20  # n per stream: larger batches go in several streams (first message ids apart)
PACK_CHUNK = 2**16  # messages packed / unpacked at once (a multiple of 8: whole bytes per chunk)
_PREFIX = struct.Struct("<4sBB")  # magic, version, flags: readable in every version
_HEADER = struct.Struct(f"<4sBB{FINGERPRINT_BYTES}sQIBHBQI")
_CRC = struct.Struct("<I")
HEADER_BYTES = _HEADER.size  # 50
OVERHEAD_BYTES = HEADER_BYTES + _CRC.size  # 54
MAX_STREAM_BYTES = OVERHEAD_BYTES + (MAX_MESSAGES * (MAX_LABEL_BITS + MAX_CHECK_BITS) + 7) // 8


@dataclass(frozen=True)
class StreamHeader:
    """What a decoder must know besides the payload; see the module docstring."""

    fingerprint: bytes
    seed: int
    num_candidates: int
    label_bits: int
    num_decoders: int
    check_bits: int
    first_message: int
    num_messages: int

    def __post_init__(self) -> None:
        if not isinstance(self.fingerprint, bytes) or len(self.fingerprint) != FINGERPRINT_BYTES:
            raise InvalidArgumentError(f"fingerprint must be {FINGERPRINT_BYTES} bytes")
        limits = {
            "seed": (0, 2**63 - 1), "num_candidates": (1, 2**32 - 1), "label_bits": (1, MAX_LABEL_BITS),
            "num_decoders": (1, MAX_DECODERS), "check_bits": (0, MAX_CHECK_BITS),
            "first_message": (0, MAX_MESSAGE), "num_messages": (0, 2**32 - 1),
        }
        n = self.num_messages
        if isinstance(n, int) and not isinstance(n, bool) and MAX_MESSAGES < n < 2**32:
            raise InvalidArgumentError(f"num_messages is {n}; a stream holds at most {MAX_MESSAGES} messages "
                                       "(dsc.bitstream.MAX_MESSAGES): code more as several streams")
        for name, (low, high) in limits.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidArgumentError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
        if self.first_message + self.num_messages - 1 > MAX_MESSAGE:
            raise InvalidArgumentError(f"message ids run past 2**43 - 1 (first {self.first_message}, "
                                       f"{self.num_messages} messages)")

    @property
    def message_bits(self) -> int:
        """Bits per message in the payload: log2(L_max) + c."""
        return self.label_bits + self.check_bits

    @property
    def payload_bytes(self) -> int:
        return (self.num_messages * self.message_bits + 7) // 8

    def describe(self) -> dict:
        """The header as plain values (fingerprint in hex), e.g. for ``inspect``."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["fingerprint"] = self.fingerprint.hex()
        values["rate_bits_per_message"] = self.message_bits
        values["stream_bytes"] = OVERHEAD_BYTES + self.payload_bytes
        return values


@dataclass(frozen=True)
class Bitstream:
    """A read stream: its header, ``labels`` ``[n]`` and ``checks`` ``[n]`` (int64; zeros when
    the stream has no check bits)."""

    header: StreamHeader
    labels: Tensor
    checks: Tensor


def pack_fields(values: Tensor, width: int) -> bytes:
    """Integers ``[n]`` in [0, 2**width) -> ceil(n * width / 8) bytes, each value's bits most
    significant first, consecutive values with no gaps, the last byte zero-padded. Works
    :data:`PACK_CHUNK` values at a time (whole bytes each), so memory stays O(n / 8 * width)."""
    values = values.detach().to("cpu", torch.int64).numpy()
    if values.size and (values.min() < 0 or values.max() >= 2**width):
        raise InvalidArgumentError(f"values must be in [0, 2**{width})")
    shifts = np.arange(width - 1, -1, -1, dtype=np.int64)
    parts = []
    for start in range(0, values.size, PACK_CHUNK):
        bits = ((values[start:start + PACK_CHUNK, None] >> shifts) & 1).astype(np.uint8)
        parts.append(np.packbits(bits.reshape(-1)).tobytes())
    return b"".join(parts)


def unpack_fields(data: bytes, count: int, width: int) -> Tensor:
    """Inverse of :func:`pack_fields`: ``count`` values of ``width`` bits -> int64 ``[count]``
    (:data:`PACK_CHUNK` values at a time)."""
    raw = np.frombuffer(data, dtype=np.uint8)
    weights = (1 << np.arange(width - 1, -1, -1, dtype=np.int64))
    out = np.empty(count, dtype=np.int64)
    chunk_bytes = PACK_CHUNK * width // 8
    for part, start in enumerate(range(0, count, PACK_CHUNK)):
        size = min(PACK_CHUNK, count - start)
        bits = np.unpackbits(raw[part * chunk_bytes:(part + 1) * chunk_bytes], count=size * width)
        out[start:start + size] = bits.reshape(size, width).astype(np.int64) @ weights
    return torch.from_numpy(out)


def write_stream(header: StreamHeader, labels: Tensor, checks: Tensor | None = None) -> bytes:
    """The stream of ``labels`` ``[n]`` (and ``checks`` ``[n]`` when ``header.check_bits`` > 0)."""
    n = header.num_messages
    if labels.shape != (n,):
        raise InvalidArgumentError(f"labels must have shape [{n}] (header.num_messages), got {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= 2**header.label_bits):
        raise InvalidArgumentError(f"labels must be in [0, 2**{header.label_bits})")
    fields_ = labels.to("cpu", torch.int64)
    if header.check_bits:
        if checks is None or checks.shape != (n,):
            raise InvalidArgumentError(f"{header.check_bits} check bits per message need checks of shape [{n}]")
        checks = checks.to("cpu", torch.int64)
        if checks.numel() and (int(checks.min()) < 0 or int(checks.max()) >= 2**header.check_bits):
            raise InvalidArgumentError(f"checks must be in [0, 2**{header.check_bits})")
        fields_ = (fields_ << header.check_bits) | checks
    body = _HEADER.pack(MAGIC, VERSION, 0, header.fingerprint, header.seed, header.num_candidates,
                        header.label_bits, header.num_decoders, header.check_bits, header.first_message,
                        header.num_messages) + pack_fields(fields_, header.message_bits)
    return body + _CRC.pack(zlib.crc32(body))


def read_header(data: bytes) -> StreamHeader:
    """Verify ``data`` as a whole stream and return its header (the payload is not decoded)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ForeignStreamError(f"a dsc bitstream is bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < _PREFIX.size or data[:4] != MAGIC:
        raise ForeignStreamError("not a dsc bitstream (the first bytes are not the dsc magic)")
    if len(data) < OVERHEAD_BYTES:
        raise TruncatedStreamError(f"stream of {len(data)} bytes is shorter than the {OVERHEAD_BYTES}-byte "
                                   "header and checksum")
    (crc,) = _CRC.unpack(data[-_CRC.size:])
    if zlib.crc32(data[:-_CRC.size]) != crc:
        raise CorruptStreamError("checksum mismatch: the stream was damaged or truncated")
    _, version, flags = _PREFIX.unpack(data[:_PREFIX.size])
    if version != VERSION:
        raise UnsupportedVersionError(f"stream format version {version}; this dsc reads version {VERSION}")
    if flags:
        raise UnsupportedVersionError(f"stream flags {flags:#04x} are not defined in format version {VERSION}")
    values = _HEADER.unpack(data[:HEADER_BYTES])[3:]
    try:
        header = StreamHeader(*values)
    except InvalidArgumentError as error:
        raise CorruptStreamError(f"invalid header: {error}") from None
    expected = OVERHEAD_BYTES + header.payload_bytes
    if len(data) != expected:
        kind = TruncatedStreamError if len(data) < expected else CorruptStreamError
        raise kind(f"stream is {len(data)} bytes; its header says {expected}")
    return header


def read_stream_file(path: str | os.PathLike) -> bytes:
    """The bytes of the stream file ``path``, refused before reading when the file does not start
    with the dsc magic or is longer than any stream can be (:data:`MAX_STREAM_BYTES`)."""
    path = Path(path)
    with path.open("rb") as f:
        prefix = f.read(len(MAGIC))
        size = os.fstat(f.fileno()).st_size
        if prefix != MAGIC:
            raise ForeignStreamError(f"{path} is not a dsc bitstream (the first bytes are not the dsc magic)")
        if size > MAX_STREAM_BYTES:
            raise CorruptStreamError(f"{path} is {size} bytes; a dsc stream is at most {MAX_STREAM_BYTES} "
                                     f"({MAX_MESSAGES} messages of at most {MAX_LABEL_BITS + MAX_CHECK_BITS} bits)")
        f.seek(0)
        return f.read()


def read_stream(data: bytes) -> Bitstream:
    """Verify and decode a whole stream (see :func:`read_header`)."""
    header = read_header(data)
    payload = bytes(data)[HEADER_BYTES:-_CRC.size]
    used = header.num_messages * header.message_bits
    if used % 8 and payload[-1] & ((1 << (8 - used % 8)) - 1):
        raise CorruptStreamError("padding bits after the last message are not zero")
    values = unpack_fields(payload, header.num_messages, header.message_bits)
    mask = (1 << header.check_bits) - 1
    return Bitstream(header, values >> header.check_bits, values & mask)
