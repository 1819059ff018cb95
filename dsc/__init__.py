"""dsc: neural distributed source coding with Gumbel-max list sampling (GLS)."""

from dsc.errors import (
    BitstreamError,
    CheckpointSaveError,
    ConfigError,
    CorruptStreamError,
    DscError,
    FingerprintMismatchError,
    ForeignStreamError,
    InvalidArgumentError,
    InvalidProbabilityError,
    MissingDependencyError,
    OutputError,
    RunDirectoryInUseError,
    ShapeMismatchError,
    TrainingDivergedError,
    TruncatedStreamError,
    UnsupportedVersionError,
)

__version__ = "0.1.0"

__all__ = [
    "BitstreamError",
    "CheckpointSaveError",
    "ConfigError",
    "CorruptStreamError",
    "DscError",
    "FingerprintMismatchError",
    "ForeignStreamError",
    "InvalidArgumentError",
    "InvalidProbabilityError",
    "MissingDependencyError",
    "OutputError",
    "RunDirectoryInUseError",
    "ShapeMismatchError",
    "TrainingDivergedError",
    "TruncatedStreamError",
    "UnsupportedVersionError",
    "__version__",
]
