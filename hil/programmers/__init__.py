"""Programmers: one interface (`hil.programmers.base.Programmer`) over DK6, MCU bootloader, SDP and J-Link.

    from hil.boards import get_board
    from hil import programmers
    profile = get_board("k32w0x1-emu")
    report = programmers.flash(profile, image)        # erase region, write, read back, compare, reset
    data = programmers.read(profile)                  # the whole factory-data region

The same calls serve a real board and an emulated one: for an emulated board `resolve_connection` starts
its process if needed (`hil.emulator.board.ensure_running`) and returns its pty path and probe port.
Backends are registered by name (boards.toml `programmer = ...`) and imported only when used, so a missing
optional dependency of one backend never breaks the others.
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from hil.errors import ConfigError, TransientError
from hil.programmers.base import (
    Connection,
    Programmer,
    ProgrammerBase,
    TargetRegion,
    WriteReport,
    check_image,
    read_region,
    write_region,
)

if TYPE_CHECKING:
    from hil.boards.profile import BoardProfile

# backend name -> "module:Class"; the class has `open(connection, profile) -> Programmer`.
BACKENDS: dict[str, str] = {
    "dk6": "hil.programmers.dk6:Dk6Programmer",
    "jlink": "hil.programmers.jlink:JLinkProgrammer",
    "blhost": "hil.programmers.blhost:BlhostProgrammer",
    "sdp": "hil.programmers.sdp:SdpProgrammer",
}

__all__ = [
    "BACKENDS",
    "Connection",
    "Programmer",
    "ProgrammerBase",
    "TargetRegion",
    "WriteReport",
    "backend",
    "flash",
    "open_programmer",
    "read",
    "read_region",
    "resolve_connection",
    "write_region",
]


def backend(name: str) -> Any:
    """The backend class registered under `name`."""
    target = BACKENDS.get(name)
    if target is None:
        raise ConfigError(f"programmer: {name!r} is not one of {', '.join(BACKENDS)}")
    module_name, _, class_name = target.partition(":")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise ConfigError(f"programmer {name!r}: {module_name} has no class {class_name}") from None


def resolve_connection(profile: BoardProfile) -> Connection:
    """The connection to use: the profile's for a real board; the running process's for an emulated one;
    the held labgrid place's (ports bridged to local ptys) for a lab board."""
    if getattr(profile, "labgrid_place", None):
        from hil.lab.places import lab_connection

        return lab_connection(profile)
    if not profile.emulated:
        return profile.connection
    from hil.emulator.board import ensure_running

    handle = ensure_running(profile)
    return replace(
        profile.connection,
        port=handle.serial_port,
        jlink_ip=f"127.0.0.1:{handle.probe_port}" if handle.probe_port else None,
        emulated=True,
    )


def open_programmer(
    profile: BoardProfile, connection: Connection | None = None, *, retries: int = 3
) -> Programmer:
    """Open the profile's programmer (connection resolved if not given), retrying transient faults: the
    opening handshake (ISP unlock, ping, probe hello) meets a garbled or lost frame like any other step."""
    conn = connection if connection is not None else resolve_connection(profile)
    cls = backend(profile.programmer)
    attempt = 0
    while True:
        attempt += 1
        try:
            return cls.open(conn, profile)
        except TransientError as exc:
            if attempt > retries:  # the link, not the board: stays a TransientError (infrastructure)
                raise TransientError(
                    f"{profile.name}: could not open the {profile.programmer} programmer after {attempt} "
                    f"attempts. Last fault: {exc}"
                ) from exc


def flash(
    profile: BoardProfile,
    image: bytes,
    *,
    region: TargetRegion | None = None,
    retries: int = 3,
    reset: bool = True,
) -> WriteReport:
    """Write `image` into `region` (default: the factory-data region), verify it, then reset the board."""
    target = region or profile.factory_data_region
    check_image(target, image)  # fail before touching (or starting) the board
    programmer = open_programmer(profile, retries=retries)
    try:
        report = write_region(programmer, target, image, retries=retries)
        if reset:
            programmer.reset()
        return report
    finally:
        programmer.close()


def read(profile: BoardProfile, *, region: TargetRegion | None = None, retries: int = 3) -> bytes:
    """Read a whole region (default: the factory-data region)."""
    programmer = open_programmer(profile, retries=retries)
    try:
        return read_region(programmer, region or profile.factory_data_region, retries=retries)
    finally:
        programmer.close()
