"""MCU bootloader backend ("blhost"): spsdk's McuBoot over UART, for the RW61x and K32W1 ROMs and the i.MX RT
flashloader (which sdp.py starts first).

Real parts only: spsdk's `McuBoot(MbootUARTInterface(SerialDevice(port)))` with `cmd_exception=True`, so every
failed command raises instead of returning False. On an emulated board the port is a pty served by
hil.emulator.rom_mboot; nothing here knows the difference.

Error mapping (the contract in base.py):
- TransientError: no response / timeout, a connection-level fault (bad CRC, garbled or unexpected frame,
  NAK instead of ACK), and no answer to the ping when (re)opening. `write_region` reopens (a fresh ping
  resynchronises both ends) and retries with its bound; a board that stays silent (power, cable, not in
  ISP mode) ends in "failed after N attempts" naming the ping, categorised as infrastructure like a lost
  J-Link probe or a DK6 timeout, so a run retries the test once and never marks a product failure.
- ProgrammerError: a status from the ROM (e.g. 105 FlashCommandFailure when programming non-erased flash,
  101 alignment, 10200 address out of range, 10205 memory not configured), a data abort, a port that
  cannot be opened.

Board options (boards.toml `[board.NAME.options]`), all optional:
- `flexspi_option` (int): FlexSPI NOR configuration option word; when set, `configure-memory 9` is sent
  after connecting (the RT flashloader needs it; sdp.py always sets it). 0xC0000007 is the word spsdk's
  memory database lists for the ISSI IS25WPxxxA QuadSPI NOR on the RT1060/RT1170 EVKs.
- `flexspi_config_address` (int): RAM address for the option word (default 0x20008000, spsdk's default
  ISP communication buffer).
- `erase_chunk` (int): largest erase sent as one command (default 64 KiB) so one command finishes within
  the response timeout on real NOR flash.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

from spsdk.exceptions import SPSDKConnectionError, SPSDKError
from spsdk.mboot.error_codes import StatusCode
from spsdk.mboot.exceptions import McuBootCommandError, McuBootDataAbortError
from spsdk.mboot.interfaces.uart import MbootUARTInterface
from spsdk.mboot.mcuboot import McuBoot
from spsdk.utils.interfaces.device.serial_device import SerialDevice

from hil.errors import InputError
from hil.programmers.base import ProgrammerBase

FLEXSPI_NOR_MEM_ID = 9
DEFAULT_FLEXSPI_CONFIG_ADDRESS = 0x20008000
DEFAULT_ERASE_CHUNK = 0x10000

# Hints for statuses a harness user can act on.
_HINTS = {
    StatusCode.FLASH_COMMAND_FAILURE.tag: "flash not erased, or protected",
    StatusCode.FLASH_ALIGNMENT_ERROR.tag: "not aligned to the flash sector",
    StatusCode.MEMORY_RANGE_INVALID.tag: "no memory at this address on this part",
    StatusCode.MEMORY_NOT_CONFIGURED.tag: "external flash not configured (configure-memory / flexspi_option)",
}


def is_transient(exc: BaseException) -> bool:
    """Whether an spsdk exception is a fault worth retrying (module docstring)."""
    if isinstance(exc, McuBootCommandError):
        return exc.error_value == StatusCode.NO_RESPONSE.tag
    if isinstance(exc, McuBootDataAbortError):
        return False
    return isinstance(exc, SPSDKConnectionError | TimeoutError)


def describe(exc: BaseException) -> str:
    """One line for an spsdk exception, with the ROM status code and a hint where there is one."""
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    if isinstance(exc, McuBootCommandError):
        hint = _HINTS.get(exc.error_value)
        line += f" (status {exc.error_value}{'; ' + hint if hint else ''})"
    return line


class BlhostProgrammer(ProgrammerBase):
    """Programmer over the MCU bootloader protocol (spsdk McuBoot)."""

    name: ClassVar[str] = "blhost"
    _mb: McuBoot | None = None

    # -- connection ----------------------------------------------------------------------------------------
    def _open(self) -> None:
        self._connect_mboot()
        option = self._option_int("flexspi_option")
        if option is not None:
            self.configure_flexspi(option)

    def _connect_mboot(self) -> None:
        port = self.connection.port
        if not port:
            raise InputError.field(f"{self.board}: connection.port", port, "the serial port of the board")
        try:
            device = SerialDevice(
                port=port, timeout=self.connection.timeout_ms, baudrate=self.connection.baudrate
            )
        except SPSDKError as exc:
            raise self.fail("open port", None, describe(exc)) from exc
        mb = McuBoot(MbootUARTInterface(device), cmd_exception=True)
        try:
            mb.open()
        except SPSDKError as exc:
            with contextlib.suppress(Exception):
                mb.close()
            # A missing ping answer is a timeout: the link (a lab's network, a loaded host) as often as the
            # board. Transient, so the open is retried and, if it persists, the run's one infrastructure
            # retry applies; a board that keeps silent still ends in this message after the bound.
            raise self.fail(
                "connect",
                None,
                f"no answer to the bootloader ping ({describe(exc)}); is the board in ISP mode?",
                transient=True,
            ) from exc
        self._mb = mb

    def _close(self) -> None:
        mb, self._mb = self._mb, None
        if mb is not None:
            mb.close()

    @property
    def mcuboot(self) -> McuBoot:
        """The connected spsdk client (for callers that need a command this interface does not wrap)."""
        if self._mb is None:
            raise self.fail("use", None, "the programmer is closed")
        return self._mb

    @contextlib.contextmanager
    def _call(self, step: str, address: int | None) -> Iterator[McuBoot]:
        """Run one client call; spsdk exceptions become TransientError / ProgrammerError."""
        mb = self.mcuboot
        with self.step(step, address, transient=is_transient, reason=describe):
            yield mb

    def _option_int(self, key: str, default: int | None = None) -> int | None:
        value: Any = self.profile.options.get(key, default)
        if value is None or isinstance(value, int):
            return value
        try:
            return int(str(value), 0)
        except ValueError:
            raise InputError.field(
                f"{self.board}: options.{key}", value, "an integer (0x-hex allowed)"
            ) from None

    # -- memory commands ---------------------------------------------------------------------------------
    def configure_flexspi(self, option: int, address: int | None = None) -> None:
        """Put the FlexSPI NOR option word in RAM and configure-memory with it (the RT flashloader flow)."""
        where = (
            address
            if address is not None
            else self._option_int("flexspi_config_address", DEFAULT_FLEXSPI_CONFIG_ADDRESS)
        )
        assert where is not None
        with self._call("configure FlexSPI NOR (fill-memory)", where) as mb:
            mb.fill_memory(where, 4, option)
        with self._call(f"configure FlexSPI NOR (configure-memory, option 0x{option:08X})", where) as mb:
            mb.configure_memory(where, FLEXSPI_NOR_MEM_ID)

    def erase(self, address: int, length: int) -> None:
        sector = self.profile.sector_size_at(address)
        if address % sector or length % sector:
            raise self.fail(
                "erase", address, f"0x{address:X}+0x{length:X} is not aligned to the 0x{sector:X}-byte sector"
            )
        chunk = self._option_int("erase_chunk", DEFAULT_ERASE_CHUNK) or DEFAULT_ERASE_CHUNK
        chunk = max(chunk - chunk % sector, sector)
        for start in range(address, address + length, chunk):
            with self._call("erase", start) as mb:
                mb.flash_erase_region(start, min(chunk, address + length - start))

    def write(self, address: int, data: bytes) -> None:
        with self._call("write", address) as mb:
            mb.write_memory(address, bytes(data))

    def read(self, address: int, length: int) -> bytes:
        with self._call("read", address) as mb:
            data = mb.read_memory(address, length)
        if data is None or len(data) != length:
            got = 0 if data is None else len(data)
            raise self.fail("read", address, f"short read: {got} of {length} bytes", transient=True)
        return bytes(data)

    def reset(self) -> None:
        """Reset the target; the connection is closed afterwards (the ROM reboots)."""
        with self._call("reset", None) as mb:
            mb.reset(reopen=False)
        self._mb = None
