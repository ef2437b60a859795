"""What the flow does to a board: write factory data and the app through its programmer, reset, read the boot.

Everything goes over the board's own wires, for a real board and an emulated one alike: the programmer
named in boards.toml (DK6, J-Link, blhost, SDP) writes and verifies, the same programmer resets, and the
verdict is the firmware's boot log on the console (hil.boot), opened *before* the reset so no line is lost.

App images: an emulated board gets an app the harness builds (hil.emulator.app_image, NXP's gn options:
chip_with_factory_data=1, hw_params from boards.toml); a real board gets boards.toml ``options.app`` (a
binary, relative to boards.toml) or, without one, keeps the app it has. The DAC-key conversion is
hil.conversion's; the reboot after it gives the boot report of the converted board.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hil import boot, conversion, programmers
from hil.console import open_console
from hil.emulator import app_image
from hil.errors import InputError
from hil.programmers.base import WriteReport, check_image, write_region

if TYPE_CHECKING:
    from hil.boards import BoardProfile

BOOT_TIMEOUT = 10.0


def app_for(profile: BoardProfile) -> bytes | None:
    """The normal app to write with the factory data (None: a real board keeps the app it has)."""
    if profile.emulated:
        return conversion.default_apps(profile)[1]
    source = profile.options.get("app")
    if source is None:
        return None
    path = Path(str(source))
    if not path.is_absolute() and profile.source is not None:
        path = profile.source.parent / path
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError.field(
            f"boards.toml [board.{profile.name}.options] app",
            str(path),
            f"a readable app binary ({exc.strerror})",
        ) from None


def describe_app(image: bytes | None) -> str:
    if image is None:
        return "none (the board keeps its app)"
    if app_image.has_magic(image):
        return app_image.parse(image).describe()
    return f"{len(image)}-byte binary"


@dataclass
class FlashResult:
    reports: list[WriteReport]
    boot: boot.BootReport | None  # None: a real board without a console (boot not observed)
    app: str
    flash_s: float = 0.0  # open, write + verify both regions, reset
    boot_s: float = 0.0  # reset to the boot verdict on the console


def _console_configured(profile: BoardProfile) -> bool:
    return profile.emulated or bool(profile.options.get("console_port"))


def flash_and_boot(
    profile: BoardProfile,
    factory_image: bytes,
    app: bytes | None,
    *,
    retries: int = 3,
    boot_timeout: float = BOOT_TIMEOUT,
) -> FlashResult:
    """Factory data (whole region, verified) + app (its sectors, verified), one reset, the boot verdict.

    Both images are checked against their regions before the programmer opens. The console is opened
    before the programmer (an emulated board's process starts here if it is not running) so the boot log
    of the reset is read from its first line.
    """
    regions = [(profile.factory_data_region, factory_image)]
    if app is not None:
        regions.append((profile.app_region_for(len(app)), app))
    for region, image in regions:
        check_image(region, image)
    console = open_console(profile) if _console_configured(profile) else None
    try:
        t0 = time.monotonic()
        programmer = programmers.open_programmer(profile, retries=retries)
        try:
            reports = [write_region(programmer, region, image, retries=retries) for region, image in regions]
            programmer.reset()
        finally:
            programmer.close()
        t1 = time.monotonic()
        report = boot.wait_for_boot(console, timeout=boot_timeout) if console is not None else None
        t2 = time.monotonic()
    finally:
        if console is not None:
            console.close()
    return FlashResult(reports, report, describe_app(app), t1 - t0, t2 - t1)


def convert(profile: BoardProfile, *, retries: int = 3) -> conversion.ConversionReport:
    """NXP's conversion flow on the factory data already in the board (hil.conversion): conversion app,
    reset, poll the region until tag 4 is a blob, normal app, reset."""
    return conversion.convert_dac(profile, retries=retries)


def reboot(profile: BoardProfile, *, boot_timeout: float = BOOT_TIMEOUT) -> boot.BootReport | None:
    """Reset through the programmer and read the boot from a console opened before it (None: a real
    board without a console). After a conversion this is the converted board's first full boot: the
    conversion app's own boot may be cut short by the flow's reset, as on silicon."""
    if not _console_configured(profile):
        return None
    return boot.reboot(profile, timeout=boot_timeout)
