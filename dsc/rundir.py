"""Run directories that two runs never share.

- The default run and sweep directories end in a random suffix after the time stamp
  (``outputs/train/2026-12-07_19-31-38_3fa9c1``), drawn once per command by the ``run_id``
  resolver, so runs started in the same second get directories of their own.
- A run holds an exclusive lock on its directory while it writes (:func:`hold_run_directory`):
  a second run pointed at the same directory (``hydra.run.dir=...``) stops with a
  :class:`dsc.RunDirectoryInUseError` instead of overwriting the first one's results. Resuming
  into a directory after the first run ended is fine: the lock goes with the process.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Iterator

from omegaconf import OmegaConf

from dsc.errors import RunDirectoryInUseError

try:
    import fcntl
except ImportError:  # not on Windows: directories are still unique, but not locked
    fcntl = None

LOCK_NAME = ".dsc-run.lock"


def register_resolvers() -> None:
    """``${run_id:}``: six random hex digits, the same wherever one command's configs name it
    (cached like Hydra's ``${now:...}``, and carried into a sweep's jobs the same way)."""
    if not OmegaConf.has_resolver("run_id"):
        OmegaConf.register_new_resolver("run_id", lambda: secrets.token_hex(3), use_cache=True)


@contextlib.contextmanager
def hold_run_directory(directory: str | os.PathLike) -> Iterator[Path]:
    """Hold ``directory`` (created if absent) for this process until the block ends; another
    process holding it raises :class:`RunDirectoryInUseError` naming it and that process."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield directory
        return
    path = directory / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise RunDirectoryInUseError(
                f"run directory {directory} is in use by another run (process {holder}); wait for it to end, or give "
                "this run its own directory (leave hydra.run.dir / hydra.sweep.dir at their defaults)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield directory
    finally:
        os.close(fd)  # closing releases the lock
