"""hil.bulk.progress: a bar with rate and ETA on a terminal, silence otherwise."""

from __future__ import annotations

import io

from hil.bulk.progress import Progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_on_a_terminal_shows_count_rate_and_eta() -> None:
    stream = _Tty()
    bar = Progress(100, 40, stream=stream, interval=0)
    bar.update(10)
    bar.update(50)
    bar.close()
    text = stream.getvalue()
    assert text.startswith("\r[") and text.endswith("\n")
    assert "50/100" in text and "100/100" in text and "dev/s" in text and "ETA" in text
    assert bar.done == 100 and bar.start_done == 40  # the rate counts this run's devices only


def test_silent_when_not_a_terminal() -> None:
    stream = io.StringIO()
    bar = Progress(10, stream=stream, interval=0)
    bar.update(10)
    bar.close()
    assert stream.getvalue() == ""
