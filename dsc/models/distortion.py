"""How the distortion term of a rate-distortion loss is normalised.

The MNIST codec's loss is ``distortion + beta * KL``. The paper does not say how its squared
error is normalised, and the choice is not cosmetic: it sets what a given beta means. A
normalisation is a pixel range on which the error is measured and a reduction over the pixels:

==========  ===========  ==========  ==================================================
name        pixel range  reduction   per-digit distortion of a 28x14 half (392 pixels)
==========  ===========  ==========  ==================================================
``sum_01``  [0, 1]       sum         sum of squared errors, pixels in [0, 1] (default)
``sum_pm1`` [-1, 1]      sum         4 x ``sum_01`` (the networks' own scale)
``mean_01`` [0, 1]       mean        ``sum_01`` / 392: the per-pixel MSE
``mean_pm1`` [-1, 1]     mean        4 x ``mean_01``
==========  ===========  ==========  ==================================================

Every normalisation averages over the batch, as the KL term does. A normalisation that sums
over the batch too, or scales the whole loss, changes nothing under Adam (it is invariant to a
constant factor on the loss), so only the ratio to the KL weight matters: ``sum_pm1`` at beta
is ``sum_01`` at beta / 4, and ``mean_01`` at beta is ``sum_01`` at 392 x beta.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor

from dsc.errors import ConfigError


class Normalisation(NamedTuple):
    """``factor`` converts squared errors on [-1, 1] to the normalisation's pixel range;
    ``mean``: average over pixels instead of summing."""

    factor: float
    mean: bool
    description: str


NORMALISATIONS = {
    "sum_01": Normalisation(0.25, False, "squared error summed over pixels, pixels in [0, 1]"),
    "sum_pm1": Normalisation(1.0, False, "squared error summed over pixels, pixels in [-1, 1]"),
    "mean_01": Normalisation(0.25, True, "per-pixel mean squared error, pixels in [0, 1]"),
    "mean_pm1": Normalisation(1.0, True, "per-pixel mean squared error, pixels in [-1, 1]"),
}
DEFAULT = "sum_01"
LEGACY = "sum_pm1"  # what checkpoints written before the option existed were trained with


def check_normalisation(name: str) -> str:
    """``name`` if it is a known normalisation, else a ConfigError listing them."""
    if name not in NORMALISATIONS:
        choices = ", ".join(f"{key} ({value.description})" for key, value in NORMALISATIONS.items())
        raise ConfigError(f"unknown distortion normalisation {name!r}; choose one of: {choices}")
    return name


def distortion(reconstruction: Tensor, target: Tensor, name: str) -> Tensor:
    """Per-example distortion ``[B]`` of ``reconstruction`` against ``target`` (both ``[B, ...]``,
    pixels in [-1, 1]) under normalisation ``name``; computed in float32 whatever the inputs."""
    norm = NORMALISATIONS[check_normalisation(name)]
    squared = (reconstruction.float() - target.float()).pow(2).flatten(1)
    reduced = squared.mean(1) if norm.mean else squared.sum(1)
    return norm.factor * reduced


def equivalent_beta(beta: float, name: str, pixels: int = 392, reference: str = DEFAULT) -> float:
    """The KL weight under ``reference`` that gives the same optimum as ``beta`` under ``name``,
    for images of ``pixels`` pixels (the losses differ by a constant factor, which Adam ignores):
    e.g. beta 0.15 under ``mean_01`` is beta 58.8 under ``sum_01``."""
    def weight(key: str) -> float:  # the distortion's multiplier on the [-1, 1] squared-error sum
        norm = NORMALISATIONS[check_normalisation(key)]
        return norm.factor / (pixels if norm.mean else 1)

    return beta * weight(reference) / weight(name)
