"""The dsc bitstream: exact layout (golden bytes), round trips, and every failure a DscError."""

from __future__ import annotations

import random
import struct
import zlib

import pytest
import torch

import dsc
from dsc.bitstream import (
    HEADER_BYTES,
    MAGIC,
    MAX_DECODERS,
    MAX_MESSAGES,
    MAX_STREAM_BYTES,
    OVERHEAD_BYTES,
    PACK_CHUNK,
    StreamHeader,
    pack_fields,
    read_header,
    read_stream,
    read_stream_file,
    unpack_fields,
    write_stream,
)
from dsc.codec import CodingSetting, GaussianModel, compress, decompress
from dsc.coding import CounterRandomness
from dsc.sources.gaussian import GaussianSource

FINGERPRINT = bytes(range(16))


def header(**changes) -> StreamHeader:
    values = dict(fingerprint=FINGERPRINT, seed=7, num_candidates=128, label_bits=3, num_decoders=4,
                  check_bits=2, first_message=10, num_messages=5)
    return StreamHeader(**{**values, **changes})


def golden() -> bytes:
    """Five messages, 3 label bits + 2 check bits each, written out by hand from the layout."""
    head = (b"DSC\x1a" + bytes([1, 0]) + FINGERPRINT + struct.pack("<Q", 7) + struct.pack("<I", 128)
            + bytes([3]) + struct.pack("<H", 4) + bytes([2]) + struct.pack("<Q", 10) + struct.pack("<I", 5))
    # (label, check): (5, 1) (0, 2) (7, 3) (1, 0) (2, 1) -> 10101 00010 11111 00100 01001 + 7 zero bits
    payload = bytes([0b10101000, 0b10111110, 0b01000100, 0b10000000])
    return head + payload + struct.pack("<I", zlib.crc32(head + payload))


LABELS, CHECKS = torch.tensor([5, 0, 7, 1, 2]), torch.tensor([1, 2, 3, 0, 1])


def test_the_layout_is_exactly_the_documented_one():
    data = write_stream(header(), LABELS, CHECKS)
    assert data == golden()
    assert len(data) == OVERHEAD_BYTES + 4 and HEADER_BYTES == 50
    stream = read_stream(golden())
    assert stream.header == header()
    assert torch.equal(stream.labels, LABELS) and torch.equal(stream.checks, CHECKS)


def test_a_pinned_stream_of_16_bit_labels_still_reads():
    """Bytes of a stream written by format version 1 (pinned; a format change breaks this test)."""
    pinned = bytes.fromhex(
        "4453431a0100000102030405060708090a0b0c0d0e0f000000000000000000100000100100000000000000000000"
        "030000000000ffff1234"
    )
    pinned += struct.pack("<I", zlib.crc32(pinned))
    stream = read_stream(pinned)
    assert stream.header.label_bits == 16 and stream.header.check_bits == 0
    assert stream.labels.tolist() == [0x0000, 0xFFFF, 0x1234]


@pytest.mark.parametrize("label_bits", range(1, 17))
def test_random_batches_round_trip_for_every_label_size(label_bits):
    g = torch.Generator().manual_seed(label_bits)
    for check_bits in (0, 1, 2, 4, 8):
        n = int(torch.randint(1, 300, (1,), generator=g))
        labels = torch.randint(2**label_bits, (n,), generator=g)
        checks = torch.randint(2**check_bits, (n,), generator=g)
        h = header(label_bits=label_bits, check_bits=check_bits, num_messages=n)
        data = write_stream(h, labels, checks if check_bits else None)
        assert len(data) == OVERHEAD_BYTES + -(-n * (label_bits + check_bits) // 8)  # no per-message padding
        stream = read_stream(data)
        assert torch.equal(stream.labels, labels)
        assert torch.equal(stream.checks, checks if check_bits else torch.zeros_like(labels))


def test_packing_is_msb_first_without_gaps():
    assert pack_fields(torch.tensor([1, 0, 1, 1, 0, 0, 0, 1, 1]), 1) == bytes([0b10110001, 0b10000000])
    assert pack_fields(torch.tensor([0xABC, 0x123]), 12) == bytes([0xAB, 0xC1, 0x23])
    assert unpack_fields(bytes([0xAB, 0xC1, 0x23]), 2, 12).tolist() == [0xABC, 0x123]
    assert pack_fields(torch.tensor([], dtype=torch.long), 5) == b""


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def test_every_kind_of_bad_stream_is_a_specific_error():
    good = golden()
    body = good[:-4]
    with pytest.raises(dsc.ForeignStreamError):
        read_stream(b"\x89PNG\r\n\x1a\n" + bytes(60))
    with pytest.raises(dsc.ForeignStreamError):
        read_stream(b"")
    with pytest.raises(dsc.ForeignStreamError, match="bytes"):
        read_stream("DSC stream")  # type: ignore[arg-type]
    with pytest.raises(dsc.TruncatedStreamError):
        read_stream(good[:30])
    with pytest.raises(dsc.CorruptStreamError, match="checksum"):
        read_stream(good[:-5] + bytes([good[-5] ^ 1]) + good[-4:])
    with pytest.raises(dsc.TruncatedStreamError, match="header says"):
        read_stream(_with_crc(body[:-1]))  # consistent checksum, one payload byte missing
    with pytest.raises(dsc.CorruptStreamError, match="header says"):
        read_stream(_with_crc(body + b"\x00"))
    with pytest.raises(dsc.UnsupportedVersionError, match="version 2"):
        read_stream(_with_crc(MAGIC + bytes([2]) + body[5:]))
    with pytest.raises(dsc.UnsupportedVersionError, match="flags"):
        read_stream(_with_crc(MAGIC + bytes([1, 4]) + body[6:]))
    with pytest.raises(dsc.CorruptStreamError, match="padding"):
        read_stream(_with_crc(body[:-1] + bytes([body[-1] | 1])))
    with pytest.raises(dsc.CorruptStreamError, match="label_bits"):
        read_stream(_with_crc(body[:34] + bytes([0]) + body[35:]))
    assert read_header(good) == header()


def test_bad_arguments_when_writing_are_clear_errors():
    with pytest.raises(dsc.InvalidArgumentError, match="label_bits"):
        header(label_bits=0)
    with pytest.raises(dsc.InvalidArgumentError, match="fingerprint"):
        header(fingerprint=b"short")
    with pytest.raises(dsc.InvalidArgumentError, match="2\\*\\*3"):
        write_stream(header(), torch.tensor([8, 0, 0, 0, 0]), CHECKS)
    with pytest.raises(dsc.InvalidArgumentError, match="shape"):
        write_stream(header(), torch.tensor([1, 2]), CHECKS)
    with pytest.raises(dsc.InvalidArgumentError, match="check bits"):
        write_stream(header(), LABELS)


def test_fuzzed_streams_raise_only_dsc_errors():
    """Thousands of random mutations (bit flips, byte changes, insertions, deletions, cuts) of
    valid streams: each either reads back as a valid stream or raises a BitstreamError."""
    rng = random.Random(0)
    seeds = [write_stream(header(label_bits=b, check_bits=c, num_messages=n), torch.randint(2**b, (n,)),
                          torch.randint(2**c, (n,)) if c else None)
             for b, c, n in ((3, 2, 5), (16, 0, 40), (1, 8, 100), (12, 4, 0))]
    outcomes = {"error": 0, "read": 0}
    for trial in range(4000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            kind, at = rng.randrange(5), rng.randrange(max(len(data), 1))
            if kind == 0 and data:
                data[at] ^= 1 << rng.randrange(8)
            elif kind == 1 and data:
                data[at] = rng.randrange(256)
            elif kind == 2:
                data.insert(at, rng.randrange(256))
            elif kind == 3 and data:
                del data[at]
            else:
                data = data[:at]
        try:
            read_stream(bytes(data))
            outcomes["read"] += 1
        except dsc.BitstreamError:
            outcomes["error"] += 1
    assert outcomes["error"] >= 3990  # a mutation that survives needs a CRC-32 collision


def test_the_python_api_still_writes_the_pinned_stream():
    """dsc.codec.compress without a context: fingerprint of model and setting alone, so this
    stream (pinned when contexts were added) is still written byte for byte and still decodes."""
    pinned = bytes.fromhex("4453431a0100f6102f55a2235ac27d0b769e96b6dfe5000000000000000000100000020400040000000000"
                           "000000080000000f2848686818376aa2df")
    draw = GaussianSource(noise_var=0.5).sample(CounterRandomness(0), torch.arange(8), 4)
    model = GaussianModel(test_channel_var=0.005, noise_var=0.5)
    setting = CodingSetting(seed=0, num_candidates=4096, rate_bits=2, num_decoders=4, check_bits=4)
    assert compress(model, draw.source, setting) == pinned
    out = decompress(pinned, model, draw.side_info[:, 3], decoder=3)
    assert out.reconstruction.shape == (8,) and out.header.num_messages == 8
    with pytest.raises(dsc.FingerprintMismatchError):  # a context is part of what a decoder must match
        decompress(pinned, model, draw.side_info[:, 3], decoder=3, context={"source": "gaussian"})


def _bits_reference(values: list[int], width: int) -> bytes:
    """Packing written out with Python strings: each value's bits MSB first, zero-padded."""
    text = "".join(format(v, f"0{width}b") for v in values)
    text += "0" * (-len(text) % 8)
    return bytes(int(text[i:i + 8], 2) for i in range(0, len(text), 8))


@pytest.mark.parametrize("width", [1, 7, 13, 56])
def test_packing_in_chunks_equals_the_plain_bit_string(width):
    rng = random.Random(width)
    n = 2 * PACK_CHUNK + 37  # three chunks, the last one partial
    values = [rng.randrange(2**width) for _ in range(n)]
    packed = pack_fields(torch.tensor(values), width)
    assert packed == _bits_reference(values, width)
    assert unpack_fields(packed, n, width).tolist() == values


def test_sizes_past_the_limits_are_refused_before_decoding(tmp_path):
    with pytest.raises(dsc.InvalidArgumentError, match="num_decoders"):
        header(num_decoders=MAX_DECODERS + 1)
    with pytest.raises(dsc.InvalidArgumentError, match=f"at most {MAX_MESSAGES} messages"):
        header(num_messages=MAX_MESSAGES + 1)
    # a hand-made header claiming 10**7 one-bit messages, length and checksum consistent
    n = 10**7
    head = (b"DSC\x1a" + bytes([1, 0]) + FINGERPRINT + struct.pack("<QIBHBQI", 0, 16, 1, 65535, 0, 0, n))
    data = _with_crc(head + bytes(n // 8))
    with pytest.raises(dsc.CorruptStreamError, match=f"at most {MAX_MESSAGES} messages"):
        read_header(data)
    # files: a foreign file and one longer than any stream are refused before being read
    foreign = tmp_path / "photo.png"
    foreign.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(dsc.ForeignStreamError, match="photo.png is not a dsc bitstream"):
        read_stream_file(foreign)
    huge = tmp_path / "huge.dsc"
    with huge.open("wb") as f:
        f.write(MAGIC)
        f.truncate(MAX_STREAM_BYTES + 1)  # sparse: no disk used
    with pytest.raises(dsc.CorruptStreamError, match=f"is {MAX_STREAM_BYTES + 1} bytes; a dsc stream is at most"):
        read_stream_file(huge)
    assert MAX_STREAM_BYTES == 54 + MAX_MESSAGES * (24 + 32) // 8
