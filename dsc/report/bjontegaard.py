"""Bjøntegaard delta rate and PSNR between two rate-distortion curves (VCEG-M33, pure numpy).

A curve is its points' rates (any positive unit, e.g. bits per image half) and qualities in dB
(PSNR, or ``-10 log10 MSE``: higher is better). BD-rate fits the natural log of the rate as a
cubic polynomial of the quality for each curve (least squares for more than 4 points, exact
through 4), integrates both over the quality interval the curves share and turns the mean
difference into a rate ratio: ``exp(mean(log R_test - log R_anchor)) - 1``, in percent
(negative: the test curve needs fewer bits for the same quality). BD-PSNR does the converse:
quality as a cubic of log-rate, mean difference over the shared log-rate interval, in dB.

The ``bjontegaard`` package (cubic method) computes the same numbers but needs scipy; this
module keeps the core's dependencies to numpy.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
from numpy.polynomial import Polynomial

from dsc.errors import InvalidArgumentError

MIN_POINTS = 4  # a cubic needs four points


class Curve(NamedTuple):
    """One curve checked and sorted by rate: ``log_rate`` and ``quality_db``, both ``[n]``."""

    log_rate: np.ndarray
    quality_db: np.ndarray


def rd_curve(rates: Sequence[float], quality_db: Sequence[float], name: str = "curve") -> Curve:
    """Check one curve (``rates`` ``[n]`` positive, ``quality_db`` ``[n]``, both finite, n >= 4)
    and sort it by rate. Along rising rate the quality must rise strictly too (a monotone curve),
    else InvalidArgumentError says where it does not."""
    rate, quality = (np.asarray(v, dtype=np.float64) for v in (rates, quality_db))
    if rate.ndim != 1 or rate.shape != quality.shape:
        raise InvalidArgumentError(f"{name}: rates and qualities must be two 1-D sequences of one length, got shapes "
                                   f"{rate.shape} and {quality.shape}")
    if len(rate) < MIN_POINTS:
        raise InvalidArgumentError(f"{name} has {len(rate)} points; a Bjøntegaard delta fits a cubic and needs at "
                                   f"least {MIN_POINTS}")
    if not (np.isfinite(rate).all() and np.isfinite(quality).all()) or (rate <= 0).any():
        raise InvalidArgumentError(f"{name}: rates must be positive and finite and qualities finite (a lossless "
                                   f"point has infinite dB and cannot be fitted); got rates {rate.tolist()}, "
                                   f"qualities {quality.tolist()}")
    order = np.argsort(rate, kind="stable")
    rate, quality = rate[order], quality[order]
    if (np.diff(rate) == 0).any():
        twice = rate[1:][np.diff(rate) == 0][0]
        raise InvalidArgumentError(f"{name} has two points at rate {twice:g}; give one point per rate")
    steps = np.diff(quality) <= 0
    if steps.any():
        i = int(np.argmax(steps))
        raise InvalidArgumentError(
            f"{name} is not monotone: from rate {rate[i]:g} to {rate[i + 1]:g} the quality goes from "
            f"{quality[i]:.4g} to {quality[i + 1]:.4g} dB; a Bjøntegaard delta needs the quality to rise strictly "
            "with the rate")
    return Curve(np.log(rate), quality)


def _shared(x_anchor: np.ndarray, x_test: np.ndarray) -> tuple[float, float] | None:
    """The interval ``(low, high)`` both ``x`` ``[n]`` cover, or None where they do not overlap."""
    low, high = max(x_anchor.min(), x_test.min()), min(x_anchor.max(), x_test.max())
    return (float(low), float(high)) if high > low else None


def _mean_gap(anchor: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
              interval: tuple[float, float]) -> float:
    """Mean of ``f_test - f_anchor`` over ``interval``, each ``f`` the cubic least-squares fit of
    ``y`` on ``x`` of its curve ``(x, y)``, both ``[n]``."""
    low, high = interval
    areas = [Polynomial.fit(x, y, 3).integ() for x, y in (anchor, test)]
    return float((areas[1](high) - areas[1](low) - areas[0](high) + areas[0](low)) / (high - low))


def _curves(anchor_rates, anchor_db, test_rates, test_db) -> tuple[Curve, Curve]:
    return rd_curve(anchor_rates, anchor_db, "the anchor curve"), rd_curve(test_rates, test_db, "the test curve")


def _no_overlap(what: str, anchor: np.ndarray, test: np.ndarray, unit: str = "") -> InvalidArgumentError:
    return InvalidArgumentError(
        f"the curves share no {what} range (anchor {anchor.min():.4g} .. {anchor.max():.4g}{unit}, test "
        f"{test.min():.4g} .. {test.max():.4g}{unit}); a Bjøntegaard delta compares them where both are measured")


class BjontegaardDelta(NamedTuple):
    """``rate_percent``: BD-rate of the test curve against the anchor in percent, averaged over
    the shared quality interval ``low_db`` .. ``high_db``; ``psnr_db``: BD-PSNR in dB (None
    where the curves share no rate range)."""

    rate_percent: float
    psnr_db: float | None
    low_db: float
    high_db: float


def bjontegaard(anchor_rates: Sequence[float], anchor_db: Sequence[float], test_rates: Sequence[float],
                test_db: Sequence[float]) -> BjontegaardDelta:
    """BD-rate and BD-PSNR of the test curve against the anchor (module docstring), curves of
    ``[n_a]`` and ``[n_t]`` points. Raises InvalidArgumentError for a curve of fewer than 4
    points, a non-monotone or non-finite curve, or curves whose quality ranges do not overlap."""
    anchor, test = _curves(anchor_rates, anchor_db, test_rates, test_db)
    quality = _shared(anchor.quality_db, test.quality_db)
    if quality is None:
        raise _no_overlap("quality", anchor.quality_db, test.quality_db, " dB")
    log_ratio = _mean_gap((anchor.quality_db, anchor.log_rate), (test.quality_db, test.log_rate), quality)
    rates = _shared(anchor.log_rate, test.log_rate)
    gain = None if rates is None else _mean_gap(anchor, test, rates)
    return BjontegaardDelta(float(np.expm1(log_ratio) * 100), gain, *quality)


def bd_rate(anchor_rates: Sequence[float], anchor_db: Sequence[float], test_rates: Sequence[float],
            test_db: Sequence[float]) -> float:
    """BD-rate in percent of the test curve against the anchor (see :func:`bjontegaard`)."""
    return bjontegaard(anchor_rates, anchor_db, test_rates, test_db).rate_percent


def bd_psnr(anchor_rates: Sequence[float], anchor_db: Sequence[float], test_rates: Sequence[float],
            test_db: Sequence[float]) -> float:
    """BD-PSNR in dB of the test curve against the anchor (positive: higher quality at the same
    rate); raises InvalidArgumentError as :func:`bjontegaard` does, and where the curves share
    no rate range."""
    anchor, test = _curves(anchor_rates, anchor_db, test_rates, test_db)
    rates = _shared(anchor.log_rate, test.log_rate)
    if rates is None:
        raise _no_overlap("rate", np.exp(anchor.log_rate), np.exp(test.log_rate))
    return _mean_gap(anchor, test, rates)
