"""NXP factory-data bytes: TLV records, the 12-byte header, AES-ECB, the hw_params wrapper; both directions.

Encoding reproduces NXP's generate.py byte for byte (specs/nxp-factory-data.md §1, §2.4):

    plain      5E BA 47 CE | LE32 size | SHA-256(payload)[:4] | payload        payload = records sorted by tag
    encrypted  5E BA 47 CE | LE32 len(PP) | SHA-256(PP)[:4] | AES-ECB(PP)      PP = payload + 1..16 zero bytes
    hw_params  "APP_FACT_DATA:  " | LE32 len(H) | H | LE16 CRC-16/XMODEM(H)      H = the plain image
    record     tag (1 byte) | LE16 length | value

Decoding reads an image the way the firmware does (first match wins, tag 0 stops a scan, the scan is
bounded by the header's size) but, unlike the firmware, it never stops at the first fault: `parse` returns
every problem with an explanation, for the inspector. `FactoryDataImage` is the strict firmware view
(raises on what makes `FactoryDataProvider::Init` fail) for emulated firmware and quick lookups.

`encode` is on the bulk generator's per-device path, so it does only the structural checks that keep the
bytes well-formed (value fits its field, record fits 64 KiB); the semantic rules live in `rules.py`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from hil.errors import InputError
from hil.factory_data.tags import BY_TAG, FIRMWARE_TAGS, TAGS, FactoryData, Kind, TagSpec

MAGIC = 0xCE47BA5E
MAGIC_BYTES = MAGIC.to_bytes(4, "little")  # 5E BA 47 CE
HEADER = struct.Struct("<I I 4s")  # hashId, size, SHA-256 prefix
HEADER_LEN = HEADER.size  # 12
HASH_LEN = 4
RECORD_HEADER = struct.Struct("<B H")
RECORD_HEADER_LEN = RECORD_HEADER.size  # 3
MAX_RECORD_LEN = 0xFFFF

HW_PARAMS_ID = b"APP_FACT_DATA:  "  # 16 bytes: "APP_FACT_DATA:" and two spaces
HW_PARAMS_PREFIX = struct.Struct("<16s I")
HW_PARAMS_PREFIX_LEN = HW_PARAMS_PREFIX.size  # 20
HW_PARAMS_CRC_LEN = 2
HW_PARAMS_MAX_LEN = 0x800  # APP_FACTORY_DATA_MAX_LEN: wrapper + H + CRC (SDK NvExtendedFactoryDataValid)

AES_BLOCK = 16
AES_KEY_NAMES = {16: "AES-128", 32: "AES-256"}


# --------------------------------------------------------------------------------------------- encoding


def crc16_xmodem(data: bytes) -> int:
    """CRC-16/XMODEM (poly 0x1021, init 0, no reflection): the SDK's NV_ComputeCrc; C speed via binascii."""
    return binascii.crc_hqx(data, 0)


def encode_value(spec: TagSpec, value: object) -> bytes:
    """The stored bytes of one value; InputError naming the field when it cannot be represented."""
    try:
        kind = spec.kind
        if kind is Kind.B64:
            raw = base64.b64encode(_bytes(value))
        elif kind is Kind.STR:
            raw = value.encode("utf-8")  # type: ignore[attr-defined]
        elif kind is Kind.BYTES:
            raw = _bytes(value)
        else:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError
            raw = value.to_bytes(spec.width, "little")  # type: ignore[arg-type]
    except OverflowError:
        raise InputError.field(
            spec.cli, value, f"allowed 0..{spec.max_int:#x} ({spec.width}-byte field)"
        ) from None
    except (TypeError, AttributeError, UnicodeError):
        raise InputError.field(
            spec.cli, value, f"expected {_python_type(spec)} for the {spec.label}"
        ) from None
    if len(raw) > MAX_RECORD_LEN:
        raise InputError(
            f"{spec.cli}: {len(raw)} bytes is not allowed; a record holds at most {MAX_RECORD_LEN} bytes"
        )
    return raw


def _bytes(value: object) -> bytes:
    """bytes-like only: `bytes(5)` would silently store five zero bytes."""
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError
    return bytes(value)


def _python_type(spec: TagSpec) -> str:
    return {Kind.B64: "bytes", Kind.STR: "str", Kind.BYTES: "bytes"}.get(spec.kind, "int")


def encode_payload(fd: FactoryData) -> bytes:
    """The TLV records of every present field, ascending by tag (generate.py's sort), concatenated."""
    parts: list[bytes] = []
    pack = RECORD_HEADER.pack
    for spec in TAGS:  # TAGS is in tag order, so no sort is needed
        value = getattr(fd, spec.name)
        if value is None:
            continue
        raw = encode_value(spec, value)
        parts.append(pack(spec.tag, len(raw)))
        parts.append(raw)
    return b"".join(parts)


def check_aes_key(key: bytes) -> None:
    if len(key) not in AES_KEY_NAMES:
        raise InputError(
            f"AES key: {len(key)} bytes is not allowed; allowed 16 bytes (AES-128, 32 hex digits) "
            "or 32 bytes (AES-256, 64 hex digits)"
        )


def _ecb(key: bytes) -> Cipher[modes.ECB]:
    check_aes_key(key)
    return Cipher(algorithms.AES(key), modes.ECB())


def seal(payload: bytes, aes_key: bytes | None = None, hw_params: bool = False) -> bytes:
    """Header (+ encryption or hw_params wrapper) around a TLV payload, as generate.py's `to_bin` does."""
    if aes_key is None:
        image = HEADER.pack(MAGIC, len(payload), hashlib.sha256(payload).digest()[:HASH_LEN]) + payload
        return wrap_hw_params(image) if hw_params else image
    if hw_params:
        raise InputError(
            "--hw_params: cannot be combined with an AES key; the K32W1/MCXW71 hw_params section is read "
            "in plain text (generate.py silently drops the wrapper when encrypting)"
        )
    padded = payload + bytes(AES_BLOCK - len(payload) % AES_BLOCK)  # always 1..16 zero bytes, like NXP
    encryptor = _ecb(aes_key).encryptor()
    cipher = encryptor.update(padded) + encryptor.finalize()
    return HEADER.pack(MAGIC, len(padded), hashlib.sha256(padded).digest()[:HASH_LEN]) + cipher


def wrap_hw_params(image: bytes) -> bytes:
    """The K32W1/MCXW71 HW-parameters APP section around a plain image (spec §1.6)."""
    return HW_PARAMS_PREFIX.pack(HW_PARAMS_ID, len(image)) + image + crc16_xmodem(image).to_bytes(2, "little")


def encode(fd: FactoryData, aes_key: bytes | None = None, hw_params: bool = False) -> bytes:
    """The complete factory-data binary for `fd`, byte-identical to NXP generate.py for the same values."""
    return seal(encode_payload(fd), aes_key, hw_params)


def replace_record(image: bytes, tag: int, value: bytes) -> bytes:
    """A plain image with the first record `tag` replaced by `value`, resized and rehashed.

    This is what K32W1/RW61x firmware does when it swaps the plain DAC key for a secure-subsystem blob
    (`ReplaceWithBlob`: shift later data, fix the length, recompute the hash; spec §3.4). hw_params images
    are re-wrapped with a fresh CRC. InputError when the image is invalid or has no such record.
    """
    view = FactoryDataImage(image)
    rec = next((r for r in view.records if r.tag == tag), None)
    if rec is None:
        raise InputError(f"tag {tag}: not present in the image; nothing to replace")
    if len(value) > MAX_RECORD_LEN:
        raise InputError(f"tag {tag}: {len(value)} bytes is not allowed; at most {MAX_RECORD_LEN}")
    p = view.payload
    start, end = rec.offset, rec.offset + RECORD_HEADER_LEN + len(rec.value)
    return seal(p[:start] + RECORD_HEADER.pack(tag, len(value)) + value + p[end:], hw_params=view.hw_params)


# --------------------------------------------------------------------------------------------- decoding


def decode_value(spec: TagSpec, raw: bytes) -> object:
    """The semantic value of a stored record; ValueError with the reason when the bytes cannot be it."""
    kind = spec.kind
    if kind is Kind.BYTES:
        return raw
    if kind is Kind.STR:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if kind is Kind.B64:
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("not base64 text") from None
    width = spec.width
    if len(raw) != width:
        raise ValueError(f"{len(raw)} bytes stored, expected {width} ({kind.value})")
    return int.from_bytes(raw, "little")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an image; `code` is stable (tests, JSON), `message` explains it to a person."""

    code: str
    message: str
    severity: str = "error"  # "error" makes the image invalid; "warning" does not

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "severity": self.severity, "message": self.message}


@dataclass(frozen=True)
class Record:
    """One TLV record as found by the scan: `offset` is from the start of the payload."""

    tag: int
    offset: int
    value: bytes

    @property
    def spec(self) -> TagSpec | None:
        return BY_TAG.get(self.tag)


# Problems that make the firmware's Init()/Validate() fail (the firmware view raises on these).
FATAL_CODES = frozenset(
    {
        "too_short",
        "bad_magic",
        "size_beyond_file",
        "hash_mismatch",
        "wrong_key",
        "not_encrypted",
        "size_not_block_multiple",
        "hw_params_missing",
        "hw_params_length",
        "hw_params_too_big",
        "hw_params_crc",
    }
)


@dataclass
class Parsed:
    """Everything `parse` learned about an image; `problems` explain each fault found."""

    size_of_file: int
    layout: str = "plain"  # "plain" | "encrypted" | "hw_params"
    magic: int | None = None
    size: int | None = None
    stored_hash: bytes | None = None
    computed_hash: bytes | None = None
    hw_params_length: int | None = None
    hw_params_crc: tuple[int, int] | None = None  # (stored, computed)
    aes: str | None = None  # "AES-128" / "AES-256" when decrypted
    payload: bytes = b""  # decrypted when a key was given
    records: list[Record] = field(default_factory=list)
    data: FactoryData = field(default_factory=FactoryData)
    value_errors: dict[int, str] = field(default_factory=dict)  # tag -> why its first record is unusable
    problems: list[Problem] = field(default_factory=list)

    @property
    def hash_ok(self) -> bool:
        return self.stored_hash is not None and self.stored_hash == self.computed_hash

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    def add(self, code: str, message: str, severity: str = "error") -> None:
        self.problems.append(Problem(code, message, severity))

    def first_record(self, tag: int) -> Record | None:
        return next((r for r in self.records if r.tag == tag), None)


def _hex(b: bytes) -> str:
    return b.hex(" ")


def parse(blob: bytes, aes_key: bytes | None = None, hw_params: bool | None = None) -> Parsed:
    """Decode an image like the firmware reads it and explain every problem; never raises for bad bytes.

    `hw_params`: True expects the wrapper, False expects a bare image, None detects it. `aes_key` decrypts
    the payload (ECB) before the hash check, like the RT/RW firmware. Raises InputError only for a bad
    key length, which is a mistake in the arguments, not in the image.
    """
    blob = bytes(blob)
    if aes_key is not None:
        check_aes_key(aes_key)
    result = Parsed(size_of_file=len(blob))
    image = _unwrap_hw_params(blob, hw_params, result)
    if image is None:
        return result
    if len(image) < HEADER_LEN:
        result.add(
            "too_short",
            f"{len(image)} bytes is too short for the 12-byte header "
            "(magic 5E BA 47 CE, LE32 size, 4-byte SHA-256 prefix)",
        )
        return result
    result.magic, result.size, result.stored_hash = HEADER.unpack_from(image)
    if result.magic != MAGIC:
        hint = ""
        if image.startswith(HW_PARAMS_ID[:14]):
            hint = "; it starts with 'APP_FACT_DATA:', a hw_params wrapper: pass --hw_params"
        elif image[:4] == b"\xff\xff\xff\xff":
            hint = "; the region looks erased (0xFF): nothing was written"
        result.add(
            "bad_magic",
            f"bad magic {_hex(image[:4])} at offset 0; NXP factory data starts with "
            f"5e ba 47 ce (0xCE47BA5E little-endian){hint}",
        )
        return result
    size = result.size
    available = len(image) - HEADER_LEN
    body = image[HEADER_LEN : HEADER_LEN + size]
    if size > available:
        result.add(
            "size_beyond_file",
            f"header size {size} runs past the end of the data: only {available} "
            f"payload bytes follow the header (truncated image, or a corrupt size field)",
        )
    elif size < available:
        extra = image[HEADER_LEN + size :]
        if extra.count(0xFF) == len(extra) or not any(extra):
            what = "erased 0xFF" if extra[0] == 0xFF else "zero"
            note = "the firmware ignores them"
        else:
            what = "data"
            note = (
                "the firmware ignores them, but RAM-buffer firmware scans on until tag 0, so stale data "
                "there can be misread: erase the region before writing"
            )
        result.add(
            "trailing_bytes", f"{len(extra)} bytes ({what}) follow the {size}-byte payload; {note}", "warning"
        )
    payload = body
    if aes_key is not None:
        result.layout = "encrypted" if result.layout == "plain" else result.layout
        result.aes = AES_KEY_NAMES[len(aes_key)]
        if size % AES_BLOCK:
            result.add(
                "size_not_block_multiple",
                f"header size {size} is not a multiple of 16: an encrypted "
                "payload is always whole AES blocks (the firmware decrypts size/16 blocks)",
            )
        whole = len(body) - len(body) % AES_BLOCK
        decryptor = _ecb(aes_key).decryptor()
        payload = decryptor.update(body[:whole]) + decryptor.finalize() + body[whole:]
    result.payload = payload
    if size <= available:
        result.computed_hash = hashlib.sha256(payload).digest()[:HASH_LEN]
        if not result.hash_ok:
            stored, computed = _hex(result.stored_hash), _hex(result.computed_hash)
            if aes_key is None:
                hint = (
                    " (the size is a multiple of 16: if the image is encrypted, pass --aes128_key or "
                    "--aes256_key)"
                    if size and size % AES_BLOCK == 0 and not _looks_like_records(body)
                    else ""
                )
                result.add(
                    "hash_mismatch",
                    f"hash mismatch: header has {stored}, SHA-256 of the {size}-byte "
                    f"payload starts {computed}; the data was changed after it was generated{hint}",
                )
            elif hashlib.sha256(body).digest()[:HASH_LEN] == result.stored_hash:
                result.add(
                    "not_encrypted",
                    "the payload is not encrypted (its plain SHA-256 matches the header); drop the AES key",
                )
                return result
            else:
                result.add(
                    "wrong_key",
                    f"wrong key: after {result.aes}-ECB decryption the payload's SHA-256 "
                    f"starts {computed}, the header has {stored} (wrong key, or corrupted data)",
                )
                return result
    _scan(payload, result, encrypted=aes_key is not None)
    return result


def _looks_like_records(body: bytes) -> bool:
    """A cheap guess whether `body` is plain TLV: the first record has a known tag and fits."""
    if len(body) < RECORD_HEADER_LEN:
        return False
    tag, length = RECORD_HEADER.unpack_from(body)
    return tag in BY_TAG and length <= len(body) - RECORD_HEADER_LEN


def _unwrap_hw_params(blob: bytes, hw_params: bool | None, result: Parsed) -> bytes | None:
    has_id = blob.startswith(HW_PARAMS_ID)
    if hw_params is None:
        hw_params = has_id
    if not hw_params:
        return blob
    if not has_id:
        hint = " (it is a bare image: drop --hw_params)" if blob.startswith(MAGIC_BYTES) else ""
        result.add(
            "hw_params_missing",
            f"no hw_params wrapper: the file starts with {_hex(blob[:16])!r}, "
            f"expected the identification word 'APP_FACT_DATA:  '{hint}",
        )
        return None
    result.layout = "hw_params"
    if len(blob) < HW_PARAMS_PREFIX_LEN:
        result.add("hw_params_length", f"{len(blob)} bytes is too short for the 20-byte hw_params prefix")
        return None
    length = HW_PARAMS_PREFIX.unpack_from(blob)[1]
    result.hw_params_length = length
    if length == 0:
        result.add("hw_params_length", "hw_params length is 0; the SDK treats the section as empty")
        return None
    total = HW_PARAMS_PREFIX_LEN + length + HW_PARAMS_CRC_LEN
    if total > HW_PARAMS_MAX_LEN:
        result.add(
            "hw_params_too_big",
            f"hw_params section is {total} bytes (20 + {length} + 2 CRC); the SDK "
            f"accepts at most {HW_PARAMS_MAX_LEN} (APP_FACTORY_DATA_MAX_LEN)",
        )
    if total > len(blob):
        result.add(
            "hw_params_length",
            f"hw_params length {length} runs past the end of the file: the section "
            f"needs {total} bytes with its CRC, the file has {len(blob)}",
        )
        return blob[HW_PARAMS_PREFIX_LEN:]
    inner = blob[HW_PARAMS_PREFIX_LEN : HW_PARAMS_PREFIX_LEN + length]
    stored = int.from_bytes(blob[total - HW_PARAMS_CRC_LEN : total], "little")
    computed = crc16_xmodem(inner)
    result.hw_params_crc = (stored, computed)
    if stored != computed:
        result.add(
            "hw_params_crc",
            f"hw_params CRC-16/XMODEM mismatch: stored {stored:#06x}, computed "
            f"{computed:#06x} over the {length}-byte section",
        )
    if len(blob) > total:
        result.add(
            "trailing_bytes",
            f"{len(blob) - total} bytes follow the hw_params CRC; the SDK ignores them",
            "warning",
        )
    return inner


def _scan(payload: bytes, result: Parsed, *, encrypted: bool) -> None:
    """Walk the records: first match wins, tag 0 stops, a record must fit inside the payload."""
    pos, end = 0, len(payload)
    seen: dict[int, Record] = {}
    while pos < end:
        tag = payload[pos]
        if tag == 0:
            rest = payload[pos:]
            if encrypted:
                if any(rest):
                    result.add(
                        "tag_zero",
                        f"tag 0 at payload offset {pos} ends the scan but the {len(rest)} "
                        "padding bytes after it are not all zero",
                        "warning",
                    )
                elif len(rest) > AES_BLOCK:
                    result.add(
                        "padding", f"{len(rest)} zero bytes of padding; generate.py adds 1..16", "warning"
                    )
            else:
                result.add(
                    "tag_zero",
                    f"tag 0 at payload offset {pos} stops the firmware's scan: the "
                    f"{len(rest)} bytes after it are never read",
                    "warning",
                )
            break
        if pos + RECORD_HEADER_LEN > end:
            result.add(
                "truncated_record",
                f"truncated record at payload offset {pos}: tag {tag} but only "
                f"{end - pos} of the 3 record-header bytes remain",
            )
            break
        length = RECORD_HEADER.unpack_from(payload, pos)[1]
        value_start = pos + RECORD_HEADER_LEN
        if value_start + length > end:
            result.add(
                "truncated_record",
                f"truncated record at payload offset {pos}: tag {tag} declares "
                f"{length} bytes but only {end - value_start} remain in the payload",
            )
            break
        rec = Record(tag, pos, payload[value_start : value_start + length])
        result.records.append(rec)
        pos = value_start + length
        if tag in seen:
            if sum(r.tag == tag for r in result.records) == 2:
                result.add(
                    "duplicate_tag",
                    f"tag {tag} appears more than once; the firmware uses the first, "
                    f"at payload offset {seen[tag].offset}",
                    "warning",
                )
            continue
        seen[tag] = rec
        spec = BY_TAG.get(tag)
        if spec is None:
            what = FIRMWARE_TAGS.get(tag)
            if what is None:
                result.add(
                    "unknown_tag",
                    f"unknown tag {tag} ({length} bytes) at payload offset {rec.offset}; "
                    "the firmware ignores it",
                    "warning",
                )
            continue
        try:
            setattr(result.data, spec.name, decode_value(spec, rec.value))
        except ValueError as exc:
            result.value_errors[tag] = str(exc)
            result.add("bad_value", f"{spec.cli} (tag {tag}, {spec.label}): {exc}")


class FactoryDataImage:
    """An image as the firmware sees it after `FactoryDataProvider::Init`: validated, decrypted, searchable.

    Raises FactoryDataError (an InputError carrying the problem code) for anything that makes the
    firmware's Init fail: bad magic, a size past the data, a hash mismatch, a wrong key, a bad hw_params
    section. Value-level faults do not fail Init; they show in `parsed.problems` and in the getters.
    """

    def __init__(self, blob: bytes, aes_key: bytes | None = None, hw_params: bool | None = None) -> None:
        self.parsed = parse(blob, aes_key, hw_params)
        fatal = next((p for p in self.parsed.problems if p.code in FATAL_CODES), None)
        if fatal is not None:
            raise FactoryDataError(fatal.code, fatal.message)
        self.hw_params = self.parsed.layout == "hw_params"
        self.payload = self.parsed.payload
        self.records = self.parsed.records
        self.data = self.parsed.data

    def find(self, tag: int) -> bytes | None:
        """The value of the first record `tag` (firmware `SearchForId`), or None when the scan misses it."""
        for rec in self.records:
            if rec.tag == tag:
                return rec.value
        return None


class FactoryDataError(InputError):
    """A factory-data image the firmware would reject; `code` is the `Problem` code (e.g. hash_mismatch)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def find(blob: bytes, tag: int, aes_key: bytes | None = None, hw_params: bool | None = None) -> bytes | None:
    """Firmware-style lookup of one tag in a whole image (validated first; FactoryDataError if invalid)."""
    return FactoryDataImage(blob, aes_key, hw_params).find(tag)


def decode(blob: bytes, aes_key: bytes | None = None, hw_params: bool | None = None) -> FactoryData:
    """The FactoryData of a valid image; FactoryDataError when the firmware would reject the image."""
    return FactoryDataImage(blob, aes_key, hw_params).data
