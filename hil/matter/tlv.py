"""Matter TLV (Matter Core spec appendix A; the SDK's TLVWriter/TLVReader), encode and decode.

Only what Matter payloads built or read by the harness need, written to match TLVWriter's bytes: unsigned
integers take the minimal width (TLVWriter::Put(uint) widens and then narrows by value), lengths take the
minimal width, all multi-byte values are little-endian. Containers keep element order, since the SDK's
decoders (e.g. the Certification Declaration's) read members in a fixed order.

Python values map to TLV as: int >= 0 → unsigned, int < 0 or `Signed` → signed, bool, float → float64,
`Float32` → float32, str → UTF-8 string, bytes → byte string, None → null, `Structure` / `Array` / `List`
→ containers. Tags: None (anonymous), 0..255 (context-specific), or (vendor_id, profile_num, tag_num)
for fully-qualified profile tags; decoding also reports common-profile tags as (0, 0, tag) and
implicit-profile tags as (None, None, tag).
"""

from __future__ import annotations

import struct
from typing import Any

Tag = int | tuple[int | None, int | None, int] | None

# Element types (low 5 bits of the control byte).
_INT, _UINT = 0x00, 0x04  # + 0..3 for 1/2/4/8 bytes
_FALSE, _TRUE, _FLOAT32, _FLOAT64 = 0x08, 0x09, 0x0A, 0x0B
_UTF8, _BYTES = 0x0C, 0x10  # + 0..3 for a 1/2/4/8-byte length
_NULL, _STRUCT, _ARRAY, _LIST, _END = 0x14, 0x15, 0x16, 0x17, 0x18
# Tag control (top 3 bits).
_ANON, _CONTEXT, _COMMON2, _COMMON4, _IMPL2, _IMPL4, _FULL6, _FULL8 = (i << 5 for i in range(8))
_WIDTHS = (1, 2, 4, 8)


class TLVError(ValueError):
    """Malformed TLV input (truncated, unknown element type, unbalanced container, bad UTF-8)."""


class Signed(int):
    """An integer to encode as a signed TLV integer even when it is not negative."""


class Float32(float):
    """A float to encode as a 4-byte TLV float."""


class Structure(list[tuple[Tag, Any]]):
    """An ordered TLV structure: a list of (tag, value) members. `get(tag)` finds a member by tag."""

    def get(self, tag: Tag, default: Any = None) -> Any:
        for t, v in self:
            if t == tag:
                return v
        return default

    def tags(self) -> list[Tag]:
        return [t for t, _ in self]


class Array(list[Any]):
    """A TLV array: anonymous elements."""


class List(list[tuple[Tag, Any]]):
    """A TLV list: (tag, value) elements where tags may repeat or be anonymous."""


# ------------------------------------------------------------------------------------------------ encode


def _width(n: int, signed: bool) -> int:
    for i, w in enumerate(_WIDTHS):
        bits = 8 * w
        if (signed and -(1 << (bits - 1)) <= n < (1 << (bits - 1))) or (not signed and 0 <= n < (1 << bits)):
            return i
    raise TLVError(f"integer {n} does not fit in 64 bits")


def _encode_tag(tag: Tag) -> tuple[int, bytes]:
    if tag is None:
        return _ANON, b""
    if isinstance(tag, int):
        if not 0 <= tag <= 0xFF:
            raise TLVError(f"context tag {tag} is not 0..255")
        return _CONTEXT, bytes([tag])
    vendor, profile, num = tag
    if vendor is None or profile is None:
        return (_IMPL2, num.to_bytes(2, "little")) if num <= 0xFFFF else (_IMPL4, num.to_bytes(4, "little"))
    if vendor == 0 and profile == 0:
        return (
            (_COMMON2, num.to_bytes(2, "little")) if num <= 0xFFFF else (_COMMON4, num.to_bytes(4, "little"))
        )
    head = vendor.to_bytes(2, "little") + profile.to_bytes(2, "little")
    return (
        (_FULL6, head + num.to_bytes(2, "little"))
        if num <= 0xFFFF
        else (_FULL8, head + num.to_bytes(4, "little"))
    )


def _encode(tag: Tag, value: Any, out: bytearray) -> None:
    tag_control, tag_bytes = _encode_tag(tag)

    def put(element_type: int, payload: bytes = b"") -> None:
        out.append(tag_control | element_type)
        out.extend(tag_bytes)
        out.extend(payload)

    if value is None:
        put(_NULL)
    elif isinstance(value, bool):
        put(_TRUE if value else _FALSE)
    elif isinstance(value, int):
        signed = isinstance(value, Signed) or value < 0
        i = _width(value, signed)
        put((_INT if signed else _UINT) + i, value.to_bytes(_WIDTHS[i], "little", signed=signed))
    elif isinstance(value, Float32):
        put(_FLOAT32, struct.pack("<f", value))
    elif isinstance(value, float):
        put(_FLOAT64, struct.pack("<d", value))
    elif isinstance(value, str | bytes | bytearray | memoryview):
        data = value.encode() if isinstance(value, str) else bytes(value)
        i = _width(len(data), False)
        put(
            (_UTF8 if isinstance(value, str) else _BYTES) + i, len(data).to_bytes(_WIDTHS[i], "little") + data
        )
    elif isinstance(value, Structure | List):
        put(_STRUCT if isinstance(value, Structure) else _LIST)
        for t, v in value:
            _encode(t, v, out)
        out.append(_END)
    elif isinstance(value, Array | list | tuple):
        put(_ARRAY)
        for v in value:
            _encode(None, v, out)
        out.append(_END)
    else:
        raise TLVError(f"cannot encode {type(value).__name__} as TLV")


def encode(value: Any, tag: Tag = None) -> bytes:
    """One TLV element (usually an anonymous `Structure`) as bytes."""
    out = bytearray()
    _encode(tag, value, out)
    return bytes(out)


# ------------------------------------------------------------------------------------------------ decode


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise TLVError(f"truncated TLV at offset {self.pos}: need {n} more bytes")
        b = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return b

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "little")

    def tag(self, control: int) -> Tag:
        tc = control & 0xE0
        if tc == _ANON:
            return None
        if tc == _CONTEXT:
            return self.uint(1)
        if tc in (_COMMON2, _COMMON4):
            return (0, 0, self.uint(2 if tc == _COMMON2 else 4))
        if tc in (_IMPL2, _IMPL4):
            return (None, None, self.uint(2 if tc == _IMPL2 else 4))
        vendor, profile = self.uint(2), self.uint(2)
        return (vendor, profile, self.uint(2 if tc == _FULL6 else 4))

    def element(self) -> tuple[Tag, Any] | None:
        """The next (tag, value), or None at an end-of-container marker."""
        start = self.pos
        control = self.take(1)[0]
        et = control & 0x1F
        if et == _END:
            if control != _END:
                raise TLVError(f"end-of-container with a tag at offset {start}")
            return None
        tag = self.tag(control)
        if et <= 0x03:
            return tag, int.from_bytes(self.take(_WIDTHS[et]), "little", signed=True)
        if et <= 0x07:
            return tag, self.uint(_WIDTHS[et - _UINT])
        if et in (_FALSE, _TRUE):
            return tag, et == _TRUE
        if et == _FLOAT32:
            return tag, Float32(struct.unpack("<f", self.take(4))[0])
        if et == _FLOAT64:
            return tag, struct.unpack("<d", self.take(8))[0]
        if _UTF8 <= et <= 0x13:
            base = _UTF8 if et < _BYTES else _BYTES
            raw = self.take(self.uint(_WIDTHS[et - base]))
            if base == _BYTES:
                return tag, raw
            try:
                return tag, raw.decode()
            except UnicodeDecodeError:
                raise TLVError(f"invalid UTF-8 string at offset {start}") from None
        if et == _NULL:
            return tag, None
        if et in (_STRUCT, _ARRAY, _LIST):
            members: list[tuple[Tag, Any]] = []
            while (item := self.element()) is not None:
                members.append(item)
            if et == _ARRAY:
                return tag, Array(v for _, v in members)
            return tag, (Structure if et == _STRUCT else List)(members)
        raise TLVError(f"unknown TLV element type 0x{et:02x} at offset {start}")


def decode(data: bytes, *, allow_trailing: bool = False) -> Any:
    """Decode one TLV element and return its value (tag dropped); trailing bytes are an error by default."""
    value, _tag, end = decode_element(data)
    if end != len(data) and not allow_trailing:
        raise TLVError(f"{len(data) - end} trailing bytes after the TLV element")
    return value


def decode_element(data: bytes, offset: int = 0) -> tuple[Any, Tag, int]:
    """(value, tag, end offset) of the element starting at `offset`."""
    r = _Reader(data)
    r.pos = offset
    item = r.element()
    if item is None:
        raise TLVError(f"unexpected end-of-container at offset {offset}")
    return item[1], item[0], r.pos
