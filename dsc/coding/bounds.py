"""Matching-probability bounds and exact values for GLS couplings (closed forms).

Notation as in the list matching lemma: list samples X^(1..K) ~ p (or p^(k)), single sample
Y ~ q, alphabet ``[..., N]``. Inputs are probabilities (rows are normalised here); outputs are
probabilities ``[...]``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dsc.coding.validation import check_positive_int, check_probs
from dsc.errors import ShapeMismatchError

_PAIR_CHUNK = 1024  # columns j per block in the O(N^2) sums


def _normalise(p: Tensor, name: str) -> Tensor:
    check_probs(p, name)
    return p / p.sum(-1, keepdim=True)


def _same_alphabet(p: Tensor, q: Tensor) -> None:
    if p.shape[-1] != q.shape[-1]:
        raise ShapeMismatchError(
            f"p and q must share the alphabet (last dimension): {p.shape[-1]} vs {q.shape[-1]}"
        )


def list_matching_bound(p: Tensor, q: Tensor, num_rows: int) -> Tensor:
    """List matching lemma (Theorem 1): a lower bound on Pr[Y in {X^(1..K)}].

    ``sum_j K p_j q_j / (sum_i max(q_i p_j, p_i q_j) + (K - 1) p_j)``, which is the form
    ``sum_j K / sum_i [max(q_i/q_j, p_i/p_j) + (K-1) q_i/q_j]`` multiplied through by
    ``p_j q_j`` so that zero probabilities need no special case. Exact for K = 1, p = q, or a
    point-mass p.

    Args:
        p, q: ``[..., N]``. num_rows: K >= 1.

    Returns:
        ``[...]``.
    """
    check_positive_int(num_rows, "num_rows (K)")
    _same_alphabet(p, q)
    p, q = torch.broadcast_tensors(_normalise(p, "p"), _normalise(q, "q"))
    total = torch.zeros(p.shape[:-1], dtype=p.dtype, device=p.device)
    for start in range(0, p.shape[-1], _PAIR_CHUNK):
        pj = p[..., start : start + _PAIR_CHUNK]  # [..., J]
        qj = q[..., start : start + _PAIR_CHUNK]
        pairwise = torch.maximum(q[..., :, None] * pj[..., None, :], p[..., :, None] * qj[..., None, :])
        denominator = pairwise.sum(-2) + (num_rows - 1) * pj  # [..., J]
        numerator = num_rows * pj * qj
        total = total + torch.where(numerator > 0, numerator / denominator, 0.0).sum(-1)
    return total


def gumbel_coupling_match_prob(p: Tensor, q: Tensor) -> Tensor:
    """Exact Pr[X = Y] of the Gumbel-max coupling (K = 1): ``sum_j 1 / sum_i max(p_i/p_j,
    q_i/q_j)``. ``[..., N]`` -> ``[...]``."""
    return list_matching_bound(p, q, 1)


def total_variation(p: Tensor, q: Tensor) -> Tensor:
    """TV(p, q) = 0.5 * sum |p - q|; ``[..., N]`` -> ``[...]``."""
    _same_alphabet(p, q)
    return 0.5 * (_normalise(p, "p") - _normalise(q, "q")).abs().sum(-1)


def daliri_bound(p: Tensor, q: Tensor) -> Tensor:
    """Lower bound (1 - TV) / (1 + TV) on the Gumbel-max coupling's Pr[X = Y]."""
    tv = total_variation(p, q)
    return (1 - tv) / (1 + tv)


def matching_bound_given_sample(q: Tensor, p: Tensor, num_rows: int | None = None) -> Tensor:
    """Conditional list matching lemma: a lower bound on Pr[Y in list | Y = j], per j.

    With one proposal p (``[..., N]``) and K rows: ``(1 + q_j / (K p_j))^-1``. With K proposals
    p^(k) (``[..., K, N]``, conditional GLS): ``(1/K) sum_k (1 + q_j / (K p^(k)_j))^-1``.

    Returns:
        ``[..., N]``.
    """
    q = _normalise(q, "q")
    _same_alphabet(p, q)
    if num_rows is None:
        if p.dim() != q.dim() + 1:
            raise ShapeMismatchError(
                "pass p as [..., K, N] (one proposal per row) or give num_rows with p [..., N]"
            )
        p = _normalise(p, "p")
        k = p.shape[-2]
        per_row = k * p / (k * p + q.unsqueeze(-2))
        return torch.nan_to_num(per_row, nan=0.0).mean(-2)
    check_positive_int(num_rows, "num_rows (K)")
    p = _normalise(p, "p")
    return torch.nan_to_num(num_rows * p / (num_rows * p + q), nan=0.0)


def conditional_matching_bound(q: Tensor, p: Tensor, num_rows: int | None = None) -> Tensor:
    """Lower bound on Pr[Y in list] averaged over Y ~ q: ``sum_j q_j *``
    :func:`matching_bound_given_sample`. ``[...]``."""
    return (_normalise(q, "q") * matching_bound_given_sample(q, p, num_rows)).sum(-1)


def prop4_error_bound(info_density_bits: Tensor, num_decoders: int, num_labels: int) -> Tensor:
    """Prop. 4 upper bound on the error probability of the K-decoder GLS code.

    ``1 - E[(1 + 2**i / (K * L_max))^-1]`` with ``i = log2 p(w|a) / p(w|t)`` the information
    density, estimated as a mean over samples of it.

    Args:
        info_density_bits: ``[..., M]`` samples of i(W; A | T) in bits.

    Returns:
        ``[...]``.
    """
    check_positive_int(num_decoders, "num_decoders (K)")
    check_positive_int(num_labels, "num_labels (L_max)")
    # (1 + 2**i / (K L))^-1 = sigmoid(ln(K L) - i ln 2), stable for any i
    success = torch.sigmoid(math.log(num_decoders * num_labels) - info_density_bits * math.log(2))
    return 1 - success.mean(-1)
