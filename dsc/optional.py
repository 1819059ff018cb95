"""Optional dependencies, imported where they are used through :func:`require`: a missing one is a
:class:`~dsc.errors.MissingDependencyError` that names the extra installing it.

Extras (``pip install "dsc[NAME]"``; in a checkout ``pip install -e ".[NAME]"``): ``speculative``
(transformers, accelerate, gguf: the language-model backend of :mod:`dsc.speculative`),
``sweep`` (Hydra's joblib and submitit launchers), ``tensorboard`` (tensorboardX, for
``logger=tensorboard``), ``test`` (pytest, scipy, ruff, setuptools) and ``all``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from dsc.errors import MissingDependencyError


def require(module: str, extra: str, package: str | None = None, needed_by: str = "this run") -> ModuleType:
    """``import module``, or a MissingDependencyError saying that ``needed_by`` needs ``package``
    (default: the module's top-level name) and which ``pip install "dsc[extra]"`` provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        name = package or module.partition(".")[0]
        raise MissingDependencyError(
            f"{needed_by} needs {name}, which cannot be imported ({error}): pip install \"dsc[{extra}]\" "
            f"(in a checkout: pip install -e \".[{extra}]\")") from error
