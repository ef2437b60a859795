"""A board's console serial port, read with pyserial: lines, and waiting for a line with a timeout.

The firmware logs on a UART (J-Link VCOM or a USB-serial adapter on real boards, a pty on emulated ones).
A UART with nobody listening loses its output, so open the console *before* the reset whose boot log you
want (`hil.boot.reboot` does). Opening discards what was buffered before, so old boots never leak in.

Where the console is: an emulated board's process publishes its pty (`BoardHandle.console_port`); a real
board names it in boards.toml ``[board.NAME.options] console_port = "/dev/ttyACM0"`` (and optionally
``console_baudrate``, default 115200).
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import serial

from hil.errors import BoardError, ConfigError

if TYPE_CHECKING:
    from hil.boards.profile import BoardProfile

DEFAULT_BAUDRATE = 115200
_TAIL = 8  # lines quoted in a timeout message


class Console:
    """One open console port. Use as a context manager; `lines` keeps every line read, without EOL."""

    def __init__(self, port: str, *, baudrate: int = DEFAULT_BAUDRATE, board: str = "") -> None:
        self.port = port
        self.baudrate = baudrate
        self.board = board or port
        self.lines: list[str] = []
        self._serial: serial.Serial | None = None
        self._partial = b""

    def open(self) -> Console:
        try:
            self._serial = serial.Serial(self.port, self.baudrate, timeout=0.05)
        except (serial.SerialException, OSError) as exc:
            raise BoardError(f"{self.board}: cannot open the console {self.port}: {exc}") from None
        self._serial.reset_input_buffer()
        return self

    def close(self) -> None:
        if self._serial is not None:
            self._serial.close()
            self._serial = None

    def __enter__(self) -> Console:
        return self if self._serial is not None else self.open()

    def __exit__(self, *_: object) -> None:
        self.close()

    def readline(self, timeout: float) -> str | None:
        """The next complete line (CR/LF stripped), or None if none arrives within `timeout` seconds."""
        if self._serial is None:
            raise BoardError(f"{self.board}: console {self.port} is not open")
        deadline = time.monotonic() + timeout
        while b"\n" not in self._partial:
            try:
                # What is there, or one byte: read(4096) would wait out the port timeout on every line.
                chunk = self._serial.read(self._serial.in_waiting or 1)
            except (serial.SerialException, OSError) as exc:
                raise BoardError(f"{self.board}: console {self.port}: {exc}") from None
            self._partial += chunk
            if b"\n" not in self._partial and time.monotonic() >= deadline:
                return None
        raw, self._partial = self._partial.split(b"\n", 1)
        line = raw.rstrip(b"\r").decode("utf-8", errors="replace")
        self.lines.append(line)
        return line

    def wait_for(self, pattern: str | re.Pattern[str], timeout: float) -> re.Match[str]:
        """Read lines until one matches `pattern` (re.search); BoardError naming it after `timeout`."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            line = self.readline(max(0.0, deadline - time.monotonic()))
            if line is not None:
                match = regex.search(line)
                if match:
                    return match
            elif time.monotonic() >= deadline:
                raise BoardError(
                    f"{self.board}: no console line matching {regex.pattern!r} within {timeout:g} s "
                    f"on {self.port}; last lines: {self.tail()}"
                )

    def tail(self, n: int = _TAIL) -> str:
        return " | ".join(self.lines[-n:]) if self.lines else "(nothing)"


def console_port(profile: BoardProfile) -> tuple[str, int]:
    """(port path, baudrate) of a board's console; starts an emulated board's process if needed."""
    baudrate = int(profile.options.get("console_baudrate", DEFAULT_BAUDRATE))
    if getattr(profile, "labgrid_place", None):  # a lab board: its held place's console, bridged to a pty
        from hil.lab.places import lab_console_port

        return lab_console_port(profile), baudrate
    if profile.emulated:
        from hil.emulator.board import ensure_running

        return ensure_running(profile).console_port, baudrate
    port = profile.options.get("console_port")
    if not isinstance(port, str) or not port:
        raise ConfigError(
            f"board {profile.name!r}: no console port; set [board.{profile.name}.options] "
            'console_port = "/dev/ttyACM0" in boards.toml (the UART the firmware logs on)'
        )
    return port, baudrate


def open_console(profile: BoardProfile) -> Console:
    port, baudrate = console_port(profile)
    return Console(port, baudrate=baudrate, board=profile.name).open()
