"""i.MX RT backend ("sdp"): the ROM's Serial Download Protocol loads and starts a flashloader in RAM, then the
MCU-bootloader backend (blhost.py) programs the FlexSPI NOR through it.

The RT1060/RT1170 ROMs speak SDP (spsdk's device database: `isp.rom.protocol: sdp`, flashloader: mboot), which
can write RAM but not flash. The real flow, done here with spsdk's `SDP` and `McuBoot` clients on one port:

    sdphost write-file <load> ivt_flashloader.bin ; sdphost jump-address <IVT>          (SDP, ROM)
    blhost fill-memory <cfg> 4 0xC0000007 ; blhost configure-memory 9 <cfg>            (mboot, flashloader)
    blhost flash-erase-region / write-memory / read-memory                             (write_region)

Board options (`[board.NAME.options]`, besides blhost.py's):
- `flashloader` (path): NXP's `ivt_flashloader.bin` for the part (MCUXpresso Secure Provisioning tool,
  `bin/data/targets/<MCU>/ivt_flashloader.bin`, or NXP's Flashloader package). Required for a real board.
  On an emulated board it defaults to hil.emulator.flashloader_image's stand-in, which the emulated ROM
  recognises (it carries a marker, not code: an emulator artefact, never for a real board).
- `flashloader_address`, `jump_address` (int): override the load and IVT addresses, which are otherwise read
  from the image's own IVT (`self`) so no per-part address table is needed.
- `flexspi_option` (int, default 0xC0000007, spsdk's memory database entry for ISSI IS25WPxxxA QuadSPI NOR,
  the flash of the RT1060-EVKB and RT1170-EVK) and `flexspi_config_address` (blhost.py).

If the flashloader already answers (a previous session loaded it and the board was not reset), the SDP step
is skipped; a `reopen()` after a transient fault only reconnects to the flashloader.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from spsdk.exceptions import SPSDKError
from spsdk.sdp.error_codes import StatusCode
from spsdk.sdp.exceptions import SdpConnectionError
from spsdk.sdp.interfaces.uart import SdpUARTInterface
from spsdk.sdp.sdp import SDP
from spsdk.utils.interfaces.device.serial_device import SerialDevice

from hil.emulator.flashloader_image import (
    DEFAULT_LOAD_ADDRESS,
    IVT_OFFSET,
    build_emulated_flashloader,
    find_ivt,
)
from hil.errors import ConfigError, ProgrammerError, TransientError
from hil.programmers.blhost import BlhostProgrammer, describe

DEFAULT_FLEXSPI_OPTION = 0xC0000007  # IS25WPxxxA quad SPI (spsdk data/common/memcfg/memcfg_data.yaml)
COMMAND_WIRE_PAUSE_S = 0.02  # see _PacedSdpUART
SDP_ATTEMPTS = 3  # write-file attempts before giving up
# How long to wait for the ROM's SDP answer before trying whether a flashloader already runs.
_SDP_PROBE_TIMEOUT_MS = 500


class _PacedSdpUART(SdpUARTInterface):
    """spsdk's SDP UART interface, giving a command its wire time before the data phase follows it.

    WHY: SDP has no ACK between WRITE_FILE's command and its data, so the host writes them back to back and
    relies on the UART draining the command first (1.4 ms for 16 bytes at 115200 baud). spsdk flushes the
    port before every write; on a pty, which drains instantly, that flush can discard a command the far end
    has not read yet (measured on an emulated board: up to 1 transfer in 4 on a fresh pty under load, none in
    100 with this pause). On a real UART the pause only adds to the drain time. SDP itself runs unchanged.
    """

    def write_data(self, data: bytes) -> None:
        time.sleep(COMMAND_WIRE_PAUSE_S)
        super().write_data(data)


class SdpProgrammer(BlhostProgrammer):
    """SDP hand-over to the RT flashloader, then the blhost backend."""

    name: ClassVar[str] = "sdp"
    flashloader_started: bool = False  # whether this session loaded the flashloader (False: it already ran)
    hab_closed: bool = False  # the ROM reported HAB closed: only a signed flashloader will start

    def _open(self) -> None:
        image, load, jump = self._flashloader()
        self.flashloader_started = self._rom_answers()
        if self.flashloader_started:
            self._load_and_jump(image, load, jump)
        try:
            self._connect_mboot()
        except ProgrammerError as exc:
            if not self.flashloader_started:
                raise self.fail(
                    "connect",
                    None,
                    "neither the ROM (SDP) nor a flashloader (mboot) answers; is the board powered and in "
                    "serial-download mode (boot pins)?",
                ) from exc
            raise self.fail(
                "start flashloader",
                jump,
                f"no flashloader answered after jump-address 0x{jump:X}{self._rom_status()}; "
                f"check the flashloader image and its addresses (load 0x{load:X})"
                f"{'; HAB is closed, so it must be signed' if self.hab_closed else ''} ({exc})",
            ) from exc
        option = self._option_int("flexspi_option", DEFAULT_FLEXSPI_OPTION)
        assert option is not None
        self.configure_flexspi(option)

    def reopen(self) -> None:
        """Reconnect to the running flashloader (SDP is only the way in; the ROM no longer listens)."""
        with contextlib.suppress(Exception):
            self._close()
        self._connect_mboot()
        option = self._option_int("flexspi_option", DEFAULT_FLEXSPI_OPTION)
        assert option is not None
        self.configure_flexspi(option)

    # -- the flashloader image -----------------------------------------------------------------------------
    def _flashloader(self) -> tuple[bytes, int, int]:
        """(image, load address, jump address) from the options, the image's IVT, or the emulator default."""
        path = self.profile.options.get("flashloader")
        if path:
            file = Path(str(path)).expanduser()
            if self.profile.source is not None and not file.is_absolute():
                file = self.profile.source.parent / file
            try:
                image = file.read_bytes()
            except OSError as exc:
                raise ConfigError(
                    f"{self.board}: options.flashloader: cannot read {str(file)!r} ({exc.strerror}); "
                    "give the path of NXP's ivt_flashloader.bin for this part"
                ) from None
        elif self.connection.emulated:
            image = build_emulated_flashloader(self._emulated_load_address())
        else:
            raise ConfigError(
                f"{self.board}: options.flashloader is required for a real {self.profile.family} board: the "
                "path of NXP's ivt_flashloader.bin (MCUXpresso Secure Provisioning tool, "
                "bin/data/targets/<MCU>/ivt_flashloader.bin)"
            )
        layout = find_ivt(image)
        load = self._option_int("flashloader_address", layout.load_address if layout else None)
        jump = self._option_int("jump_address", layout.jump_address if layout else None)
        if load is None or jump is None:
            raise ConfigError(
                f"{self.board}: options.flashloader: no i.MX image vector table found in the image; "
                "set options.flashloader_address and options.jump_address"
            )
        return image, load, jump

    def _emulated_load_address(self) -> int:
        """Where the emulated stand-in goes: 0x20208000 (NXP's RT10xx flashloader address) if that is RAM on
        this part, else 32 KiB into the largest RAM region (RT1170's OCRAM starts at 0x20240000)."""
        explicit = self._option_int("flashloader_address")
        if explicit is not None:
            return explicit
        rams = [m for m in self.profile.spec.memory if not m.is_flash]
        if any(m.contains(DEFAULT_LOAD_ADDRESS, IVT_OFFSET + 0x100) for m in rams):
            return DEFAULT_LOAD_ADDRESS
        largest = max(rams, key=lambda m: m.size)
        return largest.base + 0x8000

    # -- SDP -------------------------------------------------------------------------------------------------
    def _sdp(self, timeout_ms: int | None = None) -> SDP:
        port = self.connection.port
        if not port:
            raise ConfigError(f"{self.board}: connection.port is required for the sdp programmer")
        try:
            device = SerialDevice(
                port=port, timeout=timeout_ms or self.connection.timeout_ms, baudrate=self.connection.baudrate
            )
        except SPSDKError as exc:
            raise self.fail("open port", None, describe(exc)) from exc
        return SDP(_PacedSdpUART(device), cmd_exception=True)

    def _rom_answers(self) -> bool:
        """True when the ROM answers SDP ERROR_STATUS; False when the port is silent to SDP (a flashloader
        from an earlier session is running and ignores SDP's bytes: they hold no mboot start byte)."""
        with self._sdp(min(_SDP_PROBE_TIMEOUT_MS, self.connection.timeout_ms)) as sdp:
            try:
                status = sdp.read_status()
            except SPSDKError:
                return False
        return status is not None

    def _load_and_jump(self, image: bytes, load: int, jump: int) -> None:
        """write-file the image, then jump-address to its IVT. A lost or garbled transfer (no answer) is
        repeated, at most SDP_ATTEMPTS times in all: writing RAM again is harmless."""
        with self._sdp() as sdp:
            for attempt in range(1, SDP_ATTEMPTS + 1):
                try:
                    self._sdp_step(
                        sdp, "load flashloader (SDP write-file)", load, lambda: sdp.write_file(load, image)
                    )
                    break
                except TransientError:
                    if attempt == SDP_ATTEMPTS:
                        raise
            self._sdp_step(sdp, "start flashloader (SDP jump-address)", jump, lambda: sdp.jump_and_run(jump))

    def _sdp_step(self, sdp: SDP, step: str, address: int, call: Callable[[], bool]) -> None:
        try:
            ok = call()
        except SdpConnectionError as exc:
            raise self.fail(step, address, describe(exc), transient=True) from exc
        except SPSDKError as exc:
            raise self.fail(step, address, describe(exc)) from exc
        if not ok:
            raise self.fail(step, address, f"the ROM refused it ({sdp.status_code.label})")
        self.hab_closed = sdp.status_code == StatusCode.HAB_IS_LOCKED

    def _rom_status(self) -> str:
        """The ROM's SDP error status if it still answers (the jump failed), for the error message."""
        try:
            with self._sdp(min(_SDP_PROBE_TIMEOUT_MS, self.connection.timeout_ms)) as sdp:
                status = sdp.read_status()
        except Exception:
            return ""
        return f" (the ROM still answers SDP, error status 0x{status:08X})" if status is not None else ""
