"""Thin Hydra helpers: instantiation that surfaces dsc's own errors instead of Hydra's wrapper."""

from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from dsc.errors import ConfigError, DscError


def build(node: DictConfig, what: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(node)``; a DscError raised by the target propagates as is,
    any other failure becomes a ConfigError naming the config key ``what``."""
    try:
        return instantiate(node, _convert_="all", **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        while cause is not None and not isinstance(cause, DscError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise ConfigError(f"cannot build `{what}` from the config: {error}") from error
