"""One coding point: scheme, K decoders, log2(L_max) label bits, N candidates and c check bits,
validated once, and the coder that codes it."""

from __future__ import annotations

from dataclasses import dataclass

from dsc.coding.importance import CandidatePrior, ImportanceCoder, Scheme
from dsc.coding.randomness import MAX_INTEGERS_HIGH
from dsc.coding.validation import check_positive_int
from dsc.errors import ConfigError

MAX_RATE_BITS = MAX_INTEGERS_HIGH.bit_length() - 1  # 31: L_max = 2**rate_bits labels, at most the coder's 2**31
MAX_CHECK_BITS = 32  # a check value is one 32-bit word of the shared randomness, masked to c bits


@dataclass(frozen=True)
class CodingPoint:
    """A coding setting without its seed: ``scheme`` (a :class:`Scheme` value), ``num_decoders``
    K, ``rate_bits`` log2(L_max), ``num_candidates`` N and ``check_bits`` c per message.

    Construction raises a DscError (before any work) for an unknown scheme, K < 1, a rate outside
    [1, 31] bits, fewer candidates than labels or check bits outside [0, 32]."""

    scheme: str
    num_decoders: int
    rate_bits: int
    num_candidates: int
    check_bits: int = 0

    def __post_init__(self) -> None:
        schemes = [s.value for s in Scheme]
        if self.scheme not in schemes:
            raise ConfigError(f"scheme must be one of {', '.join(schemes)}; got {self.scheme!r}")
        object.__setattr__(self, "scheme", Scheme(self.scheme).value)
        check_positive_int(self.num_decoders, "num_decoders (K)")
        check_positive_int(self.rate_bits, "rate_bits (log2 L_max)")
        if self.rate_bits > MAX_RATE_BITS:
            raise ConfigError(f"rate_bits must be at most {MAX_RATE_BITS}, got {self.rate_bits}")
        check_positive_int(self.num_candidates, "num_candidates (N)")
        if self.num_candidates < self.num_labels:
            raise ConfigError(
                f"num_candidates (N = {self.num_candidates}) must be at least L_max = 2**rate_bits = "
                f"{self.num_labels}; raise num_candidates or lower rate_bits"
            )
        check_check_bits(self.check_bits)

    @property
    def num_labels(self) -> int:
        """L_max = 2**rate_bits."""
        return 2**self.rate_bits

    @property
    def total_rate_bits(self) -> int:
        """Bits per message: log2(L_max) + c."""
        return self.rate_bits + self.check_bits

    def coder(self, seed: int, prior: CandidatePrior, *, balanced_labels: bool = False,
              chunk_size: int | None = None) -> ImportanceCoder:
        """The importance coder of this point with shared-randomness ``seed`` and candidates
        drawn from ``prior``; ``balanced_labels`` and ``chunk_size`` as in :class:`ImportanceCoder`."""
        return ImportanceCoder(seed=seed, prior=prior, num_candidates=self.num_candidates,
                               num_labels=self.num_labels, num_decoders=self.num_decoders, scheme=self.scheme,
                               balanced_labels=balanced_labels, chunk_size=chunk_size)

    def labels(self) -> dict:
        """The point's fields as a result point records them: ``scheme``, ``num_decoders``,
        ``rate_bits``, ``check_bits``, ``total_rate_bits``, ``num_candidates``."""
        return {"scheme": self.scheme, "num_decoders": self.num_decoders, "rate_bits": self.rate_bits,
                "check_bits": self.check_bits, "total_rate_bits": self.total_rate_bits,
                "num_candidates": self.num_candidates}


def check_check_bits(check_bits: int) -> int:
    """c check bits per message: an integer in [0, :data:`MAX_CHECK_BITS`]."""
    if isinstance(check_bits, bool) or not isinstance(check_bits, int) or not 0 <= check_bits <= MAX_CHECK_BITS:
        raise ConfigError(f"check_bits must be an integer in [0, {MAX_CHECK_BITS}], got {check_bits!r}")
    return check_bits
