"""The NXP MCU bootloader ("mboot", what `blhost` talks to) over UART, emulated on a pty.

Spoken by the RW61x and K32W1 boot ROMs in ISP mode and by the i.MX RT flashloader once the RT ROM has
started it (rom_sdp.py). spsdk's `McuBoot` and the `blhost` CLI run unchanged against it: the framing, CRC,
chunking and error mapping they exercise are theirs, only the far end is ours.

Wire format (little-endian; spsdk `mboot/protocol/serial_protocol.py`, emulation-notes §1.4):

    ping      host 5A A6                dev 5A A7 | version u32 | options u16 | crc16 u16
    ack/nack  5A A1 / 5A A2             abort 5A A3
    command   5A A4 | len u16 | crc16 u16 | tag u8, flags u8, rsvd u8, nparams u8, params u32[]
    data      5A A5 | len u16 | crc16 u16 | payload
    crc16     CRC-16/XMODEM over 5A, type, len, payload (the ping response: over 5A A7 version options)

Every command or data frame is ACKed by its receiver before the sender sends the next one. The device
therefore holds its next frame until the host's ACK of the previous one arrives.

The pty flush race (emulation-notes §1.4). spsdk's `SerialDevice.write()` calls tcflush(TCIOFLUSH) before
every write. On a real UART that is harmless; on a Linux pty a TCOFLUSH on the slave discards bytes the
master has not read yet, so the host's trailing ACK (written just before its next command) is regularly
lost and an emulator that insists on it hangs. The host can only send a new frame after it has read our
previous one, so a new host frame counts as an *implicit ACK* (counted in `stats.implicit_acks`); frames
still queued from a transaction the host abandoned are dropped when a new command arrives.

Faults (hil.emulator.faults.FaultPlan): every frame the device puts on the wire (ACKs, ping responses,
command responses, data) passes through `faults.outgoing()`, so a plan can drop, garble or stall any of
them; flash programming asks `faults.allow_program()` first, and once a plan has disconnected the board
the ROM goes silent for good, as a board whose cable was pulled mid-write.

Guesses, not documented ROM behaviour (to be checked against transcripts from real boards):
- Property values (current version 'K3.0.0', ping version 'P1.2.0', max packet size 512) are plausible
  values that spsdk accepts; each family's real values are unknown here and are constructor arguments.
- Writing over non-erased flash answers 105 FlashCommandFailure. `program_policy="strict"` (default)
  refuses before touching the flash, as internal flash with ECC does (K32W1); `"verify"` programs the
  bits (NOR can only clear them) and fails only when the result differs from the data, as a flashloader
  that verifies after programming external NOR would (rewriting identical bytes then succeeds).
- A ping resets the framing state (abandons a pending transaction); a new command abandons an unfinished
  write-memory data phase. Real ROMs' behaviour in these corners is unknown.
- Memories listed in `needs_configure` answer 10205 MemoryNotConfigured until configure-memory is given a
  valid FlexSPI NOR option word (tag nibble 0xC); the RT flashloader does require configure-memory, the
  check of the option word is ours.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from hil.emulator.faults import FaultPlan
from hil.emulator.flash import MemoryAccessError, MemoryMap, Region
from hil.emulator.pty import PtyPort
from hil.factory_data.codec import crc16_xmodem  # the mboot frame checksum is the same CRC

START = 0x5A


class FrameType(IntEnum):
    ACK = 0xA1
    NACK = 0xA2
    ABORT = 0xA3
    CMD = 0xA4
    DATA = 0xA5
    PING = 0xA6
    PINGR = 0xA7


class Command(IntEnum):
    FLASH_ERASE_ALL = 0x01
    FLASH_ERASE_REGION = 0x02
    READ_MEMORY = 0x03
    WRITE_MEMORY = 0x04
    FILL_MEMORY = 0x05
    GET_PROPERTY = 0x07
    RESET = 0x0B
    CONFIGURE_MEMORY = 0x11


class Response(IntEnum):
    GENERIC = 0xA0
    READ_MEMORY = 0xA3
    GET_PROPERTY = 0xA7


class Status(IntEnum):
    """The subset of mboot status codes the emulator answers with (spsdk `mboot/error_codes.py`)."""

    SUCCESS = 0
    FAIL = 1
    INVALID_ARGUMENT = 4
    FLASH_ALIGNMENT_ERROR = 101
    FLASH_COMMAND_FAILURE = 105
    UNKNOWN_COMMAND = 10000
    MEMORY_RANGE_INVALID = 10200
    MEMORY_NOT_CONFIGURED = 10205
    UNKNOWN_PROPERTY = 10300


class Prop(IntEnum):
    """Property tags (spsdk `COMMON_PROPERTY_INDEXES`)."""

    CURRENT_VERSION = 0x01
    AVAILABLE_PERIPHERALS = 0x02
    FLASH_START_ADDRESS = 0x03
    FLASH_SIZE = 0x04
    FLASH_SECTOR_SIZE = 0x05
    FLASH_BLOCK_COUNT = 0x06
    AVAILABLE_COMMANDS = 0x07
    VERIFY_WRITES = 0x0A
    MAX_PACKET_SIZE = 0x0B
    RESERVED_REGIONS = 0x0C
    RAM_START_ADDRESS = 0x0E
    RAM_SIZE = 0x0F
    FLASH_SECURITY_STATE = 0x11
    TARGET_VERSION = 0x18
    EXTERNAL_MEMORY_ATTRIBUTES = 0x19
    FLASH_PAGE_SIZE = 0x1B


FLEXSPI_NOR_MEM_ID = 9
PERIPHERAL_UART = 0x01
# ExternalMemoryAttributes flags: start address, size in KiB, page size, sector size (spsdk ExtMemPropTags)
_EXT_MEM_FLAGS = 0x01 | 0x02 | 0x04 | 0x08


def encode_frame(ftype: int, payload: bytes) -> bytes:
    head = struct.pack("<BBH", START, ftype, len(payload))
    return struct.pack("<BBHH", START, ftype, len(payload), crc16_xmodem(head + payload)) + payload


def encode_ping_response(version: int, options: int = 0) -> bytes:
    body = struct.pack("<BBIH", START, FrameType.PINGR, version, options)
    return body + struct.pack("<H", crc16_xmodem(body))


@dataclass
class MbootStats:
    """What the ROM saw and did, for tests and the stress report."""

    frames_sent: int = 0
    implicit_acks: int = 0
    nacks_sent: int = 0
    commands: list[tuple[int, tuple[int, ...]]] = field(default_factory=list)  # (tag, params)


@dataclass
class _WriteTransfer:
    tag: int
    region: Region
    address: int
    length: int
    received: int = 0
    failed: Status | None = None


class MbootRom:
    """An mboot target on `port`, backed by `memory`, with `faults` applied to everything it sends.

    Family facts are arguments, not code: the board's family table supplies them (see __init__).
    `feed()` is called with whatever bytes the host wrote; answers go out through `port.send()`.
    """

    def __init__(
        self,
        port: PtyPort,
        memory: MemoryMap,
        faults: FaultPlan | None = None,
        *,
        current_version: int = 0x4B030000,  # 'K' 3.0.0
        protocol_version: int = 0x50010200,  # 'P' 1.2.0, the ping response
        max_packet_size: int = 512,
        flash_region: str | None = None,
        ram_region: str | None = None,
        needs_configure: Mapping[str, int] | None = None,
        extra_properties: Mapping[int, tuple[int, ...]] | None = None,
        program_policy: str = "strict",
        on_reset: Callable[[], None] | None = None,
    ) -> None:
        """
        flash_region / ram_region: names (in `memory`) reported by the FlashStart/Size/SectorSize and
            RamStart/Size properties; default: the first flash and the first RAM region.
        needs_configure: region name -> external memory id (9 = FlexSPI NOR) for memories that answer
            MemoryNotConfigured until configure-memory, as behind the RT flashloader.
        extra_properties: property tag -> values, added to or overriding the computed ones.
        program_policy: "strict" or "verify", what writing over non-erased flash does (module docstring).
        on_reset: called after the reset command was answered (the board reboots its firmware).
        """
        if program_policy not in ("strict", "verify"):
            raise ValueError(f"program_policy: {program_policy!r} is not 'strict' or 'verify'")
        self.program_policy = program_policy
        self.port = port
        self.memory = memory
        self.faults = faults if faults is not None else FaultPlan()
        self.current_version = current_version
        self.protocol_version = protocol_version
        self.max_packet_size = max_packet_size
        self.flash = self._pick(flash_region, flash=True)
        self.ram = self._pick(ram_region, flash=False)
        self.needs_configure = dict(needs_configure or {})
        self.configured: set[str] = set()
        self.extra_properties = dict(extra_properties or {})
        self.on_reset = on_reset
        self.stats = MbootStats()
        self._rx = bytearray()
        self._outq: deque[bytes] = deque()
        self._await_ack = False
        self._write: _WriteTransfer | None = None

    def _pick(self, name: str | None, *, flash: bool) -> Region | None:
        if name is not None:
            return self.memory.by_name(name)
        return next((r for r in self.memory.regions if r.is_flash == flash), None)

    # -- output: every frame through the fault plan; device frames gated by the host's ACK ---------------
    def _emit(self, frame: bytes) -> None:
        wire = self.faults.outgoing(frame)
        if wire is None:
            return
        self.stats.frames_sent += 1
        self.port.send(wire)

    def _queue(self, ftype: int, payload: bytes) -> None:
        self._outq.append(encode_frame(ftype, payload))
        self._pump()

    def _pump(self) -> None:
        if not self._await_ack and self._outq:
            self._await_ack = True
            self._emit(self._outq.popleft())

    def _respond(self, tag: int, flags: int, *params: int) -> None:
        self._queue(FrameType.CMD, struct.pack(f"<4B{len(params)}I", tag, flags, 0, len(params), *params))

    def _generic(self, status: int, cmd_tag: int) -> None:
        self._respond(Response.GENERIC, 0, status, cmd_tag)

    def _reset_framing(self) -> None:
        self._outq.clear()
        self._await_ack = False
        self._write = None

    # -- input ---------------------------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Consume bytes from the host; act on every complete frame."""
        if self.faults.disconnected:
            return  # the cable is gone: nothing reaches the ROM, nothing comes back
        self._rx += data
        while self._rx:
            if self._rx[0] != START:
                del self._rx[0]  # line noise or the tail of a frame we gave up on
                continue
            if len(self._rx) < 2:
                return
            ftype = self._rx[1]
            if ftype in (FrameType.ACK, FrameType.NACK, FrameType.ABORT, FrameType.PING):
                del self._rx[:2]
                self._on_short_frame(ftype)
                continue
            if ftype not in (FrameType.CMD, FrameType.DATA):
                del self._rx[0]
                continue
            if len(self._rx) < 6:
                return
            _, _, length, crc = struct.unpack_from("<BBHH", self._rx)
            if len(self._rx) < 6 + length:
                return
            payload = bytes(self._rx[6 : 6 + length])
            del self._rx[: 6 + length]
            if crc != crc16_xmodem(struct.pack("<BBH", START, ftype, length) + payload):
                self.stats.nacks_sent += 1
                self._emit(bytes([START, FrameType.NACK]))
                continue
            if self._await_ack:
                # Implicit ACK (module docstring): the host has read our last frame, or it would not talk.
                self.stats.implicit_acks += 1
                self._await_ack = False
                if ftype == FrameType.CMD:
                    self._outq.clear()
            if ftype == FrameType.CMD:
                self._emit(bytes([START, FrameType.ACK]))
                self._write = None  # a new command abandons an unfinished data phase
                self._on_command(payload)
            else:
                self._on_data(payload)
            if self.faults.disconnected:
                return

    def _on_short_frame(self, ftype: int) -> None:
        if ftype == FrameType.PING:
            self._reset_framing()
            self._emit(encode_ping_response(self.protocol_version))
        elif ftype == FrameType.ACK:
            self._await_ack = False
            self._pump()
        elif ftype == FrameType.ABORT:
            self._reset_framing()
        # A NACK of our frame: the host re-reads nothing in spsdk's client, so there is nothing to resend.

    # -- commands ------------------------------------------------------------------------------------------
    def _on_command(self, payload: bytes) -> None:
        if len(payload) < 4:
            self._generic(Status.INVALID_ARGUMENT, 0)
            return
        tag, _flags, _, count = struct.unpack_from("<4B", payload)
        count = min(count, (len(payload) - 4) // 4)
        params = struct.unpack_from(f"<{count}I", payload, 4)
        self.stats.commands.append((tag, params))
        handler = self._handlers().get(tag)
        if handler is None:
            self._generic(Status.UNKNOWN_COMMAND, tag)
            return
        handler(tag, params)

    def _handlers(self) -> dict[int, Callable[[int, tuple[int, ...]], None]]:
        return {
            Command.FLASH_ERASE_ALL: self._cmd_erase_all,
            Command.FLASH_ERASE_REGION: self._cmd_erase_region,
            Command.READ_MEMORY: self._cmd_read_memory,
            Command.WRITE_MEMORY: self._cmd_write_memory,
            Command.FILL_MEMORY: self._cmd_fill_memory,
            Command.GET_PROPERTY: self._cmd_get_property,
            Command.RESET: self._cmd_reset,
            Command.CONFIGURE_MEMORY: self._cmd_configure_memory,
        }

    def _locate(self, address: int, length: int) -> tuple[Region | None, Status]:
        try:
            region = self.memory.region(address, length)
        except MemoryAccessError:
            return None, Status.MEMORY_RANGE_INVALID
        if region.name in self.needs_configure and region.name not in self.configured:
            return None, Status.MEMORY_NOT_CONFIGURED
        return region, Status.SUCCESS

    @staticmethod
    def _arg(params: tuple[int, ...], i: int, default: int = 0) -> int:
        return params[i] if len(params) > i else default

    def _cmd_get_property(self, tag: int, params: tuple[int, ...]) -> None:
        prop, index = self._arg(params, 0), self._arg(params, 1)
        values = self.property_values(prop, index)
        if isinstance(values, Status):
            self._respond(Response.GET_PROPERTY, 0, values)
        else:
            self._respond(Response.GET_PROPERTY, 0, Status.SUCCESS, *values)

    def property_values(self, prop: int, index: int = 0) -> tuple[int, ...] | Status:
        """The values get-property answers for `prop`, or the failure status."""
        if prop in self.extra_properties:
            return tuple(self.extra_properties[prop])
        if prop == Prop.EXTERNAL_MEMORY_ATTRIBUTES:
            return self._ext_mem_attributes(index)
        flash, ram = self.flash, self.ram
        table: dict[int, tuple[int, ...]] = {
            Prop.CURRENT_VERSION: (self.current_version,),
            Prop.AVAILABLE_PERIPHERALS: (PERIPHERAL_UART,),
            Prop.AVAILABLE_COMMANDS: (sum(1 << (t - 1) for t in self._handlers()),),
            Prop.VERIFY_WRITES: (1,),
            Prop.MAX_PACKET_SIZE: (self.max_packet_size,),
            Prop.RESERVED_REGIONS: (0, 0),
            Prop.FLASH_SECURITY_STATE: (0,),  # unsecure
            Prop.TARGET_VERSION: (self.current_version,),
        }
        if flash is not None:
            table |= {
                Prop.FLASH_START_ADDRESS: (flash.base,),
                Prop.FLASH_SIZE: (flash.size,),
                Prop.FLASH_SECTOR_SIZE: (flash.sector_size,),
                Prop.FLASH_BLOCK_COUNT: (1,),
            }
        if ram is not None:
            table |= {Prop.RAM_START_ADDRESS: (ram.base,), Prop.RAM_SIZE: (ram.size,)}
        return table.get(prop, Status.UNKNOWN_PROPERTY)

    def _ext_mem_attributes(self, mem_id: int) -> tuple[int, ...] | Status:
        """Attributes of the external memory `mem_id`: its emulated windows taken as one device."""
        regions = [self.memory.by_name(n) for n, mid in self.needs_configure.items() if mid == mem_id]
        if not regions:
            return Status.INVALID_ARGUMENT
        if any(r.name not in self.configured for r in regions):
            return Status.MEMORY_NOT_CONFIGURED
        start, end = min(r.base for r in regions), max(r.end for r in regions)
        return (_EXT_MEM_FLAGS, start, (end - start) // 1024, 256, regions[0].sector_size, 0)

    def _cmd_erase_all(self, tag: int, params: tuple[int, ...]) -> None:
        mem_id = self._arg(params, 0)
        targets = [
            r for r in self.memory.regions if r.is_flash and self.needs_configure.get(r.name, 0) == mem_id
        ]
        if any(r.name in self.needs_configure and r.name not in self.configured for r in targets):
            self._generic(Status.MEMORY_NOT_CONFIGURED, tag)
            return
        for region in targets:
            region.erase(region.base, region.size)
        self._generic(Status.SUCCESS, tag)

    def _cmd_erase_region(self, tag: int, params: tuple[int, ...]) -> None:
        address, length = self._arg(params, 0), self._arg(params, 1)
        region, status = self._locate(address, length)
        if region is None:
            self._generic(status, tag)
            return
        if not region.is_flash:
            self._generic(Status.MEMORY_RANGE_INVALID, tag)
            return
        try:
            region.erase(address, length)
        except MemoryAccessError:
            self._generic(Status.FLASH_ALIGNMENT_ERROR, tag)
            return
        self._generic(Status.SUCCESS, tag)

    def _cmd_write_memory(self, tag: int, params: tuple[int, ...]) -> None:
        address, length = self._arg(params, 0), self._arg(params, 1)
        region, status = self._locate(address, length)
        if region is None:
            self._generic(status, tag)
            return
        self._write = _WriteTransfer(tag, region, address, length)
        self._generic(Status.SUCCESS, tag)  # the initial response: go ahead with the data phase

    def _on_data(self, payload: bytes) -> None:
        xfer = self._write
        if xfer is None:
            return  # data without a write command: ignored (nothing to ACK into)
        chunk = payload[: xfer.length - xfer.received]
        address = xfer.address + xfer.received
        if xfer.failed is None and not self._program(xfer.region, address, chunk):
            xfer.failed = Status.FLASH_COMMAND_FAILURE
        if self.faults.disconnected:
            return
        xfer.received += len(chunk)
        self._emit(bytes([START, FrameType.ACK]))
        if xfer.received >= xfer.length:
            self._write = None
            self._generic(xfer.failed if xfer.failed is not None else Status.SUCCESS, xfer.tag)

    def _program(self, region: Region, address: int, data: bytes) -> bool:
        """Program as much as the fault plan allows; True when every byte ended as requested."""
        if region.is_flash and self.program_policy == "strict" and not region.is_erased(address, len(data)):
            return False
        allowed = self.faults.allow_program(len(data))
        ok = region.program(address, data[:allowed]) if allowed else True
        if allowed:
            self.faults.after_program(self.memory, address, allowed)
        return ok and allowed == len(data)

    def _cmd_read_memory(self, tag: int, params: tuple[int, ...]) -> None:
        address, length = self._arg(params, 0), self._arg(params, 1)
        region, status = self._locate(address, length)
        if region is None:
            self._respond(Response.READ_MEMORY, 0, status, 0)
            return
        self._respond(Response.READ_MEMORY, 1, Status.SUCCESS, length)  # flags=1: a data phase follows
        data = region.read(address, length)
        for i in range(0, length, self.max_packet_size):
            self._queue(FrameType.DATA, data[i : i + self.max_packet_size])
        self._generic(Status.SUCCESS, tag)

    def _cmd_fill_memory(self, tag: int, params: tuple[int, ...]) -> None:
        address, length, pattern = self._arg(params, 0), self._arg(params, 1), self._arg(params, 2)
        region, status = self._locate(address, length)
        if region is None:
            self._generic(status, tag)
            return
        data = (struct.pack("<I", pattern) * (length // 4 + 1))[:length]
        ok = self._program(region, address, data)
        if self.faults.disconnected:
            return
        self._generic(Status.SUCCESS if ok else Status.FLASH_COMMAND_FAILURE, tag)

    def _cmd_configure_memory(self, tag: int, params: tuple[int, ...]) -> None:
        mem_id, config_address = self._arg(params, 0), self._arg(params, 1)
        names = [name for name, mid in self.needs_configure.items() if mid == mem_id]
        if not names:
            # Memories that need no configuration accept it as a no-op (internal flash, mem id 0).
            self._generic(Status.SUCCESS if mem_id == 0 else Status.INVALID_ARGUMENT, tag)
            return
        try:
            option = int.from_bytes(self.memory.read(config_address, 4), "little")
        except MemoryAccessError:
            self._generic(Status.MEMORY_RANGE_INVALID, tag)
            return
        if option >> 28 != 0xC:
            self._generic(Status.INVALID_ARGUMENT, tag)  # not a FlexSPI NOR configuration option word
            return
        self.configured.update(names)
        self._generic(Status.SUCCESS, tag)

    def _cmd_reset(self, tag: int, params: tuple[int, ...]) -> None:
        # A real ROM answers, then resets. Here the reset (and the board's reset hooks) happen first and the
        # answer goes out last, so a host that has read the answer finds the board already reset.
        answer = encode_frame(
            FrameType.CMD, struct.pack("<4B2I", Response.GENERIC, 0, 0, 2, Status.SUCCESS, tag)
        )
        self.reset()
        if self.on_reset is not None:
            self.on_reset()
        self._emit(answer)

    def reset(self) -> None:
        """Back to the power-on state: no transaction in progress, external memories unconfigured."""
        self._reset_framing()
        self._rx.clear()
        self.configured.clear()
