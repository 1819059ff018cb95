"""Where a run happened: device choice and an environment record saved with every result."""

from __future__ import annotations

import contextlib
import platform
import subprocess
from pathlib import Path
from typing import Iterator

import torch

import dsc
from dsc.errors import ConfigError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; ``cpu``; ``cuda`` (or ``cuda:N``)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if isinstance(name, str) and name.split(":")[0] == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name} was requested but no CUDA device is present; use device=cpu or auto")
        return torch.device(name)
    raise ConfigError(f"device must be one of {', '.join(DEVICE_CHOICES)} (or cuda:N), got {name!r}")


@contextlib.contextmanager
def strict_float32() -> Iterator[None]:
    """Full float32 precision for CUDA matrix products and cuDNN convolutions inside the block
    (TF32 off; torch leaves it on for convolutions by default). Every computation that feeds a
    candidate selection runs under it, so that an encoder and decoders on different devices see
    log-weights equal up to float32 rounding. The previous settings are restored on exit."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


def git_commit() -> str:
    """The commit of the dsc source tree, with ``-dirty`` when it has local changes; ``unknown``
    for an installed package (not a checkout: its version is recorded instead)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():  # site-packages, even one inside some other repository
        return "unknown"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (commit + ("-dirty" if dirty else "")) if commit else "unknown"


def environment_record(device: torch.device) -> dict:
    """Versions, commit and device, for metrics.json."""
    return {
        "dsc": dsc.__version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
        "device_name": device_name(device),
        "cpu_threads": torch.get_num_threads(),
        "cpu_model": cpu_model(),
    }
