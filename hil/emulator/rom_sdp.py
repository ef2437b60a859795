"""The i.MX RT boot ROM's Serial Download Protocol (SDP, what `sdphost` talks to) on a pty, emulated,
and the hand-over to the flashloader: after JUMP_ADDRESS to a valid flashloader image the same pty speaks
mboot (rom_mboot.MbootRom), as the real RT10xx flow does (emulation-notes §1.5).

SDP over UART: big-endian 16-byte commands ``tag u16, address u32, format u8, count u32, value u32, rsvd u8``;
no framing, no CRC, no ACK (spsdk `sdp/sdp.py`, `sdp/protocol/serial_protocol.py`).

| command | tag | device answers |
|---|---|---|
| READ_REGISTER | 0x0101 | HAB word, then `count` bytes |
| WRITE_REGISTER | 0x0202 | HAB word, then 0x128A8A12 (write data OK) |
| WRITE_FILE | 0x0404 | (host sends `count` bytes) HAB word, then 0x88888888 (write file OK) |
| ERROR_STATUS | 0x0505 | HAB word, then the status of the last failure (0xF0F0F0F0 = HAB success) |
| JUMP_ADDRESS | 0x0B0B | HAB word; then the image runs (here: the flashloader answers mboot) |

HAB word: 0x56787856 open (unlocked), 0x12343412 closed. Every answer goes through `faults.outgoing()` as
one frame; a disconnected plan silences the ROM.

Guesses, not documented ROM behaviour:
- JUMP_ADDRESS checks for an IVT at the address (tag, length, version, `self` == address, boot data inside
  RAM) and, for the emulator, the flashloader marker at its entry point (flashloader_image.py). On failure
  the ROM sends, after the HAB word, the status word 0x33050000 (HAB failure, reason "invalid IVT" from
  spsdk's HAB enums; the exact value a real ROM reports is unknown), stays in SDP and reports the same word
  for ERROR_STATUS.
- WRITE_FILE / WRITE_REGISTER outside RAM: the data is consumed and the status word is 0x33220000 (HAB
  failure, "invalid address") instead of the OK word. READ_REGISTER outside RAM answers only the HAB word
  (the host times out), modelling a read the ROM does not serve.
- Input framing, ours (a UART ROM needs some rule to resynchronise): bytes that cannot start a command
  (the two bytes of every SDP tag are equal) are skipped up to the next valid tag pair; and after 100 ms
  without input a partial command or an unfinished WRITE_FILE data phase is abandoned (inter-byte timeout).
- A reset given to the flashloader reboots into the ROM's serial downloader (the boot pins still select
  it); the flashloader in OCRAM is not started again without a new JUMP_ADDRESS.

The pty flush race (emulation-notes §1.4) reaches SDP too, contrary to the note there: WRITE_FILE is two
host writes (command, then data) and spsdk's `SerialDevice.write()` flushes the port before the second,
which on a pty can discard the command before the emulator has read it (measured: 10-25 % of transfers on
a fresh pty of a loaded 2-core machine). The data then arrives without its command, is skipped, and the
host times out. No emulator can recover a command it never received; the framing rules above make the
retry clean (sdp.py paces the transfer and retries it; the bare `sdphost write-file` may need a rerun).

Open question: spsdk's device database lists SDP as the RT1166/RT117x ROM protocol (and the RT1170 board
here follows it), but an NXP support answer (community.nxp.com, "Need RT1170 FOTA example") says the RT1170
ROM speaks the MCU bootloader and loads the flashloader with `blhost load-image`. A real RT1170 decides.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from hil.emulator.faults import FaultPlan
from hil.emulator.flash import MemoryAccessError, MemoryMap
from hil.emulator.flashloader_image import IVT_LENGTH, Ivt, is_emulated_flashloader
from hil.emulator.pty import PtyPort
from hil.emulator.rom_mboot import FLEXSPI_NOR_MEM_ID, MbootRom


class SdpCommand(IntEnum):
    READ_REGISTER = 0x0101
    WRITE_REGISTER = 0x0202
    WRITE_FILE = 0x0404
    ERROR_STATUS = 0x0505
    WRITE_CSF = 0x0606
    WRITE_DCD = 0x0A0A
    JUMP_ADDRESS = 0x0B0B
    SKIP_DCD_HEADER = 0x0C0C
    SET_BAUDRATE = 0x0D0D


HAB_OPEN = 0x56787856
HAB_CLOSED = 0x12343412
WRITE_DATA_OK = 0x128A8A12
WRITE_FILE_OK = 0x88888888
HAB_SUCCESS = 0xF0F0F0F0
STATUS_INVALID_IVT = 0x33050000  # guess (module docstring)
STATUS_INVALID_ADDRESS = 0x33220000  # guess (module docstring)
IDLE_RESET_S = 0.1  # inter-byte timeout (module docstring)
_COMMAND = struct.Struct(">HIBIIB")
_TAGS = {int(t) for t in SdpCommand}


@dataclass
class SdpStats:
    commands: list[tuple[int, int, int]] = field(default_factory=list)  # (tag, address, count)
    jumps: list[tuple[int, bool]] = field(default_factory=list)  # (address, started)


class SdpRom:
    """An RT ROM in serial-downloader mode on `port`; after a valid jump, `flashloader` (an MbootRom)."""

    def __init__(
        self,
        port: PtyPort,
        memory: MemoryMap,
        faults: FaultPlan | None = None,
        *,
        hab_closed: bool = False,
        flashloader: Mapping[str, Any] | None = None,
        on_reset: Callable[[], None] | None = None,
    ) -> None:
        """
        flashloader: keyword arguments for the MbootRom the flashloader image runs (its property values,
            `needs_configure` for the FlexSPI NOR region, ...); family data from the board's profile.
        on_reset: called when the flashloader is reset (the board reboots).
        """
        self.port = port
        self.memory = memory
        self._faults = faults if faults is not None else FaultPlan()
        self.hab_word = HAB_CLOSED if hab_closed else HAB_OPEN
        self.flashloader_options = dict(flashloader or {})
        # On an RT part every flash region is FlexSPI NOR, which the flashloader serves only after
        # configure-memory (mem id 9).
        self.flashloader_options.setdefault(
            "needs_configure", {r.name: FLEXSPI_NOR_MEM_ID for r in memory.regions if r.is_flash}
        )
        self.on_reset = on_reset
        self.flashloader: MbootRom | None = None
        self.last_status = HAB_SUCCESS
        self.stats = SdpStats()
        self._rx = bytearray()
        self._last_rx = 0.0
        self._pending: tuple[int, int, int] | None = None  # WRITE_FILE data phase: (address, count, received)
        self._pending_ok = True

    @property
    def faults(self) -> FaultPlan:
        return self._faults

    @faults.setter
    def faults(self, plan: FaultPlan) -> None:
        """Install a new fault plan, in the running flashloader too (frames count from here)."""
        self._faults = plan
        if self.flashloader is not None:
            self.flashloader.faults = plan

    @property
    def mode(self) -> str:
        return "flashloader" if self.flashloader is not None else "sdp"

    def _emit(self, data: bytes) -> None:
        wire = self.faults.outgoing(data)
        if wire is not None:
            self.port.send(wire)

    def _hab(self) -> bytes:
        return struct.pack(">I", self.hab_word)

    def feed(self, data: bytes) -> None:
        if self.flashloader is not None:
            self.flashloader.feed(data)
            return
        if self.faults.disconnected:
            return
        now = time.monotonic()
        idle, self._last_rx = now - self._last_rx, now
        if idle >= IDLE_RESET_S and (self._rx or self._pending is not None):
            self._rx.clear()  # inter-byte timeout (module docstring)
            self._pending = None
        self._rx += data
        while self._rx and self.flashloader is None:
            if self._pending is not None:
                self._take_file_data()
                if self._pending is not None:
                    return
                continue
            if len(self._rx) >= 2 and not _is_tag(self._rx, 0):
                start = next(
                    (i for i in range(1, len(self._rx) - 1) if _is_tag(self._rx, i)), len(self._rx) - 1
                )
                del self._rx[:start]  # skip junk up to the next possible command (module docstring)
                continue
            if len(self._rx) < _COMMAND.size:
                return
            tag, address, fmt, count, value, _ = _COMMAND.unpack_from(self._rx)
            del self._rx[: _COMMAND.size]
            self.stats.commands.append((tag, address, count))
            self._on_command(tag, address, fmt, count, value)
        if self.flashloader is not None and self._rx:
            rest, self._rx = bytes(self._rx), bytearray()
            self.flashloader.feed(rest)

    def _on_command(self, tag: int, address: int, fmt: int, count: int, value: int) -> None:
        if tag == SdpCommand.WRITE_FILE:
            self._pending = (address, count, 0)
            self._pending_ok = self._ram(address, count)
            if count == 0:
                self._take_file_data()
        elif tag == SdpCommand.WRITE_REGISTER:
            width = {8: 1, 16: 2, 32: 4}.get(fmt, 4)
            size = min(max(count, width), 4)
            if self._ram(address, size):
                self.memory.region(address, size).write_raw(address, value.to_bytes(4, "little")[:size])
                self._emit(self._hab() + struct.pack(">I", WRITE_DATA_OK))
            else:
                self._fail(STATUS_INVALID_ADDRESS)
        elif tag == SdpCommand.READ_REGISTER:
            if self._ram(address, count):
                self._emit(self._hab() + self.memory.read(address, count))
            else:
                self._emit(self._hab())
        elif tag == SdpCommand.ERROR_STATUS:
            self._emit(self._hab() + struct.pack(">I", self.last_status))
        elif tag == SdpCommand.JUMP_ADDRESS:
            self._jump(address)
        else:  # DCD, CSF, SKIP_DCD, SET_BAUDRATE: not modelled; answer the HAB word like a no-op
            self._emit(self._hab())

    def _ram(self, address: int, length: int) -> bool:
        try:
            region = self.memory.region(address, length)
        except MemoryAccessError:
            return False
        return not region.is_flash

    def _fail(self, status: int) -> None:
        self.last_status = status
        self._emit(self._hab() + struct.pack(">I", status))

    def _take_file_data(self) -> None:
        assert self._pending is not None
        address, count, received = self._pending
        take = bytes(self._rx[: count - received])
        del self._rx[: len(take)]
        if self._pending_ok and take:
            self.memory.region(address, count).write_raw(address + received, take)
        received += len(take)
        if received < count:
            self._pending = (address, count, received)
            return
        self._pending = None
        if self._pending_ok:
            self._emit(self._hab() + struct.pack(">I", WRITE_FILE_OK))
        else:
            self._fail(STATUS_INVALID_ADDRESS)

    def _jump(self, address: int) -> None:
        # The ROM answers the HAB word, then starts the image. The flashloader is started before the answer
        # goes out so a host that has read the answer already finds it running.
        if not self._valid_flashloader(address):
            self.stats.jumps.append((address, False))
            self._fail(STATUS_INVALID_IVT)  # HAB word, then the error status (module docstring)
            return
        self.stats.jumps.append((address, True))
        self.last_status = HAB_SUCCESS
        self.flashloader = MbootRom(
            self.port, self.memory, self.faults, on_reset=self._reboot, **self.flashloader_options
        )
        self._emit(self._hab())

    def _valid_flashloader(self, address: int) -> bool:
        if not self._ram(address, IVT_LENGTH):
            return False
        ivt = Ivt.parse(self.memory.read(address, IVT_LENGTH))
        if ivt is None or ivt.self_address != address or not self._ram(ivt.boot_data, 12):
            return False
        start, length, _ = struct.unpack("<3I", self.memory.read(ivt.boot_data, 12))
        if not (start <= address < start + length and start <= ivt.entry < start + length):
            return False
        if not self._ram(start, length):
            return False
        return is_emulated_flashloader(self.memory.read(ivt.entry, min(32, start + length - ivt.entry)))

    def reset(self) -> None:
        """Back to the power-on state: the ROM in serial-downloader mode, no flashloader running."""
        self.flashloader = None
        self._rx.clear()
        self._pending = None
        self.last_status = HAB_SUCCESS

    def _reboot(self) -> None:
        """The flashloader was told to reset: the chip reboots into the ROM (module docstring)."""
        self.reset()
        if self.on_reset is not None:
            self.on_reset()


def _is_tag(buf: bytearray, i: int) -> bool:
    return buf[i] == buf[i + 1] and ((buf[i] << 8) | buf[i + 1]) in _TAGS
