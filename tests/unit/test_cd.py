"""Certification Declaration: SDK vectors (TestCertificationDeclaration.cpp), sign/verify, openssl checks."""

from __future__ import annotations

import dataclasses
import subprocess

import pytest
from cd_signing import CREDS
from cryptography.hazmat.primitives.asymmetric import ec

from hil.errors import AttestationError, InputError
from hil.matter import cd, certs

TEST_KID = bytes.fromhex("62FA823359ACFAA9963E1CFA140ADDF504F37160")

# connectedhomeip src/credentials/tests/TestCertificationDeclaration.cpp:
# sTestCMS_CDContent01/02 and sTestCMS_SignedMessage01/02.
CONTENT_01 = bytes.fromhex(
    "152400012501f1ff360205008018250334122c04135a494732303134315a423333303030312d323424050024060025079426"
    "24080018"
)
CONTENT_02 = bytes.fromhex(
    "152400012501f2ff360205018005028018250334122c04135a494732303134325a423333303030322d323424050024060025"
    "0794262408002509f1ff250a008018"
)
SIGNED_01 = bytes.fromhex(
    "3081e806092a864886f70d010702a081da3081d7020103310d300b0609608648016503040201304506092a864886f70d010701a03804"
    "36"
    + CONTENT_01.hex()
    + "317c307a020103801462fa823359acfaa9963e1cfa140addf504f37160300b0609608648016503040201"
    "300a06082a8648ce3d04030204463044022043a63f2b943df33c38b3e02fcaa75fe3532aebbf5e63f5bbdbc0b1f01d3c4f6002204c1abf"
    "5f1807b81894b1576c47e4724e4d966c612ed3fa25c118c3f2b3f90369"
)
SIGNED_02 = bytes.fromhex(
    "3081f506092a864886f70d010702a081e73081e4020103310d300b0609608648016503040201305006092a864886f70d010701a04304"
    "41"
    + CONTENT_02.hex()
    + "317e307c020103801462fa823359acfaa9963e1cfa140addf504f37160300b0609608648016503040201"
    "300a06082a8648ce3d04030204483046022100926296f7578158be7c459388336ca7383766c9eedd9855cbda6f4cf6bdf43211022100e0"
    "dbf4a2bcec4ea274baf0dea208b3365c6ed544086d101afdaf079a2c23e0de"
)
CD_01 = cd.CertificationDeclaration(0xFFF1, [0x8000], 0x1234, "ZIG20141ZB330001-24", version_number=0x2694)
CD_02 = cd.CertificationDeclaration(
    0xFFF2,
    [0x8001, 0x8002],
    0x1234,
    "ZIG20142ZB330002-24",
    version_number=0x2694,
    dac_origin_vendor_id=0xFFF1,
    dac_origin_product_id=0x8000,
)


@pytest.fixture(scope="module")
def signer():
    return (
        certs.load_private_key(CREDS / "Chip-Test-CD-Signing-Key.pem"),
        certs.load_certificate(CREDS / "Chip-Test-CD-Signing-Cert.pem"),
    )


@pytest.mark.parametrize(("decl", "content"), [(CD_01, CONTENT_01), (CD_02, CONTENT_02)])
def test_content_byte_identical_to_sdk(decl, content):
    assert cd.encode_content(decl) == content
    assert cd.decode_content(content) == decl


@pytest.mark.parametrize(
    ("decl", "content", "signed"), [(CD_01, CONTENT_01, SIGNED_01), (CD_02, CONTENT_02, SIGNED_02)]
)
def test_sdk_signed_messages(signer, decl, content, signed):
    env = cd.parse_envelope(signed)
    assert (env.content, env.signer_key_id) == (content, TEST_KID)
    # Our envelope around the vector's own signature is byte-identical to the SDK's.
    assert cd.wrap(content, TEST_KID, env.signature) == signed
    assert cd.verify(signed, signer[1]) == decl
    assert cd.decode(signed) == decl


def test_sign_verify_round_trip_and_openssl(signer, tmp_path):
    decl = cd.CertificationDeclaration(
        0x1037, [0xA220], 65535, "ZIG20142ZB330003-24", version_number=0x9876, certification_type=1
    )
    der = cd.sign(decl, *signer)
    assert cd.verify(der, signer[1]) == decl
    assert cd.parse_envelope(der).content == cd.encode_content(decl)
    (tmp_path / "cd.der").write_bytes(der)
    proc = subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            str(tmp_path / "cd.der"),
            "-noverify",
            "-certfile",
            str(CREDS / "Chip-Test-CD-Signing-Cert.pem"),
            "-binary",
        ],
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == cd.encode_content(decl)


def test_large_cd_uses_long_form_lengths(signer, tmp_path):
    """100 PIDs + 10 authorized PAAs push the content past 255 bytes (0x82 lengths); openssl parses it."""
    paas = [bytes([i]) * 20 for i in range(10)]
    decl = cd.CertificationDeclaration(
        0xFFF1, list(range(1, 101)), 0x16, "ZIG20141ZB330001-24", version_number=2, authorized_paa_list=paas
    )
    der = cd.sign(decl, *signer)
    assert len(cd.encode_content(decl)) > 255
    assert der[1] == 0x82
    assert cd.verify(der, signer[1]) == decl
    (tmp_path / "cd.der").write_bytes(der)
    proc = subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            str(tmp_path / "cd.der"),
            "-noverify",
            "-certfile",
            str(CREDS / "Chip-Test-CD-Signing-Cert.pem"),
            "-binary",
        ],
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_tampered_cd_fails(signer):
    der = bytearray(cd.sign(CD_01, *signer))
    i = der.index(b"ZIG20141")
    der[i] ^= 0x01  # one bit of the certificate id inside the signed content
    with pytest.raises(AttestationError, match="CD signature does not verify"):
        cd.verify(bytes(der), signer[1])


def test_wrong_signer(signer):
    der = cd.sign(CD_01, *signer)
    other = certs.generate_paa("Other CD signer")
    with pytest.raises(AttestationError, match="signer key id 62FA8233"):
        cd.verify(der, other.cert)
    # Same key id, different key: what a commissioner reports as an invalid signature.
    forged = cd.sign_content(
        CD_01 and cd.encode_content(CD_01), ec.generate_private_key(ec.SECP256R1()), TEST_KID
    )
    with pytest.raises(AttestationError, match="signature does not verify"):
        cd.verify(forged, signer[1])
    with pytest.raises(InputError, match="CD signing key: does not match"):
        cd.sign(CD_01, other.key, signer[1])


def test_openssl_style_cms_with_signed_attributes_is_refused(signer, tmp_path):
    (tmp_path / "content").write_bytes(CONTENT_01)
    subprocess.run(
        [
            "openssl",
            "cms",
            "-sign",
            "-binary",
            "-nodetach",
            "-keyid",
            "-md",
            "sha256",
            "-outform",
            "DER",
            "-in",
            str(tmp_path / "content"),
            "-signer",
            str(CREDS / "Chip-Test-CD-Signing-Cert.pem"),
            "-inkey",
            str(CREDS / "Chip-Test-CD-Signing-Key.pem"),
            "-out",
            str(tmp_path / "cms.der"),
        ],
        check=True,
        capture_output=True,
    )
    with pytest.raises(AttestationError, match="signed attributes are not supported"):
        cd.verify((tmp_path / "cms.der").read_bytes(), signer[1])


@pytest.mark.parametrize(
    ("data", "why"),
    [
        # SDK error vectors: vendor_id as a 4-octet integer; product_id_array and device_type tags swapped.
        (
            CONTENT_01.replace(bytes.fromhex("2501f1ff"), bytes.fromhex("2601f1ffffff")),
            "does not fit in 16 bits",
        ),
        (
            CONTENT_01.replace(b"\x36\x02", b"\x36\x03").replace(b"\x25\x03", b"\x25\x02"),
            "unexpected member tags",
        ),
        (CONTENT_01[:-1], "malformed TLV"),
        (b"\x16\x18", "not a TLV structure"),
    ],
)
def test_malformed_content(data, why):
    with pytest.raises(AttestationError, match=why):
        cd.decode_content(data)


def test_malformed_envelopes():
    with pytest.raises(AttestationError, match="CD envelope"):
        cd.parse_envelope(SIGNED_01[:50])
    with pytest.raises(AttestationError, match="CD envelope"):
        cd.parse_envelope(b"\x04\x00")


def test_optional_fields_round_trip(signer):
    decl = cd.CertificationDeclaration(
        0xFFF1,
        [0x8000],
        0x100,
        "ZIG20141ZB330001-24",
        version_number=1,
        certification_type=2,
        dac_origin_vendor_id=0xFFF2,
        dac_origin_product_id=0x8001,
        authorized_paa_list=[TEST_KID],
    )
    content = cd.encode_content(decl)
    assert content.endswith(b"\x36\x0b\x10\x14" + TEST_KID + b"\x18\x18")
    assert cd.verify(cd.sign(decl, *signer), signer[1]) == decl


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"certification_type": 3}, "cd_type"),
        ({"vendor_id": 0}, "vendor_id"),
        ({"vendor_id": 0x10000}, "vendor_id"),
        ({"product_ids": []}, "product_ids"),
        ({"product_ids": list(range(1, 102))}, "product_ids"),
        ({"product_ids": [0]}, "product_id"),
        ({"certificate_id": "SHORT"}, "certificate_id"),
        ({"security_level": 1}, "security_level"),
        ({"version_number": 0}, "version_number"),
        ({"device_type_id": 1 << 32}, "device_type_id"),
        ({"dac_origin_vendor_id": 1}, "dac_origin_vendor_id"),
        ({"authorized_paa_list": [b"short"]}, "authorized_paa_list"),
        ({"format_version": 2}, "format_version"),
    ],
)
def test_validation(changes, field):
    decl = dataclasses.replace(CD_01, **changes)
    with pytest.raises(InputError) as exc:
        cd.encode_content(decl)
    assert str(exc.value).startswith(field)


def test_non_strict_encoding_for_negative_tests():
    decl = cd.CertificationDeclaration(0xFFF1, [0x8000], 0x1234, "ZIG20141ZB330001-24", security_level=1)
    assert cd.decode_content(cd.encode_content(decl, strict=False)).security_level == 1
