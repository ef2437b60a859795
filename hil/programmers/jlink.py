"""J-Link backend: pylink-square's `JLink`, the scriptable form of the seed's J-Link `loadfile`.

The K32W1 guide writes factory data with J-Link Commander (`loadfile factory_data.bin 0xF4000`). Commander
is proprietary and cannot run in CI, so this backend uses what Commander itself uses, SEGGER's library,
through pylink: `flash_file(path, address)` is the library's `JLINK_DownloadFile`, i.e. `loadfile`.

Real boards: pylink finds libjlinkarm (SEGGER J-Link software must be installed); the connection is the
probe's USB serial number (`jlink_serial`) or its IP address (`jlink_ip`). Emulated boards: the probe is
`hil.emulator.probe.EmulatedJLinkLibrary`, handed to the same `pylink.JLink` class, and `jlink_ip` is the
board process's probe port; everything above the DLL boundary is pylink's code.

Erase: J-Link has no "erase range" call (`jl.erase()` erases the whole chip), so the range is written with
0xFF: the flash loader erases the touched sectors and skips blank data.

Error mapping: pylink's EMU_COMM_ERROR / EMU_NO_CONNECTION (a probe link that timed out or answered garbage)
are TransientError; `reopen` closes and reopens the probe. Everything else (unknown device, no target
power, a failed flash program, a read the target refused) is ProgrammerError.

Board options: `speed` (kHz, default 4000), `interface` ("swd" default, or "jtag").
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from hil.programmers.base import ProgrammerBase

EMU_NO_CONNECTION = -256
EMU_COMM_ERROR = -257
_TRANSIENT_CODES = frozenset({EMU_NO_CONNECTION, EMU_COMM_ERROR})
_TRANSIENT_MESSAGES = frozenset({"Emulator connection error.", "No connection to emulator."})


class JLinkProgrammer(ProgrammerBase):
    """Programmer over a SEGGER J-Link (real or emulated) through pylink."""

    name: ClassVar[str] = "jlink"

    _jlink: Any = None

    def _open(self) -> None:
        import pylink

        conn = self.connection
        if conn.emulated:
            from hil.emulator.probe import EmulatedJLinkLibrary

            if not conn.jlink_ip:
                raise self.fail("open", None, "the emulated board has no probe endpoint")
            jlink = pylink.JLink(lib=EmulatedJLinkLibrary(timeout=conn.timeout_ms / 1000))
        else:
            try:
                jlink = pylink.JLink()
            except TypeError:
                raise self.fail(
                    "open", None, "SEGGER's libjlinkarm was not found; install the J-Link software"
                ) from None
        self._jlink = jlink
        with self._step("open probe"):
            if conn.jlink_ip:
                jlink.open(ip_addr=conn.jlink_ip)
            elif conn.jlink_serial is not None:
                jlink.open(serial_no=conn.jlink_serial)
            else:
                jlink.open()
        interface = str(self.profile.options.get("interface", "swd")).upper()
        device = self.profile.spec.jlink_device
        with self._step(f"connect to {device} over {interface}"):
            jlink.set_tif(getattr(pylink.enums.JLinkInterfaces, interface))
            jlink.connect(device, speed=int(self.profile.options.get("speed", 4000)))

    def _close(self) -> None:
        jlink, self._jlink = self._jlink, None
        if jlink is not None:
            with contextlib.suppress(Exception):
                jlink.close()

    def _step(self, step: str, address: int | None = None) -> contextlib.AbstractContextManager[None]:
        """`step` with pylink's link-level errors recognised as transient (module docstring)."""
        return self.step(step, address, transient=_is_transient, reason=_describe)

    def _live(self, step: str, address: int | None) -> Any:
        if self._jlink is None:
            raise self.fail(step, address, "programmer is closed")
        return self._jlink

    def erase(self, address: int, length: int) -> None:
        jlink = self._live("erase", address)
        with self._step("erase", address):
            jlink.flash(b"\xff" * length, address)

    def write(self, address: int, data: bytes) -> None:
        jlink = self._live("write", address)
        with tempfile.TemporaryDirectory(prefix="hil-jlink-") as tmp:
            path = Path(tmp) / "image.bin"  # loadfile takes a file; .bin makes the address count
            path.write_bytes(data)
            with self._step("write (loadfile)", address):
                jlink.flash_file(str(path), address)

    def read(self, address: int, length: int) -> bytes:
        jlink = self._live("read", address)
        with self._step("read", address):
            data = bytes(jlink.memory_read8(address, length))
        if len(data) != length:
            raise self.fail("read", address, f"got {len(data)} of {length} bytes")
        return data

    def reset(self) -> None:
        jlink = self._live("reset", None)
        with self._step("reset"):
            jlink.reset(halt=False)


def _is_transient(exc: BaseException) -> bool:
    import pylink

    # pylink raises OpenEx failures with the DLL's message and no code: recognise the link-level ones.
    return isinstance(exc, pylink.errors.JLinkException) and (
        getattr(exc, "code", None) in _TRANSIENT_CODES or str(exc) in _TRANSIENT_MESSAGES
    )


def _describe(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    text = str(exc).strip() or type(exc).__name__
    return f"J-Link error {code}: {text}" if code is not None else text
