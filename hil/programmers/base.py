"""The one programming interface every backend implements, and the write-and-verify routine built on it.

Why one interface: the seed flow writes factory data with three different tools (DK6Programmer, J-Link
`loadfile`, the MCUXpresso Flash Tool). A harness must drive all of them the same way, for real boards and
for emulated boards alike (an emulated board differs only in its `Connection`: a pty path or the TCP port of
the emulated J-Link probe).

Contract for backends (dk6, jlink, blhost, sdp):

* A backend is a class registered in `hil.programmers.BACKENDS` by its name (`profile.programmer`). It has a
  class method ``open(connection: Connection, profile: BoardProfile) -> Programmer`` that opens the link,
  brings the target into a state where it accepts memory commands (ISP unlock, ping, SDP hand-over to the
  flashloader, J-Link connect), and returns the programmer. `open` raises like the methods below.
* Methods (addresses are absolute; lengths in bytes):
    - ``erase(address, length)``: erase whole sectors; `address`/`length` are sector aligned (the caller,
      `write_region`, guarantees it).
    - ``write(address, data)``: program bytes into erased flash (or RAM).
    - ``read(address, length) -> bytes``: exactly `length` bytes, or raise (never return short data: the
      DK6 client returns empty bytes on a failed read, the backend must turn that into an error).
    - ``reset()``: reset the target (on an emulated board this runs the board's reset hooks, i.e. boots
      the application). The programmer stays usable only if the backend says so; callers close after.
    - ``reopen()``: drop the link and open it again; used by `write_region` to resynchronise after a
      transient fault (a dropped or garbled frame may leave client and ROM out of step).
    - ``close()``: release the port or probe; idempotent.
  Attributes: ``board`` (the board name, for messages), ``connection``, ``profile``.
* Errors: raise `TransientError` for faults worth retrying (timeout / no response, NAK, CRC error or garbled
  frame, J-Link communication error) and `ProgrammerError` for everything else (bad status from the ROM,
  address out of range, unsupported command, port missing). Messages name board, step and address; use
  `ProgrammerBase.fail` / `ProgrammerBase.step` to get the standard wording
  ``"<board>: <step> at 0x<address>: <reason>"``.

Library entry point: `write_region(programmer, target, image)` (erase whole region, write, read back,
compare; bounded retries of transient faults) and `read_region(programmer, target)`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from hil.errors import HilError, InputError, ProgrammerError, TransientError

if TYPE_CHECKING:
    from hil.boards.profile import BoardProfile

ERASED = 0xFF


@dataclass(frozen=True)
class Connection:
    """How to reach a board's programming interface, fully resolved.

    For a real board this comes from boards.toml; for an emulated board `hil.programmers.resolve_connection`
    fills it from the running board process (its pty path and probe port), so backends never special-case
    emulation except where the wire itself differs (J-Link: `emulated=True` selects the emulated probe
    library instead of SEGGER's libjlinkarm; DK6: no FTDI ISP-entry sequence on a pty).
    """

    port: str | None = None  # serial device path: /dev/ttyUSB0, /dev/ttyACM0, /dev/pts/N
    baudrate: int = 115200
    timeout_ms: int = 5000  # per-response timeout the client library waits before a TransientError
    jlink_serial: int | None = None  # J-Link USB serial number
    jlink_ip: str | None = None  # J-Link over IP: "host" or "host:port" (emulated probe: "127.0.0.1:PORT")
    emulated: bool = False

    def describe(self, *, jlink: bool = False) -> str:
        """A short human description for messages (`/dev/pts/3`, `J-Link 123456`, `J-Link @10.0.0.5`)."""
        if self.port and not jlink:
            return self.port
        if self.jlink_ip:
            return f"J-Link @{self.jlink_ip}"
        if self.jlink_serial is not None:
            return f"J-Link {self.jlink_serial}"
        return self.port or "(no connection)"


@dataclass(frozen=True)
class TargetRegion:
    """A flash region to (re)write as a unit: the factory-data region, the app region, or an ad-hoc range."""

    address: int
    size: int
    sector_size: int
    name: str = "region"

    @property
    def end(self) -> int:
        return self.address + self.size

    def erase_span(self) -> tuple[int, int]:
        """The sector-aligned range covering the region (start, length)."""
        start = self.address - self.address % self.sector_size
        end = -(-self.end // self.sector_size) * self.sector_size
        return start, end - start


@runtime_checkable
class Programmer(Protocol):
    """What every backend provides (see the module docstring for the exact contract)."""

    board: str

    def erase(self, address: int, length: int) -> None: ...
    def write(self, address: int, data: bytes) -> None: ...
    def read(self, address: int, length: int) -> bytes: ...
    def reset(self) -> None: ...
    def reopen(self) -> None: ...
    def close(self) -> None: ...


class ProgrammerBase:
    """Optional base class for backends: stores the connection, gives uniform messages, context manager.

    Subclasses implement `_open()` (connect; called by `open` and `reopen`), `_close()` and the memory
    methods; they wrap each client call in ``with self.step("write", address, transient=(TimeoutError,)):``
    so exceptions of the client library become TransientError / ProgrammerError with the standard wording.
    """

    name: ClassVar[str] = ""

    def __init__(self, connection: Connection, profile: BoardProfile) -> None:
        self.connection = connection
        self.profile = profile
        self.board = profile.name

    @classmethod
    def open(cls, connection: Connection, profile: BoardProfile) -> ProgrammerBase:
        prog = cls(connection, profile)
        prog._open()
        return prog

    def _open(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def reopen(self) -> None:
        with contextlib.suppress(Exception):
            self._close()
        self._open()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._close()

    def __enter__(self) -> ProgrammerBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def where(self, step: str, address: int | None = None) -> str:
        at = f" at 0x{address:X}" if address is not None else ""
        via = self.connection.describe(jlink=self.name == "jlink")
        return f"{self.board}: {step}{at} ({self.name} via {via})"

    def fail(
        self, step: str, address: int | None, reason: str, *, transient: bool = False
    ) -> ProgrammerError:
        """The error to raise for a failed step: ``raise self.fail("write", 0x9D600, "status 0xFE")``."""
        cls = TransientError if transient else ProgrammerError
        return cls(f"{self.where(step, address)}: {reason}")

    @contextlib.contextmanager
    def step(
        self,
        step: str,
        address: int | None = None,
        *,
        transient: tuple[type[BaseException], ...] | Callable[[Exception], bool] = (),
        reason: Callable[[Exception], str] | None = None,
    ) -> Iterator[None]:
        """Map client-library exceptions: transient ones (`transient`: exception types, or a predicate for
        clients that say it only in a code or message) -> TransientError, others -> ProgrammerError, with
        `reason(exc)` (default: type and first line) after the standard wording."""
        try:
            yield
        except HilError:
            raise
        except Exception as exc:
            retry = transient(exc) if callable(transient) else isinstance(exc, transient)
            raise self.fail(step, address, (reason or _reason)(exc), transient=retry) from exc


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


@dataclass
class WriteReport:
    """What `write_region` did: where, how much, how many attempts, which transient faults it rode out."""

    board: str
    address: int
    size: int  # region size
    image_length: int
    erase_start: int
    erase_length: int
    attempts: int
    seconds: float
    transient_faults: list[str] = field(default_factory=list)

    def summary(self) -> str:
        retried = (
            f", {len(self.transient_faults)} transient fault(s) retried" if self.transient_faults else ""
        )
        return (
            f"{self.board}: wrote {self.image_length} bytes at 0x{self.address:X} "
            f"(region 0x{self.size:X}, erased 0x{self.erase_start:X}+0x{self.erase_length:X}), "
            f"verified in {self.seconds:.2f} s, attempt {self.attempts}{retried}"
        )


def _target(target: BoardProfile | TargetRegion) -> TargetRegion:
    return target if isinstance(target, TargetRegion) else target.factory_data_region


def first_difference(expected: bytes, actual: bytes) -> int | None:
    """Offset of the first differing byte (or of the end of the shorter one), None if equal."""
    if expected == actual:
        return None
    for i, (a, b) in enumerate(zip(expected, actual, strict=False)):
        if a != b:
            return i
    return min(len(expected), len(actual))


def check_image(region: TargetRegion, image: bytes) -> None:
    """Refuse an image that does not fit the region, before anything touches the board."""
    if not image:
        raise InputError.field("image size", 0, "a non-empty image")
    if len(image) > region.size:
        raise InputError.field(
            "image size",
            len(image),
            f"at most the {region.name} size 0x{region.size:X} ({region.size} bytes)",
        )


def write_region(
    programmer: Programmer,
    target: BoardProfile | TargetRegion,
    image: bytes,
    *,
    retries: int = 3,
) -> WriteReport:
    """Write `image` at the start of a region: erase the whole region, program, read back, compare.

    Why erase the whole region (not just the image's length): the firmware scans the factory-data region
    linearly, and stale bytes of an older, longer image after the new one would be misparsed
    (nxp-factory-data.md §1.4). If the region does not fill its sectors (K32W1 hw_params at 0xFE080 shares
    a sector with PROD_DATA), the bytes of those sectors outside the region are read first and written back
    after the erase, as J-Link's flash loader does, so only the region changes.

    A TransientError (also one met while reopening) reopens the programmer and restarts from the erase, at
    most `retries` times (a restart is always safe: erase then write is idempotent). A link fault that
    outlasts the retries (a disconnect mid-write) ends in a TransientError: still the lab's fault, not the
    product's (hil.reports: infrastructure, retried once by the plugin). A non-transient error (also one met
    while reopening) ends in a ProgrammerError. Either says the region may hold a partial image; never a
    silent partial write. A verify mismatch is a ProgrammerError, not retried: it names the first
    differing address.
    """
    region = _target(target)
    board = programmer.board
    check_image(region, image)
    start, span = region.erase_span()
    head = region.address - start
    expected_region = bytes(image) + bytes([ERASED]) * (region.size - len(image))
    kept: bytes | None = None if (head or span != region.size) else b""
    faults: list[str] = []
    t0 = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            if attempt > 1:  # resynchronise: a dropped or garbled frame may leave both ends out of step
                programmer.reopen()
            if kept is None:  # read the bytes outside the region that share its sectors, once
                kept = programmer.read(start, span)
            expected = kept[:head] + expected_region + kept[head + region.size :] if kept else expected_region
            programmer.erase(start, span)
            for off, chunk in _programmed_parts(expected, head, region.size, len(image)):
                programmer.write(start + off, chunk)
            actual = programmer.read(start, span)
        except TransientError as exc:
            faults.append(str(exc))
            if attempt > retries:  # still a link fault, not the board's: infrastructure (retried once)
                raise TransientError(
                    f"{board}: write of {region.name} at 0x{region.address:X} failed after {attempt} "
                    "attempts; "
                    f"the region may hold a partial image, flash it again. Last fault: {exc}"
                ) from exc
            continue
        except ProgrammerError as exc:
            raise ProgrammerError(
                f"{exc} (writing {region.name} 0x{region.address:X}+0x{region.size:X}; "
                "the region may hold a partial image)"
            ) from exc
        break
    diff = first_difference(expected, actual)
    if diff is not None:
        got = f"0x{actual[diff]:02X}" if diff < len(actual) else "nothing"
        want = f"0x{expected[diff]:02X}" if diff < len(expected) else "nothing"
        raise ProgrammerError(
            f"{board}: verify of {region.name} failed at 0x{start + diff:X}: read {got}, expected {want}"
        )
    return WriteReport(
        board=board,
        address=region.address,
        size=region.size,
        image_length=len(image),
        erase_start=start,
        erase_length=span,
        attempts=attempt,
        seconds=time.monotonic() - t0,
        transient_faults=faults,
    )


def _programmed_parts(expected: bytes, head: int, size: int, image_len: int) -> Iterator[tuple[int, bytes]]:
    """The non-blank pieces to program after the erase: kept head, the image, kept tail (offsets in span)."""
    pieces = [
        (0, expected[:head]),
        (head, expected[head : head + image_len]),
        (head + size, expected[head + size :]),
    ]
    for off, chunk in pieces:
        stripped = chunk.rstrip(b"\xff") if off != head else chunk
        if stripped:
            yield off, stripped


def read_region(programmer: Programmer, target: BoardProfile | TargetRegion, *, retries: int = 3) -> bytes:
    """Read a whole region, retrying transient faults like `write_region` does."""
    region = _target(target)
    attempt = 0
    while True:
        attempt += 1
        try:
            if attempt > 1:
                programmer.reopen()
            return programmer.read(region.address, region.size)
        except TransientError as exc:
            if attempt > retries:
                raise TransientError(
                    f"{programmer.board}: read of {region.name} at 0x{region.address:X} failed after "
                    f"{attempt} attempts. Last fault: {exc}"
                ) from exc
