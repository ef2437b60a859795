"""The emulator's stand-in for NXP's `ivt_flashloader.bin`, and the IVT parsing both sides share.

On a real i.MX RT board the harness loads NXP's flashloader (from the MCUXpresso Secure Provisioning tool or
the Flashloader package; boards.toml names the file) into OCRAM over SDP and jumps to its IVT. An emulated
ROM cannot run ARM code, so it recognises this image instead: a correctly formed i.MX image vector table
(IVT) and boot data, laid out as the real file is (IVT at offset 0x400 of an image loaded at 0x20208000,
jump to 0x20208400; community.nxp.com threads on the RT10xx flashloader), whose entry point holds a marker
instead of code. This is an emulator artefact, never to be written to a real board (the marker is not code
and a real ROM would jump into it).

IVT (i.MX RT reference manuals, "Image Vector Table"): header tag 0xD1, length 0x0020 big-endian, version
0x40-0x45; then entry, reserved, dcd, boot_data, self, csf, reserved (u32 little-endian). Boot data: start,
length, plugin (u32 each).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

IVT_TAG = 0xD1
IVT_LENGTH = 0x20
IVT_OFFSET = 0x400  # where NXP's ivt_flashloader.bin places its IVT
DEFAULT_LOAD_ADDRESS = 0x20208000  # OCRAM; the address NXP's RT10xx flashloader images are built for
MARKER = b"HIL-EMULATED-FLASHLOADER\x00\x00\x00\x00"  # 28 bytes, at the entry point
MARKER_VERSION = 1
_BOOT_DATA_OFFSET = IVT_OFFSET + IVT_LENGTH
_ENTRY_OFFSET = _BOOT_DATA_OFFSET + 0x10


@dataclass(frozen=True)
class Ivt:
    version: int
    entry: int
    dcd: int
    boot_data: int
    self_address: int
    csf: int

    @classmethod
    def parse(cls, raw: bytes) -> Ivt | None:
        """The IVT in the first 32 bytes of `raw`, or None when the header is not an IVT header."""
        if len(raw) < IVT_LENGTH:
            return None
        tag, length, version = struct.unpack_from(">BHB", raw)
        if tag != IVT_TAG or length != IVT_LENGTH or not 0x40 <= version <= 0x45:
            return None
        entry, _, dcd, boot_data, self_address, csf, _ = struct.unpack_from("<7I", raw, 4)
        return cls(version, entry, dcd, boot_data, self_address, csf)


def build_emulated_flashloader(load_address: int = DEFAULT_LOAD_ADDRESS, ivt_version: int = 0x40) -> bytes:
    """The image an emulated RT ROM starts as its flashloader (module docstring). Load it at `load_address`
    with SDP WRITE_FILE and jump to `load_address + IVT_OFFSET`."""
    ivt_address = load_address + IVT_OFFSET
    entry = load_address + _ENTRY_OFFSET
    body = MARKER + struct.pack("<I", MARKER_VERSION)
    total = _ENTRY_OFFSET + len(body)
    ivt = struct.pack(">BHB", IVT_TAG, IVT_LENGTH, ivt_version) + struct.pack(
        "<7I", entry, 0, 0, load_address + _BOOT_DATA_OFFSET, ivt_address, 0, 0
    )
    boot_data = struct.pack("<3I", load_address, total, 0) + bytes(4)
    return bytes(IVT_OFFSET) + ivt + boot_data + body


@dataclass(frozen=True)
class ImageLayout:
    """Where an IVT-bearing image wants to be loaded and started (read from the image itself)."""

    load_address: int
    jump_address: int
    ivt: Ivt


def find_ivt(image: bytes) -> ImageLayout | None:
    """Locate the IVT of a flashloader image (ours or NXP's) and derive load and jump addresses from it.

    The IVT's `self` field is its own run-time address and its boot data's `start` is the load address, so
    `load = self - offset_of_ivt_in_file`; the harness therefore needs no per-family address table.
    """
    for offset in (IVT_OFFSET, 0, 0x1000):
        ivt = Ivt.parse(image[offset : offset + IVT_LENGTH])
        if ivt is not None:
            return ImageLayout(ivt.self_address - offset, ivt.self_address, ivt)
    return None


def is_emulated_flashloader(memory_at_entry: bytes) -> bool:
    """True when the bytes at an IVT's entry point are this module's marker."""
    return memory_at_entry[: len(MARKER)] == MARKER
