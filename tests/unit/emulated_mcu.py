"""In-process emulated MCU for the mboot/SDP tests: a family's memory map, its ROM on a pty, a BoardProfile.

The ROM runs in a thread of the test process (not as a board process) so tests can install fault plans and
look at ROM counters; the clients (spsdk, blhost, sdphost) still reach it only through the pty.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from hil.boards.families import FAMILIES
from hil.boards.profile import BoardProfile
from hil.emulator.faults import FaultPlan
from hil.emulator.flash import MemoryMap, Region
from hil.emulator.pty import PtyPort
from hil.emulator.rom_mboot import MbootRom
from hil.emulator.rom_sdp import SdpRom
from hil.programmers.base import Connection, ProgrammerBase

P = TypeVar("P", bound=ProgrammerBase)

# family -> the programmer that goes through its ROM's serial protocol
SERIAL_PROGRAMMER = {"rw61x": "blhost", "k32w1": "blhost", "rt1060": "sdp", "rt1170": "sdp"}


@dataclass
class EmulatedMcu:
    family: str
    port: PtyPort
    memory: MemoryMap
    rom: MbootRom | SdpRom
    resets: list[str]

    def profile(self, *, timeout_ms: int = 2000, **options: Any) -> BoardProfile:
        fam = FAMILIES[self.family]
        return BoardProfile(
            name=f"{self.family}-emu",
            family=self.family,
            emulated=True,
            programmer=SERIAL_PROGRAMMER[self.family],
            factory_data_address=fam.factory_data_address,
            factory_data_size=fam.factory_data_size,
            sector_size=fam.sector_size,
            app_address=fam.app_address,
            app_size=fam.app_size,
            connection=Connection(port=self.port.path, timeout_ms=timeout_ms, emulated=True),
            options=options,
        )

    def open(self, backend: type[P], timeout_ms: int = 2000, **options: Any) -> P:
        """`backend` (a programmer class) opened on this MCU's port, with board `options`."""
        profile = self.profile(timeout_ms=timeout_ms, **options)
        prog = backend.open(profile.connection, profile)
        assert isinstance(prog, backend)
        return prog

    def connection(self, timeout_ms: int = 2000) -> Connection:
        return self.profile(timeout_ms=timeout_ms).connection

    @property
    def mboot(self) -> MbootRom:
        """The ROM (or the running flashloader) that speaks mboot."""
        rom = self.rom
        if isinstance(rom, SdpRom):
            assert rom.flashloader is not None, "the flashloader is not running"
            return rom.flashloader
        return rom

    def install(self, plan: FaultPlan) -> FaultPlan:
        self.rom.faults = plan
        return plan


def memory_for(family: str) -> MemoryMap:
    return MemoryMap([Region(m.name, m.base, m.size, m.sector_size) for m in FAMILIES[family].memory])


@contextmanager
def emulated_mcu(family: str, **rom_options: Any) -> Iterator[EmulatedMcu]:
    fam = FAMILIES[family]
    memory = memory_for(family)
    port = PtyPort()
    resets: list[str] = []
    options = {**fam.rom_options, **rom_options}
    rom_class = {"mboot": MbootRom, "sdp": SdpRom}[fam.rom]
    rom = rom_class(port, memory, FaultPlan(), on_reset=lambda: resets.append("reset"), **options)
    port.start(rom.feed, name=f"rom-{family}")
    try:
        yield EmulatedMcu(family, port, memory, rom, resets)
    finally:
        port.close()
