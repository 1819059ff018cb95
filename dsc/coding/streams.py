"""The stream layout: which stream id and counter every shared random value comes from.

This module is the one place that fixes the layout; encoder, decoders, simulations and tests
all go through it, so they agree by construction.

A stream id packs (message, row, purpose) into one non-negative integer::

    stream = message * 2**20 + row * 2**4 + purpose

- ``message`` (< 2**43): which message of the session (one source sample, one trial). Every
  message has its own candidates, labels and exponentials, independent of all others.
- ``row`` (< 2**16): the exponential row k (decoder k, or list element k in GLS); 0 elsewhere.
- ``purpose`` (< 16): one of :class:`Purpose`.

Counters (the ``index`` within a stream):

============  ====  ==============================  =====================================
purpose       row   counter                         value
============  ====  ==============================  =====================================
CANDIDATE     0     ``j * dim + d``                 coordinate d of candidate U_j ~ N(0, 1)
LABEL         0     ``j``                           label l_j in [0, L_max) (i.i.d. labels)
EXPONENTIAL   k     ``i`` / ``j``                   discrete GLS: E_i^(k) ~ Exp(1), row k;
                                                    coder: D_j^(k) ~ Exp(1), row k's excess
SOURCE        c     ``j``                           simulated source / side-information draws
ARRIVAL       0     ``j``                           X_j ~ Exp(1), spacing of arrival times
WINNING_ROW   0     ``j``                           r_j in [0, R), the row attaining M_j
PERMUTATION   0     round                           keys of the balanced-label permutation
CHECK         0     ``j``                           check value of candidate j (bitstreams)
SPECULATIVE   r     token id / 0                    speculative sampling noise (dsc.speculative)
POSTERIOR     k     draw                            decoder k's posterior draws (dsc.estimates)
============  ====  ==============================  =====================================

The importance-sampled coder indexes its N candidates by *arrival order*. With R rows of
exponentials per candidate (R = K for GLS, 1 for the shared-randomness baseline), the row-wise
minima M are i.i.d. Exp(R); sorted, they are (Renyi's representation)

    M_(j) = sum_{m <= j} X_m / (R (N - m)),        j = 0 .. N-1,

computed as an exact int64 fixed-point prefix sum (2**-52 units), so chunking never changes
a value. Row k of candidate j is ``E_j^(k) = M_(j)`` if ``k == r_j`` and ``M_(j) + D_j^(k)``
otherwise (memorylessness). Candidates, labels, r and D are i.i.d. and independent of the
arrival times, so this is equal in law to N i.i.d. candidates with K i.i.d. Exp(1) rows each,
and it lets a party stop scanning once no later arrival can win.

Balanced labels: l_j = pi(j) mod L_max with pi a keyed pseudo-random permutation of [0, N)
per message, so each label gets exactly N / L_max candidates in random arrival positions.
"""

from __future__ import annotations

from enum import IntEnum

import torch
from torch import Tensor

from dsc.coding.randomness import (
    CounterRandomness,
    IntOrTensor,
    _exponential,
    _integers,
    _normal,
    _stream_keys,
)
from dsc.errors import InvalidArgumentError

MESSAGE_SHIFT = 20
ROW_SHIFT = 4
MAX_MESSAGE = 2**43 - 1
MAX_ROW = 2**16 - 1
MAX_ROWS = 2**16 - 1  # K at most: rows 0..K-1, and K fits the bitstream header's 16-bit field (one limit)


class Purpose(IntEnum):
    """What a stream is used for (the low 4 bits of the stream id)."""

    CANDIDATE = 1
    LABEL = 2
    EXPONENTIAL = 3
    SOURCE = 4
    ARRIVAL = 5
    WINNING_ROW = 6
    PERMUTATION = 7
    CHECK = 8
    SPECULATIVE = 9
    POSTERIOR = 10


# Rows of the SOURCE streams: the one table of who draws what. A source claims its rows when
# it is registered (dsc.registry); a row can have one owner only, so two sources never share
# random values. The built-in sources' rows are listed here so that they stay fixed.
SOURCE_ROWS: dict[int, tuple[str, str]] = {
    0: ("gaussian", "source A (counter 0)"),
    1: ("gaussian", "side-information noise Z_k (counter k)"),
    2: ("images", "evaluation crop positions (counter 2k: top, 2k + 1: column)"),
    3: ("images", "evaluation noise of noisy side information (decoder k: counters k x size ..)"),
}


def claim_source_rows(owner: str, rows: dict[int, str]) -> None:
    """Give ``owner`` (a source's name) the SOURCE-stream ``rows`` (row -> what it holds); a row
    that another source owns raises InvalidArgumentError naming the owner and the free rows."""
    for row in rows:
        _check_part(row, "source row", MAX_ROW)
        holder = SOURCE_ROWS.get(row)
        if holder is not None and holder[0] != owner:
            free = min(set(range(MAX_ROW + 1)) - set(SOURCE_ROWS))
            raise InvalidArgumentError(f"SOURCE-stream row {row} belongs to source {holder[0]!r} ({holder[1]}); "
                                       f"choose a free row, e.g. {free}")
    for row, what in rows.items():
        SOURCE_ROWS[row] = (owner, what)


def _pack(purpose: Purpose, message: IntOrTensor, row: IntOrTensor = 0) -> IntOrTensor:
    """Unchecked packing for hot paths whose message ids and rows are already validated."""
    return (message << MESSAGE_SHIFT) | (row << ROW_SHIFT) | int(purpose)


def _check_part(value: IntOrTensor, name: str, limit: int) -> IntOrTensor:
    if isinstance(value, Tensor):
        if value.is_floating_point() or value.dtype == torch.bool:
            raise InvalidArgumentError(f"{name} must be an integer tensor, got {value.dtype}")
        value = value.long()
        if value.numel() and (int(value.min()) < 0 or int(value.max()) > limit):
            raise InvalidArgumentError(f"{name} must be in [0, {limit}]")
        return value
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise InvalidArgumentError(f"{name} must be an integer in [0, {limit}], got {value!r}")
    return value


def stream_id(purpose: Purpose, message: IntOrTensor, row: IntOrTensor = 0) -> IntOrTensor:
    """Pack (message, row, purpose) into a stream id; tensors broadcast (int64), ints stay
    ints. Out-of-range parts raise InvalidArgumentError instead of colliding."""
    purpose = Purpose(purpose)
    message = _check_part(message, "message id", MAX_MESSAGE)
    row = _check_part(row, "row", MAX_ROW)
    return _pack(purpose, message, row)


def check_messages(messages: Tensor) -> Tensor:
    """Validate a 1-D tensor of message ids ``[B]`` and return it as int64."""
    if not isinstance(messages, Tensor) or messages.dim() != 1:
        raise InvalidArgumentError(
            "messages must be a 1-D integer tensor of message ids [B], e.g. torch.arange(B)"
        )
    if messages.dtype not in (torch.int64, torch.int32):
        raise InvalidArgumentError(f"messages must be int64, got {messages.dtype}")
    if messages.numel() == 0:
        raise InvalidArgumentError("messages must hold at least one message id")
    if int(messages.min()) < 0 or int(messages.max()) > MAX_MESSAGE:
        raise InvalidArgumentError("message ids must be in [0, 2**43)")
    return messages.long()


def check_num_rows(num_rows: int, name: str = "number of rows (K)") -> int:
    """K must be in [1, MAX_ROWS] (2**16 - 1): rows 0..K-1 each have a stream, and a bitstream
    header stores K in 16 bits, so coder and format share one limit."""
    if isinstance(num_rows, bool) or not isinstance(num_rows, int) or not 1 <= num_rows <= MAX_ROWS:
        raise InvalidArgumentError(f"{name} must be an integer in [1, {MAX_ROWS}], got {num_rows!r}")
    return num_rows


def decoder_ids(num_decoders: int | None = None, decoders=None, device=None) -> Tensor:
    """Decoder ids ``[K']`` (int64): 0..K-1 for ``num_decoders`` = K, else exactly ``decoders``
    (a sequence or integer tensor of ids in [0, MAX_ROWS), possibly empty). Give one of the two."""
    if (num_decoders is None) == (decoders is None):
        raise InvalidArgumentError("give either num_decoders (decoders 0..K-1) or decoders (their ids)")
    if num_decoders is not None:
        return torch.arange(check_num_rows(num_decoders, "num_decoders (K)"), device=device)
    ids = decoders if isinstance(decoders, Tensor) else torch.as_tensor(list(decoders), dtype=torch.long)
    if ids.dim() != 1 or ids.is_floating_point() or ids.dtype == torch.bool or \
            (ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= MAX_ROWS)):
        raise InvalidArgumentError(f"decoders must be decoder ids [K'] in [0, {MAX_ROWS}), got {decoders!r}")
    return ids.to(device=device, dtype=torch.long)


# The helpers below run once per chunk; they trust their inputs: message ids from
# check_messages, rows in [0, MAX_ROW], non-negative candidate indices.


def exponential_rows(
    rng: CounterRandomness,
    messages: Tensor,
    rows: Tensor,
    index: Tensor,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Shared exponentials E_i^(k).

    Args:
        messages: ``[B]`` message ids.
        rows: ``[R]`` row ids k (decoder / list element).
        index: candidate counters, ``[n]`` (same for every message) or ``[B, n]``.

    Returns:
        ``[B, R, n]`` Exp(1) values.
    """
    streams = _pack(Purpose.EXPONENTIAL, messages[:, None, None], rows[None, :, None])
    index = index[None, None, :] if index.dim() == 1 else index[:, None, :]
    return _exponential(rng.seed, streams, index, dtype)


def candidate_normals(
    rng: CounterRandomness, messages: Tensor, index: Tensor, dim: int, dtype=torch.float32
) -> Tensor:
    """Standard-normal coordinates of candidates: ``[B]`` messages, ``[n]`` or ``[B, n]``
    candidate indices -> ``[B, n, dim]``."""
    streams = _pack(Purpose.CANDIDATE, messages)[:, None, None]
    index = index[None, :] if index.dim() == 1 else index
    counters = index[..., None] * dim + torch.arange(dim, device=index.device)
    return _normal(rng.seed, streams, counters, dtype)


def candidate_labels(
    rng: CounterRandomness, messages: Tensor, index: Tensor, num_labels: int
) -> Tensor:
    """i.i.d. uniform labels of candidates: ``[B]`` messages, ``[n]`` or ``[B, n]`` indices
    -> ``[B, n]`` int64 in [0, num_labels)."""
    streams = _pack(Purpose.LABEL, messages)[:, None]
    index = index[None, :] if index.dim() == 1 else index
    return _integers(rng.seed, streams, index, num_labels)


ARRIVAL_FRACTION_BITS = 52  # fixed-point unit of arrival times: 2**-52


def arrival_increments(
    rng: CounterRandomness, messages: Tensor, index: Tensor, num_candidates: int, num_rows: int
) -> Tensor:
    """Fixed-point spacings ``round(X_j / (R (N - j)) * 2**52)`` for arrivals ``index`` ``[n]``
    of messages ``[B]`` -> int64 ``[B, n]``; their prefix sums are the arrival times M_(j)."""
    streams = _pack(Purpose.ARRIVAL, messages)[:, None]
    spacing = _exponential(rng.seed, streams, index[None, :], torch.float64)
    spacing = spacing / (num_rows * (num_candidates - index)).to(torch.float64)
    return torch.round(spacing * 2.0**ARRIVAL_FRACTION_BITS).long()


def winning_rows(rng: CounterRandomness, messages: Tensor, index: Tensor, num_rows: int) -> Tensor:
    """The row r_j in [0, R) that attains M_(j), for arrivals ``[n]`` or ``[B, n]`` -> ``[B, n]``."""
    streams = _pack(Purpose.WINNING_ROW, messages)[:, None]
    return _integers(rng.seed, streams, index[None, :] if index.dim() == 1 else index, num_rows)


_PERMUTATION_ROUNDS = 4
_PERMUTATION_MULTIPLIER = 0x2C1B3C6D  # odd, below 2**31


def balanced_labels(
    rng: CounterRandomness, messages: Tensor, index: Tensor, num_candidates: int, num_labels: int
) -> Tensor:
    """Labels ``pi(j) mod L_max`` for arrivals ``[n]`` or ``[B, n]`` of messages ``[B]`` ->
    ``[B, n]``; pi is a keyed bijection of [0, N) per message (cycle-walking a bijection of
    [0, 2**bits) built from add-key, xorshift and odd-multiply rounds)."""
    bits = max(1, (num_candidates - 1).bit_length())
    mask = (1 << bits) - 1
    shift = max(1, (bits + 1) // 2)
    streams = _pack(Purpose.PERMUTATION, messages)
    keys = [_stream_keys(rng.seed, streams, r)[0][:, None] & mask for r in range(_PERMUTATION_ROUNDS)]
    x = (index[None, :] if index.dim() == 1 else index).expand(messages.shape[0], -1).clone()
    pending = torch.ones_like(x, dtype=torch.bool)
    while True:
        y = x
        for key in keys:
            y = (y + key) & mask
            y = y ^ (y >> shift)
            y = (y * _PERMUTATION_MULTIPLIER) & mask
        x = torch.where(pending, y, x)
        pending = x >= num_candidates
        if not pending.any():
            return x % num_labels
