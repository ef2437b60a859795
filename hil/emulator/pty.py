"""A serial port for an emulated board: the slave side of a pty, served from its master side.

Vendor clients (spsdk's DK6, mboot and SDP over pyserial) open a device path exactly as they would open
/dev/ttyUSB0, so a pty is the only wire they accept (they call serial.Serial(port=...), not URLs).
Two traps from emulation-notes §1.2: the slave must be put in raw mode before its path is handed out, and
the emulator keeps its own slave fd open, or reads on the master fail with EIO whenever no client is attached.
A third: with nobody reading the slave, the pty buffer fills and a blocking write on the master would hang
the emulator (and every other thread waiting on the board's lock), so the master is non-blocking and
`send` gives up after `write_timeout` seconds (None: wait forever), dropping what did not fit, as a UART
with no listener does.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import tty
from collections.abc import Callable


class PtyPort:
    """One pty. `serve(handler)` calls handler(bytes) for everything the client sends; `send` answers."""

    def __init__(self) -> None:
        self.master_fd, self.slave_fd = os.openpty()
        tty.setraw(self.slave_fd)
        self.path = os.ttyname(self.slave_fd)
        os.set_blocking(self.master_fd, False)
        self.write_timeout: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def send(self, data: bytes) -> bool:
        """Write all of `data`; False if it was dropped because nobody read for `write_timeout` seconds."""
        view = memoryview(data)
        deadline = None if self.write_timeout is None else time.monotonic() + self.write_timeout
        with self._lock:
            while view:
                try:
                    n = os.write(self.master_fd, view)
                except BlockingIOError:
                    wait = None if deadline is None else deadline - time.monotonic()
                    if wait is not None and wait <= 0:
                        return False
                    select.select([], [self.master_fd], [], wait)
                    continue
                view = view[n:]
        return True

    def serve(self, handler: Callable[[bytes], None], *, poll: float = 0.05) -> None:
        """Blocking loop: feed received bytes to `handler` until `close()`."""
        while not self._stop.is_set():
            r, _, _ = select.select([self.master_fd], [], [], poll)
            if not r:
                continue
            try:
                data = os.read(self.master_fd, 65536)
            except OSError:
                continue
            if data:
                handler(data)

    def start(self, handler: Callable[[bytes], None], name: str = "pty") -> PtyPort:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self.serve, args=(handler,), name=name, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and close both ends (idempotent: a closed fd number may already be reused)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2)
        fds, self.master_fd, self.slave_fd = (self.master_fd, self.slave_fd), -1, -1
        for fd in fds:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
