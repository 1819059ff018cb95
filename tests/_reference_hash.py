"""An independent implementation of the shared generator and the stream layout in plain Python
integers and floats (no torch), written from the specification in the docstrings of
``dsc.coding.randomness`` and ``dsc.coding.streams``. Tests compare the library against it and
against literal values it produced; it must never call into dsc."""

from __future__ import annotations

import math
from functools import lru_cache
from statistics import NormalDist

M32 = 2**32 - 1
_STANDARD_NORMAL = NormalDist()

# Purpose ids (the low 4 bits of a stream id) and the stream packing: message << 20 | row << 4 | purpose
CANDIDATE, LABEL, EXPONENTIAL, SOURCE, ARRIVAL, WINNING_ROW, PERMUTATION, CHECK = 1, 2, 3, 4, 5, 6, 7, 8


def stream(purpose: int, message: int, row: int = 0) -> int:
    return (message << 20) | (row << 4) | purpose


def mix(x: int) -> int:
    x ^= x >> 16
    x = (x * 0x21F0AAAD) & M32
    x ^= x >> 15
    x = (x * 0x735A2D97) & M32
    return x ^ (x >> 15)


@lru_cache(maxsize=4096)
def keys(seed: int, stream_id: int, w: int) -> tuple[int, int, int]:
    h = mix((seed & M32) ^ 0x9E3779B9)
    h = mix(h ^ (seed >> 32) ^ 0x85EBCA6B)
    h = mix(h ^ ((w * 0xC2B2AE35) & M32))
    h = mix(h ^ (stream_id & M32))
    h = mix(h ^ (stream_id >> 32) ^ 0x27D4EB2F)
    return mix(h ^ 0x27D4EB2F), mix(h ^ 0x165667B1), mix(h ^ 0x61C88647)


def word(seed: int, stream_id: int, index: int, w: int = 0) -> int:
    k0, k1, k2 = keys(seed, stream_id, w)
    return mix(mix(mix((index & M32) ^ k0) ^ (index >> 32) ^ k1) ^ k2)


def uniform32(seed: int, stream_id: int, index: int) -> float:
    return (2 * (word(seed, stream_id, index) >> 9) + 1) * 2.0**-24


def uniform64(seed: int, stream_id: int, index: int) -> float:
    m = (word(seed, stream_id, index, 0) << 20) | (word(seed, stream_id, index, 1) >> 12)
    return (2 * m + 1) * 2.0**-53


def exponential(u: float) -> float:
    return -math.log(u)


def normal(u: float) -> float:
    return _STANDARD_NORMAL.inv_cdf(u)


def integers(seed: int, stream_id: int, index: int, high: int) -> int:
    return (word(seed, stream_id, index) * high) >> 32


def balanced_label(seed: int, message: int, j: int, num_candidates: int, num_labels: int) -> int:
    """pi(j) mod L_max: four rounds (add key, xorshift, multiply by 0x2C1B3C6D) on ``bits`` bits,
    keys k0 of ``keys(seed, PERMUTATION stream, round)``, cycle-walked into [0, N)."""
    bits = max(1, (num_candidates - 1).bit_length())
    mask, shift = (1 << bits) - 1, max(1, (bits + 1) // 2)
    round_keys = [keys(seed, stream(PERMUTATION, message), r)[0] & mask for r in range(4)]
    x = j
    while True:
        for key in round_keys:
            x = (x + key) & mask
            x ^= x >> shift
            x = (x * 0x2C1B3C6D) & mask
        if x < num_candidates:
            return x % num_labels


def arrival_increment(seed: int, message: int, j: int, num_candidates: int, num_rows: int) -> int:
    """round(X_j / (R (N - j)) * 2**52), X_j = -log(float64 uniform of the ARRIVAL stream)."""
    x = exponential(uniform64(seed, stream(ARRIVAL, message), j))
    return round(x / float(num_rows * (num_candidates - j)) * 2.0**52)
