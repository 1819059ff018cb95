"""dsc: neural distributed source coding with Gumbel-max list sampling (GLS)."""

from dsc.errors import (
    ConfigError,
    DscError,
    InvalidArgumentError,
    InvalidProbabilityError,
    ShapeMismatchError,
    TrainingDivergedError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DscError",
    "InvalidArgumentError",
    "InvalidProbabilityError",
    "ShapeMismatchError",
    "TrainingDivergedError",
    "__version__",
]
