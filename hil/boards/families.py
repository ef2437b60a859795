"""Facts about each NXP board family, in one table: memory map, factory-data region, ROM, programmers.

Why a table: every family-dependent decision (which ROM the emulator speaks, where factory data lives, which
programmers can reach the part, whether the firmware decrypts) reads a row here instead of branching on the
family name. boards.toml names a family and overrides per board only what differs (address from a .map
file, connection, key). Sources: nxp-factory-data.md §4 (addresses, sizes, sectors, encryption),
emulation-notes.md §1.3-§1.5 (ROM protocols, DK6 memory map) and spsdk's device database.

Emulated memory maps model *windows* of the big external flashes (RW61x 64 MiB, RT 8/16 MiB): the application
window at the start of flash and the top 1 MiB holding NVM and factory data. Every emulated flash region is a
file in the board's state dir, so a 64 MiB file per board is not worth it; an access outside the windows is
answered as an unmapped address.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# The NIST AES-128 test key NXP's RT example apps decrypt factory data with (nxp-factory-data.md §2.4).
NXP_EXAMPLE_AES128_KEY = "2B7E151628AED2A6ABF7158809CF4F3C"


@dataclass(frozen=True)
class MemorySpec:
    """One region of the emulated memory map: flash when `sector_size` > 0 (file-backed), else RAM."""

    name: str
    base: int
    size: int
    sector_size: int = 0

    @property
    def is_flash(self) -> bool:
        return self.sector_size > 0

    def contains(self, address: int, length: int) -> bool:
        return self.base <= address and address + length <= self.base + self.size


@dataclass(frozen=True)
class Family:
    """One row of the family table. `programmers[0]` is the family's default programmer."""

    name: str
    title: str
    rom: str  # ROM protocol on the emulated board's serial port: "dk6" | "mboot" | "sdp"
    programmers: tuple[str, ...]
    jlink_device: str  # device name given to J-Link's `connect`
    memory: tuple[MemorySpec, ...]
    factory_data_address: int
    factory_data_size: int
    sector_size: int
    factory_data_symbol: str  # the linker symbol holding the factory-data address in the .map / ELF
    app_address: int
    app_size: int
    encryption: str  # "none", "optional" (AES-ECB if a key is given), "aes128-ecb" (key mandatory)
    chip_id: int | None = None
    rom_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    notes: str = ""

    def flash_region_for(self, address: int, length: int) -> MemorySpec | None:
        for spec in self.memory:
            if spec.is_flash and spec.contains(address, length):
                return spec
        return None


def _ro(d: dict[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(d)


FAMILIES: Mapping[str, Family] = MappingProxyType(
    {
        "k32w0x1": Family(
            name="k32w0x1",
            title="K32W061/K32W041: DK6 ISP over UART",
            rom="dk6",
            programmers=("dk6", "jlink"),
            jlink_device="K32W061",
            memory=(
                MemorySpec("FLASH", 0x0, 0x9DE00, 0x200),
                MemorySpec("Config", 0x9FC00, 0x200, 0x200),
                MemorySpec("RAM0", 0x04000000, 0x16000),
                MemorySpec("RAM1", 0x04020000, 0x10000),
            ),
            # FACTORY_DATA_START_ADDRESS = 0xA0000 - 0x2200 - 0x800 (chip-k32w0x-linker.ld@31e1b05c)
            factory_data_address=0x9D600,
            factory_data_size=0x800,
            sector_size=0x200,
            factory_data_symbol="__MATTER_FACTORY_DATA_START",
            app_address=0x0,
            app_size=0x9D200,  # below the app metadata at 0x9D200
            encryption="none",
            chip_id=0x1440C686,
            rom_options=_ro({"chip_id": 0x1440C686, "chip_version": 5, "dev_type": 32061}),
            notes="An older linker put factory data at 0x9D200 (__FACTORY_DATA_START): use the .map.",
        ),
        "k32w1": Family(
            name="k32w1",
            title="K32W148 (K32W1): J-Link; the ROM also speaks the MCU bootloader (blhost)",
            rom="mboot",
            programmers=("jlink", "blhost"),
            jlink_device="K32W1480",
            memory=(
                MemorySpec("FLASH", 0x0, 0x100000, 0x2000),
                MemorySpec("RAM", 0x20000000, 0x20000),
            ),
            # Old flow: __MATTER_FACTORY_DATA_START, 0xF4000 or 0xEC000 depending on the SDK: take the .map.
            # HW-params flow (generate.py --hw_params): factory_data_address = 0xFE080, size 0x800, in the
            # last 8 KiB sector shared with PROD_DATA at 0xFE000; write_region preserves the rest of it.
            factory_data_address=0xF4000,
            factory_data_size=0x2000,
            sector_size=0x2000,
            factory_data_symbol="__MATTER_FACTORY_DATA_START",
            app_address=0x0,
            app_size=0xC0000,
            encryption="none",
            notes="HW-params layout: factory_data_address = 0xFE080, factory_data_size = 0x800.",
        ),
        "rw61x": Family(
            name="rw61x",
            title="RW610/RW612: MCU bootloader (blhost) over UART",
            rom="mboot",
            programmers=("blhost", "jlink"),
            jlink_device="RW612",
            memory=(
                MemorySpec("FLASH", 0x08000000, 0x400000, 0x1000),
                MemorySpec("FLASH_TOP", 0x0BF00000, 0x100000, 0x1000),
                MemorySpec("RAM", 0x20000000, 0x100000),
            ),
            # __FACTORY_DATA_START = 0x0BFFFFFF - 0x1000 + 1 (RW610_flash.ld@1e551b78)
            factory_data_address=0x0BFFF000,
            factory_data_size=0x1000,
            sector_size=0x1000,
            factory_data_symbol="__FACTORY_DATA_START",
            app_address=0x08000000,
            app_size=0x400000,
            encryption="optional",
        ),
        "rt1060": Family(
            name="rt1060",
            title="i.MX RT1060: ROM serial download (SDP), flashloader, then blhost",
            rom="sdp",
            programmers=("sdp", "jlink"),
            jlink_device="MIMXRT1062xxx6A",
            memory=(
                MemorySpec("FLASH", 0x60000000, 0x400000, 0x1000),
                MemorySpec("FLASH_TOP", 0x60700000, 0x100000, 0x1000),
                MemorySpec("DTCM", 0x20000000, 0x20000),
                MemorySpec("OCRAM", 0x20200000, 0x100000),
            ),
            # 4 KiB below the 32 NVM sectors at 0x607E0000 (MIMXRT1062xxxxx_flexspi_nor.ld@3a757b58)
            factory_data_address=0x607DF000,
            factory_data_size=0x1000,
            sector_size=0x1000,
            factory_data_symbol="__FACTORY_DATA_START",
            app_address=0x60000000,
            app_size=0x400000,
            encryption="aes128-ecb",
        ),
        "rt1170": Family(
            name="rt1170",
            title="i.MX RT1170: ROM serial download (SDP), flashloader, then blhost",
            rom="sdp",
            programmers=("sdp", "jlink"),
            jlink_device="MIMXRT1176xxxA_M7",
            memory=(
                MemorySpec("FLASH", 0x30000000, 0x400000, 0x1000),
                MemorySpec("FLASH_TOP", 0x30F00000, 0x100000, 0x1000),
                MemorySpec("DTCM", 0x20000000, 0x40000),
                MemorySpec("OCRAM", 0x20240000, 0x100000),
            ),
            # 4 KiB below the 32 NVM sectors at 0x30FE0000 (MIMXRT1176xxxxx_cm7_flexspi_nor.ld@3a757b58)
            factory_data_address=0x30FDF000,
            factory_data_size=0x1000,
            sector_size=0x1000,
            factory_data_symbol="__FACTORY_DATA_START",
            app_address=0x30000000,
            app_size=0x400000,
            encryption="aes128-ecb",
        ),
    }
)
