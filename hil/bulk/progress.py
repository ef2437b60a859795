"""A one-line progress bar with rate and ETA on a terminal; nothing at all when stderr is not a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

_BAR = 24


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class Progress:
    """`update(n)` after n more devices; redraws at most every `interval` seconds; `close()` ends the line.

    The rate counts only devices made by this run, so a resumed batch does not report a fantasy rate.
    """

    def __init__(
        self, total: int, done: int = 0, *, stream: TextIO | None = None, interval: float = 0.2
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.total, self.done, self.start_done = total, done, done
        self.interval = interval
        self.t0 = time.monotonic()
        self._last = 0.0

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.t0
        return (self.done - self.start_done) / elapsed if elapsed > 0 else 0.0

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self._last >= self.interval or self.done >= self.total):
            self._last = now
            self._draw()

    def _draw(self) -> None:
        frac = self.done / self.total if self.total else 1.0
        fill = int(frac * _BAR)
        rate = self.rate
        eta = _duration((self.total - self.done) / rate) if rate > 0 else "?"
        self.stream.write(
            f"\r[{'#' * fill}{'.' * (_BAR - fill)}] {self.done}/{self.total} {frac:6.1%}"
            f"  {rate:7.1f} dev/s  ETA {eta}   "
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
