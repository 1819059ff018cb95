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


class MissingDependencyError(ConfigError, ImportError):
    """An optional package that the run needs is not installed; the message names it and the
    ``dsc[extra]`` that installs it."""


class TrainingDivergedError(DscError):
    """A training loss became NaN or infinite; the run stops instead of saving broken weights."""


class OutputError(DscError, OSError):
    """An output that could not be written (a checkpoint, a results file, a run directory). The
    run stops; what was written before stays intact (files are replaced atomically)."""


class CheckpointSaveError(OutputError):
    """A checkpoint could not be saved (the folder is not writable, the disk is full ...): a
    training run that cannot keep its weights stops instead of reporting success."""


class RunDirectoryInUseError(OutputError):
    """Another run is writing into the same run directory right now."""


class BitstreamError(DscError):
    """A byte string that cannot be read as a dsc bitstream; no reconstruction is returned."""


class ForeignStreamError(BitstreamError):
    """The bytes do not start with the dsc magic: not a dsc bitstream at all."""


class CorruptStreamError(BitstreamError):
    """A dsc bitstream whose checksum, length or padding does not verify (damaged in storage or
    transit)."""


class TruncatedStreamError(CorruptStreamError):
    """A dsc bitstream shorter than its header says."""


class UnsupportedVersionError(BitstreamError):
    """A well-formed bitstream of a format version this dsc cannot read."""


class FingerprintMismatchError(BitstreamError):
    """A valid bitstream written for another model or coding setting (model weights, seed, N,
    L_max, K or check bits differ from the decoder's)."""
