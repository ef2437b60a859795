"""The emulated firmware's FactoryDataProvider: NXP's Init/Validate, SearchForId and getters (spec §3).

It reads the bytes the firmware reads (the factory-data region of the board's own flash, handed in by
`hil.emulator.firmware`) and fails the way NXP's providers fail, with their error codes, so a boot log
from an emulated board reads like one from silicon:

* Init: magic, then SHA-256 prefix over `header.size` payload bytes; AES-ECB decryption first where the
  family's firmware decrypts (key from the board profile: "mandatory" on RT1060/RT1170, "optional" on
  RW61x: plain hash first, then decrypt); the K32W1/MCXW71 HW-parameters section (`APP_FACT_DATA:` +
  length + CRC-16) when the app was built for it. The codec's strict firmware view
  (`hil.factory_data.FactoryDataImage`) does the byte work; this module maps its verdicts to the
  provider's errors (CHIP_FACTORY_DATA_* on the flash-mapped K32W providers, CHIP_ERROR_NOT_FOUND on the
  RAM-buffer RT/RW providers).
* SearchForId: first match wins. The flash-mapped providers return CHIP_ERROR_BUFFER_TOO_SMALL when a
  record is longer than the caller's buffer; the RAM-buffer ones truncate silently.
* Getters: the buffers NXP passes (ConfigurationManager limits, base64 buffers for salt and verifier,
  600-byte certificates), the manufacturing-date format check and its log line, NOT_IMPLEMENTED for a
  missing finish/colour, NOT_FOUND for any other missing tag.

Error codes: CHIP_FACTORY_DATA_ERROR(e) = ChipError(kLastRange=kPlatform=5, (5 << 2) | e), i.e.
0x05000014 | e; core errors are CHIP_CORE_ERROR(n) = n. They are rendered as ``NAME (0xXXXXXXXX)``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from hil.errors import FirmwareError
from hil.factory_data import codec
from hil.factory_data.codec import FactoryDataError, FactoryDataImage
from hil.factory_data.tags import BY_TAG


@dataclass(frozen=True)
class ChipError:
    name: str
    code: int

    def __str__(self) -> str:
        return f"{self.name} (0x{self.code:08X})"


def _factory_data_error(e: int) -> int:
    platform = 5  # ChipError::Range::kLastRange == kPlatform
    return (platform << 24) | (platform << 2) | e


CHIP_ERROR_BUFFER_TOO_SMALL = ChipError("CHIP_ERROR_BUFFER_TOO_SMALL", 0x19)
CHIP_ERROR_NOT_IMPLEMENTED = ChipError("CHIP_ERROR_NOT_IMPLEMENTED", 0x2D)
CHIP_ERROR_INVALID_ARGUMENT = ChipError("CHIP_ERROR_INVALID_ARGUMENT", 0x2F)
CHIP_ERROR_INTERNAL = ChipError("CHIP_ERROR_INTERNAL", 0xAC)
CHIP_ERROR_NOT_FOUND = ChipError("CHIP_ERROR_NOT_FOUND", 0xD8)
CHIP_FACTORY_DATA_SHA_CHECK = ChipError("CHIP_FACTORY_DATA_SHA_CHECK", _factory_data_error(1))
CHIP_FACTORY_DATA_HASH_ID = ChipError("CHIP_FACTORY_DATA_HASH_ID", _factory_data_error(3))
CHIP_FACTORY_DATA_NULL = ChipError("CHIP_FACTORY_DATA_NULL", _factory_data_error(5))


class ProviderError(FirmwareError):
    """A provider call failed: `error` is the CHIP error it returns, `detail` says why in plain words."""

    def __init__(self, error: ChipError, detail: str = "") -> None:
        super().__init__(f"{error}" + (f": {detail}" if detail else ""))
        self.error = error
        self.detail = detail


@dataclass(frozen=True)
class ProviderTraits:
    """How one family's NXP FactoryDataProvider implementation behaves (spec §3.1-§3.4)."""

    impl: str  # the NXP class, for the boot log
    scan: str  # "flash": flash-mapped, errors on a short buffer; "ram": RAM buffer, truncates
    decrypt: str  # "none" | "optional" (plain hash first, then AES-ECB) | "mandatory"
    required_tags: tuple[int, ...] = ()  # tags Init insists on (RT1060 / RW61x EncImpl: 1..7)


PROVIDERS: dict[str, ProviderTraits] = {
    "k32w0x1": ProviderTraits("K32W0 FactoryDataProviderImpl", "flash", "none"),
    "k32w1": ProviderTraits("K32W1 FactoryDataProviderImpl", "flash", "none"),
    "rw61x": ProviderTraits("RW61x FactoryDataProviderImpl", "ram", "optional"),
    "rt1060": ProviderTraits("RT1060 FactoryDataProviderImpl (DCP)", "ram", "mandatory", tuple(range(1, 8))),
    "rt1170": ProviderTraits("RT1170 FactoryDataProviderFwkImpl", "ram", "mandatory"),
}

# Caller buffers in NXP's getters (ConfigurationManager::kMax*Length, Spake2p base64 buffers, certs).
VERIFIER_B64_BUF = 133  # BASE64_ENCODED_LEN(97) + 1
SALT_B64_BUF = 45  # BASE64_ENCODED_LEN(32) + 1
VERIFIER_MAX = 97  # kSpake2p_VerifierSerialized_Length
SALT_MAX = 32  # kSpake2p_Max_PBKDF_Salt_Length
CERT_BUF = 600  # kMaxDERCertLength
CD_BUF = 800  # kMaxCMSSignedCDMessage
STRING_BUFS = {12: 32, 13: 32, 14: 32, 17: 64, 19: 32, 20: 256, 21: 64}
DATE_BUF = 16  # kMaxManufacturingDateLength
UNIQUE_ID_BUF = 32
DATE_FORMAT_ERROR = "Manufacturing date is not formatted correctly: YYYY-MM-DD."

_FLASH_INIT_ERRORS = {
    "too_short": CHIP_FACTORY_DATA_HASH_ID,
    "bad_magic": CHIP_FACTORY_DATA_HASH_ID,
    "hw_params_missing": CHIP_FACTORY_DATA_NULL,
    "hw_params_length": CHIP_FACTORY_DATA_NULL,
    "hw_params_too_big": CHIP_FACTORY_DATA_NULL,
    "hw_params_crc": CHIP_FACTORY_DATA_NULL,
}


class FactoryDataProvider:
    """NXP's provider over the region bytes. Call `init()` first; getters raise ProviderError."""

    def __init__(
        self, region: bytes, traits: ProviderTraits, *, aes_key: bytes | None = None, hw_params: bool = False
    ) -> None:
        self.region = bytes(region)
        self.traits = traits
        self.aes_key = aes_key
        self.hw_params = hw_params
        self.image: FactoryDataImage | None = None

    # -- Init / Validate --------------------------------------------------------------------------------
    def init(self) -> FactoryDataImage:
        traits = self.traits
        if traits.decrypt == "mandatory" and self.aes_key is None:
            raise ProviderError(
                CHIP_ERROR_INVALID_ARGUMENT,
                "no AES key set: this firmware decrypts its factory data (boards.toml aes_key)",
            )
        keys: list[bytes | None] = [None]
        if traits.decrypt == "mandatory":
            keys = [self.aes_key]
        elif traits.decrypt == "optional" and self.aes_key is not None:
            keys = [None, self.aes_key]
        errors: list[tuple[bytes | None, FactoryDataError]] = []
        for key in keys:
            try:
                self.image = FactoryDataImage(self.region, key, hw_params=self.hw_params)
                break
            except FactoryDataError as exc:
                errors.append((key, exc))
        else:
            key, exc = errors[-1]
            if exc.code == "not_encrypted" and len(errors) > 1:
                key, exc = errors[0]
            raise self._init_error(exc, key)
        for tag in traits.required_tags:
            if self.image.find(tag) is None:
                raise ProviderError(
                    CHIP_ERROR_NOT_FOUND, f"required tag {tag} ({BY_TAG[tag].label}) is missing"
                )
        return self.image

    def _init_error(self, exc: FactoryDataError, key: bytes | None) -> ProviderError:
        if self.traits.scan == "flash":
            error = _FLASH_INIT_ERRORS.get(exc.code, CHIP_FACTORY_DATA_SHA_CHECK)
        else:
            error = CHIP_ERROR_NOT_FOUND
        detail = exc.message
        if exc.code == "hash_mismatch" and self._payload_ends_erased(key):
            detail += " (the payload ends in erased flash: a truncated or interrupted write)"
        return ProviderError(error, detail)

    def _payload_ends_erased(self, key: bytes | None) -> bool:
        parsed = codec.parse(self.region, key, self.hw_params)
        return len(parsed.payload) >= 16 and parsed.payload.endswith(b"\xff" * 16)

    # -- SearchForId -------------------------------------------------------------------------------------
    def search(self, tag: int, buf_len: int) -> bytes:
        if self.image is None:
            raise ProviderError(CHIP_ERROR_INTERNAL, "provider used before Init")
        value = self.image.find(tag)
        label = BY_TAG[tag].label if tag in BY_TAG else f"tag {tag}"
        if value is None:
            raise ProviderError(CHIP_ERROR_NOT_FOUND, f"tag {tag} ({label}) is not in the factory data")
        if len(value) > buf_len:
            if self.traits.scan == "flash":
                raise ProviderError(
                    CHIP_ERROR_BUFFER_TOO_SMALL,
                    f"tag {tag} ({label}) is {len(value)} bytes, buffer {buf_len}",
                )
            value = value[:buf_len]
        return value

    def _uint(self, tag: int, width: int) -> int:
        return int.from_bytes(self.search(tag, width).ljust(width, b"\x00"), "little")

    def _string(self, tag: int) -> str:
        return self.search(tag, STRING_BUFS[tag]).decode("utf-8", errors="replace")

    def _base64(self, tag: int, buf: int, limit: int) -> bytes:
        text = self.search(tag, buf)
        try:
            value = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ProviderError(CHIP_ERROR_INVALID_ARGUMENT, f"tag {tag} is not base64 text") from None
        if len(value) > limit:
            raise ProviderError(
                CHIP_ERROR_BUFFER_TOO_SMALL, f"tag {tag} decodes to {len(value)} bytes, max {limit}"
            )
        return value

    # -- CommissionableDataProvider ----------------------------------------------------------------------
    def setup_discriminator(self) -> int:
        return self._uint(7, 4) & 0xFFFF

    def spake2p_iteration_count(self) -> int:
        return self._uint(3, 4)

    def spake2p_salt(self) -> bytes:
        return self._base64(2, SALT_B64_BUF, SALT_MAX)

    def spake2p_verifier(self) -> bytes:
        return self._base64(1, VERIFIER_B64_BUF, VERIFIER_MAX)

    def setup_passcode(self) -> int:
        return self._uint(8, 4)

    # -- DeviceAttestationCredentialsProvider ------------------------------------------------------------
    def certification_declaration(self) -> bytes:
        return self.search(11, CD_BUF)

    def device_attestation_cert(self) -> bytes:
        return self.search(5, CERT_BUF)

    def product_attestation_intermediate_cert(self) -> bytes:
        return self.search(6, CERT_BUF)

    def dac_private_key_record(self, blob_len: int) -> bytes:
        """Tag 4 as stored: a 32-byte scalar or a secure-subsystem blob (the caller tells by its length)."""
        return self.search(4, max(32, blob_len))

    # -- DeviceInstanceInfoProvider ----------------------------------------------------------------------
    def vendor_name(self) -> str:
        return self._string(12)

    def product_name(self) -> str:
        return self._string(13)

    def serial_number(self) -> str:
        return self._string(14)

    def part_number(self) -> str:
        return self._string(19)

    def product_url(self) -> str:
        return self._string(20)

    def product_label(self) -> str:
        return self._string(21)

    def hardware_version_string(self) -> str:
        return self._string(17)

    def vendor_id(self) -> int:
        return self._uint(9, 2)

    def product_id(self) -> int:
        return self._uint(10, 2)

    def hardware_version(self) -> int:
        return self._uint(16, 2)

    def manufacturing_date(self) -> tuple[int, int, int]:
        raw = self.search(15, DATE_BUF)
        ok = (
            len(raw) == 10
            and raw[0:4].isdigit()
            and raw[5:7].isdigit()
            and raw[8:10].isdigit()
            and raw[4:5] == b"-"
            and raw[7:8] == b"-"
        )
        if not ok:
            raise ProviderError(CHIP_ERROR_INVALID_ARGUMENT, DATE_FORMAT_ERROR)
        return int(raw[0:4]), int(raw[5:7]), int(raw[8:10])

    def rotating_device_id_unique_id(self) -> bytes:
        return self.search(18, UNIQUE_ID_BUF)

    def product_finish(self) -> int:
        try:
            return self._uint(22, 1)
        except ProviderError:
            raise ProviderError(CHIP_ERROR_NOT_IMPLEMENTED, "no product finish in the factory data") from None

    def product_primary_color(self) -> int:
        try:
            return self._uint(23, 1)
        except ProviderError:
            raise ProviderError(CHIP_ERROR_NOT_IMPLEMENTED, "no primary color in the factory data") from None

    # -- the DAC-key rewrite (ReplaceWithBlob) -----------------------------------------------------------
    def replaced(self, tag: int, value: bytes) -> bytes:
        """The region image with the first record `tag` replaced by `value`: later records shift, the size
        and hash are recomputed, the hw_params wrapper and the encryption (same key) are kept."""
        image = self.image
        if image is None:
            raise ProviderError(CHIP_ERROR_INTERNAL, "provider used before Init")
        rec = next((r for r in image.records if r.tag == tag), None)
        if rec is None:
            raise ProviderError(CHIP_ERROR_NOT_FOUND, f"tag {tag} is not in the factory data")
        last = image.records[-1]
        records = image.payload[: last.offset + codec.RECORD_HEADER_LEN + len(last.value)]  # no AES padding
        start, end = rec.offset, rec.offset + codec.RECORD_HEADER_LEN + len(rec.value)
        payload = records[:start] + codec.RECORD_HEADER.pack(tag, len(value)) + value + records[end:]
        key = self.aes_key if image.parsed.aes else None
        return codec.seal(payload, key, hw_params=image.hw_params)
