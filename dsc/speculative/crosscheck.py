"""Token-level cross-check of multi-draft verification, independent of the block loop.

On positions given as a target distribution q ``[V]`` and K draft distributions p_1..p_K
``[K, V]`` (each draft sampled from its own p_k, independently):

- :func:`specinfer_acceptance`: SpecInfer's exact probability of accepting some draft,
  1 - prod_k (1 - sum_x min(p_k(x), r_k(x))) with r_1 = q and r_{k+1} = normalize((r_k - p_k)+)
  (the residual after a rejection does not depend on the rejected token);
- :func:`gls_match_frequency`: GLS's match probability Pr[Y in {X_1..X_K}] by Monte Carlo with
  shared exponentials E ``[K, V]``: X_k = argmin_i E_k,i / p_k,i, Y = argmin_i min_k E_k,i / q_i;
- :func:`single_draft_acceptance`: one draft from p_1, 1 - TV(p_1, q) = sum_x min(p_1(x), q(x)).

:func:`crosscheck` averages the three over many positions, with standard errors. Its noise comes
from its own generator, not from the study's shared noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from dsc.errors import InvalidArgumentError, ShapeMismatchError
from dsc.eval.stats import mean_se
from dsc.speculative.distributions import check_distribution

CHUNK_ELEMENTS = 1 << 22  # exponentials drawn at once by the Monte Carlo estimate


def _check(q: Tensor, p: Tensor) -> tuple[Tensor, Tensor]:
    """``q`` ``[..., V]`` and ``p`` ``[..., K, V]`` as float64 distributions (K >= 1)."""
    if not isinstance(q, Tensor) or not isinstance(p, Tensor) or p.dim() < 2 or p.dim() != q.dim() + 1:
        raise ShapeMismatchError("need q [..., V] and p [..., K, V]")
    if p.shape[-2] < 1 or p.shape[:-2] != q.shape[:-1] or p.shape[-1] != q.shape[-1]:
        raise ShapeMismatchError(f"q {tuple(q.shape)} and p {tuple(p.shape)} must be [..., V] and [..., K >= 1, V]")
    return check_distribution(q, "target distribution q"), check_distribution(p, "draft distributions p")


def compact(q: Tensor, p: Tensor) -> tuple[Tensor, Tensor]:
    """One position ``q`` ``[V]``, ``p`` ``[K, V]`` restricted to the S tokens that q or some
    p_k can emit -> float64 CPU tensors ``[S]`` and ``[K, S]`` (top-k supports keep S small)."""
    q, p = _check(q, p)
    if q.dim() != 1:
        raise ShapeMismatchError(f"compact takes one position: q [V] and p [K, V], got q {tuple(q.shape)}")
    keep = torch.nonzero((q > 0) | (p > 0).any(dim=0))[:, 0]
    return q[keep].cpu(), p[:, keep].cpu()


def stack(positions: Sequence[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """Positions ``(q [S_i], p [K, S_i])`` -> ``q`` ``[P, S]`` and ``p`` ``[P, K, S]``, zero-padded
    to the largest S (a zero-probability token is never drawn)."""
    if not positions:
        raise InvalidArgumentError("the cross-check needs at least one position")
    drafts = {p.shape[0] for _, p in positions}
    if len(drafts) != 1:
        raise ShapeMismatchError(f"every position needs the same number of drafts K, got {sorted(drafts)}")
    width = max(q.shape[-1] for q, _ in positions)
    qs = torch.zeros(len(positions), width, dtype=torch.float64)
    ps = torch.zeros(len(positions), drafts.pop(), width, dtype=torch.float64)
    for i, (q, p) in enumerate(positions):
        qs[i, :q.shape[-1]], ps[i, :, :p.shape[-1]] = q, p
    return qs, ps


def single_draft_acceptance(q: Tensor, p: Tensor) -> Tensor:
    """1 - TV(p_1, q) = sum min(p_1, q): ``q`` ``[..., V]``, ``p`` ``[..., K, V]`` -> ``[...]``."""
    q, p = _check(q, p)
    return torch.minimum(p[..., 0, :], q).sum(-1)


def specinfer_acceptance(q: Tensor, p: Tensor) -> Tensor:
    """SpecInfer's exact probability that one of K drafts (draft k ~ p_k, tried in order k = 1..K)
    is accepted: ``q`` ``[..., V]``, ``p`` ``[..., K, V]`` -> ``[...]``."""
    q, p = _check(q, p)
    r, reject = q, torch.ones(q.shape[:-1], dtype=torch.float64, device=q.device)
    for k in range(p.shape[-2]):
        reject = reject * (1 - torch.minimum(p[..., k, :], r).sum(-1)).clamp_min(0)
        residual = (r - p[..., k, :]).clamp_min(0)
        total = residual.sum(-1, keepdim=True)
        r = torch.where(total > 0, residual / total.clamp_min(1e-300), r)  # total 0: draft k is always accepted
    return 1 - reject


def gls_match_frequency(q: Tensor, p: Tensor, samples: int, generator: torch.Generator | None = None) -> Tensor:
    """Fraction of ``samples`` draws of the shared noise in which GLS's Y equals some draft X_k:
    ``q`` ``[P, V]``, ``p`` ``[P, K, V]`` -> ``[P]`` (float64)."""
    q, p = _check(q, p)
    if q.dim() != 2:
        raise ShapeMismatchError(f"gls_match_frequency takes q [P, V] and p [P, K, V], got q {tuple(q.shape)}")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise InvalidArgumentError(f"samples must be an integer >= 1, got {samples!r}")
    (n, k, v), device = p.shape, q.device
    log_q, log_p = q.log()[:, None, :], p.log()[:, None, :, :]  # -inf where a token has probability 0
    hits = torch.zeros(n, dtype=torch.long, device=device)
    step = max(1, CHUNK_ELEMENTS // max(1, n * k * v))
    for done in range(0, samples, step):
        m = min(step, samples - done)
        e = torch.empty(n, m, k, v, dtype=torch.float64, device=device).exponential_(generator=generator)
        log_e = e.clamp_min_(torch.finfo(torch.float64).tiny).log()  # finite: -inf - log(0) would be NaN
        x = torch.argmin(log_e - log_p, dim=-1)  # [P, m, K]
        y = torch.argmin(log_e.min(dim=2).values - log_q, dim=-1)  # [P, m]
        hits += (x == y[..., None]).any(dim=-1).sum(dim=1)
    return hits.double() / samples


def crosscheck(positions: Sequence[tuple[Tensor, Tensor]], samples: int = 1000, seed: int = 0) -> dict:
    """The three acceptance probabilities averaged over ``positions`` ``(q [S], p [K, S])``.

    Returns ``positions``, ``drafts``, ``samples``, ``seed`` and, each with ``_se`` (standard
    error of the mean over positions): ``specinfer`` (exact), ``gls`` (Monte Carlo, ``samples``
    draws per position, from a generator seeded with ``seed``; ``gls_mc_se``: the Monte Carlo
    error of the mean given the positions, from the per-position binomial variances),
    ``single_draft`` (exact) and the paired difference ``gls_minus_specinfer``."""
    q, p = stack(positions)
    generator = torch.Generator().manual_seed(seed)
    gls = gls_match_frequency(q, p, samples, generator)
    specinfer, single = specinfer_acceptance(q, p), single_draft_acceptance(q, p)
    out = {"positions": len(positions), "drafts": p.shape[1], "samples": samples, "seed": seed}
    for name, values in (("specinfer", specinfer), ("gls", gls), ("single_draft", single),
                         ("gls_minus_specinfer", gls - specinfer)):
        out[name], out[f"{name}_se"] = mean_se(values.tolist())
    variances = gls * (1 - gls) / max(1, samples - 1)  # of each position's frequency, given the position
    out["gls_mc_se"] = math.sqrt(variances.sum().item()) / len(positions)
    return out
