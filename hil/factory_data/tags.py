"""The one tag table of NXP factory data: every fact about a tag lives in its `FactoryData` field.

Each field of `FactoryData` carries a `TagSpec` (tag number, firmware enum name, value kind, generate.py
flag, limits, help). `TAGS` is read off the dataclass, so the encoder, the decoder, the CLI flags, the
length limits and the messages cannot drift apart: adding a tag is adding one field.

Facts: specs/nxp-factory-data.md §1.3 (tag numbers, kinds, generator max lengths, enum lists) and §2.1
(generate.py flags and which of them are required).
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
from dataclasses import dataclass, field
from typing import Any


class Kind(enum.Enum):
    """How a value is stored in its record (spec §1.3 'Type')."""

    B64 = "base64 text"  # raw bytes stored as their ASCII base64 (Base64Argument re-encodes)
    U32 = "uint32 LE"
    U16 = "uint16 LE"
    ENUM8 = "uint8 enum index"
    STR = "UTF-8 text, no NUL"
    BYTES = "raw bytes"  # files: certificates, CD, key scalar or secure-subsystem blob


#: Stored width of the fixed-size kinds.
FIXED_WIDTH: dict[Kind, int] = {Kind.U32: 4, Kind.U16: 2, Kind.ENUM8: 1}

PRODUCT_FINISHES = ("Other", "Matte", "Satin", "Polished", "Rugged", "Fabric")
PRODUCT_COLORS = (
    "Black",
    "Navy",
    "Green",
    "Teal",
    "Maroon",
    "Purple",
    "Olive",
    "Gray",
    "Blue",
    "Lime",
    "Aqua",
    "Red",
    "Fuchsia",
    "Yellow",
    "White",
    "Nickel",
    "Chrome",
    "Brass",
    "Copper",
    "Silver",
    "Gold",
)


@dataclass(frozen=True)
class TagSpec:
    """Everything about one tag. `name` is the `FactoryData` field name (filled in from the dataclass)."""

    tag: int
    fw_id: str  # FactoryDataId enum name in the firmware
    kind: Kind
    label: str  # human name used in messages and the inspector
    flag: str | None = None  # generate.py long flag; None: not offered by `hil factory-data generate`
    short: str | None = None  # generate.py short flag
    required: bool = False  # generate.py requires it
    max_len: int | None = None  # generator/firmware maximum stored length in bytes (strings)
    choices: tuple[str, ...] | None = None  # ENUM8: names by index
    secret: bool = False  # redacted by the inspector unless asked
    help: str = ""
    name: str = ""

    @property
    def width(self) -> int | None:
        return FIXED_WIDTH.get(self.kind)

    @property
    def max_int(self) -> int | None:
        """Largest integer the stored width can hold (encoding limit, not a semantic rule)."""
        width = self.width
        return None if width is None else (1 << (8 * width)) - 1

    @property
    def cli(self) -> str:
        """How to name the field to a user: the generate.py flag when there is one."""
        return self.flag or self.name


def _tag(tag: int, fw_id: str, kind: Kind, label: str, **kw: Any) -> Any:
    """A `FactoryData` field (default None) carrying its `TagSpec`."""
    return field(default=None, metadata={"spec": TagSpec(tag, fw_id, kind, label, **kw)})


@dataclass(slots=True)
class FactoryData:
    """The decoded content of a factory-data image: one field per tag, None when the tag is absent.

    Values are the semantic ones, not the stored bytes: the verifier and salt are raw bytes (stored as
    base64 text), integers are ints, strings are str, finish/color are enum indexes, certificates and the CD
    are DER bytes, `dac_key` is the 32-byte big-endian scalar or a secure-subsystem blob.
    """

    # fmt: off  (a table: one field per tag)
    verifier: bytes | None = _tag(
        1,
        "kVerifierId",
        Kind.B64,
        "SPAKE2+ verifier",
        flag="--spake2p_verifier",
        help="[base64] SPAKE2+ verifier (97 bytes decoded); computed from -p/-s/-i when omitted",
    )
    salt: bytes | None = _tag(
        2,
        "kSaltId",
        Kind.B64,
        "SPAKE2+ salt",
        flag="--salt",
        short="-s",
        required=True,
        help="[base64] SPAKE2+ salt, 16..32 bytes decoded",
    )
    iterations: int | None = _tag(
        3,
        "kIcId",
        Kind.U32,
        "SPAKE2+ iteration count",
        flag="--it",
        short="-i",
        required=True,
        help="[int | hex] SPAKE2+ PBKDF2 iteration count, 1000..100000",
    )
    dac_key: bytes | None = _tag(
        4,
        "kDacPrivateKeyId",
        Kind.BYTES,
        "DAC private key",
        flag="--dac_key",
        required=True,
        secret=True,
        help="[path] DAC private key, DER or PEM (SEC1 or PKCS#8); with --dac_key_use_sss_blob a blob file",
    )
    dac_cert: bytes | None = _tag(
        5,
        "kDacCertificateId",
        Kind.BYTES,
        "DAC certificate",
        flag="--dac_cert",
        required=True,
        help="[path] DAC certificate, DER or PEM (stored as DER)",
    )
    pai_cert: bytes | None = _tag(
        6,
        "kPaiCertificateId",
        Kind.BYTES,
        "PAI certificate",
        flag="--pai_cert",
        required=True,
        help="[path] PAI certificate, DER or PEM (stored as DER)",
    )
    discriminator: int | None = _tag(
        7,
        "kDiscriminatorId",
        Kind.U32,
        "discriminator",
        flag="--discriminator",
        short="-d",
        required=True,
        help="[int | hex] 12-bit setup discriminator, 0..0xFFF",
    )
    passcode: int | None = _tag(
        8,
        "kSetupPasscodeId",
        Kind.U32,
        "setup passcode",
        flag="--passcode",
        short="-p",
        required=True,
        help="[int | hex] setup passcode, 1..99999998 except the trivial ones",
    )
    vid: int | None = _tag(
        9,
        "kVidId",
        Kind.U16,
        "vendor ID",
        flag="--vid",
        required=True,
        help="[int | hex] vendor ID; must equal the VID in the DAC, PAI and CD",
    )
    pid: int | None = _tag(
        10,
        "kPidId",
        Kind.U16,
        "product ID",
        flag="--pid",
        required=True,
        help="[int | hex] product ID; must equal the DAC's PID and be listed in the CD",
    )
    cert_declaration: bytes | None = _tag(
        11,
        "kCertDeclarationId",
        Kind.BYTES,
        "Certification Declaration",
        flag="--cert_declaration",
        required=True,
        help="[path] Certification Declaration (CMS, DER or PEM)",
    )
    vendor_name: str | None = _tag(
        12,
        "kVendorNameId",
        Kind.STR,
        "vendor name",
        flag="--vendor_name",
        required=True,
        max_len=32,
        help="[str] vendor name, at most 32 UTF-8 bytes",
    )
    product_name: str | None = _tag(
        13,
        "kProductNameId",
        Kind.STR,
        "product name",
        flag="--product_name",
        required=True,
        max_len=32,
        help="[str] product name, at most 32 UTF-8 bytes",
    )
    serial_num: str | None = _tag(
        14,
        "kSerialNumberId",
        Kind.STR,
        "serial number",
        flag="--serial_num",
        max_len=32,
        help="[str] serial number, at most 32 UTF-8 bytes",
    )
    date: str | None = _tag(
        15,
        "kManufacturingDateId",
        Kind.STR,
        "manufacturing date",
        flag="--date",
        max_len=16,
        help="[str] manufacturing date, exactly YYYY-MM-DD",
    )
    hw_version: int | None = _tag(
        16,
        "kHardwareVersionId",
        Kind.U16,
        "hardware version",
        flag="--hw_version",
        required=True,
        help="[int | hex] hardware version number, 0..0xFFFF",
    )
    hw_version_str: str | None = _tag(
        17,
        "kHardwareVersionStrId",
        Kind.STR,
        "hardware version string",
        flag="--hw_version_str",
        required=True,
        max_len=64,
        help="[str] hardware version string, at most 64 UTF-8 bytes",
    )
    unique_id: str | None = _tag(
        18,
        "kUniqueId",
        Kind.STR,
        "rotating device ID unique ID",
        flag="--unique_id",
        max_len=32,
        help="[str] rotating-device-ID unique ID, stored as ASCII text (not hex-decoded), at most 32 bytes",
    )
    part_number: str | None = _tag(
        19,
        "kPartNumber",
        Kind.STR,
        "part number",
        flag="--part_number",
        max_len=32,
        help="[str] part number, at most 32 UTF-8 bytes",
    )
    product_url: str | None = _tag(
        20,
        "kProductURL",
        Kind.STR,
        "product URL",
        flag="--product_url",
        max_len=256,
        help="[str] product URL, at most 256 UTF-8 bytes",
    )
    product_label: str | None = _tag(
        21,
        "kProductLabel",
        Kind.STR,
        "product label",
        flag="--product_label",
        max_len=64,
        help="[str] product label, at most 64 UTF-8 bytes",
    )
    product_finish: int | None = _tag(
        22,
        "kProductFinish",
        Kind.ENUM8,
        "product finish",
        flag="--product_finish",
        choices=PRODUCT_FINISHES,
        help="product finish: " + ", ".join(PRODUCT_FINISHES),
    )
    product_primary_color: int | None = _tag(
        23,
        "kProductPrimaryColor",
        Kind.ENUM8,
        "product primary color",
        flag="--product_primary_color",
        choices=PRODUCT_COLORS,
        help="product primary color: " + ", ".join(PRODUCT_COLORS),
    )
    # EL2GO (RW61x) tags: known to the codec and the inspector; the seed guide's generator has no flags.
    el2go_blob: bytes | None = _tag(24, "kEl2GoBlob", Kind.BYTES, "EL2GO blob")
    el2go_dac_key_id: int | None = _tag(25, "kEl2GoDacKeyId", Kind.U32, "EL2GO DAC key ID")
    el2go_dac_cert_id: int | None = _tag(26, "kEl2GoDacCertId", Kind.U32, "EL2GO DAC certificate ID")
    # fmt: on

    def specs_present(self) -> list[tuple[TagSpec, object]]:
        """(spec, value) for every tag that has a value, in tag order."""
        return [(spec, v) for spec in TAGS if (v := getattr(self, spec.name)) is not None]


TAGS: tuple[TagSpec, ...] = tuple(
    dataclasses.replace(f.metadata["spec"], name=f.name) for f in dataclasses.fields(FactoryData)
)
BY_TAG: dict[int, TagSpec] = {spec.tag: spec for spec in TAGS}
BY_NAME: dict[str, TagSpec] = {spec.name: spec for spec in TAGS}
REQUIRED_TAGS: tuple[TagSpec, ...] = tuple(spec for spec in TAGS if spec.required)
#: What generate.py always writes: its required flags plus the verifier (spake2p computes it when not given).
ALWAYS_WRITTEN: tuple[TagSpec, ...] = tuple(spec for spec in TAGS if spec.required or spec.tag == 1)

#: Records the firmware itself writes (never the generator); the inspector names them instead of
#: calling them unknown. 0xFE: the RW61x EncImpl's ELS-wrapped AES key, at the end of the region (§1.3).
FIRMWARE_TAGS: dict[int, str] = {0xFE: "ELS-wrapped AES key blob (written by RW61x firmware)"}

#: Stored length of a DAC key record: the plain scalar, or a secure-subsystem blob (§3.4).
DAC_KEY_PLAIN_LEN = 32
SSS_BLOB_LEN = 56  # K32W1/MCXW71: 32-byte key + 24 bytes of SSS blob metadata
DAC_KEY_BLOB_LENS: dict[int, str] = {SSS_BLOB_LEN: "K32W1/MCXW71 SSS (ELKE) blob", 48: "RW61x ELS blob"}

if any(a.tag >= b.tag for a, b in itertools.pairwise(TAGS)):
    raise AssertionError("FactoryData fields must be in ascending tag order (the encoder relies on it)")
