"""Our small application-image format for emulated boards: the build options of an NXP Matter app, in flash.

Why a format of our own: an emulated board cannot run a real NXP binary, but it must boot *whatever app
is in its flash after reset*, as silicon does, so that flows like NXP's DAC-key conversion (write the
factory data, write the "conversion" app, reset, wait, write the normal app, reset) run unchanged through
the same programmers. What distinguishes those apps is their build options (gn args), so an image carries
exactly those, and the emulated firmware (`hil.emulator.firmware`) behaves as an app built with them.

Layout (little-endian), written at the board's `app_address` like a real app binary:

    offset  size  field
    0       8     magic  b"HILAPP\\x00\\x01"
    8       2     format version (1)
    10      2     reserved (0)
    12      4     body length N
    16      32    SHA-256(body)
    48      N     body: UTF-8 JSON object, keys sorted (the build options below)

A board whose app region does not start with the magic has no app (erased flash, or a real binary): the
ROM keeps running. A magic with a bad hash is a corrupt app: the ROM does not jump to it.

Build options (`AppOptions`), named after the gn args of NXP's Matter examples:
    name, version (string), software_version (uint32, BasicInformation SoftwareVersion),
    chip_with_factory_data (0/1), chip_convert_dac_private_key (0/1),
    hw_params (0/1: K32W1/MCXW71 app reading the HW-parameters "APP_FACT_DATA" section),
    family (optional: the board family the app was built for; another family refuses to boot it).
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import asdict, dataclass

from hil.boards.families import FAMILIES
from hil.errors import InputError

MAGIC = b"HILAPP\x00\x01"
FORMAT_VERSION = 1
HEADER = struct.Struct("<8s H H I 32s")
HEADER_LEN = HEADER.size  # 48
MAX_BODY = 4096  # options only: a bound keeps a corrupt length from reading megabytes

_FLAGS = ("chip_with_factory_data", "chip_convert_dac_private_key", "hw_params")


class AppImageError(InputError):
    """Bytes that are not a valid app image (the ROM would not boot them)."""


@dataclass(frozen=True)
class AppOptions:
    """The build options an emulated app behaves by (see the module docstring)."""

    name: str = "lighting-app"
    version: str = "1.0"
    software_version: int = 1
    chip_with_factory_data: int = 1
    chip_convert_dac_private_key: int = 0
    hw_params: int = 0
    family: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not 0 < len(self.name.encode()) <= 64:
            raise InputError.field("name", self.name, "1..64 bytes of text")
        if not isinstance(self.version, str) or not 0 < len(self.version.encode()) <= 64:
            raise InputError.field("version", self.version, "1..64 bytes of text (SoftwareVersionString)")
        sv = self.software_version
        if isinstance(sv, bool) or not isinstance(sv, int) or not 0 <= sv <= 0xFFFFFFFF:
            raise InputError.field("software_version", sv, "0..4294967295 (uint32)")
        for flag in _FLAGS:
            value = getattr(self, flag)
            if not isinstance(value, int) or value not in (0, 1):  # bools are ints: True/False accepted
                raise InputError.field(flag, value, "0 or 1")
            object.__setattr__(self, flag, int(value))
        if self.family is not None and self.family not in FAMILIES:
            # An unknown name would build an image that no board boots (each refuses another family's).
            raise InputError.field("family", self.family, f"one of {', '.join(FAMILIES)}, or none")

    def describe(self) -> str:
        flags = " ".join(f"{f}={getattr(self, f)}" for f in _FLAGS)
        return f"{self.name} {self.version} ({flags})"


def build(options: AppOptions) -> bytes:
    """The image bytes for `options` (header + JSON body)."""
    body = json.dumps(asdict(options), sort_keys=True, separators=(",", ":")).encode()
    return HEADER.pack(MAGIC, FORMAT_VERSION, 0, len(body), hashlib.sha256(body).digest()) + body


def has_magic(data: bytes) -> bool:
    return data[: len(MAGIC)] == MAGIC


def body_length(header: bytes) -> int:
    """The body length a header announces (call only after `has_magic`)."""
    return HEADER.unpack_from(header)[3]


def parse(data: bytes) -> AppOptions:
    """The options of an image (trailing bytes, e.g. the rest of the app region, are ignored)."""
    if len(data) < HEADER_LEN or not has_magic(data):
        raise AppImageError(f"not an app image: it does not start with the magic {MAGIC!r}")
    _magic, version, _reserved, length, digest = HEADER.unpack_from(data)
    if version != FORMAT_VERSION:
        raise AppImageError(
            f"app image format version {version} is not supported (expected {FORMAT_VERSION})"
        )
    if length > MAX_BODY or HEADER_LEN + length > len(data):
        raise AppImageError(f"app image body length {length} runs past the image ({len(data)} bytes)")
    body = data[HEADER_LEN : HEADER_LEN + length]
    if hashlib.sha256(body).digest() != digest:
        raise AppImageError("app image is corrupt: the SHA-256 of its body does not match its header")
    try:
        fields = json.loads(body)
        if not isinstance(fields, dict):
            raise TypeError
        known = {k: v for k, v in fields.items() if k in AppOptions.__dataclass_fields__}
        return AppOptions(**known)
    except (ValueError, TypeError) as exc:
        raise AppImageError(f"app image body is not a valid options object ({exc})") from None
