"""Progress bars that suit where they are written: tqdm's interactive bar on a terminal, and
into a log (a batch job's output file, CI, ``> file``) a plain line at most every
:data:`LOG_INTERVAL_S` seconds, each ending in a newline, instead of hundreds of
carriage-return updates. In a log every bar that printed a line ends with its final count: a
bar that would vanish on a terminal (``leave=False``, a step of a larger job) prints nothing
unless it lasts longer than :data:`LOG_INTERVAL_S`, and then its last line too.

``progress_bar(...)`` takes tqdm's arguments; :func:`lightning_progress_bar` is the training
loop's equivalent for Lightning's trainer.
"""

from __future__ import annotations

import contextlib
import re
import sys
from typing import Any

from tqdm.auto import tqdm

LOG_INTERVAL_S = 30.0  # seconds between progress lines in a log
LOG_REFRESH_STEPS = 200  # training steps between Lightning progress-bar updates in a log
ANSI_CONTROL = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # terminal control sequences (cursor moves, clears)


def writes_to_terminal(stream: Any = None) -> bool:
    """Whether ``stream`` (default: stderr, where the bars go) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class LogLines:
    """A text stream for a progress bar in a log: each refresh of the bar (tqdm writes
    ``"\\r" + status + padding``) becomes one line ``status + "\\n"``; terminal control
    sequences (nested bars' cursor moves) are removed, and blank writes (the bar's closing
    newline, a cleared bar) and a repeat of the line just written dropped."""

    def __init__(self, stream: Any):
        self.stream = stream
        self._last = ""

    def write(self, text: str) -> int:
        line = ANSI_CONTROL.sub("", text.replace("\r", "")).rstrip()  # nested bars move the cursor: not in a log
        if line and line != self._last:
            self.stream.write(line + "\n")
            self._last = line
        return len(text)

    def flush(self) -> None:
        flush = getattr(self.stream, "flush", None)
        if flush is not None:
            flush()

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def bars_in_lines():
    """Within the block, off a terminal, bars that other libraries draw on stderr (tqdm's default
    stream) come out as whole lines (:class:`LogLines`); on a terminal nothing changes."""
    if writes_to_terminal(sys.stderr):
        yield
        return
    with contextlib.redirect_stderr(LogLines(sys.stderr)):
        yield


def progress_bar(*args: Any, **kwargs: Any) -> tqdm:
    """``tqdm(*args, **kwargs)``; off a terminal, updates at most every ``LOG_INTERVAL_S`` seconds
    (unless the caller sets ``mininterval``), each on its own line, and a bar that printed ends
    with its final line. A ``leave=False`` bar (on a terminal it is cleared when done) starts
    printing only after ``LOG_INTERVAL_S`` seconds (tqdm's ``delay``), so a short one leaves no
    trace and a long one no ``0%`` line without its end."""
    stream = kwargs.get("file") or sys.stderr
    if not writes_to_terminal(stream):
        kwargs["file"] = LogLines(stream)
        kwargs.setdefault("mininterval", LOG_INTERVAL_S)
        kwargs.setdefault("maxinterval", max(LOG_INTERVAL_S, kwargs["mininterval"]))
        kwargs.setdefault("ascii", True)
        if kwargs.get("leave") is False:  # a log cannot clear a line: keep the end of what was printed
            kwargs["leave"] = True
            kwargs.setdefault("delay", LOG_INTERVAL_S)
    return tqdm(*args, **kwargs)


def lightning_progress_bar():
    """The Lightning callback for the training bar: the default bar on a terminal; into a log,
    one line every ``LOG_REFRESH_STEPS`` steps (Lightning's bars write to stdout)."""
    from lightning.pytorch.callbacks import TQDMProgressBar

    if writes_to_terminal(sys.stdout):
        return TQDMProgressBar(refresh_rate=1)

    class LogLinesProgressBar(TQDMProgressBar):
        """Lightning's bars, each refresh written as a line (no carriage returns)."""

        def _in_lines(self, make):
            with contextlib.redirect_stdout(LogLines(sys.stdout)):  # the bars take sys.stdout when made
                return make()

        def init_sanity_tqdm(self):
            return self._in_lines(super().init_sanity_tqdm)

        def init_train_tqdm(self):
            return self._in_lines(super().init_train_tqdm)

        def init_validation_tqdm(self):
            return self._in_lines(super().init_validation_tqdm)

        def init_test_tqdm(self):
            return self._in_lines(super().init_test_tqdm)

        def init_predict_tqdm(self):
            return self._in_lines(super().init_predict_tqdm)

    return LogLinesProgressBar(refresh_rate=LOG_REFRESH_STEPS)
