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
CANDIDATE     0     ``i * dim + d``                 coordinate d of candidate U_i ~ N(0, 1)
LABEL         0     ``i``                           label l_i in [0, L_max) (i.i.d. labels)
EXPONENTIAL   k     ``i``                           E_i^(k) ~ Exp(1), row k of K
SOURCE        c     ``j``                           simulated source / side-information draws
============  ====  ==============================  =====================================

Balanced labels use no stream: candidate i has label ``i mod L_max`` (the candidates and
exponentials are i.i.d. across i, so this is equal in law to a uniformly random balanced
assignment, and a decoder can enumerate its bin without scanning the others).
"""

from __future__ import annotations

from enum import IntEnum

import torch
from torch import Tensor

from dsc.coding.randomness import CounterRandomness, IntOrTensor
from dsc.errors import InvalidArgumentError

MESSAGE_SHIFT = 20
ROW_SHIFT = 4
MAX_MESSAGE = 2**43 - 1
MAX_ROW = 2**16 - 1


class Purpose(IntEnum):
    """What a stream is used for (the low 4 bits of the stream id)."""

    CANDIDATE = 1
    LABEL = 2
    EXPONENTIAL = 3
    SOURCE = 4


def stream_id(purpose: Purpose, message: IntOrTensor, row: IntOrTensor = 0) -> IntOrTensor:
    """Pack (message, row, purpose) into a stream id; tensors broadcast, ints stay ints."""
    if isinstance(row, int) and not 0 <= row <= MAX_ROW:
        raise InvalidArgumentError(f"row must be in [0, {MAX_ROW}], got {row}")
    if isinstance(message, int) and not 0 <= message <= MAX_MESSAGE:
        raise InvalidArgumentError(f"message id must be in [0, 2**43), got {message}")
    if isinstance(message, Tensor):
        message = message.long()
    return (message << MESSAGE_SHIFT) | (row << ROW_SHIFT) | int(purpose)


def check_messages(messages: Tensor) -> Tensor:
    """Validate a 1-D tensor of message ids ``[B]`` and return it as int64."""
    if not isinstance(messages, Tensor) or messages.dim() != 1:
        raise InvalidArgumentError(
            "messages must be a 1-D integer tensor of message ids [B], e.g. torch.arange(B)"
        )
    if messages.dtype not in (torch.int64, torch.int32):
        raise InvalidArgumentError(f"messages must be int64, got {messages.dtype}")
    if messages.numel() and (int(messages.min()) < 0 or int(messages.max()) > MAX_MESSAGE):
        raise InvalidArgumentError("message ids must be in [0, 2**43)")
    return messages.long()


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
    streams = stream_id(Purpose.EXPONENTIAL, messages[:, None, None], rows[None, :, None])
    index = index[None, None, :] if index.dim() == 1 else index[:, None, :]
    return rng.exponential(streams, index, dtype)


def candidate_normals(
    rng: CounterRandomness, messages: Tensor, index: Tensor, dim: int, dtype=torch.float32
) -> Tensor:
    """Standard-normal coordinates of candidates: ``[B]`` messages, ``[n]`` or ``[B, n]``
    candidate indices -> ``[B, n, dim]``."""
    streams = stream_id(Purpose.CANDIDATE, messages)[:, None, None]
    index = index[None, :] if index.dim() == 1 else index
    counters = index[..., None] * dim + torch.arange(dim, device=index.device)
    return rng.normal(streams, counters, dtype)


def candidate_labels(
    rng: CounterRandomness, messages: Tensor, index: Tensor, num_labels: int
) -> Tensor:
    """i.i.d. uniform labels of candidates: ``[B]`` messages, ``[n]`` or ``[B, n]`` indices
    -> ``[B, n]`` int64 in [0, num_labels)."""
    streams = stream_id(Purpose.LABEL, messages)[:, None]
    index = index[None, :] if index.dim() == 1 else index
    return rng.integers(streams, index, num_labels)
