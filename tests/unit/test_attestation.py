"""Offline attestation findings, one rule at a time, named after the SDK's AttestationVerificationResult."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cd_signing import CREDS
from cryptography import x509

from hil.errors import AttestationError
from hil.matter import attestation, cd, certs, credential_set

VALID_FROM = datetime(2023, 1, 1, tzinfo=UTC)
NOW = VALID_FROM + timedelta(days=30)
VID, PID = 0x1037, 0xA220


@pytest.fixture(scope="module")
def signer():
    return (
        certs.load_private_key(CREDS / "Chip-Test-CD-Signing-Key.pem"),
        certs.load_certificate(CREDS / "Chip-Test-CD-Signing-Cert.pem"),
    )


@pytest.fixture(scope="module")
def good(signer):
    return credential_set.generate_set(
        VID, PID, "NXP Semiconductors light", valid_from=VALID_FROM, cd_signer=signer
    )


def codes(findings):
    return sorted({f.code for f in findings})


def test_good_set_passes(good, signer):
    findings = attestation.check(
        good.dac.cert, good.pai.cert, good.paa.cert, good.cd, signer[1], vid=VID, pid=PID, now=NOW
    )
    assert findings == []
    attestation.assert_ok(findings)


def test_dac_vid_and_pid_against_pai(good):
    pai_with_pid = certs.generate_pai(good.paa, "PAI", VID, 0x0001, valid_from=VALID_FROM)
    dac_other_vid = certs.generate_dac(good.pai, "DAC", 0x1038, PID, valid_from=VALID_FROM)
    dac_other_pid = certs.generate_dac(pai_with_pid, "DAC", VID, PID, valid_from=VALID_FROM)
    assert codes(attestation.check_vid_pid(None, None, dac_other_vid.cert, good.pai.cert)) == [
        "kDacVendorIdMismatch"
    ]
    assert codes(attestation.check_vid_pid(None, None, dac_other_pid.cert, pai_with_pid.cert)) == [
        "kDacProductIdMismatch"
    ]


def test_cd_against_basic_information_and_dac(good):
    decl = cd.decode(good.cd)
    assert attestation.check_vid_pid(VID, PID, good.dac.cert, good.pai.cert, decl) == []
    wrong = attestation.check_vid_pid(0x1038, 0x0001, good.dac.cert, good.pai.cert, decl)
    assert codes(wrong) == [
        "kCertificationDeclarationInvalidProductId",
        "kCertificationDeclarationInvalidVendorId",
    ]
    other_pid = cd.CertificationDeclaration(VID, [0x0001], 0, "ZIG20142ZB330003-24")
    found = attestation.check_vid_pid(VID, 0x0001, good.dac.cert, good.pai.cert, other_pid)
    assert codes(found) == ["kCertificationDeclarationInvalidProductId"]
    assert "DAC PID 0xA220" in str(found[0])


def test_dac_origin_rules(good):
    # A CD for another vendor's product that carries this DAC's VID/PID as its origin is acceptable ...
    decl = cd.CertificationDeclaration(
        0xFFF2, [0x8001], 0, "ZIG20142ZB330002-24", dac_origin_vendor_id=VID, dac_origin_product_id=PID
    )
    assert attestation.check_vid_pid(0xFFF2, 0x8001, good.dac.cert, good.pai.cert, decl) == []
    # ... but not when the origin names another product.
    decl.dac_origin_product_id = 0x0002
    assert codes(attestation.check_vid_pid(0xFFF2, 0x8001, good.dac.cert, good.pai.cert, decl)) == [
        "kCertificationDeclarationInvalidProductId"
    ]


def test_paa_rules(good, signer):
    other_paa = certs.generate_paa("Other PAA", valid_from=VALID_FROM)
    found = attestation.check(good.dac.cert, good.pai.cert, other_paa.cert, now=NOW)
    assert codes(found) == ["kPaaNotFound"]
    paa_vid = certs.generate_paa("PAA FFF1", 0xFFF1, valid_from=VALID_FROM)
    pai = certs.generate_pai(paa_vid, "PAI", VID, valid_from=VALID_FROM)
    dac = certs.generate_dac(pai, "DAC", VID, PID, valid_from=VALID_FROM)
    assert codes(attestation.check(dac.cert, pai.cert, paa_vid.cert, now=NOW)) == ["kPaiVendorIdMismatch"]


def test_authorized_paa_list(good, signer):
    for allowed, expected in (
        ([certs.skid(good.paa.cert)], []),
        ([b"\x01" * 20], ["kCertificationDeclarationInvalidPAA"]),
    ):
        decl = cd.CertificationDeclaration(VID, [PID], 0, "ZIG20142ZB330003-24", authorized_paa_list=allowed)
        signed = cd.sign(decl, *signer)
        found = attestation.check(good.dac.cert, good.pai.cert, good.paa.cert, signed, signer[1], now=NOW)
        assert codes(found) == expected


def test_cd_signature_findings(good, signer):
    tampered = bytearray(good.cd)
    tampered[tampered.index(b"ZIG")] ^= 1
    found = attestation.check(
        good.dac.cert, good.pai.cert, cd=bytes(tampered), cd_signing_cert=signer[1], now=NOW
    )
    assert codes(found) == ["kCertificationDeclarationInvalidSignature"]
    other = certs.generate_paa("Other CD signer")
    found = attestation.check(good.dac.cert, good.pai.cert, cd=good.cd, cd_signing_cert=other.cert, now=NOW)
    assert codes(found) == ["kCertificationDeclarationNoCertificateFound"]
    found = attestation.check(good.dac.cert, good.pai.cert, cd=b"\x30\x03\x02\x01\x00", now=NOW)
    assert codes(found) == ["kCertificationDeclarationInvalidFormat"]


def test_expiry_and_chain(good):
    assert codes(attestation.check(good.dac.cert, good.pai.cert, now=VALID_FROM + timedelta(days=8000))) == [
        "kDacExpired"
    ]
    der = bytearray(good.dac.cert_der())
    der[-5] ^= 1
    bad_sig = x509.load_der_x509_certificate(bytes(der))
    assert codes(attestation.check(bad_sig, good.pai.cert, good.paa.cert, now=NOW)) == [
        "kDacSignatureInvalid"
    ]


def test_format_findings_and_assert_ok(good):
    # A PAA where a PAI belongs: PAI format invalid (pathlen, no VID), and the VID rules fail with it.
    found = attestation.check(good.dac.cert, good.paa.cert, now=NOW)
    assert "kPaiFormatInvalid" in codes(found)
    with pytest.raises(AttestationError, match="kPaiFormatInvalid"):
        attestation.assert_ok(found)
