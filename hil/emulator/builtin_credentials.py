"""The test credentials an app built with chip_with_factory_data=0 carries in its image.

NXP's examples fall back to the SDK's example providers when built without factory data: test DAC
(VID 0xFFF1, PID 0x8000), discriminator 3840, passcode 20202021, salt "SPAKE2P Key Salt", 1000
iterations (CHIP_DEVICE_CONFIG_USE_TEST_* defaults). No private key may be committed to the product, so the
keys here are *derived* at first use from a fixed, public seed (HKDF-SHA256 → P-256 scalar): every
emulated board and every run gets the same keys, serials and validity, hence the same attestation chain
up to signature bytes (ECDSA in `cryptography` is randomised, so certificate signatures differ per process;
a process caches its set). Trusting them needs the derived PAA (`paa_der()`); the CD is signed by a derived
key as well, which no commissioner trusts by default: commission such a board with CD checks relaxed, or
give it factory data.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hil.matter import cd as cdmod
from hil.matter import certs, spake2p

SEED = b"nxp-matter-hil built-in test credentials v1 (public, for tests only)"
VENDOR_ID, PRODUCT_ID = 0xFFF1, 0x8000
DISCRIMINATOR = 3840
PASSCODE = 20202021
SALT = b"SPAKE2P Key Salt"
ITERATIONS = 1000
VENDOR_NAME, PRODUCT_NAME, SERIAL = "TEST_VENDOR", "TEST_PRODUCT", "TEST_SN"
HW_VERSION, HW_VERSION_STRING = 0, "TEST_VERSION"
VALID_FROM = datetime(2021, 6, 28, tzinfo=UTC)
_P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _derived_key(label: str) -> ec.EllipticCurvePrivateKey:
    okm = HKDF(hashes.SHA256(), 40, salt=None, info=label.encode()).derive(SEED)
    return ec.derive_private_key(int.from_bytes(okm, "big") % (_P256_N - 1) + 1, ec.SECP256R1())


@dataclass(frozen=True, repr=False)
class BuiltinCredentials:
    paa: certs.Credential
    pai: certs.Credential
    dac: certs.Credential
    cd: bytes
    verifier: bytes

    def __repr__(self) -> str:
        return "BuiltinCredentials(<derived test set>)"

    def paa_der(self) -> bytes:
        return self.paa.cert_der()


@functools.cache
def builtin_credentials() -> BuiltinCredentials:
    """The derived test set (computed once per process)."""
    life = certs.NO_WELL_DEFINED_EXPIRATION
    paa = certs.generate_paa(
        "Matter Test PAA (hil built-in)", VENDOR_ID, valid_from=VALID_FROM, lifetime_days=life,
        key=_derived_key("paa"), serial=0x1001,
    )  # fmt: skip
    pai = certs.generate_pai(
        paa, "Matter Test PAI (hil built-in)", VENDOR_ID, PRODUCT_ID, valid_from=VALID_FROM,
        lifetime_days=life, key=_derived_key("pai"), serial=0x1002,
    )  # fmt: skip
    dac = certs.generate_dac(
        pai, "Matter Test DAC (hil built-in)", VENDOR_ID, PRODUCT_ID, valid_from=VALID_FROM,
        lifetime_days=life, key=_derived_key("dac"), serial=0x1003,
    )  # fmt: skip
    signer = certs.generate_paa(
        "Matter Test CD Signing (hil built-in)", None, valid_from=VALID_FROM, lifetime_days=life,
        key=_derived_key("cd-signer"), serial=0x1004,
    )  # fmt: skip
    declaration = cdmod.CertificationDeclaration(
        vendor_id=VENDOR_ID,
        product_ids=[PRODUCT_ID],
        device_type_id=0x0100,  # on/off light
        certificate_id="ZIG20142ZB330003-24",
        version_number=0x2694,
        certification_type=0,
    )
    assert signer.key is not None
    cd = cdmod.sign(declaration, signer.key, signer.cert)
    verifier = spake2p.compute_verifier(PASSCODE, SALT, ITERATIONS)
    return BuiltinCredentials(paa, pai, dac, cd, verifier)
