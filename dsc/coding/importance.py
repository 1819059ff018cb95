"""Importance-sampled conditional GLS over N shared candidates: the compression coder.

Per message b, the shared randomness defines N candidates U_j ~ prior, a label l_j in
[0, L_max) for each, and K rows of exponentials E_j^(k) (layout: :mod:`dsc.coding.streams`).

- Encoder (observes a): ``Y = argmin_j min_k E_j^(k) / w_j`` with ``log w_j = log p(U_j | a) -
  log p(U_j)``; it sends the label ``l_Y`` (log2 L_max bits).
- Decoder k (observes t_k and the label m): ``X^(k) = argmin_{j: l_j = m} E_j^(k) / v_j^(k)``
  with its own row k and its own log-weights ``log v_j^(k)``.
- Scheme ``shared_randomness`` (the baseline): encoder and every decoder use row 0 only.

Candidates are indexed by arrival order: the row-wise minima M_(j) increase with j (see
:mod:`dsc.coding.streams`). Every party scans arrivals in chunks and keeps a running
first-occurrence argmin. Given an upper bound on its log-weights (``log_weight_max``, or by
default the log-weight callable's own ``maximum()``), a party stops as soon as
``log M_(next) - log_weight_max`` exceeds its best score: no later arrival can win, so the result
equals the full scan's exactly, at a fraction of the cost. Gaussian posteriors against the
Gaussian prior get their exact maximum from :class:`dsc.coding.weights.GaussianLogWeight`.
Without a bound a party scans all N, and the coder warns once per party
(:class:`UnboundedWeightWarning`) when N >= 2**12, unless the callable declares
``maximum = None`` (no bound exists). Everything is batched over messages ``[B]``; peak memory is
``O(B * chunk_size * (dim + K))`` whatever N is, and chunking changes no result.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, NamedTuple, Protocol, Sequence

import torch
from torch import Tensor

from dsc.coding.randomness import MAX_INTEGERS_HIGH, CounterRandomness, check_dtype
from dsc.coding.streams import (
    ARRIVAL_FRACTION_BITS,
    arrival_increments,
    balanced_labels,
    candidate_labels,
    candidate_normals,
    check_messages,
    check_num_rows,
    exponential_rows,
    winning_rows,
)
from dsc.coding.validation import check_positive_int
from dsc.coding.weights import GaussianLogWeight
from dsc.errors import InvalidArgumentError, InvalidProbabilityError, ShapeMismatchError

AUTO_CHUNK_PAIRS_CPU = 2**16  # candidate-message pairs per chunk: fits the CPU caches
AUTO_CHUNK_PAIRS_CUDA = 2**22  # large enough to fill a GPU
AUTO_CHUNK_MIN = 64

WEIGHT_BOUND_SLACK = 1e-3  # absorbs rounding in log-weights computed near their maximum

UNBOUNDED_WARNING_MIN_CANDIDATES = 2**12  # from here on a full scan costs several times a bounded one
# How many times as long a full scan took as a bounded one (a callable with maximum(); a
# GaussianLogWeight, whose subset() also drops finished messages), encode + decode, on the
# Gaussian example of docs/api.md (K = 4, 3 label bits, B = 256, 2-core CPU):
# results/bench_coding/bounds_cpu.txt.
MEASURED_SLOWDOWN = {2**10: (2, 2), 2**12: (3, 6), 2**14: (4, 18), 2**16: (11, 69), 2**18: (40, 281)}

LogWeightFn = Callable[[Tensor], Tensor]
"""Maps candidates ``[B, n, dim]`` to log importance weights: ``[B, n]`` for the encoder,
``[B, R, n]`` for R decoders; row b (message b) depends on row b of the candidates only. ``-inf``
means weight zero; NaN and ``+inf`` are errors. Optional attributes: ``maximum()`` (an upper
bound per message, ``[B]`` or ``[B, R]``: exact early stopping; ``None``: no bound exists) and
``subset(rows)`` (the same weight for messages ``rows`` only)."""


class UnboundedWeightWarning(UserWarning):
    """A log-weight without a known maximum made a party scan all N candidates."""


_WARNED: set[str] = set()  # parties already warned in this process
_MISSING = object()


def _slowdown(num_candidates: int) -> str:
    """The measured full-scan slowdown at the nearest benchmarked N (see MEASURED_SLOWDOWN)."""
    nearest = min(MEASURED_SLOWDOWN, key=lambda n: abs(math.log2(n) - math.log2(num_candidates)))
    alone, gaussian = MEASURED_SLOWDOWN[nearest]
    return (f"{alone}x as long at N = 2^{int(math.log2(nearest))} as with a maximum(), {gaussian}x as long as with "
            "a GaussianLogWeight")


def _declared_bound(log_weight, explicit: Tensor | None, party: str, num_candidates: int) -> Tensor | None:
    """``explicit`` if given, else ``log_weight.maximum()`` when the callable has one; warns once
    per party (N >= UNBOUNDED_WARNING_MIN_CANDIDATES) when it has none and does not declare
    ``maximum = None``."""
    if explicit is not None:
        return explicit
    maximum = getattr(log_weight, "maximum", _MISSING)
    if callable(maximum):
        return maximum()
    if maximum is _MISSING and num_candidates >= UNBOUNDED_WARNING_MIN_CANDIDATES and party not in _WARNED:
        _WARNED.add(party)
        warnings.warn(UnboundedWeightWarning(
            f"the {party}'s log_weight has no maximum(), so every one of the N = {num_candidates:,} candidates is "
            f"scanned; with an exact upper bound the scan stops early with the same result (in the project's "
            f"benchmark a full scan took {_slowdown(num_candidates)}). Give the callable a maximum() method "
            f"({'[B]' if party == 'encoder' else '[B, R]'}), pass log_weight_max=, or build it with "
            "dsc.coding.GaussianLogWeight for a Gaussian posterior; set maximum = None on it to declare that no "
            "bound exists (docs/sources.md)."), stacklevel=3)
    return None


class Scheme(str, Enum):
    """Which exponential rows the parties use."""

    GLS = "gls"  # K rows: encoder takes the row-wise minimum, decoder k uses row k
    SHARED_RANDOMNESS = "shared_randomness"  # baseline: everyone uses row 0


class CandidatePrior(Protocol):
    """A prior that candidates are drawn from, as a transform of standard normals."""

    dim: int

    def from_standard_normal(self, z: Tensor) -> Tensor:
        """``[..., dim]`` standard normals -> ``[..., dim]`` prior samples."""


@dataclass(frozen=True)
class GaussianPrior:
    """Diagonal Gaussian prior N(mean, std**2 I) in ``dim`` dimensions (scalars broadcast)."""

    dim: int = 1
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self) -> None:
        check_positive_int(self.dim, "prior dim")
        if not self.std > 0:
            raise InvalidArgumentError(f"prior std must be > 0, got {self.std}")

    def from_standard_normal(self, z: Tensor) -> Tensor:
        return self.mean + self.std * z


class Encoded(NamedTuple):
    """Encoder output per message: chosen candidate ``index`` ``[B]``, its ``label`` ``[B]``
    (the message that is sent) and the ``candidate`` itself ``[B, dim]``."""

    index: Tensor
    label: Tensor
    candidate: Tensor


class Decoded(NamedTuple):
    """Decoder outputs for R decoders: ``index`` ``[B, R]``, ``candidate`` ``[B, R, dim]``,
    ``found`` ``[B, R]`` (False when the received bin held no candidate of positive weight; the
    index is then -1 and the candidate is the prior's value at z = 0) and ``score`` ``[B, R]``
    float64 (the pick's race score log E - log v, lower for an earlier, heavier pick; +inf when
    nothing was found)."""

    index: Tensor
    candidate: Tensor
    found: Tensor
    score: Tensor


class _Best:
    """Per-message best score and index (``[B, ...]``), updated for active rows from chunks
    of scores ``[B', ..., n]``; ties keep the first occurrence, so chunking changes nothing."""

    def __init__(self, score: Tensor, index: Tensor) -> None:
        self.score, self.index = score, index

    def update(self, active: Tensor, scores: Tensor, index: Tensor) -> None:
        """``scores`` ``[B', ..., m]`` of candidates ``index`` (``[m]`` or ``[B', m]``)."""
        pos = torch.argmin(scores, dim=-1, keepdim=True)
        score = scores.gather(-1, pos).squeeze(-1).to(torch.float64)
        if index.dim() == 1:
            idx = index[pos.squeeze(-1)]
        else:
            shape = (index.shape[0],) + (1,) * (scores.dim() - 2) + (index.shape[1],)
            idx = index.reshape(shape).expand_as(scores).gather(-1, pos).squeeze(-1)
        current = self.score[active]
        better = score < current
        self.score[active] = torch.where(better, score, current)
        self.index[active] = torch.where(better, idx, self.index[active])


def _bad_weights(log_w: Tensor, bound: Tensor | None) -> Tensor:
    """True when log-weights hold NaN or +inf, or exceed their declared bound."""
    bad = torch.isnan(log_w) | (log_w == float("inf"))
    if bound is not None:  # the bound already includes WEIGHT_BOUND_SLACK
        bad |= log_w > bound
    return bad.any()


def _raise_if_bad(bad: Tensor, party: str, bounded: bool) -> None:
    if bool(bad):
        extra = ", and never above log_weight_max" if bounded else ""
        raise InvalidProbabilityError(
            f"the {party}'s log_weight returned NaN or +inf or exceeded its bound; it must "
            f"return finite values or -inf{extra}"
        )


def _check_bound(bound: Tensor | None, shape: tuple[int, ...], name: str) -> Tensor | None:
    if bound is None:
        return None
    if not isinstance(bound, Tensor) or tuple(bound.shape) != shape:
        got = tuple(bound.shape) if isinstance(bound, Tensor) else type(bound).__name__
        raise ShapeMismatchError(f"{name} must have shape {shape}, got {got}")
    if torch.isnan(bound).any():
        raise InvalidProbabilityError(f"{name} contains NaN")
    return bound.to(torch.float64) + WEIGHT_BOUND_SLACK


@dataclass(frozen=True)
class ImportanceCoder:
    """Shared configuration of the encoder and the K decoders of one coding session.

    Args:
        seed: shared seed; all randomness is keyed by (seed, message, row, candidate).
        prior: the candidates' distribution p_W (``dim`` coordinates).
        num_candidates: N.
        num_labels: L_max; the message costs log2(L_max) bits.
        num_decoders: K.
        scheme: ``gls`` or ``shared_randomness`` (the baseline that shares row 0).
        balanced_labels: each label gets exactly N / L_max candidates (a keyed random
            permutation) instead of i.i.d. uniform labels.
        chunk_size: candidates scored at once per message; bounds memory, never changes
            results. ``None`` (default) picks it from the batch size and device so that a chunk
            holds about 2**16 (CPU, cache-sized) or 2**22 (GPU) candidate-message pairs.
        dtype: float32 or float64 for the candidates (arrival times and exponentials are
            float64).
    """

    seed: int
    prior: CandidatePrior
    num_candidates: int
    num_labels: int
    num_decoders: int = 1
    scheme: Scheme = Scheme.GLS
    balanced_labels: bool = False
    chunk_size: int | None = None
    dtype: torch.dtype = torch.float32
    rng: CounterRandomness = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rng", CounterRandomness(self.seed))
        check_positive_int(self.num_candidates, "num_candidates (N)")
        check_positive_int(self.num_labels, "num_labels (L_max)")
        if self.num_labels > MAX_INTEGERS_HIGH:
            raise InvalidArgumentError(f"num_labels (L_max) must be at most 2**31, got {self.num_labels}")
        check_num_rows(self.num_decoders, "num_decoders (K)")
        if self.chunk_size is not None:
            check_positive_int(self.chunk_size, "chunk_size")
        try:
            object.__setattr__(self, "scheme", Scheme(self.scheme))
        except ValueError:
            choices = ", ".join(s.value for s in Scheme)
            raise InvalidArgumentError(f"scheme must be one of {choices}; got {self.scheme!r}") from None
        if self.balanced_labels and self.num_candidates % self.num_labels:
            raise InvalidArgumentError(
                f"balanced labels need num_candidates divisible by num_labels; got N = "
                f"{self.num_candidates}, L_max = {self.num_labels}. Use a multiple of L_max "
                "or balanced_labels=False."
            )
        check_dtype(self.dtype)

    @property
    def rate_bits(self) -> float:
        """Bits per message: log2(L_max)."""
        return math.log2(self.num_labels)

    def _rows(self, decoders: Sequence[int], device: torch.device) -> Tensor:
        for k in decoders:
            if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < self.num_decoders:
                raise InvalidArgumentError(
                    f"decoder ids must be integers in [0, {self.num_decoders}), got {k!r}"
                )
        if self.scheme is Scheme.SHARED_RANDOMNESS:
            return torch.zeros(len(decoders), dtype=torch.long, device=device)
        return torch.tensor(list(decoders), dtype=torch.long, device=device)

    def _chunk_for(self, messages: Tensor) -> int:
        if self.chunk_size is not None:
            return self.chunk_size
        pairs = AUTO_CHUNK_PAIRS_CUDA if messages.is_cuda else AUTO_CHUNK_PAIRS_CPU
        return max(AUTO_CHUNK_MIN, pairs // max(1, messages.shape[0]))

    def _candidates(self, messages: Tensor, index: Tensor) -> Tensor:
        z = candidate_normals(self.rng, messages, index, self.prior.dim, self.dtype)
        return self.prior.from_standard_normal(z)

    def labels_of(self, messages: Tensor, index: Tensor) -> Tensor:
        """Labels of candidates ``index`` (``[n]`` or ``[B, n]``) of messages ``[B]`` -> ``[B, n]``."""
        return self._labels(check_messages(messages), self._check_index(index))

    def candidates_at(self, messages: Tensor, index: Tensor) -> Tensor:
        """Regenerate candidates ``[B, n, dim]`` at indices ``[B, n]`` of messages ``[B]``."""
        return self._candidates(check_messages(messages), self._check_index(index))

    def gaussian_weight(self, mean: Tensor, var: Tensor | float | None = None,
                        cov: Tensor | None = None) -> GaussianLogWeight:
        """The log-weight of a Gaussian posterior N(mean, var or cov) against this coder's
        (Gaussian) prior, with its exact ``maximum()``: ``mean`` ``[B, d]`` for :meth:`encode`,
        ``[B, R, d]`` for :meth:`decode` (:class:`dsc.coding.weights.GaussianLogWeight`)."""
        return GaussianLogWeight(mean, self.prior, var=var, cov=cov)

    def _check_index(self, index: Tensor) -> Tensor:
        if not isinstance(index, Tensor) or index.is_floating_point() or index.dim() not in (1, 2):
            raise InvalidArgumentError("candidate indices must be an integer tensor [n] or [B, n]")
        index = index.long()
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= self.num_candidates):
            raise InvalidArgumentError(f"candidate indices must be in [0, {self.num_candidates})")
        return index

    def _labels(self, messages: Tensor, index: Tensor) -> Tensor:
        if self.balanced_labels:
            return balanced_labels(self.rng, messages, index, self.num_candidates, self.num_labels)
        return candidate_labels(self.rng, messages, index, self.num_labels)

    @property
    def num_rows(self) -> int:
        """R: rows of exponentials per candidate (K for GLS, 1 for the baseline)."""
        return self.num_decoders if self.scheme is Scheme.GLS else 1

    def encode(
        self, messages: Tensor, log_weight: LogWeightFn, log_weight_max: Tensor | None = None
    ) -> Encoded:
        """Encode messages ``[B]``; ``log_weight`` maps ``[B, n, dim]`` -> ``[B, n]``.

        ``log_weight_max`` ``[B]``, optional (default: ``log_weight.maximum()`` where the callable
        has one): an upper bound of each message's log-weight over all candidates; it lets the scan
        stop early with exactly the full scan's result (and, when ``log_weight`` has a
        ``subset(rows)`` method, drop finished messages one by one).
        """
        messages = check_messages(messages)
        bound = _declared_bound(log_weight, log_weight_max, "encoder", self.num_candidates)
        bound = _check_bound(bound, (messages.shape[0],), "encoder log_weight_max")

        def scores(msgs, active, index, times, log_m, weight_fn):
            log_w = weight_fn(self._candidates(msgs, index))
            _check_weight_shape(log_w, (msgs.shape[0], index.shape[0]), "encoder log_weight")
            return log_m - log_w, index, log_w

        best = self._race(messages, log_weight, bound, scores, (), "encoder")
        if (best.score == float("inf")).any():
            raise InvalidProbabilityError(
                "for some messages no candidate has positive weight under the encoder's "
                "log_weight (all -inf); check the weights or use more candidates"
            )
        index = best.index
        label = self._labels(messages, index[:, None])[:, 0]
        candidate = self._candidates(messages, index[:, None])[:, 0]
        return Encoded(index, label, candidate)

    def encode_each(self, messages: Tensor, log_weight: LogWeightFn, num_sources: int,
                    log_weight_max: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The encoder's choice for ``num_sources`` (S) sources per message at once, on each
        message's shared randomness: ``log_weight`` maps candidates ``[B, n, dim]`` to
        ``[B, S, n]`` (optionally bounded by ``log_weight_max`` or its ``maximum()`` ``[B, S]``)
        -> (candidate ``index`` ``[B, S]``, ``label`` ``[B, S]``), each exactly what
        :meth:`encode` returns for that source alone. The candidates are drawn once per message
        for all S sources (decoder-side re-encoding, :mod:`dsc.estimates`)."""
        messages = check_messages(messages)
        check_positive_int(num_sources, "num_sources")
        bound = _declared_bound(log_weight, log_weight_max, "encoder", self.num_candidates)
        bound = _check_bound(bound, (messages.shape[0], num_sources), "encoder log_weight_max")

        def scores(msgs, active, index, times, log_m, weight_fn):
            log_w = weight_fn(self._candidates(msgs, index))
            _check_weight_shape(log_w, (msgs.shape[0], num_sources, index.shape[0]), "encoder log_weight")
            return log_m[:, None, :] - log_w, index, log_w

        best = self._race(messages, log_weight, bound, scores, (num_sources,), "encoder")
        if (best.score == float("inf")).any():
            raise InvalidProbabilityError("for some sources no candidate has positive weight under the encoder's "
                                          "log_weight (all -inf)")
        return best.index, self._labels(messages, best.index)

    def decode(
        self,
        messages: Tensor,
        labels: Tensor,
        log_weight: LogWeightFn,
        decoders: Sequence[int] | None = None,
        log_weight_max: Tensor | None = None,
    ) -> Decoded:
        """Decode received labels ``[B]`` of messages ``[B]`` at decoders ``decoders``
        (default: all K). ``log_weight`` maps ``[B, n, dim]`` -> ``[B, R, n]``;
        ``log_weight_max`` ``[B, R]``, optional (default: ``log_weight.maximum()`` where the
        callable has one), bounds it (early, exact stopping)."""
        messages = check_messages(messages)
        decoders = list(range(self.num_decoders)) if decoders is None else list(decoders)
        if not decoders:
            raise InvalidArgumentError("decoders must name at least one decoder")
        unique_rows, which = self._rows(decoders, messages.device).unique(return_inverse=True)
        labels = self._check_labels(labels, messages)
        bound = _declared_bound(log_weight, log_weight_max, "decoder", self.num_candidates)
        bound = _check_bound(bound, (messages.shape[0], len(decoders)), "decoder log_weight_max")

        def scores(msgs, active, index, times, log_m, weight_fn):
            # only arrivals in the received bin can be picked: gather them, padded to the
            # largest count in the batch, keeping arrival order (first occurrence wins ties)
            in_bin = self._labels(msgs, index) == labels[active, None]  # [B', n]
            count = in_bin.sum(dim=1)
            width = max(int(count.max()), 1)
            pos = torch.argsort((~in_bin).to(torch.int8), dim=1, stable=True)[:, :width]  # [B', m]
            arrivals = index[pos]
            log_w = weight_fn(self._candidates(msgs, arrivals))
            _check_weight_shape(log_w, (msgs.shape[0], len(decoders), width), "decoder log_weight")
            log_e = self._row_log_times(msgs, arrivals, times.gather(1, pos), log_m.gather(1, pos), unique_rows, which)
            padding = torch.arange(width, device=index.device)[None, :] >= count[:, None]
            return (log_e - log_w).masked_fill(padding[:, None, :], float("inf")), arrivals, log_w

        best = self._race(messages, log_weight, bound, scores, (len(decoders),), "decoder")
        found = best.score < float("inf")
        index = torch.where(found, best.index, torch.full_like(best.index, -1))
        candidate = self._candidates(messages, index.clamp(min=0))
        fallback = self.prior.from_standard_normal(torch.zeros_like(candidate))
        candidate = torch.where(found[..., None], candidate, fallback)
        return Decoded(index, candidate, found, best.score)

    def _race(self, messages, log_weight, bound, scores_of, extra_shape, party) -> "_Best":
        """Scan arrivals in chunks and keep each message's first-occurrence argmin of the
        scores that ``scores_of(msgs, active, index, M, log M, log_weight)`` returns with their
        arrival indices and log-weights (``[B', *extra_shape, m]``, ``[m]`` or ``[B', m]``). With a
        ``bound`` a message is finished once its last scanned arrival time certifies that no
        later arrival can beat its best, and leaves the scan: through ``log_weight.subset(rows)``
        where the callable has one, otherwise the callable goes on seeing the whole batch
        (:class:`_PaddedRows`) while only the active messages' randomness is drawn."""
        batch, device = messages.shape[0], messages.device
        best = _Best(
            torch.full((batch, *extra_shape), float("inf"), dtype=torch.float64, device=device),
            torch.zeros((batch, *extra_shape), dtype=torch.long, device=device),
        )
        padded = bound is not None and not callable(getattr(log_weight, "subset", None))
        if padded:
            log_weight = _PaddedRows(log_weight, None, batch, self.prior)
        active = torch.arange(batch, device=device)
        carry = torch.zeros(batch, dtype=torch.int64, device=device)
        bad = torch.zeros((), dtype=torch.bool, device=device)
        start = 0
        while start < self.num_candidates and active.numel():
            msgs = messages[active]
            # a padded callable scores the whole batch: size its chunks by the batch, not the active rows
            stop = min(start + self._chunk_for(messages if padded else msgs), self.num_candidates)
            index = torch.arange(start, stop, device=device)
            fixed = arrival_increments(self.rng, msgs, index, self.num_candidates, self.num_rows)
            fixed = fixed.cumsum(dim=1) + carry[:, None]
            carry = fixed[:, -1]
            times = fixed.to(torch.float64) * 2.0**-ARRIVAL_FRACTION_BITS
            log_m = torch.log(times)
            scores, arrivals, log_w = scores_of(msgs, active, index, times, log_m, log_weight)
            local_bound = None if bound is None else bound[active][..., None]
            bad |= _bad_weights(log_w, local_bound)
            best.update(active, scores, arrivals)
            start = stop
            if local_bound is None or start >= self.num_candidates:
                continue
            later = log_m[:, -1].reshape(-1, *([1] * len(extra_shape)))  # M of later arrivals >= this
            done = (later - local_bound[..., 0] > best.score[active]).reshape(active.shape[0], -1).all(dim=1)
            keep = torch.nonzero(~done).squeeze(1)
            if keep.numel() < active.numel():
                active, carry = active[keep], carry[keep]
                log_weight = log_weight.subset(keep)
        _raise_if_bad(bad, party, bound is not None)
        return best

    def _row_log_times(
        self, messages: Tensor, index: Tensor, times: Tensor, log_m: Tensor, unique_rows: Tensor, which: Tensor
    ) -> Tensor:
        """log E_j^(k) for rows ``unique_rows[which]`` (``[R]``) at arrivals ``[n]`` or ``[B, n]``,
        given M_(j) and its log ``[B, n]``, -> ``[B, R, n]``:
        M_(j) on the winning row r_j, M_(j) + D_j^(k) on the others."""
        rows = unique_rows[which]
        if self.num_rows == 1:
            return log_m[:, None, :].expand(-1, rows.shape[0], -1)
        excess = exponential_rows(self.rng, messages, unique_rows, index, torch.float64)[:, which]
        winner = winning_rows(self.rng, messages, index, self.num_rows)[:, None, :] == rows[None, :, None]
        return torch.where(winner, log_m[:, None, :], torch.log(times[:, None, :] + excess))

    def _check_labels(self, labels: Tensor, messages: Tensor) -> Tensor:
        if not isinstance(labels, Tensor) or labels.shape != messages.shape:
            raise ShapeMismatchError(
                f"labels must be an integer tensor [B] matching messages {tuple(messages.shape)}"
            )
        if labels.is_floating_point():
            raise InvalidArgumentError("labels must be integers in [0, L_max)")
        labels = labels.to(device=messages.device, dtype=torch.long)
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_labels):
            raise InvalidArgumentError(f"labels must be in [0, {self.num_labels}) (L_max)")
        return labels


class _PaddedRows:
    """A log-weight callable without ``subset``, restricted to rows ``rows`` ``[B']`` of its batch
    of ``batch`` messages: their candidates ``[B', n, dim]`` go into a whole batch ``[B, n, dim]``
    (the other rows hold the prior's value at z = 0) and the callable's rows ``rows`` come back.
    Row b of a log-weight depends on row b of the candidates only (as ``subset`` assumes)."""

    def __init__(self, fn: LogWeightFn, rows: Tensor | None, batch: int, prior: CandidatePrior) -> None:
        self.fn, self.rows, self.batch, self.prior = fn, rows, batch, prior

    def __call__(self, u: Tensor) -> Tensor:
        if self.rows is None:
            return self.fn(u)
        filler = self.prior.from_standard_normal(u.new_zeros((1, 1, u.shape[2])))
        full = filler.to(u.dtype).expand(self.batch, *u.shape[1:]).clone()
        full[self.rows] = u
        log_w = self.fn(full)
        # a wrong shape is reported by the coder's own check, on the unsliced output
        return log_w[self.rows] if isinstance(log_w, Tensor) and log_w.dim() and log_w.shape[0] == self.batch else log_w

    def subset(self, keep: Tensor) -> "_PaddedRows":
        return _PaddedRows(self.fn, keep if self.rows is None else self.rows[keep], self.batch, self.prior)


def _check_weight_shape(log_w: Tensor, expected: tuple[int, ...], name: str) -> None:
    if not isinstance(log_w, Tensor) or tuple(log_w.shape) != expected:
        got = tuple(log_w.shape) if isinstance(log_w, Tensor) else type(log_w).__name__
        raise ShapeMismatchError(f"{name} must return shape {expected}, got {got}")
