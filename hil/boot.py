"""Did the board boot, and is it provisioned? Read from its boot log on the console, nowhere else.

The harness judges a board the way a technician at the bench does: reset it, watch its UART. The emulated
firmware (`hil.emulator.firmware`) ends every boot with one line,
``[ms][P][APP] Boot complete: credentials=factory-data provisioned=yes dac_key=sss-blob converted=no ...``
or ``[ms][E][APP] Boot failed: <reason>``, the reason being the firmware's own error (e.g.
"Factory data init failed with: CHIP_FACTORY_DATA_SHA_CHECK (0x05000015) (...)"). A real NXP app prints
"Factory data init failed with: ..." on the same condition; `wait_for_boot` treats that line as the
verdict when no final line follows, and takes a `ready` pattern for a real app's success line.

    report = reboot(profile)                     # open console, reset through the programmer, wait
    if not report.provisioned: print(report.summary())   # "k32w1-emu: board not provisioned: <reason>"
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hil.console import Console, open_console
from hil.errors import BoardError, FirmwareError

if TYPE_CHECKING:
    from hil.boards.profile import BoardProfile

DEFAULT_TIMEOUT = 10.0
LOG_LINE = re.compile(r"^\[(?P<ms>\d+)\]\[(?P<level>[A-Z])\]\[(?P<module>[^\]]+)\] (?P<message>.*)$")
BOOT_COMPLETE = "Boot complete: "
BOOT_FAILED = "Boot failed: "
INIT_FAILED = "Factory data init failed with: "
_INIT_FAILED_GRACE = 1.0  # a real app may print nothing after Init fails: give up waiting this soon


@dataclass
class BootReport:
    """One boot as its log tells it."""

    board: str
    booted: bool  # the app reached its final "Boot complete" line
    provisioned: bool  # ... and runs on valid factory data
    reason: str | None = None  # why not booted / not provisioned, in the firmware's words
    fields: dict[str, str] = field(default_factory=dict)  # key=value of the "Boot complete" line
    lines: list[str] = field(default_factory=list)

    @property
    def credentials(self) -> str | None:
        return self.fields.get("credentials")

    @property
    def dac_key(self) -> str | None:
        return self.fields.get("dac_key")

    @property
    def converted(self) -> bool:
        return self.fields.get("converted") == "yes"

    def summary(self) -> str:
        if self.provisioned:
            converted = self.fields.get("converted")
            return f"{self.board}: provisioned (dac_key={self.dac_key}, converted={converted})"
        return f"{self.board}: board not provisioned: {self.reason}"

    def raise_if_not_provisioned(self) -> None:
        if not self.provisioned:
            raise FirmwareError(self.summary())


def message(line: str) -> str:
    """The message part of a ChipLog-shaped line (the line itself when it has no prefix)."""
    m = LOG_LINE.match(line)
    return m.group("message") if m else line


def parse_boot_log(lines: list[str], board: str = "") -> BootReport | None:
    """The report for the first finished boot in `lines`, or None when no final line is there yet."""
    for i, line in enumerate(lines):
        text = message(line)
        seen = lines[: i + 1]
        if text.startswith(BOOT_COMPLETE):
            fields = dict(kv.split("=", 1) for kv in text[len(BOOT_COMPLETE) :].split() if "=" in kv)
            provisioned = fields.get("provisioned") == "yes"
            reason = None
            if not provisioned:
                reason = (
                    f"the app runs on built-in test credentials (credentials={fields.get('credentials')}): "
                    "it was built with chip_with_factory_data=0"
                )
            return BootReport(board, True, provisioned, reason, fields, seen)
        if text.startswith(BOOT_FAILED):
            return BootReport(board, False, False, text[len(BOOT_FAILED) :], {}, seen)
    return None


def wait_for_boot(
    console: Console, *, timeout: float = DEFAULT_TIMEOUT, ready: str | re.Pattern[str] | None = None
) -> BootReport:
    """Read the console until a boot ends; BoardError if nothing conclusive arrives within `timeout`.

    `ready`: an extra success pattern for real apps that do not print "Boot complete" (e.g. a line the
    NXP example prints once the Matter server runs); a match counts as booted and provisioned.
    """
    ready_re = re.compile(ready) if isinstance(ready, str) else ready
    start = len(console.lines)
    deadline = time.monotonic() + timeout
    init_failed: str | None = None
    init_failed_at = 0.0
    while True:
        now = time.monotonic()
        limit = deadline if init_failed is None else min(deadline, init_failed_at + _INIT_FAILED_GRACE)
        line = console.readline(max(0.0, limit - now))
        if line is None:
            if init_failed is not None:
                return BootReport(console.board, False, False, init_failed, {}, console.lines[start:])
            if time.monotonic() >= deadline:
                raise BoardError(
                    f"{console.board}: no boot verdict on the console within {timeout:g} s (no app in "
                    f"flash, a halted core, or the wrong console port); last lines: {console.tail()}"
                )
            continue
        report = parse_boot_log(console.lines[start:], console.board)
        if report is not None:
            return report
        text = message(line)
        if ready_re is not None and ready_re.search(line):
            return BootReport(console.board, True, True, None, {}, console.lines[start:])
        if text.startswith(INIT_FAILED) and init_failed is None:
            init_failed, init_failed_at = text, time.monotonic()


def reboot(
    profile: BoardProfile, *, timeout: float = DEFAULT_TIMEOUT, ready: str | re.Pattern[str] | None = None
) -> BootReport:
    """Reset the board through its programmer and report the boot, read from its console."""
    from hil import programmers

    with open_console(profile) as console:
        programmer = programmers.open_programmer(profile)
        try:
            programmer.reset()
        finally:
            programmer.close()
        return wait_for_boot(console, timeout=timeout, ready=ready)


def firmware_status(profile: BoardProfile, *, timeout: float = DEFAULT_TIMEOUT) -> BootReport:
    """The board's boot verdict (a fresh boot: the log of an earlier one is gone with its UART bytes)."""
    return reboot(profile, timeout=timeout)
