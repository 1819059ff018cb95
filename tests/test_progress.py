"""Progress output: interactive bars on a terminal, sparse plain lines into a log."""

from __future__ import annotations

import io
import time

from dsc.progress import LOG_INTERVAL_S, LOG_REFRESH_STEPS, lightning_progress_bar, progress_bar, writes_to_terminal


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def updates(text: str) -> int:
    """Bar refreshes written: tqdm starts each one with a carriage return or a newline."""
    return text.count("\r") + text.count("\n")


def test_a_log_gets_a_few_lines_and_a_terminal_the_live_bar():
    log, terminal = io.StringIO(), Terminal()
    for stream in (log, terminal):
        with progress_bar(total=30_000, file=stream, desc="trials") as bar:
            for _ in range(300):  # 0.6 s: several of tqdm's default 0.1 s refreshes
                time.sleep(0.002)
                bar.update(100)
    assert not writes_to_terminal(log) and writes_to_terminal(terminal)
    assert updates(log.getvalue()) <= 3  # opening and closing; none in between within 30 s
    assert updates(terminal.getvalue()) >= 5  # the live bar refreshes as usual
    assert "30000/30000" in log.getvalue()
    live = progress_bar(total=1, file=terminal)
    assert live.mininterval < LOG_INTERVAL_S
    live.close()


def test_an_explicit_interval_wins():
    bar = progress_bar(total=10, file=io.StringIO(), mininterval=5.0)
    assert bar.mininterval == 5.0 and bar.maxinterval == LOG_INTERVAL_S
    bar.close()


def test_lightning_bar_refreshes_rarely_off_a_terminal(monkeypatch):
    import sys

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert lightning_progress_bar().refresh_rate == LOG_REFRESH_STEPS
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert lightning_progress_bar().refresh_rate == 1
