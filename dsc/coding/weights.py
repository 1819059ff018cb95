"""Importance log-weights of Gaussian posteriors against a Gaussian prior, with exact maxima.

The coder stops scanning early, with exactly the full scan's result, when it knows an upper bound
of each message's log-weight (:mod:`dsc.coding.importance`). For the common case of learned
and closed-form codecs, a Gaussian posterior N(mean, S) (the encoder's p(w | a) or a decoder's
p(w | t)) against the candidates' Gaussian prior N(m0, s0^2 I), the log-weight

    log w(u) = log N(u; mean, S) - log N(u; m0, s0^2 I)

is a quadratic in u. Where S0 - S is positive definite (S0 = s0^2 I: every posterior direction
narrower than the prior) its supremum is attained and equals

    max_u log w(u) = (mean - m0)^T (S0 - S)^{-1} (mean - m0) / 2 + (log det S0 - log det S) / 2;

elsewhere the weight is unbounded (+inf: that message is scanned in full).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from dsc.errors import InvalidArgumentError, ShapeMismatchError

if TYPE_CHECKING:
    from dsc.coding.importance import GaussianPrior


def _prior_moments(prior, dim: int) -> tuple[Tensor, Tensor]:
    """The prior's mean and variance per coordinate, ``[d]`` each (float64)."""
    try:
        mean = torch.as_tensor(prior.mean, dtype=torch.float64).cpu().expand(dim)
        var = torch.as_tensor(prior.std, dtype=torch.float64).cpu().expand(dim) ** 2
    except (AttributeError, RuntimeError, TypeError) as error:
        raise InvalidArgumentError("prior must be a dsc.coding.GaussianPrior (mean, std and dim), e.g. the "
                                   f"coder's prior; got {type(prior).__name__}") from error
    return mean, var


@dataclass(frozen=True, eq=False)
class GaussianLogWeight:
    """``log N(u; mean, S) - log N(u; prior)`` for candidates ``u`` ``[B, n, d]``.

    Args:
        mean: ``[B, d]`` for the encoder (weights ``[B, n]``) or ``[B, R, d]`` for R decoders
            (weights ``[B, R, n]``).
        prior: the coder's :class:`dsc.coding.GaussianPrior` (``dim`` = d).
        var: diagonal posterior variances, broadcastable to ``mean`` (a float, ``[d]``, or
            ``mean``'s shape); or
        cov: full posterior covariances ``[..., d, d]`` whose leading dimensions broadcast to
            ``mean``'s (``[d, d]`` for all, ``[B, d, d]``, ``[B, R, d, d]``). Give exactly one.

    ``maximum()`` is the exact supremum over u (``[B]`` or ``[B, R]``, float64; +inf where
    unbounded), so the coder stops early; ``subset(rows)`` keeps some messages. Log-weights are
    computed in float64.
    """

    mean: Tensor
    prior: GaussianPrior
    var: Tensor | float | None = None
    cov: Tensor | None = None
    _precision: Tensor | None = field(default=None, init=False, repr=False)
    _log_det: Tensor | None = field(default=None, init=False, repr=False)
    _prior_mean: Tensor | None = field(default=None, init=False, repr=False)
    _prior_var: Tensor | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        mean = self.mean
        if not isinstance(mean, Tensor) or mean.dim() not in (2, 3) or not mean.is_floating_point():
            raise ShapeMismatchError("mean must be a float tensor [B, d] (encoder) or [B, R, d] (decoders), got "
                                     f"{tuple(mean.shape) if isinstance(mean, Tensor) else type(mean).__name__}")
        dim = mean.shape[-1]
        if getattr(self.prior, "dim", None) != dim:
            raise ShapeMismatchError(f"mean has d = {dim} coordinates but the prior has dim = "
                                     f"{getattr(self.prior, 'dim', None)}")
        prior_mean, prior_var = _prior_moments(self.prior, dim)
        if not torch.isfinite(mean).all():
            raise InvalidArgumentError("mean must be finite")
        object.__setattr__(self, "mean", mean.detach())
        object.__setattr__(self, "_prior_mean", prior_mean.to(mean.device))
        object.__setattr__(self, "_prior_var", prior_var.to(mean.device))
        if (self.var is None) == (self.cov is None):
            raise InvalidArgumentError("give exactly one of var (diagonal variances) and cov (full covariances)")
        if self.var is not None:
            var = torch.as_tensor(self.var, dtype=torch.float64, device=mean.device)
            try:
                var = var.broadcast_to(mean.shape)
            except RuntimeError:
                raise ShapeMismatchError(f"var of shape {tuple(var.shape)} does not broadcast to mean "
                                         f"{tuple(mean.shape)}") from None
            if not (torch.isfinite(var).all() and (var > 0).all()):
                raise InvalidArgumentError("var must hold finite variances > 0")
            object.__setattr__(self, "var", var)
            object.__setattr__(self, "_log_det", var.log().sum(-1))
            return
        cov = self.cov
        if not isinstance(cov, Tensor) or cov.dim() < 2 or cov.shape[-2:] != (dim, dim):
            raise ShapeMismatchError(f"cov must be a tensor [..., {dim}, {dim}], got "
                                     f"{tuple(cov.shape) if isinstance(cov, Tensor) else type(cov).__name__}")
        try:
            cov = cov.to(device=mean.device, dtype=torch.float64).broadcast_to(mean.shape + (dim,))
        except RuntimeError:
            raise ShapeMismatchError(f"cov of shape {tuple(cov.shape)} does not broadcast to "
                                     f"{tuple(mean.shape) + (dim,)}") from None
        if not torch.isfinite(cov).all() or not torch.allclose(cov, cov.transpose(-1, -2), rtol=1e-10, atol=1e-12):
            raise InvalidArgumentError("cov must hold finite symmetric matrices")
        chol, info = torch.linalg.cholesky_ex(cov)
        if bool((info != 0).any()):
            raise InvalidArgumentError("cov must be positive definite (its Cholesky factorisation failed)")
        object.__setattr__(self, "cov", cov)
        object.__setattr__(self, "_precision", torch.cholesky_inverse(chol))
        object.__setattr__(self, "_log_det", 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1))

    @property
    def dim(self) -> int:
        return self.mean.shape[-1]

    def __call__(self, u: Tensor) -> Tensor:
        """Candidates ``[B, n, d]`` -> log-weights ``[B, n]`` or ``[B, R, n]`` (float64)."""
        u = u.to(torch.float64)
        mean = self.mean.to(torch.float64)
        decoders = mean.dim() == 3
        x = u[:, None] if decoders else u  # [B, (1,) n, d]
        diff = x - mean[..., None, :]  # [B, (R,) n, d]
        if self._precision is None:
            quad = (diff**2 / self.var[..., None, :]).sum(-1)
        else:
            quad = torch.einsum("...nd,...de,...ne->...n", diff, self._precision, diff)
        prior_quad = ((x - self._prior_mean) ** 2 / self._prior_var).sum(-1)
        log_det = self._log_det[..., None]
        return -0.5 * (quad + log_det) + 0.5 * (prior_quad + self._prior_var.log().sum())

    def maximum(self) -> Tensor:
        """The supremum over u of each message's log-weight: ``[B]`` or ``[B, R]`` float64, +inf
        where some posterior direction is at least as wide as the prior."""
        prior_var = self._prior_var
        delta = self.mean.to(torch.float64) - self._prior_mean
        log_det_gap = prior_var.log().sum() - self._log_det
        if self._precision is None:
            gap = prior_var - self.var
            bounded = (gap > 0).all(-1)
            quad = (delta**2 / gap.clamp_min(1e-300)).sum(-1)
        else:
            gap = torch.diag_embed(prior_var.expand(delta.shape)) - self.cov
            chol, info = torch.linalg.cholesky_ex(gap)
            bounded = info == 0
            eye = torch.eye(self.dim, dtype=torch.float64, device=delta.device)
            chol = torch.where(bounded[..., None, None], chol, eye)
            z = torch.linalg.solve_triangular(chol, delta[..., None], upper=False)[..., 0]
            quad = (z**2).sum(-1)
        value = 0.5 * (quad + log_det_gap)
        return torch.where(bounded, value, torch.full_like(value, float("inf")))

    def subset(self, rows: Tensor) -> "GaussianLogWeight":
        """The same weight for messages ``rows`` only (the coder drops finished messages)."""
        part = object.__new__(GaussianLogWeight)
        for name in ("mean", "var", "cov", "_precision", "_log_det"):
            value = getattr(self, name)
            object.__setattr__(part, name, value[rows] if isinstance(value, Tensor) else value)
        for name in ("prior", "_prior_mean", "_prior_var"):
            object.__setattr__(part, name, getattr(self, name))
        return part
