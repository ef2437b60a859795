"""NOR flash and the memory map of an emulated board.

Real NOR flash erases whole sectors to 0xFF and programming can only clear bits (1 -> 0). The firmware's
factory-data scan depends on that (stale bytes after a short write confuse it), so the model enforces it:
`program` ANDs data into the array and reports whether the result differs from what was asked for
(programming over non-erased bytes), leaving the policy (error or silent AND) to the ROM emulator.

Flash is file-backed (a memory-mapped file), so an emulated board keeps its contents across harness restarts
and between separate `hil flash` / `hil read` commands, as a real board does.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path

from hil.errors import BoardError

ERASED = 0xFF


class MemoryAccessError(BoardError):
    """An access outside every region or not aligned as the region requires (a ROM maps it to a status)."""


@dataclass
class Region:
    """One addressable region of a board: flash (sectored, file-backed) or RAM (volatile)."""

    name: str
    base: int
    size: int
    sector_size: int = 0  # 0: RAM (byte-writable, no erase)
    path: Path | None = None  # backing file for flash; None keeps it in memory
    _buf: mmap.mmap | bytearray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.path is None:
            self._buf = bytearray([ERASED if self.is_flash else 0] * self.size)
            return
        self.path = Path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists() or self.path.stat().st_size != self.size
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if fresh:
                os.ftruncate(fd, 0)
                os.write(fd, b"\xff" * self.size)
            self._buf = mmap.mmap(fd, self.size)
        finally:
            os.close(fd)

    @property
    def is_flash(self) -> bool:
        return self.sector_size > 0

    @property
    def end(self) -> int:
        return self.base + self.size

    def contains(self, address: int, length: int = 1) -> bool:
        return self.base <= address and address + length <= self.end

    def read(self, address: int, length: int) -> bytes:
        off = address - self.base
        return bytes(self._buf[off : off + length])

    def write_raw(self, address: int, data: bytes) -> None:
        """Store bytes as given (RAM writes; also what a J-Link flash loader's read-modify-write ends in)."""
        off = address - self.base
        self._buf[off : off + len(data)] = data

    def program(self, address: int, data: bytes) -> bool:
        """Program flash: bits only clear. Returns True when every byte ended as requested."""
        if not self.is_flash:
            self.write_raw(address, data)
            return True
        off = address - self.base
        old = self._buf[off : off + len(data)]
        new = bytes(a & b for a, b in zip(old, data, strict=True))
        self._buf[off : off + len(data)] = new
        return new == bytes(data)

    def is_erased(self, address: int, length: int) -> bool:
        off = address - self.base
        return self._buf[off : off + length] == b"\xff" * length

    def erase(self, address: int, length: int) -> None:
        """Erase whole sectors; the range must be sector aligned."""
        if not self.is_flash:
            raise MemoryAccessError(f"{self.name}: erase of RAM at 0x{address:X}")
        if (address - self.base) % self.sector_size or length % self.sector_size:
            raise MemoryAccessError(
                f"{self.name}: erase 0x{address:X}+0x{length:X} is not aligned to the "
                f"0x{self.sector_size:X}-byte sector"
            )
        off = address - self.base
        self._buf[off : off + length] = b"\xff" * length

    def flush(self) -> None:
        if isinstance(self._buf, mmap.mmap):
            self._buf.flush()


class MemoryMap:
    """The regions of one board; every access must fall inside exactly one region."""

    def __init__(self, regions: list[Region]) -> None:
        self.regions = sorted(regions, key=lambda r: r.base)

    def region(self, address: int, length: int = 1) -> Region:
        for r in self.regions:
            if r.contains(address, max(length, 1)):
                return r
        raise MemoryAccessError(f"no memory at 0x{address:X}+0x{length:X}")

    def by_name(self, name: str) -> Region:
        for r in self.regions:
            if r.name == name:
                return r
        raise KeyError(name)

    def read(self, address: int, length: int) -> bytes:
        return self.region(address, length).read(address, length)

    def program(self, address: int, data: bytes) -> bool:
        return self.region(address, len(data)).program(address, data)

    def erase(self, address: int, length: int) -> None:
        self.region(address, length).erase(address, length)

    def flush(self) -> None:
        for r in self.regions:
            r.flush()
