"""Checks shared by every rate-distortion job: one (scheme, K, rate, N) point."""

from __future__ import annotations

from dsc.bitstream import MAX_CHECK_BITS
from dsc.coding import Scheme
from dsc.coding.validation import check_positive_int
from dsc.errors import ConfigError

MAX_RATE_BITS = 31
CODEC_METHODS = ("classical_codec", "learned_codec")  # methods with any rate (image codecs), not a K x rate grid


def point_labels(source: str, method: str) -> dict:
    """The two labels every result point carries, and that reports dispatch on: the registered
    ``source`` (dsc.registry) it was measured on and the ``method`` that coded it (``gls``,
    ``shared_randomness``, ``nested_scalar``, ``classical_codec``, ``learned_codec``)."""
    return {"source": source, "method": method}


def check_point(scheme: str, num_decoders: int, rate_bits: int, num_candidates: int) -> None:
    """Raise a ConfigError (before any work) for an unknown scheme, K < 1, a rate outside
    [1, 31] bits, or fewer candidates than labels."""
    schemes = [s.value for s in Scheme]
    if scheme not in schemes:
        raise ConfigError(f"scheme must be one of {', '.join(schemes)}; got {scheme!r}")
    check_positive_int(num_decoders, "num_decoders (K)")
    check_positive_int(rate_bits, "rate_bits (log2 L_max)")
    if rate_bits > MAX_RATE_BITS:
        raise ConfigError(f"rate_bits must be at most {MAX_RATE_BITS}, got {rate_bits}")
    check_positive_int(num_candidates, "num_candidates (N)")
    if num_candidates < 2**rate_bits:
        raise ConfigError(
            f"num_candidates (N = {num_candidates}) must be at least L_max = 2**rate_bits = "
            f"{2**rate_bits}; raise num_candidates or lower rate_bits"
        )


def check_check_bits(check_bits: int) -> int:
    """c check bits per message: an integer in [0, 32] (dsc.bitstream's limit)."""
    if isinstance(check_bits, bool) or not isinstance(check_bits, int) or not 0 <= check_bits <= MAX_CHECK_BITS:
        raise ConfigError(f"check_bits must be an integer in [0, {MAX_CHECK_BITS}], got {check_bits!r}")
    return check_bits
