"""Test helpers for the emulated firmware: credentials, factory-data images, apps written to a board.

Everything reaches a board through its wires: images through the board's programmer, verdicts through
its console (`hil.boot.reboot`). Credentials are generated per test session (keys never committed); the
CD is signed with the Matter test CD key (`hil.matter.test_cd_key`).
"""

from __future__ import annotations

import dataclasses
import functools

from cd_signing import CREDS
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hil import programmers
from hil.boards import BoardProfile
from hil.emulator import app_image
from hil.factory_data import FactoryData, codec
from hil.matter import certs, spake2p
from hil.matter.credential_set import CredentialSet, generate_set

VID, PID = 0x1037, 0xA220
PASSCODE, SALT, ITERATIONS = 14014, b"0123456789abcdef", 1000


@functools.cache
def credentials() -> CredentialSet:
    key = certs.load_private_key(CREDS / "Chip-Test-CD-Signing-Key.pem")
    cert = certs.load_certificate(CREDS / "Chip-Test-CD-Signing-Cert.pem")
    return generate_set(VID, PID, "NXP hil firmware test", cd_signer=(key, cert))


def dac_scalar(cs: CredentialSet | None = None) -> bytes:
    cs = cs or credentials()
    assert cs.dac.key is not None
    return cs.dac.key.private_numbers().private_value.to_bytes(32, "big")


@functools.cache
def _verifier() -> bytes:
    return spake2p.compute_verifier(PASSCODE, SALT, ITERATIONS)


def factory_data(**overrides: object) -> FactoryData:
    """A complete FactoryData as generate.py would encode it (every tag a device usually carries)."""
    cs = credentials()
    assert cs.cd is not None
    fd = FactoryData(
        verifier=_verifier(),
        salt=SALT,
        iterations=ITERATIONS,
        dac_key=dac_scalar(cs),
        dac_cert=cs.dac.cert_der(),
        pai_cert=cs.pai.cert_der(),
        discriminator=1000,
        passcode=PASSCODE,
        vid=VID,
        pid=PID,
        cert_declaration=cs.cd,
        vendor_name="NXP Semiconductors",
        product_name="Lighting app",
        serial_num="12345678",
        date="2023-01-01",
        hw_version=1,
        hw_version_str="1.0",
        unique_id="00112233445566778899aabbccddeeff",
    )
    return dataclasses.replace(fd, **overrides)


def image(fd: FactoryData | None = None, *, aes_key: bytes | None = None, hw_params: bool = False) -> bytes:
    return codec.encode(fd or factory_data(), aes_key, hw_params)


def write_app(profile: BoardProfile, *, reset: bool = False, **options: object) -> bytes:
    """Build an app image with `options` and write it to the board's app region with its programmer."""
    data = app_image.build(app_image.AppOptions(**options))  # type: ignore[arg-type]
    programmers.flash(profile, data, region=profile.app_region_for(len(data)), reset=reset)
    return data


def write_factory_data(profile: BoardProfile, data: bytes) -> None:
    programmers.flash(profile, data, reset=False)


def verifies(cert_der: bytes, message: bytes, der_signature: bytes) -> bool:
    """True when `der_signature` over `message` verifies with the certificate's public key."""
    public = x509.load_der_x509_certificate(cert_der).public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    try:
        public.verify(der_signature, message, ec.ECDSA(hashes.SHA256()))
    except Exception:
        return False
    return True


def key_der(scalar: bytes) -> bytes:
    key = ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
