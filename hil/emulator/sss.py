"""The emulated secure subsystem (K32W1 SSS / EdgeLock, RW61x ELS): a device-unique key that wraps DAC keys.

What silicon does (nxp-factory-data.md §3.4): the firmware hands the plain DAC private key to the secure
subsystem once, gets back an opaque *blob* that only this chip can import again, stores the blob in factory
data instead of the key, and from then on signs by importing the blob into the subsystem. The key never
leaves the subsystem in clear, and a blob copied to another chip is useless there.

The emulation keeps those properties with a real key-wrap construction instead of a lookalike:

* a 32-byte device-unique key per emulated board, created at first use in the board's state dir next to
  its flash files (``sss-device-key.bin``, mode 0600), so it survives restarts exactly as long as the
  board's flash does;
* blob = metadata ‖ AES-256-KW(KEK, private scalar) (RFC 3394 via `cryptography`), with
  KEK = HKDF-SHA256(device key, info = label ‖ metadata): the wrap's integrity check fails for a blob made
  by another board (other device key) or with altered metadata, and the sizes are NXP's:
    - K32W1/MCXW71 ELKE blob: 56 bytes = 32 (key) + 24 (16 metadata + 8 wrap integrity block);
    - RW61x ELS blob:         48 bytes = 32 (key) + 8 metadata + 8 wrap overhead (ELSFactoryData.h).
* nothing here returns the private key: `export_blob` takes it in, `sign` uses it and forgets it.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from hil.errors import FirmwareError
from hil.factory_data.tags import DAC_KEY_PLAIN_LEN, SSS_BLOB_LEN
from hil.fileio import atomic_write

DEVICE_KEY_FILE = "sss-device-key.bin"
DEVICE_KEY_LEN = 32
_WRAPPED_LEN = DAC_KEY_PLAIN_LEN + 8  # RFC 3394 adds one 8-byte integrity block
_KEK_LABEL = b"hil-emulated-sss kek v1|"
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

KEY_TYPE_EC_NIST_P256 = 0x01
USAGE_ASYM_SIGN = 0x00000001


class SssError(FirmwareError):
    """The secure subsystem refused an operation (bad key, foreign or corrupt blob)."""


@dataclass(frozen=True)
class BlobFormat:
    """One family's DAC-key blob: total length and the metadata that precedes the wrapped key."""

    name: str
    length: int
    magic: bytes
    subsystem: str  # how the firmware names the subsystem in its log ("SSS", "ELS")

    @property
    def metadata_len(self) -> int:
        return self.length - _WRAPPED_LEN

    def metadata(self) -> bytes:
        """magic ‖ key type ‖ key bits (LE16) ‖ usage (LE32) ‖ zero fill to `metadata_len`."""
        meta = self.magic + struct.pack("<BHI", KEY_TYPE_EC_NIST_P256, 256, USAGE_ASYM_SIGN)
        return meta[: self.metadata_len].ljust(self.metadata_len, b"\x00")


ELKE = BlobFormat("K32W1 SSS ELKE blob", SSS_BLOB_LEN, b"ELKE\x01", "SSS")  # 16 metadata + 40 wrapped
ELS = BlobFormat("RW61x ELS blob", 48, b"E", "ELS")  # 8 metadata + 40 wrapped (RFC 3394, S50 storage)

#: Families whose firmware has a secure subsystem for the DAC key, and the blob it makes (spec §3.4).
FORMATS: dict[str, BlobFormat] = {"k32w1": ELKE, "rw61x": ELS}


def blob_format(family: str) -> BlobFormat | None:
    """The DAC-key blob format of a family's secure subsystem, or None (no SSS: plain keys only)."""
    return FORMATS.get(family)


def _scalar_key(scalar: bytes) -> ec.EllipticCurvePrivateKey:
    value = int.from_bytes(scalar, "big")
    if len(scalar) != DAC_KEY_PLAIN_LEN or not 0 < value < _P256_ORDER:
        raise SssError("SSS: key import failed: not a P-256 private key (32-byte scalar in 1..n-1 expected)")
    return ec.derive_private_key(value, ec.SECP256R1())


class SecureSubsystem:
    """One board's secure subsystem. `directory` is the board's state dir (the device key lives there)."""

    def __init__(self, directory: Path | str, fmt: BlobFormat) -> None:
        self.directory = Path(directory)
        self.format = fmt

    def __repr__(self) -> str:  # never show key material
        return f"SecureSubsystem({self.format.name}, {self.directory})"

    # -- the device key: created once, never exported ----------------------------------------------
    def _device_key(self) -> bytes:
        path = self.directory / DEVICE_KEY_FILE
        try:
            key = path.read_bytes()
        except FileNotFoundError:
            key = os.urandom(DEVICE_KEY_LEN)
            atomic_write(path, key, secret=True)
            return key
        if len(key) != DEVICE_KEY_LEN:
            raise SssError(f"SSS: device key store {path} is damaged ({len(key)} bytes)")
        return key

    def _kek(self, metadata: bytes) -> bytes:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEK_LABEL + metadata)
        return hkdf.derive(self._device_key())

    # -- operations ----------------------------------------------------------------------------------
    def export_blob(self, private_scalar: bytes) -> bytes:
        """Import a plain DAC key (32-byte big-endian scalar) and export it as this device's blob."""
        _scalar_key(bytes(private_scalar))
        meta = self.format.metadata()
        blob = meta + aes_key_wrap(self._kek(meta), bytes(private_scalar))
        assert len(blob) == self.format.length
        return blob

    def _import(self, blob: bytes) -> ec.EllipticCurvePrivateKey:
        fmt = self.format
        if len(blob) != fmt.length:
            raise SssError(f"SSS: blob import failed: {len(blob)} bytes, an {fmt.name} is {fmt.length} bytes")
        meta, wrapped = blob[: fmt.metadata_len], blob[fmt.metadata_len :]
        if not meta.startswith(fmt.magic):
            raise SssError(f"SSS: blob import failed: not an {fmt.name} (metadata {meta.hex()})")
        try:
            scalar = aes_key_unwrap(self._kek(meta), wrapped)
        except InvalidUnwrap:
            raise SssError(
                "SSS: blob import failed: the blob was not made by this device's secure subsystem "
                "(key unwrap integrity check failed: blob from another board, or corrupted)"
            ) from None
        return _scalar_key(scalar)

    def check_blob(self, blob: bytes) -> None:
        """Import the blob and drop it: raises SssError exactly when signing with it would."""
        self._import(blob)

    def public_key(self, blob: bytes) -> ec.EllipticCurvePublicKey:
        return self._import(blob).public_key()

    def sign(self, blob: bytes, message: bytes) -> bytes:
        """ECDSA-P256-SHA256 over `message` with the key inside `blob`; a DER Ecdsa-Sig-Value."""
        return self._import(blob).sign(bytes(message), ec.ECDSA(hashes.SHA256()))
