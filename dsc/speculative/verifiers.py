"""Verifiers of multi-draft speculative sampling: K drafts of L tokens in, the tokens the target
model emits out (every one an exact sample of the target given the tokens before it).

Methods (``METHODS``):

- ``single_draft``: speculative sampling with one draft: accept x with probability
  min(1, q(x) / p(x)); on rejection emit a sample of normalize((q - p)+) and stop.
- ``specinfer``: recursive rejection sampling over the K drafts: try each draft that is still
  consistent with the output; after a rejection the residual becomes normalize((r - p_k)+).
- ``spectr``: SpecTr's K-SEQ for i.i.d. drafts: accept x_k with min(1, q / (rho* p)); rho* is the
  smallest rho in [1, m] (m drafts still consistent) with rho beta(rho) >= 1 - (1 - beta)^m,
  beta(rho) = sum min(p, q / rho), found by bisection; the residual is
  (q - min(p, q / rho*) gamma / beta) / (1 - gamma) with gamma = 1 - (1 - beta)^m.
- ``gumbel``: Daliri et al.'s single-draft Gumbel coupling: Y = argmin E / q with the draft's own
  noise; the block goes on while Y equals the draft.
- ``gls``: GLS (the paper's Algorithm 2), conditional drafter invariance: Y_j = argmin_i
  min_{k in S} E^(j,k)_i / q_i over the drafts S still consistent; drop the drafts that differ.
- ``gls_strong``: the same with the min over all K rows (strong drafter invariance: the output
  depends on the shared noise, the context and the target only).

The GLS and Gumbel verifiers read the draft rows of the shared noise, which the drafter must
have sampled its tokens with (:func:`dsc.speculative.noise.draft_tokens`); the others use the
acceptance uniforms and the residual row. Nothing is drawn from a global generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dsc.errors import InvalidArgumentError
from dsc.speculative.distributions import check_block, check_distribution
from dsc.speculative.noise import SharedNoise, gumbel_sample

METHODS = ("single_draft", "specinfer", "spectr", "gumbel", "gls", "gls_strong")
SINGLE_DRAFT_METHODS = ("single_draft", "gumbel")
GUMBEL_METHODS = ("gumbel", "gls", "gls_strong")  # verify with the drafts' own noise rows
BISECTION_STEPS = 50


@dataclass(frozen=True)
class Verified:
    """``tokens`` ``[B, L + 1]`` (emitted tokens, -1 after the last), ``emitted`` ``[B]`` (1 ..
    L + 1, the bonus token included) and ``accepted`` ``[B, L]`` (position j emitted a draft's
    token and the block went on)."""

    tokens: Tensor
    emitted: Tensor
    accepted: Tensor


def _normalized(r: Tensor, fallback: Tensor) -> Tensor:
    total = r.sum(-1, keepdim=True)
    return torch.where(total > 0, r / total.clamp_min(1e-300), fallback)


def _pick(values: Tensor, index: Tensor) -> Tensor:
    """values ``[B, V]`` at index ``[B]`` -> ``[B]``."""
    return values.gather(-1, index[:, None])[:, 0]


def _spectr_rho(p: Tensor, q: Tensor, m: Tensor) -> Tensor:
    """rho* per row (``p``, ``q`` ``[B, V]``, ``m`` ``[B]`` drafts) by bisection on [1, m]."""
    low, high = torch.ones_like(m, dtype=torch.float64), m.double().clamp_min(1.0)

    def feasible(rho: Tensor) -> Tensor:
        beta = torch.minimum(p, q / rho[:, None]).sum(-1)
        return rho * beta >= 1 - (1 - beta) ** m

    ok_low = feasible(low)
    for _ in range(BISECTION_STEPS):
        mid = (low + high) / 2
        good = feasible(mid)
        high = torch.where(good, mid, high)
        low = torch.where(good, low, mid)
    return torch.where(ok_low, torch.ones_like(high), high)


def verify_position(method: str, x: Tensor, p: Tensor, q: Tensor, active: Tensor, draft_noise: Tensor | None,
                    residual_noise: Tensor | None, uniforms: Tensor | None,
                    bonus: bool = False) -> tuple[Tensor, Tensor]:
    """One output position. ``x`` ``[B, K]`` draft tokens, ``p`` ``[B, K, V]`` their
    probabilities, ``q`` ``[B, V]`` the target's, ``active`` ``[B, K]`` drafts consistent with the
    output so far; noise: the draft rows ``[B, K, V]`` (GLS, Gumbel) or the residual row ``[B, V]``
    and acceptance uniforms ``[B, K]`` (the rejection methods). ``bonus``: after the last draft
    position (no draft tokens; ``x`` and ``p`` are ignored).
    Returns the emitted token ``[B]`` and the drafts still consistent after it ``[B, K]``
    (all False when the block ends here)."""
    if method in GUMBEL_METHODS:
        log_e = torch.log(draft_noise)
        if method != "gls_strong":
            log_e = log_e.masked_fill(~active[..., None], float("inf"))
        y = torch.argmin(log_e.min(dim=1).values - torch.log(q), dim=-1)
        return y, active & (x == y[:, None]) & (not bonus)
    if bonus:
        return gumbel_sample(residual_noise, q), torch.zeros_like(active)
    b, k = x.shape
    y = torch.full((b,), -1, dtype=torch.long, device=x.device)
    decided = torch.zeros(b, dtype=torch.bool, device=x.device)
    if method == "spectr":
        first = active.int().argmax(dim=1)
        p_iid = p[torch.arange(b, device=p.device), first]
        m = active.sum(dim=1)
        rho = _spectr_rho(p_iid, q, m)
        a = torch.minimum(p_iid, q / rho[:, None])
        beta = a.sum(-1)
        gamma = 1 - (1 - beta) ** m
    r = q
    for j in range(k):
        try_now = active[:, j] & ~decided
        xj = x[:, j]
        if method == "spectr":
            ratio = _pick(q, xj) / (rho * _pick(p_iid, xj))
        else:  # single_draft, specinfer
            ratio = _pick(r, xj) / _pick(p[:, j], xj)
        accept = try_now & (uniforms[:, j] < ratio)
        y = torch.where(accept, xj, y)
        decided |= accept
        if method == "specinfer":
            rejected = try_now & ~accept
            r = torch.where(rejected[:, None], _normalized((r - p[:, j]).clamp_min(0), r), r)
    if method == "spectr":
        residual = (q - a * (gamma / beta.clamp_min(1e-300))[:, None]).clamp_min(0)
    elif method == "single_draft":
        residual = (q - p[:, 0]).clamp_min(0)
    else:
        residual = r
    y = torch.where(decided, y, gumbel_sample(residual_noise, _normalized(residual, q)))
    return y, active & (x == y[:, None]) & decided[:, None]


def verify_block(method: str, draft_tokens: Tensor, draft_probs: Tensor, target_probs: Tensor,
                 noise: SharedNoise, sequences: Tensor, start: Tensor, draft_noise: Tensor | None = None) -> Verified:
    """Verify K drafts of L tokens for B sequences in one target call.

    ``draft_tokens`` ``[B, K, L]``; ``draft_probs`` ``[B, K, L, V]`` (p^(j,k): draft k's
    distribution at position j given its own first j tokens); ``target_probs``
    ``[B, K, L + 1, V]`` (q^(j,k) likewise); ``sequences`` ``[B]`` and ``start`` ``[B]`` the
    absolute output position of each block's first token (keys of the shared noise).
    ``draft_noise`` ``[B, K, L + 1, V]``, optional: the draft rows at the block's L + 1
    positions when the drafter already drew them (GLS and Gumbel read them; they are
    regenerated from ``noise`` otherwise, with the same values).
    """
    if method not in METHODS:
        raise InvalidArgumentError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    b, k, length, v = check_block(draft_tokens, draft_probs, target_probs)
    if method in SINGLE_DRAFT_METHODS and k != 1:
        raise InvalidArgumentError(f"{method} verifies a single draft; got K = {k}")
    draft_probs = check_distribution(draft_probs, "draft probabilities")
    target_probs = check_distribution(target_probs, "target probabilities")
    if draft_probs.gather(-1, draft_tokens[..., None]).le(0).any():
        raise InvalidArgumentError("a draft token has probability 0 under its own draft distribution")
    rows = torch.arange(b, device=draft_tokens.device)
    tokens = torch.full((b, length + 1), -1, dtype=torch.long, device=draft_tokens.device)
    accepted = torch.zeros((b, length), dtype=torch.bool, device=draft_tokens.device)
    alive = torch.ones(b, dtype=torch.bool, device=draft_tokens.device)
    active = torch.ones((b, k), dtype=torch.bool, device=draft_tokens.device)
    for j in range(length + 1):
        position = start + j
        first = active.int().argmax(dim=1)  # any consistent draft: they share the true prefix
        q = target_probs[rows, first, j]
        bonus = j == length
        x = draft_tokens[:, :, min(j, length - 1)]
        p = draft_probs[:, :, min(j, length - 1)]
        if method in GUMBEL_METHODS:
            own = noise.draft_rows(sequences, position, k, v) if draft_noise is None else draft_noise[:, :, j]
            y, still = verify_position(method, x, p, q, active, own, None, None, bonus)
        else:
            y, still = verify_position(method, x, p, q, active, None, noise.residual_row(sequences, position, v),
                                       noise.acceptance_uniforms(sequences, position, k), bonus)
        tokens[:, j] = torch.where(alive, y, tokens[:, j])
        if not bonus:
            go_on = alive & still.any(dim=1)
            accepted[:, j] = go_on
            alive, active = go_on, still
    emitted = (tokens >= 0).sum(dim=1)
    return Verified(tokens, emitted, accepted)
