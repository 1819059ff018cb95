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
    assert "\r" not in log.getvalue() and log.getvalue().endswith("\n")  # plain lines
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

    monkeypatch.setattr(sys, "stdout", io.StringIO())  # Lightning's bars write to stdout
    assert lightning_progress_bar().refresh_rate == LOG_REFRESH_STEPS
    monkeypatch.setattr(sys, "stdout", Terminal())
    assert lightning_progress_bar().refresh_rate == 1


def test_lightning_bars_in_a_log_write_whole_lines(monkeypatch):
    import sys

    log = io.StringIO()
    monkeypatch.setattr(sys, "stdout", log)
    callback = lightning_progress_bar()
    for make in (callback.init_train_tqdm, callback.init_sanity_tqdm):
        bar = make()
        bar.reset(total=10)
        for _ in range(3):
            bar.update(3)
            bar.refresh()
        bar.close()
    text = log.getvalue()
    assert "\r" not in text and text.endswith("\n")
    assert text.count("\n") >= 6 and "9/10" in text  # each refresh on a line of its own


def test_log_lines_drop_blank_writes_and_repeats_and_strip_padding():
    from dsc.progress import LogLines

    out = io.StringIO()
    lines = LogLines(out)
    for text in ("\rstep 1   ", "\n", "\r      ", "\x1b[A", "\rstep 2\x1b[A", "\rstep 2 ", ""):
        lines.write(text)
    assert out.getvalue() == "step 1\nstep 2\n" and not lines.isatty()


def test_other_libraries_bars_come_out_as_lines_in_a_log(monkeypatch):
    import sys

    from tqdm import tqdm

    from dsc.progress import bars_in_lines

    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    with bars_in_lines():
        for _ in tqdm(range(5), mininterval=0):  # a library's bar on tqdm's default stream
            pass
    assert "\r" not in log.getvalue() and "5/5" in log.getvalue() and log.getvalue().count("\n") >= 2
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with bars_in_lines():
        assert sys.stderr is terminal  # a terminal keeps its live bars


def last_line_of_each_bar(text: str) -> dict[str, str]:
    """The last line each bar (named by what precedes its ':') printed."""
    return {line.split(":")[0]: line for line in text.splitlines()}


def test_every_bar_in_a_log_ends_with_its_final_count(monkeypatch):
    """A selection loop: an outer bar over points and, per point, a bar that a terminal would
    clear when done (leave=False). In a log no bar may stop at 0% or midway: short inner bars
    print nothing, long ones (here: longer than a shortened interval) end on their total."""
    import dsc.progress

    for interval, inner_lines in ((LOG_INTERVAL_S, False), (0.02, True)):
        monkeypatch.setattr(dsc.progress, "LOG_INTERVAL_S", interval)
        log = io.StringIO()
        for point in progress_bar(range(3), file=log, desc="selection on val"):
            with progress_bar(total=40, file=log, desc=f"point {point}", leave=False) as bar:
                for _ in range(4):
                    time.sleep(0.01)
                    bar.update(10)
        last = last_line_of_each_bar(log.getvalue())
        assert set(last) == {"selection on val", *(f"point {p}" for p in range(3) if inner_lines)}, log.getvalue()
        assert all(("3/3" if name.startswith("selection") else "40/40") in line for name, line in last.items())
