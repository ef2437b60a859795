"""A remote serial port (pyserial URL, e.g. rfc2217://host:port) served as a local pty.

Why: spsdk's UART clients (McuBoot, DK6, SDP), blhost and the console reader take a device *path*, not a
pyserial URL. With a bridge, a lab board's ROM port is `/dev/pts/N` on the test host and every client runs
unchanged (lab-notes §5): the bytes the client writes to the pty go to the exporter's ser2net, and the
board's answers come back to the pty.

* The pty is a `hil.emulator.pty.PtyPort` (raw slave kept open, so the master never reads EIO between
  clients; non-blocking master): clients open and close the slave path as often as they like.
* Two threads: pty master -> remote, remote -> pty master. The remote side is pyserial's rfc2217 client,
  which tops out around 480 KiB/s (it parses each byte in Python, §6.2); the bridge adds almost nothing.
* Not forwarded: baud rate, DTR/RTS and break set by the client on the local pty. An emulated ROM ignores
  them; a real board's ISP entry by DTR/RTS (DK6 over FTDI) needs labgrid's own drivers instead.
* A dropped remote connection is reconnected (bounded): under load ser2net was seen to close a fresh
  rfc2217 connection right after labgrid's acquire (pyserial's reader thread then dies on a broken pipe,
  and every later read fails). If reconnecting fails too (the exporter stopped ser2net because the place
  was released, the network went away) the bridge ends: `error` says why, and a client then gets no
  answers, which its own timeout turns into a TransientError; the bridge never raises into the client's
  thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from typing import Any

import serial

from hil.emulator.pty import PtyPort
from hil.errors import BoardError

log = logging.getLogger(__name__)

OPEN_ATTEMPTS = 6  # ser2net starts listening a little after labgrid's acquire returns on a loaded host
RETRY_DELAY = 0.5
RECONNECT_ATTEMPTS = 4  # per drop; a released place fails all of them within about 2 s


class PtyBridge:
    """Serve `url` as a local pty (`port`) until `stop()`. Use as a context manager."""

    def __init__(self, url: str, *, name: str = "", **serial_kwargs: Any) -> None:
        self.url = url
        self.name = name or url
        self.serial_kwargs = serial_kwargs
        self._pty = PtyPort()
        self.port = self._pty.path
        self.remote: Any = None
        self.error: str | None = None
        self.bytes_up = self.bytes_down = 0
        self.reconnects = 0
        self._stop = threading.Event()
        self._remote_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self, attempts: int = OPEN_ATTEMPTS) -> PtyBridge:
        """Connect (a refused or dropped first connection is retried: seen once right after an acquire)."""
        try:
            self.remote = self._connect(attempts)
        except (serial.SerialException, OSError) as exc:
            self._pty.close()
            raise BoardError(f"{self.name}: cannot open the remote serial port {self.url}: {exc}") from None
        for target, label in ((self._up, "up"), (self._down, "down")):
            thread = threading.Thread(target=target, name=f"bridge-{label}-{self.port}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    @property
    def alive(self) -> bool:
        return self.error is None and not self._stop.is_set()

    def _connect(self, attempts: int) -> Any:
        """A new connection to the remote port, retried `attempts` times; raises the last error."""
        for attempt in range(1, attempts + 1):
            try:
                return serial.serial_for_url(self.url, timeout=0.05, **self.serial_kwargs)
            except (serial.SerialException, OSError) as exc:
                if attempt == attempts or self._stop.is_set():
                    raise
                log.warning("%s: opening %s failed (%s); retrying", self.name, self.url, exc)
                time.sleep(RETRY_DELAY)
        raise AssertionError("unreachable")

    def _recover(self, broken: Any, where: str, exc: BaseException) -> bool:
        """Replace the dropped connection `broken` (once, whichever thread sees it first); False: give up."""
        with self._remote_lock:
            if self._stop.is_set():
                return False
            if self.remote is not broken:  # the other thread reconnected already
                return True
            log.warning("%s: connection %s %s dropped (%s); reconnecting", self.name, where, self.url, exc)
            with contextlib.suppress(Exception):
                broken.close()
            try:
                self.remote = self._connect(RECONNECT_ATTEMPTS)
            except (serial.SerialException, OSError) as again:
                self._fail(where, again)
                return False
            self.reconnects += 1
            return True

    def _fail(self, where: str, exc: BaseException) -> None:
        if not self._stop.is_set() and self.error is None:
            self.error = f"{where}: {type(exc).__name__}: {exc}"
        self._stop.set()

    def _up(self) -> None:
        """pty -> remote."""
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._pty.master_fd], [], [], 0.1)
                if not ready:
                    continue
                try:
                    data = os.read(self._pty.master_fd, 65536)
                except BlockingIOError:  # the master is non-blocking; nothing after all
                    continue
                if not data:
                    continue
            except (OSError, ValueError) as exc:  # the local pty itself failed: nothing to reconnect
                self._fail("from the client", exc)
                return
            remote = self.remote
            try:
                remote.write(data)
                self.bytes_up += len(data)
            except (serial.SerialException, OSError, ValueError, AttributeError) as exc:
                if not self._recover(remote, "to the board", exc):
                    return

    def _down(self) -> None:
        """remote -> pty."""
        errors = (serial.SerialException, OSError, ValueError, AttributeError)
        while not self._stop.is_set():
            failure: BaseException | None = None
            remote = self.remote
            try:
                data = remote.read(1)  # returns after at most the 50 ms timeout
                if not data:
                    continue
                try:
                    waiting = remote.in_waiting
                    if waiting:
                        data += remote.read(waiting)
                except errors as exc:  # deliver what arrived before the remote end closed
                    failure = exc
                self._pty.send(data)  # waits for a slow client, as a blocking write did
                self.bytes_down += len(data)
            except errors as exc:
                failure = exc
            if failure is not None and not self._recover(remote, "from the board", failure):
                return

    def stop(self) -> None:
        """Stop the threads, close the remote connection and the pty (idempotent)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(2)
        self._threads.clear()
        remote, self.remote = self.remote, None
        if remote is not None:
            with contextlib.suppress(Exception):
                remote.close()
        self._pty.close()

    def __enter__(self) -> PtyBridge:
        return self.start() if self.remote is None else self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"PtyBridge({self.port} <-> {self.url}, alive={self.alive})"
