"""The Matter test CD signing key: a published test vector, for development Certification Declarations only.

PUBLIC, DEVELOPMENT ONLY, NEVER PRODUCTION. The private scalar below is printed in the Matter Core
Specification (Appendix F, "Certification Declaration test vectors") and in the Matter SDK as
`credentials/test/certification-declaration/Chip-Test-CD-Signing-Key.pem` (connectedhomeip); matter.js
(npm `@matter/protocol`) carries the same figures. Anyone can sign with it, so it is not a secret and is
carried here the way the SDK's SPAKE2+ vectors are.

Why the product defaults to it: commissioners trust it for development CDs out of the box. The SDK's
`DefaultDACVerifier` (`src/credentials/attestation_verifier/DefaultDeviceAttestationVerifier.cpp`) has its
public key built in next to the CSA's official CD keys and accepts it while CD test-key support is on, which
is the default (`mEnableCdTestKeySupport = true`, `DeviceAttestationVerifier.h`); chip-tool and the SDK's
Python controller therefore accept a CD it signs, and NXP's `generate_certs.py` signs development CDs with it.
A CD signed with any other key under this key id fails with `kCertificationDeclarationInvalidSignature`; a
production commissioner must not trust it, and production CDs are signed only by the CSA.

The certificate: the SDK ships a self-signed certificate for the key (`Chip-Test-CD-Signing-Cert.pem`,
"Matter Test CD Signing Authority"). `signing_credential()` rebuilds it with chip-cert's PAA profile from the
same serial and dates, so its TBSCertificate is byte-identical to the SDK's; only the ECDSA signature differs
(ours is deterministic, RFC 6979, so every run builds the same certificate). A CD refers to its signer by key
id only, so the certificate serves tools that want one (`openssl cms -verify -certfile`).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric import ec

from hil.matter import certs

#: The P-256 private scalar (Matter Core Specification, Appendix F).
PRIVATE_SCALAR = 0xAEF3484116E9481EC57BE0472DF41BF499064E5024AD869ECA5E889802D48075
#: Its subjectKeyIdentifier (SHA-1 of the public point): the CD's CMS SignerInfo `[0]` names the signer by it.
KEY_ID = bytes.fromhex("62FA823359ACFAA9963E1CFA140ADDF504F37160")
#: The SDK certificate's subject CN, serial and notBefore (notAfter is chip-cert's "no expiry", 9999-12-31).
COMMON_NAME = "Matter Test CD Signing Authority"
CERT_SERIAL = 0x45DAF39DE47AA08F
CERT_VALID_FROM = datetime(2021, 6, 28, 14, 23, 43, tzinfo=UTC)

#: The one line a command prints on stderr when it signs with this key because none was given.
NOTICE = (
    "note: the CD is signed with the Matter test CD signing key (public test vector, development only; "
    "commissioners in production refuse it); give a real one with {how}"
)


def private_key() -> ec.EllipticCurvePrivateKey:
    """The test CD signing key (the published scalar on P-256)."""
    return ec.derive_private_key(PRIVATE_SCALAR, ec.SECP256R1())


@functools.cache
def signing_credential() -> certs.Credential:
    """The key with its self-signed certificate: TBS byte-identical to the SDK's, deterministic signature."""
    return certs.generate_paa(
        COMMON_NAME,
        None,
        valid_from=CERT_VALID_FROM,
        lifetime_days=certs.NO_WELL_DEFINED_EXPIRATION,
        key=private_key(),
        serial=CERT_SERIAL,
        deterministic=True,
    )
