"""The one exception family of dsc: every error raised on bad input is a ``DscError``."""

from __future__ import annotations


class DscError(Exception):
    """Base class of every error that dsc raises on purpose.

    Messages say what was wrong and what to do about it.
    """


class InvalidArgumentError(DscError, ValueError):
    """An argument is out of its valid range (e.g. K < 1, L_max not a power of two)."""


class ShapeMismatchError(InvalidArgumentError):
    """Tensor shapes do not agree (e.g. proposal and target alphabets differ)."""


class InvalidProbabilityError(InvalidArgumentError):
    """Probabilities or log-weights that are NaN, negative, infinite or all zero."""


class ConfigError(DscError):
    """A Hydra configuration that cannot be run as given."""


class TrainingDivergedError(DscError):
    """A training loss became NaN or infinite; the run stops instead of saving broken weights."""
