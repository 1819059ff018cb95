"""Tolerances for statistical tests, derived from the sample size (fixed seeds make them
deterministic; the margins keep them meaningful)."""

from __future__ import annotations

import math

Z = 4.5  # standard errors of slack: a false failure would need a 4.5-sigma fluctuation


def binomial_margin(prob: float, n: int, z: float = Z) -> float:
    """z standard errors of a proportion with success probability ``prob`` over ``n`` trials."""
    return z * math.sqrt(max(prob * (1 - prob), 1.0 / n) / n)
