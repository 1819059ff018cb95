"""The statistics every evaluation reports: decibels, proportions and standard errors of means
(from values or from running sums), and the delta-method standard error of a mean in dB."""

from __future__ import annotations

import math
import statistics
from typing import Iterable

from torch import Tensor


def to_db(x: float) -> float:
    """10 log10(x); -inf for x <= 0."""
    return 10 * math.log10(x) if x > 0 else float("-inf")


def db_se(mean: float, se: float) -> float:
    """Standard error of 10 log10(mean) from the mean's standard error ``se`` (the delta method:
    10 / ln 10 * se / mean); NaN for mean <= 0, where the dB value is not finite."""
    return 10 / math.log(10) * se / mean if mean > 0 else float("nan")


def standard_error(values: Tensor) -> float:
    """Standard error of the mean of ``values`` ``[n]``: the unbiased standard deviation over
    sqrt(n); NaN for fewer than two values."""
    return (values.std(unbiased=True) / math.sqrt(len(values))).item() if len(values) > 1 else float("nan")


def standard_error_of_sums(total: float, total_sq: float, count: int) -> float:
    """Standard error of the mean of ``count`` values from their sum ``total`` and sum of
    squares ``total_sq`` (sums over batches add up): sqrt(biased variance / (n - 1)), i.e.
    sqrt(unbiased variance / n); 0 for a single value."""
    mean = total / count
    return math.sqrt(max(total_sq / count - mean**2, 0.0) / max(count - 1, 1))


def mean_se(values: Iterable[float]) -> tuple[float, float]:
    """Mean and standard error of the mean of a few numbers (repetitions, seeds); the standard
    error is 0 for a single value."""
    values = list(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return statistics.fmean(values), se


def proportion(count: int, total: int) -> float:
    """count / total; 0 when total is 0 (nothing to count)."""
    return count / total if total else 0.0


def binomial_se(p: float, total: int) -> float:
    """Standard error sqrt(p (1 - p) / total) of a proportion ``p`` measured on ``total``
    trials; 0 when total is 0."""
    return math.sqrt(p * (1 - p) / total) if total else 0.0
