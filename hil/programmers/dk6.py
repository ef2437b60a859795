"""DK6 backend (K32W061/K32W041): spsdk's `DK6Device` over UART, the scriptable DK6Programmer.

The seed's `DK6Programmer.exe -s <COM> -p FLASH@0x9D600="factory_data.bin"` becomes spsdk's DK6 client
(`spsdk.dk6`) with the PYSERIAL backend: any tty path works, a pty included (emulation-notes §1.3).

Error mapping (base.py contract):
- TransientError: no answer within the timeout, a frame with a bad CRC or start byte (a garbled frame), or
  the client's "No Response from Device". `write_region` reopens the port (flushing stale input) and
  re-runs ISP unlock, which resynchronises the ROM.
- ProgrammerError: a failure status (erase, blank check, write), a short read (the client returns empty
  data on a failed MEM_READ and raises nothing: emulation-notes §1.3 "never trust the exit code"), an
  address outside every DK6 memory, a port that cannot be opened.

Board options (boards.toml `[board.NAME.options]`):
- `backend`: "PYSERIAL" (default; the board must already be in ISP mode), "PYFTDI" or "FTD2xx" (spsdk[dk6]
  extra; the device id is the FTDI serial/URL and ISP entry is done by spsdk's CBUS sequence).
- `isp_entry` (bool, default true for FTDI backends): call `go_to_isp` before connecting. Not testable
  without hardware: a pty has no CBUS pins.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

from hil.programmers.base import ProgrammerBase

_TRANSIENT_MARKERS = ("invalid crc", "frame start byte", "no response")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip() or 'no response'}"


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError):
        return True
    from spsdk.exceptions import SPSDKError

    return isinstance(exc, SPSDKError) and any(m in str(exc).lower() for m in _TRANSIENT_MARKERS)


class Dk6Programmer(ProgrammerBase):
    """K32W0x1 ISP over UART through spsdk's DK6 client."""

    name: ClassVar[str] = "dk6"

    _device: Any = None

    def _open(self) -> None:
        from spsdk.dk6.dk6device import DK6Device
        from spsdk.dk6.driver import Backend, DriverInterface

        conn = self.connection
        if not conn.port:
            raise self.fail("open", None, "no serial port (boards.toml [board.NAME.connection] port)")
        backend_name = str(self.profile.options.get("backend", "PYSERIAL")).upper()
        try:
            backend = Backend[backend_name]
        except KeyError:
            raise self.fail("open", None, f"options.backend {backend_name!r} is not one of PYSERIAL, PYFTDI, "
                            "PYLIBFTDI, FTD2xx") from None  # fmt: skip
        with self.step("open serial port"):
            iface = DriverInterface(backend)
            if backend != Backend.PYSERIAL and self.profile.options.get("isp_entry", True):
                iface.go_to_isp(conn.port)
            # spsdk takes whole seconds (timeout_ms // 1000); set the exact value on the pyserial object.
            iface.init_serial(conn.port, conn.baudrate, max(conn.timeout_ms, 1000))
            serial = iface.get_serial()
            if backend == Backend.PYSERIAL:
                serial.timeout = serial.write_timeout = conn.timeout_ms / 1000
                serial.reset_input_buffer()  # stale bytes of an abandoned exchange would desynchronise
        device = DK6Device(serial)
        self._device = device
        with self._call("connect (ISP unlock, chip id, memory info)"):
            device.init()

    def _close(self) -> None:
        device, self._device = self._device, None
        if device is not None:
            with contextlib.suppress(Exception):
                device.close()

    def _call(self, step: str, address: int | None = None) -> contextlib.AbstractContextManager[None]:
        """`step` with the DK6 client's transient faults recognised by message."""
        return self.step(step, address, transient=_is_transient, reason=_describe)

    def _memory_id(self, address: int, length: int) -> Any:
        """The DK6 memory holding the range: FLASH first, then Config, RAM0, RAM1 (PSECT etc. overlap 0)."""
        from spsdk.dk6.commands import MemoryId

        for mid in (MemoryId.FLASH, MemoryId.Config, MemoryId.RAM0, MemoryId.RAM1):
            mem = (self._device.memories or {}).get(mid.tag)
            if mem is not None and mem.base_address <= address and address + length <= mem.end_address:
                return mid
        raise self.fail(
            "address check", address, f"0x{address:X}+0x{length:X} is in no DK6 memory of this chip"
        )

    def _require_open(self, step: str, address: int) -> None:
        if self._device is None:
            raise self.fail(step, address, "programmer is closed")

    def erase(self, address: int, length: int) -> None:
        self._require_open("erase", address)
        mid = self._memory_id(address, length)
        with self._call("erase", address):
            self._device.erase_memory(mid, address, length, verify=True)

    def write(self, address: int, data: bytes) -> None:
        self._require_open("write", address)
        mid = self._memory_id(address, len(data))
        with self._call("write", address):
            self._device.write_memory(mid, address, len(data), bytes(data))

    def read(self, address: int, length: int) -> bytes:
        self._require_open("read", address)
        mid = self._memory_id(address, length)
        with self._call("read", address):
            data = self._device.read_memory(mid, address, length)
        if len(data) != length:
            raise self.fail("read", address, f"got {len(data)} of {length} bytes (the ROM refused the read)")
        return bytes(data)

    def reset(self) -> None:
        if self._device is None:
            raise self.fail("reset", None, "programmer is closed")
        with self._call("reset"):
            self._device.reset()
