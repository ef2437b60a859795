"""The emulated secure subsystem: NXP blob sizes, a real key wrap, device-unique keys, signing from a blob."""

from __future__ import annotations

import os
import stat

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap

from hil.emulator import sss
from hil.emulator.sss import ELKE, ELS, SecureSubsystem, SssError, blob_format


def scalar(seed: int) -> bytes:
    key = ec.derive_private_key(seed * 7919 + 12345, ec.SECP256R1())
    return key.private_numbers().private_value.to_bytes(32, "big")


@pytest.mark.parametrize(("fmt", "length", "meta"), [(ELKE, 56, 16), (ELS, 48, 8)])
def test_blob_sizes_are_nxps(tmp_path, fmt, length, meta):
    """K32W1 ELKE: 32 + 24 metadata = 56; RW61x ELS: 32 + 8 metadata + 8 wrap overhead = 48 (spec §3.4)."""
    blob = SecureSubsystem(tmp_path, fmt).export_blob(scalar(1))
    assert len(blob) == fmt.length == length and fmt.metadata_len == meta
    assert scalar(1) not in blob  # the key does not appear in clear


def test_family_table():
    assert blob_format("k32w1") is ELKE and blob_format("rw61x") is ELS
    assert blob_format("k32w0x1") is None and blob_format("rt1060") is None


def test_signature_from_blob_verifies_with_the_keys_public_half(tmp_path):
    unit = SecureSubsystem(tmp_path, ELKE)
    key = scalar(2)
    blob = unit.export_blob(key)
    public = ec.derive_private_key(int.from_bytes(key, "big"), ec.SECP256R1()).public_key()
    signature = unit.sign(blob, b"attestation challenge")
    public.verify(signature, b"attestation challenge", ec.ECDSA(hashes.SHA256()))
    assert unit.public_key(blob).public_numbers() == public.public_numbers()


def test_device_key_is_unique_per_board_persisted_and_private(tmp_path):
    a, b = SecureSubsystem(tmp_path / "a", ELKE), SecureSubsystem(tmp_path / "b", ELKE)
    blob = a.export_blob(scalar(3))
    path = tmp_path / "a" / sss.DEVICE_KEY_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and len(path.read_bytes()) == 32
    # the same board after a restart (a new object over the same state dir) still imports its blob
    SecureSubsystem(tmp_path / "a", ELKE).check_blob(blob)
    with pytest.raises(SssError, match="not made by this device's secure subsystem"):
        b.check_blob(blob)
    with pytest.raises(SssError, match="not made by this device's secure subsystem"):
        b.sign(blob, b"x")
    assert a.export_blob(scalar(3)) == blob  # deterministic for one device (AES-KW, fixed metadata)
    assert b.export_blob(scalar(3)) != blob


def test_the_wrap_is_rfc3394_under_a_key_derived_from_the_device_key(tmp_path):
    """Not a lookalike: the wrapped part unwraps with AES-KW under HKDF(device key, metadata)."""
    unit = SecureSubsystem(tmp_path, ELS)
    blob = unit.export_blob(scalar(4))
    meta, wrapped = blob[: ELS.metadata_len], blob[ELS.metadata_len :]
    assert aes_key_unwrap(unit._kek(meta), wrapped) == scalar(4)


@pytest.mark.parametrize("where", [0, 5, 20, 55])
def test_a_tampered_blob_is_refused(tmp_path, where):
    unit = SecureSubsystem(tmp_path, ELKE)
    blob = bytearray(unit.export_blob(scalar(5)))
    blob[where] ^= 0x01
    with pytest.raises(SssError, match="blob import failed"):
        unit.check_blob(bytes(blob))


def test_wrong_sizes_and_bad_keys_are_refused(tmp_path):
    unit = SecureSubsystem(tmp_path, ELKE)
    with pytest.raises(SssError, match="48 bytes, an K32W1 SSS ELKE blob is 56"):
        unit.check_blob(SecureSubsystem(tmp_path, ELS).export_blob(scalar(6)))
    with pytest.raises(SssError, match="not a P-256 private key"):
        unit.export_blob(b"\x00" * 32)
    with pytest.raises(SssError, match="not a P-256 private key"):
        unit.export_blob(b"\xff" * 32)  # above the group order
    with pytest.raises(SssError, match="not a P-256 private key"):
        unit.export_blob(scalar(6)[:31])
    device_key = (tmp_path / sss.DEVICE_KEY_FILE).read_bytes()
    assert device_key.hex() not in repr(unit) and str(device_key) not in repr(unit)
