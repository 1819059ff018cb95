"""Discrete couplings on explicit shared noise: Gumbel-max coupling and Gumbel-max list sampling.

All selections are exponential races in the log domain, ``argmin_i (log E_i - log p_i)``, so
zero-probability outcomes (``log p = -inf``) are never selected and nothing underflows.
The noise is passed in (Exp(1) values); :func:`shared_exponentials` draws it from the shared
counter-based randomness so that separate parties can regenerate it.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from dsc.coding.randomness import CounterRandomness, check_dtype
from dsc.coding.streams import check_messages, check_num_rows, exponential_rows
from dsc.coding.validation import check_noise, check_positive_int, check_probs
from dsc.errors import ShapeMismatchError


class CouplingSample(NamedTuple):
    """One coupled draw per batch element: ``x ~ p``, ``y ~ q`` (``[...]`` int64), ``match``."""

    x: Tensor
    y: Tensor
    match: Tensor


class GlsSample(NamedTuple):
    """A GLS draw: the list ``[..., K]`` (X^(k) ~ p^(k)), the single sample ``[...]``
    (Y ~ q) and whether Y is in the list (``[...]`` bool)."""

    list_samples: Tensor
    sample: Tensor
    match: Tensor


def race_argmin(log_weights: Tensor, log_noise: Tensor) -> Tensor:
    """``argmin_i (log_noise_i - log_weights_i)`` over the last dimension (``[..., N] -> [...]``).

    Entries with ``log_weights = -inf`` score ``+inf`` and lose to every positive-weight entry.
    """
    return torch.argmin(log_noise - log_weights, dim=-1)


def _log(p: Tensor) -> Tensor:
    return torch.log(p)  # log(0) = -inf: never selected by race_argmin


def _check_alphabet(name: str, t: Tensor, n: int) -> None:
    if t.shape[-1] != n:
        raise ShapeMismatchError(
            f"{name} has alphabet size {t.shape[-1]} but the noise has {n}; they must agree"
        )


def gumbel_max_sample(p: Tensor, noise: Tensor) -> Tensor:
    """Sample from ``p`` (``[..., N]``) with Exp(1) noise ``[..., N]``: ``argmin_i E_i / p_i``."""
    check_probs(p, "p")
    check_noise(noise)
    _check_alphabet("p", p, noise.shape[-1])
    return race_argmin(_log(p), torch.log(noise))


def gumbel_coupling(p: Tensor, q: Tensor, noise: Tensor) -> CouplingSample:
    """Gumbel-max coupling (GLS with K = 1): X ~ p and Y ~ q from one shared row of noise.

    Args:
        p, q: ``[..., N]`` probabilities (unnormalised rows are allowed).
        noise: ``[..., N]`` Exp(1) values.
    """
    result = gls(p, q, noise.unsqueeze(-2))
    return CouplingSample(result.list_samples[..., 0], result.sample, result.match)


def gls(p: Tensor, q: Tensor, noise: Tensor) -> GlsSample:
    """Gumbel-max list sampling (Algorithm 1): K list samples from ``p`` and one from ``q``.

    Args:
        p: proposals, ``[..., N]`` (the same p for all K rows) or ``[..., K, N]`` with as many
            dimensions as ``noise`` (one p^(k) per row, e.g. K decoders with different side
            information). Batch dimensions broadcast.
        q: target ``[..., N]``, fewer dimensions than ``noise``.
        noise: ``[..., K, N]`` Exp(1) values; row k drives list element k only.

    Returns:
        ``X^(k) = argmin_i E_i^(k) / p_i^(k)`` (``[..., K]``), ``Y = argmin_i min_k E_i^(k) /
        q_i`` (``[...]``) and ``match = Y in {X^(k)}``.
    """
    check_noise(noise)
    if noise.dim() < 2:
        raise ShapeMismatchError(f"noise must be [..., K, N], got shape {tuple(noise.shape)}")
    check_positive_int(noise.shape[-2], "K (noise.shape[-2])")
    n = noise.shape[-1]
    check_probs(p, "p")
    check_probs(q, "q")
    _check_alphabet("p", p, n)
    _check_alphabet("q", q, n)
    if p.dim() < noise.dim():  # one proposal for every row
        p = p.unsqueeze(-2)
    elif p.dim() > noise.dim() or p.shape[-2] not in (1, noise.shape[-2]):
        raise ShapeMismatchError(
            f"p must be [..., N] or [..., K, N] with K = {noise.shape[-2]} and as many "
            f"dimensions as the noise {tuple(noise.shape)}, got {tuple(p.shape)}"
        )
    if q.dim() >= noise.dim():
        raise ShapeMismatchError(f"q must be [..., N] (one target), got {tuple(q.shape)}")
    log_noise = torch.log(noise)
    list_samples = race_argmin(_log(p), log_noise)
    sample = race_argmin(_log(q), log_noise.min(dim=-2).values)
    match = (list_samples == sample.unsqueeze(-1)).any(dim=-1)
    return GlsSample(list_samples, sample, match)


def conditional_gls(q_encoder: Tensor, p_decoders: Tensor, noise: Tensor) -> GlsSample:
    """Conditional GLS (Theorem 2): the encoder samples Y from its target ``q_encoder``
    (``[..., N]``) with the row-wise minimum of the noise; decoder k samples X^(k) from its own
    ``p_decoders[..., k, :]`` (``[..., K, N]``) with its own row k of ``noise`` (``[..., K, N]``).
    """
    if p_decoders.dim() != noise.dim():
        raise ShapeMismatchError(
            f"p_decoders must be [..., K, N] like the noise {tuple(noise.shape)}, "
            f"got {tuple(p_decoders.shape)}"
        )
    return gls(p_decoders, q_encoder, noise)


def shared_exponentials(
    rng: CounterRandomness,
    messages: Tensor,
    num_rows: int,
    alphabet_size: int,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """Shared Exp(1) noise ``[B, K, N]`` for messages ``[B]``: rows 0..K-1 of each message."""
    messages = check_messages(messages)
    check_num_rows(num_rows)
    check_positive_int(alphabet_size, "alphabet_size (N)")
    check_dtype(dtype)
    device = messages.device
    rows = torch.arange(num_rows, device=device)
    index = torch.arange(alphabet_size, device=device)
    return exponential_rows(rng, messages, rows, index, dtype)
