"""Exporter configuration (labgrid's YAML) for boards on a lab host, and the places that match it.

One resource group per board, named after the board's labgrid place, with named resources the harness
looks for (`hil.lab.labgrid`): `rom` (the ROM / programming UART), `console` (the firmware log UART) and,
where there is one, `jlink` (a J-Link's IP endpoint, as labgrid's NetworkService). A real board's group
names its USB serial adapters; an emulated board's names its ptys:

    k32w1-01:                       # group = place name
      location: lab host 2, emulated
      rom: {cls: RawSerialPort, port: /dev/pts/7, speed: 115200}
      console: {cls: RawSerialPort, port: /dev/pts/8, speed: 115200}
      jlink: {cls: NetworkService, address: 127.0.0.1, port: 41234, username: ""}

`RawSerialPort` is the export class for a pty (and works for any /dev path): `USBSerialPort` needs a udev
match and ptys are not in /sys/class/tty (lab-notes §2.2). A real board's USB adapters are better exported
as `USBSerialPort` with a udev match (labgrid's documentation); the resource names stay the same.
An emulated board's ptys change on every start, so its group is written from the running board process
(`BoardHandle`) each time the host starts, and the exporter restarted.
The emulated J-Link probe listens on the loopback interface only, so its `jlink` endpoint is usable from
the exporter's own machine, not across hosts; real J-Links are reached at their own IP address.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hil.fileio import atomic_write_text
from hil.lab.labgrid import CONSOLE_PORT, JLINK_SERVICE, ROM_PORT

DEFAULT_SPEED = 115200


@dataclass(frozen=True)
class BoardExport:
    """What one lab board exports: its place (= group) and the devices on this host."""

    place: str
    rom: str  # device path of the ROM / programming UART
    console: str | None = None
    jlink: tuple[str, int] | None = None  # (address, port) of the J-Link's IP endpoint
    speed: int = DEFAULT_SPEED
    location: str = ""

    def group(self) -> dict[str, Any]:
        def serial(path: str) -> dict[str, Any]:
            return {"cls": "RawSerialPort", "port": path, "speed": self.speed}

        group: dict[str, Any] = {"location": self.location or self.place, ROM_PORT: serial(self.rom)}
        if self.console:
            group[CONSOLE_PORT] = serial(self.console)
        if self.jlink:
            address, port = self.jlink
            group[JLINK_SERVICE] = {"cls": "NetworkService", "address": address, "port": port, "username": ""}
        return group


def emulated_board_export(handle: Any, place: str, *, location: str = "") -> BoardExport:
    """The export of a running emulated board process (`hil.emulator.board.BoardHandle`)."""
    return BoardExport(
        place=place,
        rom=handle.serial_port,
        console=handle.console_port,
        jlink=("127.0.0.1", handle.probe_port) if handle.probe_port else None,
        location=location or f"emulated {handle.family} board {handle.name}",
    )


def exporter_yaml(exports: list[BoardExport]) -> str:
    names = [e.place for e in exports]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"places exported twice: {', '.join(duplicates)}")
    return yaml.safe_dump({e.place: e.group() for e in exports}, sort_keys=False)


def write_exporter_config(path: Path, exports: list[BoardExport]) -> Path:
    atomic_write_text(path, exporter_yaml(exports))
    return path


def place_matches(exporter: str, place: str) -> list[str]:
    """The resource match of a place whose group on `exporter` is named after the place."""
    return [f"{exporter}/{place}/*"]


def place_tags(family: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Tags a lab puts on a place: the family (what a test's markers select) plus any extra.

    labgrid tag keys are lower-case letters, digits and '_' (at least two characters).
    """
    return {"family": family, **(extra or {})}
