"""The DK6 ISP ROM (K32W061/K32W041, JN5189, QN9090) on an emulated board's serial port.

Speaks the frame protocol spsdk's `spsdk.dk6` client (and `dk6prog -b PYSERIAL -n`) uses, so that client
runs unchanged against it (emulation-notes.md §1.3):

    0x00 | LEN u16 BE (whole frame) | TYPE u8 | PAYLOAD | CRC32 u32 BE   (zlib CRC over everything before)
    response TYPE = command TYPE + 1; response payload[0] = status; fields inside payloads little-endian

Memories are served from the board's MemoryMap by name (FLASH, Config, RAM0, RAM1); PSECT, pFLASH, EFUSE and
ROM exist only so `MEM_GET_INFO` answers like the chip. Every response goes through the board's FaultPlan
(drop, garble, stall), every flash write through its program budget (disconnect) and bit flipper.

Guesses (not documented ROM behaviour; see the report and emulation-notes §6): the answer to a frame with a
bad CRC (CRC_ERROR here), programming over non-erased flash (WRITE_FAIL here: the flash model only clears
bits), an unaligned erase (MEMORY_OUT_OF_RANGE here), the blank-check failure status (TEST_ERROR), that
SET_BAUD gets no answer (spsdk reads none), and that RESET re-locks ISP.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

from hil.emulator.faults import FaultPlan
from hil.emulator.flash import MemoryAccessError, MemoryMap, Region
from hil.emulator.pty import PtyPort

OK = 0x00
MEMORY_OUT_OF_RANGE = 0xF2
MEMORY_ACCESS_INVALID = 0xF3
MEMORY_INVALID = 0xF5
AUTH_ERROR = 0xF7
TEST_ERROR = 0xF8
CRC_ERROR = 0xFC
WRITE_FAIL = 0xFE
NOT_SUPPORTED = 0xFF

RESET, EXECUTE, SET_BAUD, GET_CHIPID = 0x14, 0x21, 0x27, 0x32
MEM_OPEN, MEM_ERASE, MEM_BLANK_CHECK, MEM_READ, MEM_WRITE, MEM_CLOSE, MEM_GET_INFO, UNLOCK_ISP = (
    0x40,
    0x42,
    0x44,
    0x46,
    0x48,
    0x4A,
    0x4C,
    0x4E,
)

DEFAULT_KEY = bytes.fromhex("11223344556677881122334455667788")  # spsdk DK6Protocol.DEFAULT_KEY
MAC_ADDRESS = 0x9FC70  # in Config: 8-byte MAC read by DK6Device.init()
DEV_TYPE_ADDRESS = 0x9FC60  # in Config: u32 device type (32061 = K32W061)

# memory id -> (name, type, access); base/size/sector come from the board's memory map where it has the region
_MEMORIES: dict[int, tuple[str, int, int]] = {
    0: ("FLASH", 1, 0x0F),
    1: ("PSECT", 1, 0x0F),
    2: ("pFLASH", 1, 0x0F),
    3: ("Config", 1, 0x0F),
    4: ("EFUSE", 5, 0x0F),
    5: ("ROM", 0, 0x00),
    6: ("RAM0", 2, 0x0F),
    7: ("RAM1", 2, 0x0F),
}
# memories the board does not model: ROM-private (name -> base, size, sector)
_PRIVATE = {"PSECT": (0x0, 0x1E0, 0x10), "pFLASH": (0x0, 0x1FE0, 0x10), "EFUSE": (0x0, 0x80, 0x2)}
_ROM_AREA = (0x03000000, 0x20000)


def frame(ftype: int, payload: bytes) -> bytes:
    header = struct.pack(">BHB", 0, len(payload) + 8, ftype)
    return header + payload + struct.pack(">I", zlib.crc32(header + payload))


class Dk6Rom:
    """ROM-emulator contract (see hil.emulator.board): feed(bytes), reset(), faults, on_reset."""

    def __init__(
        self,
        port: PtyPort,
        memory: MemoryMap,
        faults: FaultPlan,
        *,
        chip_id: int = 0x1440C686,
        chip_version: int = 5,
        dev_type: int = 32061,
        mac: str = "00158D0001020304",
        key: str = DEFAULT_KEY.hex(),
        on_reset: Callable[[], None] | None = None,
    ) -> None:
        self.port, self.memory, self.faults = port, memory, faults
        self.chip_id, self.chip_version = chip_id, chip_version
        self.key = bytes.fromhex(key)
        self.on_reset = on_reset  # a host RESET reboots the chip: the board runs its reset hooks
        self._buf = bytearray()
        self.unlocked = False
        self.open_mem: int | None = None
        self.commands = 0
        self._regions: dict[int, Region] = {}
        for mid, (name, _t, _a) in _MEMORIES.items():
            try:
                self._regions[mid] = memory.by_name(name)
            except KeyError:
                if name in _PRIVATE:
                    base, size, sector = _PRIVATE[name]
                    self._regions[mid] = Region(name, base, size, sector)
                elif name == "ROM":
                    self._regions[mid] = Region("ROM", *_ROM_AREA)
        self._provision_config(bytes.fromhex(mac), dev_type)

    def _provision_config(self, mac: bytes, dev_type: int) -> None:
        """Factory-programmed words in Config (MAC, device type), written once into a blank Config page."""
        config = self._regions.get(3)
        if config is None or not config.contains(MAC_ADDRESS, 8):
            return
        if config.is_erased(MAC_ADDRESS, 8):
            config.program(MAC_ADDRESS, mac)
        if config.is_erased(DEV_TYPE_ADDRESS, 4):
            config.program(DEV_TYPE_ADDRESS, struct.pack("<I", dev_type))

    # -- wire --------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Power-on state: locked, nothing open, receive buffer empty."""
        self._buf.clear()
        self.unlocked = False
        self.open_mem = None

    def feed(self, data: bytes) -> None:
        if self.faults.disconnected:
            return  # the cable is "cut": nothing reaches the ROM
        self._buf += data
        while self._buf:
            if self._buf[0] != 0x00:  # resynchronise on the start byte
                del self._buf[0]
                continue
            if len(self._buf) < 4:
                return
            (length,) = struct.unpack_from(">H", self._buf, 1)
            if length < 8:
                del self._buf[0]
                continue
            if len(self._buf) < length:
                return
            raw = bytes(self._buf[:length])
            del self._buf[:length]
            (crc,) = struct.unpack_from(">I", raw, length - 4)
            if crc != zlib.crc32(raw[:-4]):
                self._reply(raw[3], CRC_ERROR)
                continue
            self.commands += 1
            self._handle(raw[3], raw[4:-4])

    def _reply(self, ftype: int, status: int, body: bytes = b"") -> None:
        out = self.faults.outgoing(frame((ftype + 1) & 0xFF, bytes([status]) + body))
        if out:
            self.port.send(out)

    # -- commands ----------------------------------------------------------------------------------------
    def _handle(self, t: int, p: bytes) -> None:
        if t == UNLOCK_ISP:
            return self._unlock(p)
        if t == GET_CHIPID:
            return self._reply(t, OK, struct.pack("<II", self.chip_id, self.chip_version))
        if t == SET_BAUD:
            return None  # spsdk reads no response to SET_BAUD
        if t == RESET:
            self._reply(t, OK)
            self.reset()
            if self.on_reset is not None:
                self.on_reset()
            return None
        if not self.unlocked:
            return self._reply(t, AUTH_ERROR)
        if t == MEM_GET_INFO:
            return self._get_info(p[0] if p else 0xFF)
        if t == MEM_OPEN:
            if not p or p[0] not in self._regions:
                return self._reply(t, MEMORY_INVALID)
            self.open_mem = p[0]
            return self._reply(t, OK, b"\x00")  # handle 0
        if t == MEM_CLOSE:
            self.open_mem = None
            self.memory.flush()
            return self._reply(t, OK)
        if t in (MEM_READ, MEM_WRITE, MEM_ERASE, MEM_BLANK_CHECK):
            return self._memory_command(t, p)
        if t == EXECUTE:
            return self._reply(t, OK)
        return self._reply(t, NOT_SUPPORTED)

    def _unlock(self, p: bytes) -> None:
        mode = p[0] if p else 0xFF
        if mode == 0x00:
            self.unlocked = False
            return self._reply(UNLOCK_ISP, OK)
        if mode in (0x01, 0x80) and p[1:17] == self.key:
            self.unlocked = True
            return self._reply(UNLOCK_ISP, OK)
        return self._reply(UNLOCK_ISP, AUTH_ERROR)

    def _get_info(self, mid: int) -> None:
        region = self._regions.get(mid)
        if region is None:
            return self._reply(MEM_GET_INFO, MEMORY_INVALID)
        name, mtype, access = _MEMORIES[mid]
        sector = region.sector_size or 1
        body = struct.pack("<BIIIBB", mid, region.base, region.size, sector, mtype, access) + name.encode()
        return self._reply(MEM_GET_INFO, OK, body)

    def _memory_command(self, t: int, p: bytes) -> None:
        if len(p) < 10:
            return self._reply(t, MEMORY_ACCESS_INVALID)
        _handle, _mode, address, length = struct.unpack_from("<BBII", p)
        if self.open_mem is None:
            return self._reply(t, MEMORY_ACCESS_INVALID)
        region = self._regions[self.open_mem]
        if not region.contains(address, max(length, 1)):
            return self._reply(t, MEMORY_OUT_OF_RANGE)
        if t == MEM_READ:
            return self._reply(t, OK, region.read(address, length))
        if t == MEM_ERASE:
            try:
                region.erase(address, length)
            except MemoryAccessError:
                return self._reply(t, MEMORY_OUT_OF_RANGE)
            return self._reply(t, OK)
        if t == MEM_BLANK_CHECK:
            return self._reply(t, OK if region.is_erased(address, length) else TEST_ERROR)
        data = p[10:]
        if len(data) != length:
            return self._reply(t, WRITE_FAIL)
        allowed = self.faults.allow_program(length)
        ok = region.program(address, data[:allowed])
        self.faults.after_program(self.memory, address, allowed)
        if allowed < length:
            return None  # disconnected mid-write: part of the chunk is in flash, no answer ever comes
        return self._reply(t, OK if ok else WRITE_FAIL)
