"""Labels shared by every rate-distortion job's result points (the coding point itself, validated
and labelled, is :class:`dsc.coding.CodingPoint`)."""

from __future__ import annotations

CODEC_METHODS = ("classical_codec", "learned_codec")  # methods with any rate (image codecs), not a K x rate grid


def point_labels(source: str, method: str) -> dict:
    """The two labels every result point carries, and that reports dispatch on: the registered
    ``source`` (dsc.registry) it was measured on and the ``method`` that coded it (``gls``,
    ``shared_randomness``, ``nested_scalar``, ``classical_codec``, ``learned_codec``)."""
    return {"source": source, "method": method}
