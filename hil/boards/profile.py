"""BoardProfile: everything the harness needs to know about one board, real or emulated.

A profile is the family's row (`hil.boards.families`) plus what boards.toml says about this board: whether it
is emulated, which programmer and connection reach it, where its factory data lives (a literal or a linker
symbol looked up in a .map file or ELF), and the AES key if its firmware decrypts factory data. Code asks the
profile, never the family name, so a suite moves from an emulated board to a real one by editing boards.toml.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hil.boards.families import FAMILIES, Family
from hil.errors import InputError
from hil.programmers.base import Connection, TargetRegion

ADDRESS_SPACE = 1 << 32
"""The MCUs' address space: an address or range past it is a typo, whatever the board."""


@dataclass(frozen=True)
class BoardProfile:
    name: str
    family: str  # key of hil.boards.families.FAMILIES, e.g. "k32w1" (also the pytest marker name)
    emulated: bool
    programmer: str  # key of hil.programmers.BACKENDS
    factory_data_address: int
    factory_data_size: int
    sector_size: int
    app_address: int
    app_size: int
    connection: Connection = field(default_factory=Connection)
    aes_key: str | None = field(default=None, repr=False)  # upper-case hex; a secret: never log it
    address_source: str = "family default"  # where factory_data_address came from, for `hil boards list`
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))  # for the backend
    emulator: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))  # for the ROM emulator
    source: Path | None = None  # the boards.toml it came from (None: built-in default inventory)
    labgrid_place: str | None = None  # a lab board: its labgrid place (hil.lab), which gives its ports

    @property
    def spec(self) -> Family:
        """The family's row of facts (memory map, ROM protocol, J-Link device name...)."""
        return FAMILIES[self.family]

    @property
    def factory_data_region(self) -> TargetRegion:
        return TargetRegion(
            self.factory_data_address, self.factory_data_size, self.sector_size, "factory data"
        )

    def app_region_for(self, length: int) -> TargetRegion:
        """The sectors at the app address that an image of `length` bytes needs. Not the whole app region
        (4 MiB on RW61x / RT): a smaller region is erased, written and verified much faster, and the
        firmware ignores what follows its image. InputError when the image does not fit the app region."""
        sector = self.sector_size_at(self.app_address)
        size = -(-length // sector) * sector
        if size > self.app_size:
            raise InputError.field(
                "app image size", length, f"at most the app region 0x{self.app_size:X} of {self.name}"
            )
        return TargetRegion(self.app_address, size, sector, "app")

    @property
    def aes_key_bytes(self) -> bytes | None:
        return bytes.fromhex(self.aes_key) if self.aes_key else None

    @property
    def encryption(self) -> str:
        """'none', 'aes128-ecb' or 'aes256-ecb': what the firmware expects of this board's factory data."""
        if not self.aes_key:
            return "none"
        return "aes128-ecb" if len(self.aes_key) == 32 else "aes256-ecb"

    def sector_size_at(self, address: int) -> int:
        """The erase unit at `address` (the family's flash sector; the profile's for the factory data)."""
        if self.factory_data_address <= address < self.factory_data_address + self.factory_data_size:
            return self.sector_size
        spec = self.spec.flash_region_for(address, 1)
        return spec.sector_size if spec else self.sector_size

    def check_range(self, address: int, length: int, *, field: str = "--address") -> None:
        """InputError unless `address`+`length` is a 32-bit range: every NXP MCU here has a 32-bit address
        space. Whether the chip has memory there is the programmer's (device's) answer, not ours: a real
        board's external flash can be larger than the emulator's memory map."""
        if not 0 <= address < ADDRESS_SPACE:
            raise InputError.field(field, address, f"an address 0x0..0x{ADDRESS_SPACE - 1:X}")
        if length <= 0 or address + length > ADDRESS_SPACE:
            raise InputError.field(
                "length", length, f"1..0x{ADDRESS_SPACE - address:X} bytes (the range must end by 4 GiB)"
            )

    def span(self, address: int, length: int) -> TargetRegion:
        """Exactly `length` bytes at `address` (`hil read --address/--length`), checked by `check_range`."""
        self.check_range(address, length)
        return TargetRegion(address, length, self.sector_size_at(address), f"range 0x{address:X}")

    def region_at(self, address: int, length: int) -> TargetRegion:
        """The region `hil flash --address` rewrites: the whole factory-data region if it starts at
        `address` (the firmware scans all of it); the image's sectors of the app region (`app_region_for`)
        at the app address; else from `address` to the end of the sector holding the image's last byte (so
        no stale bytes follow the image in its last sector; bytes of the first sector before `address` are
        preserved)."""
        self.check_range(address, length)
        if address == self.factory_data_address:
            return self.factory_data_region
        if address == self.app_address:
            return self.app_region_for(length)
        sector = self.sector_size_at(address)
        end = -(-(address + max(length, 1)) // sector) * sector
        return TargetRegion(address, end - address, sector, f"range 0x{address:X}")
