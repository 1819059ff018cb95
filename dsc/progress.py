"""Progress bars that suit where they are written: tqdm's interactive bar on a terminal, and
into a log (a batch job's output file, CI, ``> file``) a plain line at most every
:data:`LOG_INTERVAL_S` seconds instead of hundreds of carriage-return updates.

``progress_bar(...)`` takes tqdm's arguments; :func:`lightning_progress_bar` is the training
loop's equivalent for Lightning's trainer.
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm.auto import tqdm

LOG_INTERVAL_S = 30.0  # seconds between progress lines in a log
LOG_REFRESH_STEPS = 200  # training steps between Lightning progress-bar updates in a log


def writes_to_terminal(stream: Any = None) -> bool:
    """Whether ``stream`` (default: stderr, where the bars go) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def progress_bar(*args: Any, **kwargs: Any) -> tqdm:
    """``tqdm(*args, **kwargs)``; off a terminal, updates at most every ``LOG_INTERVAL_S`` seconds
    (unless the caller sets ``mininterval``), each on its own line."""
    if not writes_to_terminal(kwargs.get("file")):
        kwargs.setdefault("mininterval", LOG_INTERVAL_S)
        kwargs.setdefault("maxinterval", max(LOG_INTERVAL_S, kwargs["mininterval"]))
        kwargs.setdefault("ascii", True)
    return tqdm(*args, **kwargs)


def lightning_progress_bar():
    """The Lightning callback for the training bar: the default bar on a terminal, one refresh
    every ``LOG_REFRESH_STEPS`` steps into a log."""
    from lightning.pytorch.callbacks import TQDMProgressBar

    return TQDMProgressBar(refresh_rate=1 if writes_to_terminal() else LOG_REFRESH_STEPS)
