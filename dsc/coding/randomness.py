"""Counter-based shared randomness: every value is a pure function of (seed, stream, index).

Encoder and decoders must see the same random numbers without exchanging them, possibly on
different devices and in different chunk orders. ``torch.Generator`` streams differ between CPU
and CUDA and cannot be indexed, so dsc derives every shared value from an integer hash instead:

    word(seed, stream, index, w) = H(index; keys(seed, stream, w))            in [0, 2**32)

``H`` is three rounds of a 32-bit xorshift-multiply mixer keyed by ``keys``. All arithmetic is
on int64 tensors holding values below 2**32, with multipliers below 2**31, so no product
overflows: the words are exact integers and therefore bit-identical on every device.

The hash, exactly (every value an unsigned 32-bit integer, ``*`` multiplication modulo 2**32,
``lo(v) = v mod 2**32``, ``hi(v) = v >> 32``); every bitstream depends on it, and the test suite
pins its outputs::

    mix(x):  x ^= x >> 16;  x *= 0x21F0AAAD;  x ^= x >> 15;  x *= 0x735A2D97;  x ^= x >> 15
    keys(seed, stream, w):
        h = mix(lo(seed) ^ 0x9E3779B9)
        h = mix(h ^ hi(seed) ^ 0x85EBCA6B)
        h = mix(h ^ (w * 0xC2B2AE35))
        h = mix(h ^ lo(stream))
        h = mix(h ^ hi(stream) ^ 0x27D4EB2F)
        k0, k1, k2 = mix(h ^ 0x27D4EB2F), mix(h ^ 0x165667B1), mix(h ^ 0x61C88647)
    word(seed, stream, index, w) = mix(mix(mix(lo(index) ^ k0) ^ hi(index) ^ k1) ^ k2)

Derived values (all elementwise, any index shape, any index range without generating the rest):

- ``uniform`` float32: ``(2 * (w0 >> 9) + 1) * 2**-24``, 2**23 levels, open interval (0, 1);
- ``uniform`` float64: 52 bits from words 0 and 1, ``m = (w0 << 20) | (w1 >> 12)``,
  ``(2 * m + 1) * 2**-53``, open interval (0, 1);
- ``exponential``: ``-log(u)``; ``normal``: ``ndtri(u)`` (inverse normal CDF, one uniform each);
- ``integers(high)``: ``(w0 * high) >> 32``, exactly uniform when ``high`` is a power of two.

Integer words and uniforms are bit-identical across devices and between eager and
``torch.compile``d code. Exponentials and normals apply torch's ``log`` / ``ndtri`` to those
uniforms; CPU and CUDA math libraries, and compiled kernels, may differ from eager CPU code in
the last few units of precision there (parties that must agree should run the same code path).

What each stream id means is defined in one place: :mod:`dsc.coding.streams`.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Union

import torch
from torch import Tensor

from dsc.errors import InvalidArgumentError

MASK32 = 0xFFFFFFFF
_MUL1 = 0x21F0AAAD  # both multipliers are odd and below 2**31: x * m < 2**63 for x < 2**32
_MUL2 = 0x735A2D97
_KEY_SALTS = (0x9E3779B9, 0x85EBCA6B, 0xC2B2AE35, 0x27D4EB2F, 0x165667B1, 0x61C88647)

MAX_SEED = 2**63 - 1
MAX_INTEGERS_HIGH = 2**31

IntOrTensor = Union[int, Tensor]


def mix32(x: IntOrTensor) -> IntOrTensor:
    """Bijective 32-bit mixer (xorshift-multiply); works on Python ints and int64 tensors.

    ``x`` must hold values in [0, 2**32); the result does too. A tensor argument is not
    modified (the first step allocates; the rest runs in place on that buffer).
    """
    if isinstance(x, Tensor):
        x = x ^ (x >> 16)
        x.mul_(_MUL1).bitwise_and_(MASK32)
        x.bitwise_xor_(x >> 15)
        x.mul_(_MUL2).bitwise_and_(MASK32)
        return x.bitwise_xor_(x >> 15)
    x = x ^ (x >> 16)
    x = (x * _MUL1) & MASK32
    x = x ^ (x >> 15)
    x = (x * _MUL2) & MASK32
    return x ^ (x >> 15)


def _stream_keys(seed: int, stream: IntOrTensor, word: int) -> tuple[IntOrTensor, ...]:
    """Three 32-bit round keys for (seed, stream, word); Python ints or int64 tensors."""
    h = mix32((seed & MASK32) ^ _KEY_SALTS[0])
    h = mix32(h ^ (seed >> 32) ^ _KEY_SALTS[1])
    h = mix32(h ^ ((word * _KEY_SALTS[2]) & MASK32))
    h = mix32(h ^ (stream & MASK32))
    h = mix32(h ^ (stream >> 32) ^ _KEY_SALTS[3])
    return mix32(h ^ _KEY_SALTS[3]), mix32(h ^ _KEY_SALTS[4]), mix32(h ^ _KEY_SALTS[5])


def _check_seed(seed: int) -> int:
    try:
        value = operator.index(seed)
    except TypeError:
        value = None
    if isinstance(seed, (bool, Tensor)) or value is None or not 0 <= value <= MAX_SEED:
        raise InvalidArgumentError(
            f"seed must be an integer in [0, 2**63 - 1], got {seed!r}; pass e.g. seed=0."
        )
    return value


def _check_index(index: Tensor) -> Tensor:
    if not isinstance(index, Tensor) or index.dtype not in (torch.int64, torch.int32):
        raise InvalidArgumentError(
            "index must be an integer tensor (torch.int64), e.g. torch.arange(a, b); "
            f"got {type(index).__name__}"
            + (f" of dtype {index.dtype}" if isinstance(index, Tensor) else "")
        )
    index = index.long()
    if index.numel() and int(index.min()) < 0:
        raise InvalidArgumentError("index (the counters) must be non-negative")
    return index


def _check_stream(stream: IntOrTensor, device: torch.device) -> IntOrTensor:
    if isinstance(stream, Tensor):
        if stream.dtype not in (torch.int64, torch.int32):
            raise InvalidArgumentError(f"stream tensor must be int64, got {stream.dtype}")
        stream = stream.to(device=device, dtype=torch.int64)
        if stream.numel() and int(stream.min()) < 0:
            raise InvalidArgumentError("stream ids must be non-negative")
        return stream
    if isinstance(stream, bool) or not isinstance(stream, int) or stream < 0:
        raise InvalidArgumentError(f"stream must be a non-negative integer, got {stream!r}")
    if stream > MAX_SEED:
        raise InvalidArgumentError(f"stream must be below 2**63, got {stream}")
    return stream


def check_dtype(dtype: torch.dtype) -> torch.dtype:
    """The float dtypes the generator produces: float32 or float64."""
    if dtype not in (torch.float32, torch.float64):
        raise InvalidArgumentError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    return dtype


def _check_high(high: int) -> int:
    if isinstance(high, bool) or not isinstance(high, int) or not 1 <= high <= MAX_INTEGERS_HIGH:
        raise InvalidArgumentError(f"high must be an integer in [1, 2**31], got {high!r}")
    return high


# Unchecked kernels: callers pass a valid seed, non-negative int64 streams and counters.


def _words(seed: int, stream: IntOrTensor, index: Tensor, word: int) -> Tensor:
    k0, k1, k2 = _stream_keys(seed, stream, word)
    x = mix32((index & MASK32) ^ k0)
    x = mix32(x ^ (index >> 32) ^ k1)
    return mix32(x ^ k2)


def _uniform_whole(seed: int, stream: IntOrTensor, index: Tensor, dtype: torch.dtype) -> Tensor:
    if dtype == torch.float32:
        odd = (_words(seed, stream, index, 0) >> 9).mul_(2).add_(1)
        return odd.to(torch.float32).mul_(2.0**-24)
    high = _words(seed, stream, index, 0) << 20
    low = _words(seed, stream, index, 1) >> 12
    odd = high.bitwise_or_(low).mul_(2).add_(1)
    return odd.to(torch.float64).mul_(2.0**-53)


def _exponential_whole(seed: int, stream: IntOrTensor, index: Tensor, dtype: torch.dtype) -> Tensor:
    return _uniform_whole(seed, stream, index, dtype).log_().neg_()


def _normal_whole(seed: int, stream: IntOrTensor, index: Tensor, dtype: torch.dtype) -> Tensor:
    return torch.special.ndtri(_uniform_whole(seed, stream, index, dtype))


def _integers_whole(seed: int, stream: IntOrTensor, index: Tensor, high: int) -> Tensor:
    return (_words(seed, stream, index, 0) * high) >> 32


def _uniform(seed: int, stream: IntOrTensor, index: Tensor, dtype: torch.dtype) -> Tensor:
    return _in_slices(_uniform_whole, seed, stream, index, dtype, dtype)


def _exponential(seed: int, stream: IntOrTensor, index: Tensor, dtype: torch.dtype) -> Tensor:
    return _in_slices(_exponential_whole, seed, stream, index, dtype, dtype)


def _normal(seed: int, stream: IntOrTensor, index: Tensor, dtype: torch.dtype) -> Tensor:
    return _in_slices(_normal_whole, seed, stream, index, dtype, dtype)


def _integers(seed: int, stream: IntOrTensor, index: Tensor, high: int) -> Tensor:
    return _in_slices(_integers_whole, seed, stream, index, high, torch.int64)


_CPU_SLICE = 2**16  # elements per pass on the CPU: every intermediate stays in cache


def _in_slices(kernel, seed: int, stream: IntOrTensor, index: Tensor, arg, dtype) -> Tensor:
    """Run an elementwise ``kernel(seed, stream, index, arg)`` over cache-sized slices on the
    CPU (about 3x faster than whole-tensor passes for large outputs); same values either way."""
    shape = torch.broadcast_shapes(index.shape, stream.shape if isinstance(stream, Tensor) else ())
    total = math.prod(shape)
    if index.device.type != "cpu" or total <= 2 * _CPU_SLICE:
        return kernel(seed, stream, index, arg)
    dim = next(d for d, size in enumerate(shape) if size > 1)
    per_step = math.prod(shape[dim + 1 :])
    step = max(1, _CPU_SLICE // per_step)
    out = torch.empty(shape, dtype=dtype, device=index.device)
    operands = [t if isinstance(t, Tensor) else None for t in (stream, index)]
    aligned = [None if t is None else t.reshape((1,) * (len(shape) - t.dim()) + t.shape) for t in operands]

    def part(t, original, a, b):
        if t is None:
            return original
        return t.narrow(dim, a, b - a) if t.shape[dim] > 1 else t

    for a in range(0, shape[dim], step):
        b = min(a + step, shape[dim])
        out.narrow(dim, a, b - a).copy_(
            kernel(seed, part(aligned[0], stream, a, b), part(aligned[1], index, a, b), arg)
        )
    return out


def _checked(seed: int, stream: IntOrTensor, index: Tensor) -> tuple[int, IntOrTensor, Tensor]:
    seed = _check_seed(seed)
    index = _check_index(index)
    return seed, _check_stream(stream, index.device), index


# Public functions: validate, then run the kernels.


def random_words(seed: int, stream: IntOrTensor, index: Tensor, word: int = 0) -> Tensor:
    """32-bit random words for each counter.

    Within one stream and one block of 2**32 counters the words are a keyed permutation of
    the counter (no word repeats); derived values use at most 23 bits of a word, or combine
    two words, so this is invisible in them.

    Args:
        seed: shared seed in [0, 2**63).
        stream: stream id, an int or an int64 tensor broadcastable against ``index``.
        index: non-negative int64 counters, any shape ``[...]``.
        word: which independent word of the counter (0, 1, ...).

    Returns:
        int64 tensor of the broadcast shape, values in [0, 2**32).
    """
    if isinstance(word, bool) or not isinstance(word, int) or not 0 <= word <= MASK32:
        raise InvalidArgumentError(f"word must be an integer in [0, 2**32), got {word!r}")
    return _in_slices(_words, *_checked(seed, stream, index), word, torch.int64)


def uniform(
    seed: int, stream: IntOrTensor, index: Tensor, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Uniforms in the open interval (0, 1), bit-identical on every device.

    Shapes as in :func:`random_words`; ``dtype`` is ``torch.float32`` (2**23 levels) or
    ``torch.float64`` (2**52 levels).
    """
    return _uniform(*_checked(seed, stream, index), check_dtype(dtype))


def exponential(
    seed: int, stream: IntOrTensor, index: Tensor, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Exp(1) samples ``-log(u)``, strictly positive and finite; shapes as in :func:`uniform`."""
    return _exponential(*_checked(seed, stream, index), check_dtype(dtype))


def normal(
    seed: int, stream: IntOrTensor, index: Tensor, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Standard normal samples by inverse CDF (one uniform each); shapes as in :func:`uniform`.

    float32 tails reach about 5.3 standard deviations, float64 tails about 8.1.
    """
    return _normal(*_checked(seed, stream, index), check_dtype(dtype))


def integers(seed: int, stream: IntOrTensor, index: Tensor, high: int) -> Tensor:
    """Integers in [0, high) (int64); exactly uniform when ``high`` is a power of two.

    For other ``high`` the bias is below ``high / 2**32``. ``high`` must be in [1, 2**31].
    """
    return _integers(*_checked(seed, stream, index), _check_high(high))


@dataclass(frozen=True)
class CounterRandomness:
    """The shared-randomness source of one coding session: a seed and the functions above.

    Stateless: calling a method twice with the same arguments returns the same values.
    """

    seed: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "seed", _check_seed(self.seed))

    def words(self, stream: IntOrTensor, index: Tensor, word: int = 0) -> Tensor:
        return random_words(self.seed, stream, index, word)

    def uniform(self, stream: IntOrTensor, index: Tensor, dtype=torch.float32) -> Tensor:
        return uniform(self.seed, stream, index, dtype)

    def exponential(self, stream: IntOrTensor, index: Tensor, dtype=torch.float32) -> Tensor:
        return exponential(self.seed, stream, index, dtype)

    def normal(self, stream: IntOrTensor, index: Tensor, dtype=torch.float32) -> Tensor:
        return normal(self.seed, stream, index, dtype)

    def integers(self, stream: IntOrTensor, index: Tensor, high: int) -> Tensor:
        return integers(self.seed, stream, index, high)
