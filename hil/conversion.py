"""NXP's DAC private key → secure blob conversion (manufacturing guide §6) as one library call.

The guide's flow, as `scripts/tools/nxp/factory_data_generator/k32w1/example_convert_dac_private_key.jlink`
runs it: write the factory data, write an app built with ``chip_with_factory_data=1
chip_convert_dac_private_key=1``, reset and let it run (the firmware swaps tag 4 for a blob its secure
subsystem made and rewrites the region), then write the normal app and reset. NXP's script sleeps a fixed
10 s; here the factory-data region is polled through the programmer until tag 4 holds a blob of the
family's size (K32W1/MCXW71 56 bytes, RW61x 48), so the call takes as long as the conversion does and
fails with a clear message when it never happens.

The same call serves real and emulated boards: everything goes through the board's programmer. On an
emulated board both apps default to images the harness builds (`hil.emulator.app_image`); a real board
takes its binaries from the arguments or boards.toml ``[board.NAME.options] conversion_app = "..."`` and
``app = "..."`` (paths relative to boards.toml).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hil import programmers
from hil.emulator import app_image
from hil.emulator.sss import BlobFormat, blob_format
from hil.errors import BoardError, InputError
from hil.factory_data import codec
from hil.factory_data.tags import DAC_KEY_PLAIN_LEN
from hil.programmers.base import read_region, write_region

if TYPE_CHECKING:
    from hil.boards.profile import BoardProfile
    from hil.programmers.base import Programmer

DEFAULT_TIMEOUT = 30.0
DEFAULT_POLL = 0.05
NXP_FIXED_WAIT_S = 10.0  # what example_convert_dac_private_key.jlink sleeps instead of polling


@dataclass
class ConversionReport:
    board: str
    blob: str  # the blob format's name
    blob_length: int
    seconds: float  # from the conversion app's reset to the blob seen in flash
    polls: int  # region reads it took
    already_converted: bool  # tag 4 was a blob before the conversion app ran
    factory_data_written: bool
    size_before: int  # image length (header + payload [+ hw_params wrapper])
    size_after: int

    def summary(self) -> str:
        if self.already_converted:
            what = f"DAC key already a {self.blob_length}-byte blob; the conversion app left it unchanged"
        else:
            what = (
                f"DAC private key converted to a {self.blob_length}-byte {self.blob} "
                f"(factory data {self.size_before} -> {self.size_after} bytes)"
            )
        return (
            f"{self.board}: {what}; seen after {self.seconds:.2f} s ({self.polls} reads; NXP's script "
            f"waits a fixed {NXP_FIXED_WAIT_S:.0f} s); normal app written and started"
        )


def default_apps(profile: BoardProfile) -> tuple[bytes, bytes]:
    """(conversion app, normal app) images for an emulated board, built with NXP's gn options."""
    hw_params = int(bool(profile.options.get("hw_params", False)))
    common = {"family": profile.family, "hw_params": hw_params, "chip_with_factory_data": 1}
    conversion = app_image.AppOptions(name="dac-conversion-app", chip_convert_dac_private_key=1, **common)
    normal = app_image.AppOptions(name="lighting-app", chip_convert_dac_private_key=0, **common)
    return app_image.build(conversion), app_image.build(normal)


def _read_app(profile: BoardProfile, given: bytes | Path | str | None, key: str) -> bytes | None:
    source: bytes | Path | str | None = given if given is not None else profile.options.get(key)
    if source is None or isinstance(source, bytes):
        return source
    path = Path(source)
    if not path.is_absolute() and given is None and profile.source is not None:
        path = profile.source.parent / path
    try:
        return path.read_bytes()
    except OSError as exc:
        flag = "--conversion-app" if key == "conversion_app" else "--app"
        raise InputError.field(flag, str(path), f"a readable app binary ({exc.strerror})") from None


def resolve_apps(
    profile: BoardProfile, conversion_app: bytes | Path | str | None, app: bytes | Path | str | None
) -> tuple[bytes, bytes]:
    """The two app images: given, from boards.toml options, or (emulated boards only) built here."""
    conv, normal = _read_app(profile, conversion_app, "conversion_app"), _read_app(profile, app, "app")
    if conv is None or normal is None:
        if not profile.emulated:
            missing = " and ".join(f for f, v in (("--conversion-app", conv), ("--app", normal)) if v is None)
            raise InputError(
                f"{missing}: required for the real board {profile.name} (or set "
                f"[board.{profile.name}.options] conversion_app / app in boards.toml): the conversion app "
                "is built with chip_with_factory_data=1 chip_convert_dac_private_key=1, the normal app "
                "without chip_convert_dac_private_key"
            )
        built_conv, built_normal = default_apps(profile)
        conv, normal = conv or built_conv, normal or built_normal
    return conv, normal


def dac_key_length(image: bytes, profile: BoardProfile) -> tuple[int | None, codec.Parsed]:
    """Tag-4 length of a factory-data image as the board's firmware would read it (None if invalid)."""
    parsed = codec.parse(image, profile.aes_key_bytes) if profile.aes_key else codec.parse(image)
    if profile.aes_key and not parsed.ok and any(p.code == "not_encrypted" for p in parsed.problems):
        parsed = codec.parse(image)  # RW61x also accepts plain data when a key is configured
    if not parsed.ok:
        return None, parsed
    rec = parsed.first_record(4)
    return (len(rec.value) if rec else None), parsed


def _image_length(parsed: codec.Parsed) -> int:
    if parsed.layout == "hw_params" and parsed.hw_params_length is not None:
        return codec.HW_PARAMS_PREFIX_LEN + parsed.hw_params_length + codec.HW_PARAMS_CRC_LEN
    return codec.HEADER_LEN + (parsed.size or 0)


def check_factory_data(profile: BoardProfile, image: bytes, fmt: BlobFormat) -> int:
    """Refuse, before touching the board, a factory-data file the conversion cannot work on."""
    length, parsed = dac_key_length(image, profile)
    if length is None:
        why = next((p.message for p in parsed.problems if p.severity == "error"), "tag 4 (DAC key) missing")
        raise InputError.field("--factory-data", f"{len(image)} bytes", f"valid factory data ({why})")
    if length not in (DAC_KEY_PLAIN_LEN, fmt.length):
        raise InputError.field(
            "--factory-data DAC key (tag 4)", f"{length} bytes", f"32 (plain) or {fmt.length} ({fmt.name})"
        )
    grown = _image_length(parsed) + (fmt.length - DAC_KEY_PLAIN_LEN if length == DAC_KEY_PLAIN_LEN else 0)
    if parsed.aes:
        grown += codec.AES_BLOCK
    limit = profile.factory_data_size
    if parsed.layout == "hw_params":
        limit = min(limit, codec.HW_PARAMS_MAX_LEN)
    if grown > limit:
        raise InputError.field(
            "--factory-data size",
            len(image),
            f"room for the blob: {grown} bytes after conversion, the region holds {limit}",
        )
    return length


def _with_programmer(profile: BoardProfile, retries: int) -> Programmer:
    return programmers.open_programmer(profile, retries=retries)


def convert_dac(
    profile: BoardProfile,
    *,
    conversion_app: bytes | Path | str | None = None,
    app: bytes | Path | str | None = None,
    factory_data: bytes | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    poll_interval: float = DEFAULT_POLL,
    retries: int = 3,
) -> ConversionReport:
    """Run the conversion on `profile`'s board (see the module docstring); ConversionReport or HilError."""
    fmt = blob_format(profile.family)
    if fmt is None:
        raise InputError.field(
            "--board",
            profile.name,
            "a K32W1 or RW61x board (the families whose firmware converts the DAC key into a "
            f"secure-subsystem blob; {profile.family} keeps it plain)",
        )
    conv_image, normal_image = resolve_apps(profile, conversion_app, app)
    conv_region, normal_region = (
        profile.app_region_for(len(conv_image)),
        profile.app_region_for(len(normal_image)),
    )
    if factory_data is not None:
        programmers.check_image(profile.factory_data_region, factory_data)
        check_factory_data(profile, factory_data, fmt)

    programmer = _with_programmer(profile, retries)
    try:
        if factory_data is not None:
            write_region(programmer, profile.factory_data_region, factory_data, retries=retries)
            current = factory_data
        else:
            current = read_region(programmer, profile.factory_data_region, retries=retries)
        length, parsed = dac_key_length(current, profile)
        if length is None:
            why = next((p.message for p in parsed.problems if p.severity == "error"), "no DAC key (tag 4)")
            raise BoardError(
                f"{profile.name}: no valid factory data on the board ({why}); write it first: "
                f"hil flash --board {profile.name} factory_data.bin, or pass --factory-data FILE"
            )
        size_before = _image_length(parsed)
        already = length == fmt.length
        write_region(programmer, conv_region, conv_image, retries=retries)
        programmer.reset()
        t0 = time.monotonic()
    finally:
        programmer.close()

    polls, size_after, seconds = 0, size_before, 0.0
    programmer = _with_programmer(profile, retries)  # a reset may end a programmer's session: reopen
    try:
        while True:
            polls += 1
            region = read_region(programmer, profile.factory_data_region, retries=retries)
            length, parsed = dac_key_length(region, profile)
            if length == fmt.length:
                seconds, size_after = time.monotonic() - t0, _image_length(parsed)
                break
            if time.monotonic() - t0 > timeout:
                state = f"tag 4 is {length} bytes" if length is not None else "the factory data is invalid"
                raise BoardError(
                    f"{profile.name}: the DAC key was not converted within {timeout:g} s ({state}); "
                    "read the board's boot log (hil.boot.reboot) for the firmware's error"
                )
            time.sleep(poll_interval)
        write_region(programmer, normal_region, normal_image, retries=retries)
        programmer.reset()
    finally:
        programmer.close()
    return ConversionReport(
        board=profile.name,
        blob=fmt.name,
        blob_length=fmt.length,
        seconds=seconds,
        polls=polls,
        already_converted=already,
        factory_data_written=factory_data is not None,
        size_before=size_before,
        size_after=size_after,
    )
