"""PAA/PAI/DAC builders vs chip-cert's profiles (specs/matter-credentials.md §1), loading, chain checks."""

from __future__ import annotations

import hashlib
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtensionOID, NameOID, SignatureAlgorithmOID

from hil.errors import AttestationError, InputError
from hil.matter import certs, test_cd_key

VALID_FROM = datetime(2023, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def chain():
    paa = certs.generate_paa("Test PAA", None, valid_from=VALID_FROM, lifetime_days=7305)
    pai = certs.generate_pai(paa, "Test PAI", 0x1037, valid_from=VALID_FROM, lifetime_days=7305)
    dac = certs.generate_dac(pai, "Test DAC", 0x1037, 0xA220, valid_from=VALID_FROM, lifetime_days=7305)
    return paa, pai, dac


def _der_of_extension(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bytes:
    return cert.extensions.get_extension_for_oid(oid).value.public_bytes()


# ------------------------------------------------------------------------------------------- byte identity


#: SHA-256 of the SDK's files, connectedhomeip credentials/test/certification-declaration/
#: Chip-Test-CD-Signing-Cert.pem@7730f254 (of its TBSCertificate) and Chip-Test-CD-Signing-Key.pem@9f094a32
#: (of the whole 227-byte file). Digests, so the test needs no copy of the SDK's files.
SDK_CD_CERT_TBS_SHA256 = "de12a036228bd0a6a9205c601ed2452f8f41c5f896c521dac6e2148e9b14fd2b"
SDK_CD_KEY_PEM_SHA256 = "0c07866df161b37f0a9ba193f1026526daea97befa6a79c452e83c77bb4006df"
#: The test key's public point (uncompressed), as the Matter Core Specification's Appendix F prints it.
TEST_CD_PUBLIC_POINT = (
    "043c398922452b55caf389c25bd1bca4656952ccb90e8869249ad8474653014cbf"
    "95d687965e036b521c51037e6b8cedefca1eb44046694fa08882eed6519decba"
)


def test_tbs_byte_identical_to_sdk_cd_signing_cert():
    """The spec's recipe: rebuild the SDK's Chip-Test-CD-Signing-Cert (gen-att-cert --type a) from the test
    key, serial and dates; the TBSCertificate and the key PEM must be byte-identical to the SDK's files."""
    rebuilt = test_cd_key.signing_credential()
    assert hashlib.sha256(rebuilt.cert.tbs_certificate_bytes).hexdigest() == SDK_CD_CERT_TBS_SHA256
    assert hashlib.sha256(rebuilt.key_pem()).hexdigest() == SDK_CD_KEY_PEM_SHA256
    assert certs.profile_problems(rebuilt.cert, "paa") == []


def test_test_cd_key_vector_public_key_and_key_id():
    key = test_cd_key.private_key()
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert point.hex() == TEST_CD_PUBLIC_POINT
    assert hashlib.sha1(point).digest() == test_cd_key.KEY_ID  # the SKID is SHA-1 of the point (RFC 5280 (1))
    assert certs.skid(test_cd_key.signing_credential().cert) == test_cd_key.KEY_ID
    assert test_cd_key.KEY_ID.hex().upper() == "62FA823359ACFAA9963E1CFA140ADDF504F37160"


def test_test_cd_certificate_is_the_same_every_time_and_self_signed():
    first = test_cd_key.signing_credential().cert_der()
    test_cd_key.signing_credential.cache_clear()
    again = test_cd_key.signing_credential()
    assert again.cert_der() == first  # RFC 6979: no random nonce
    again.cert.verify_directly_issued_by(again.cert)


# ------------------------------------------------------------------------------------------- profiles

PROFILE = {
    # kind: (basicConstraints (ca, pathlen), keyUsage DER, has VID, has PID)
    "paa": ((True, 1), bytes.fromhex("03020106"), False, False),
    "pai": ((True, 0), bytes.fromhex("03020106"), True, False),
    "dac": ((False, None), bytes.fromhex("03020780"), True, True),
}


@pytest.mark.parametrize("kind", ["paa", "pai", "dac"])
def test_profile_matches_chip_cert(chain, kind):
    paa, pai, dac = chain
    cred = {"paa": paa, "pai": pai, "dac": dac}[kind]
    issuer = {"paa": paa, "pai": paa, "dac": pai}[kind]
    cert = cred.cert
    (ca, pathlen), ku_der, has_vid, has_pid = PROFILE[kind]

    assert cert.version == x509.Version.v3
    assert 0 < cert.serial_number < 2**63
    assert cert.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"
    assert cert.issuer == issuer.cert.subject

    # Subject: one RDN per attribute, CN first, then VID, PID; all UTF8String; 4 upper-case hex digits.
    rdns = list(cert.subject.rdns)
    expected_oids = (
        [NameOID.COMMON_NAME] + [certs.OID_MATTER_VID] * has_vid + [certs.OID_MATTER_PID] * has_pid
    )
    assert [len(r) for r in rdns] == [1] * len(expected_oids)
    attrs = [next(iter(r)) for r in rdns]
    assert [a.oid for a in attrs] == expected_oids
    assert all(a._type == x509.name._ASN1Type.UTF8String for a in attrs)
    assert [a.value for a in attrs[1:]] == ["1037", "A220"][: has_vid + has_pid]

    # Extensions: order, criticality, values.
    exts = list(cert.extensions)
    assert [e.oid for e in exts] == [
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    ]
    assert [e.critical for e in exts] == [True, True, False, False]
    assert (exts[0].value.ca, exts[0].value.path_length) == (ca, pathlen)
    if kind == "dac":
        assert _der_of_extension(cert, ExtensionOID.BASIC_CONSTRAINTS) == b"\x30\x00"
    assert _der_of_extension(cert, ExtensionOID.KEY_USAGE) == ku_der
    point = cert.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert exts[2].value.digest == hashlib.sha1(point).digest()
    assert exts[3].value.key_identifier == certs.skid(issuer.cert)
    assert exts[3].value.authority_cert_issuer is None and exts[3].value.authority_cert_serial_number is None

    assert certs.profile_problems(cert, kind) == []
    certs.check_key_matches(cert, cred.key)


def test_validity_is_valid_from_plus_lifetime_minus_one_second(chain):
    _, _, dac = chain
    assert dac.cert.not_valid_before_utc == VALID_FROM
    assert dac.cert.not_valid_after_utc == VALID_FROM + timedelta(days=7305) - timedelta(seconds=1)


def test_no_well_defined_expiration_is_99991231235959z():
    paa = certs.generate_paa("PAA", None, valid_from=VALID_FROM, lifetime_days=4294967295)
    assert paa.cert.not_valid_after_utc == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert b"\x18\x0f99991231235959Z" in paa.cert.tbs_certificate_bytes  # GeneralizedTime, as chip-cert


def test_default_valid_from_is_today_midnight_utc():
    paa = certs.generate_paa("PAA")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert paa.cert.not_valid_before_utc in (today, today - timedelta(days=1))  # midnight race


@pytest.mark.parametrize(
    "text",
    ["2023-01-01 00:00:00", "2023/01/01 00:00:00", "20230101000000Z", "2023-01-01", "2023/01/01", "20230101"],
)
def test_chip_cert_valid_from_formats(text):
    assert certs.parse_valid_from(text) == VALID_FROM


def test_bad_valid_from_and_lifetime():
    with pytest.raises(InputError, match="valid_from"):
        certs.parse_valid_from("01.01.2023")
    with pytest.raises(InputError, match="lifetime"):
        certs.generate_paa("PAA", lifetime_days=0)
    with pytest.raises(InputError, match="lifetime"):
        certs.generate_paa("PAA", valid_from=VALID_FROM, lifetime_days=4294967294)


def test_serials_are_random_63_bit():
    serials = {certs.random_serial() for _ in range(200)}
    assert len(serials) == 200 and all(0 < s < 2**63 for s in serials)
    assert max(serials) > 2**60  # uses the whole range, not a 32-bit value


def test_vid_pid_as_cn_fallback():
    paa = certs.generate_paa("PAA FB", valid_from=VALID_FROM)
    pai = certs.generate_pai(
        paa, "Matter Test PAI", 0xFFF1, 0x8000, vid_pid_as_cn=True, valid_from=VALID_FROM
    )
    assert certs.subject_cn(pai.cert) == "Matter Test PAI Mvid:FFF1 Mpid:8000"
    assert len(pai.cert.subject.rdns) == 1
    assert certs.matter_vid_pid(pai.cert) == (0xFFF1, 0x8000)


# ------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda paa, pai: certs.generate_paa("PAA", 0x10000), "vendor_id"),
        (lambda paa, pai: certs.generate_pai(paa, "PAI", None), "vendor_id"),
        (lambda paa, pai: certs.generate_pai(paa, "PAI", 1, -1), "product_id"),
        (lambda paa, pai: certs.generate_dac(pai, "DAC", 0x1037, None), "product_id"),
        (lambda paa, pai: certs.generate_dac(pai, "X" * 65, 0x1037, 1), "subject common name"),
        (lambda paa, pai: certs.generate_dac(pai, "", 0x1037, 1), "subject common name"),
        (lambda paa, pai: certs.generate_dac(certs.Credential(pai.cert), "DAC", 1, 1), "PAI"),
        (lambda paa, pai: certs.generate_dac(certs.Credential(pai.cert, paa.key), "DAC", 1, 1), "PAI key"),
        (lambda paa, pai: certs.generate_pai(certs.Credential(pai.cert, pai.key), "x", 1), "PAA"),
        (lambda paa, pai: certs.generate_paa("PAA", key=ec.generate_private_key(ec.SECP384R1())), "key"),
    ],
)
def test_bad_builder_input(chain, call, field):
    paa, pai, _ = chain
    with pytest.raises(InputError) as exc:
        call(paa, pai)
    assert str(exc.value).startswith(field)


# ------------------------------------------------------------------------------------------- loading


def test_load_certificate_pem_der_path(chain, tmp_path):
    _, _, dac = chain
    (tmp_path / "c.der").write_bytes(dac.cert_der())
    assert certs.load_certificate(dac.cert_pem()) == dac.cert
    assert certs.load_certificate(dac.cert_der()) == dac.cert
    assert certs.load_certificate(tmp_path / "c.der") == dac.cert
    assert certs.load_certificate(str(tmp_path / "c.der")) == dac.cert


def test_load_certificate_errors(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        certs.load_certificate(tmp_path / "missing.pem", what="--paa_cert")
    (tmp_path / "junk").write_bytes(b"junk")
    with pytest.raises(InputError, match=r"^--paa_cert .*not a PEM or DER X\.509 certificate"):
        certs.load_certificate(tmp_path / "junk", what="--paa_cert")


def test_load_private_key_forms(chain):
    _, _, dac = chain
    raw = dac.key.private_numbers().private_value.to_bytes(32, "big")
    pkcs8 = dac.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    encrypted = dac.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    assert dac.key_pem().startswith(b"-----BEGIN EC PRIVATE KEY-----")
    for data in (dac.key_pem(), dac.key_der(), raw, pkcs8):
        assert certs.load_private_key(data).private_numbers() == dac.key.private_numbers()
    assert certs.load_private_key(encrypted, b"pw").private_numbers() == dac.key.private_numbers()
    with pytest.raises(InputError, match="encrypted; give its password"):
        certs.load_private_key(encrypted)
    with pytest.raises(InputError, match="not a readable"):
        certs.load_private_key(encrypted, b"wrong")
    with pytest.raises(InputError, match="not a readable"):
        certs.load_private_key(b"garbage that is not a key")
    rsa_pem = rsa.generate_private_key(65537, 1024).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(InputError, match="P-256"):
        certs.load_private_key(rsa_pem)


def test_load_credential_checks_the_key_matches(chain, tmp_path):
    paa, pai, _ = chain
    (tmp_path / "paa.pem").write_bytes(paa.cert_pem())
    (tmp_path / "pai-key.pem").write_bytes(pai.key_pem())
    (tmp_path / "paa-key.pem").write_bytes(paa.key_pem())
    assert certs.load_credential(tmp_path / "paa.pem", tmp_path / "paa-key.pem").cert == paa.cert
    with pytest.raises(InputError, match=r"^PAA key: does not match"):
        certs.load_credential(tmp_path / "paa.pem", tmp_path / "pai-key.pem", what="PAA")


# ------------------------------------------------------------------------------------------- chain checks


def _write(tmp_path: Path, **creds: certs.Credential) -> dict[str, str]:
    out = {}
    for name, cred in creds.items():
        (tmp_path / f"{name}.pem").write_bytes(cred.cert_pem())
        out[name] = str(tmp_path / f"{name}.pem")
    return out


def _openssl_verify(paa: str, pai: str, dac: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "openssl",
            "verify",
            "-x509_strict",
            "-attime",
            str(int(VALID_FROM.timestamp()) + 60),
            "-CAfile",
            paa,
            "-untrusted",
            pai,
            dac,
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_openssl_verifies_generated_chain(chain, tmp_path):
    paa, pai, dac = chain
    f = _write(tmp_path, paa=paa, pai=pai, dac=dac)
    proc = _openssl_verify(f["paa"], f["pai"], f["dac"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    certs.verify_chain(dac.cert, pai.cert, paa.cert)


def test_chain_from_another_paa_fails_both_checks(chain, tmp_path):
    _, pai, dac = chain
    other = certs.generate_paa("Test PAA", None, valid_from=VALID_FROM)  # same name, other key
    f = _write(tmp_path, paa=other, pai=pai, dac=dac)
    assert _openssl_verify(f["paa"], f["pai"], f["dac"]).returncode != 0
    with pytest.raises(AttestationError, match="PAI authorityKeyIdentifier does not match the PAA"):
        certs.verify_chain(dac.cert, pai.cert, other.cert)


def test_tampered_signature_fails(chain):
    paa, pai, dac = chain
    der = bytearray(dac.cert_der())
    der[-5] ^= 0x01  # inside the signature's s value
    tampered = x509.load_der_x509_certificate(bytes(der))
    with pytest.raises(AttestationError, match="DAC signature does not verify"):
        certs.verify_chain(tampered, pai.cert, paa.cert)


def test_dac_outside_pai_validity_fails(chain):
    paa, pai, _ = chain
    late = certs.generate_dac(pai, "Late DAC", 0x1037, 1, valid_from=VALID_FROM + timedelta(days=8000))
    with pytest.raises(AttestationError, match="PAI is not valid at"):
        certs.verify_chain(late.cert, pai.cert, paa.cert)


def _hand_built(issuer: certs.Credential, subject: x509.Name, *, ca: bool, pathlen=None, ku=None):
    key = ec.generate_private_key(ec.SECP256R1())
    ku = ku or x509.KeyUsage(True, False, False, False, False, False, False, False, False)
    return (
        x509.CertificateBuilder()
        .serial_number(5)
        .issuer_name(issuer.cert.subject)
        .subject_name(subject)
        .not_valid_before(VALID_FROM)
        .not_valid_after(VALID_FROM + timedelta(days=10))
        .public_key(key.public_key())
        .add_extension(x509.BasicConstraints(ca=ca, path_length=pathlen), critical=False)
        .add_extension(ku, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(certs.skid(issuer.cert), None, None), critical=False)
        .sign(issuer.key, hashes.SHA256())
    )


def test_off_profile_dac_is_reported(chain):
    paa, pai, _ = chain
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "bad"),
            x509.NameAttribute(certs.OID_MATTER_VID, "1037"),
            x509.NameAttribute(certs.OID_MATTER_PID, "a220"),  # lower case: the SDK rejects it
        ]
    )
    bad = _hand_built(pai, subject, ca=True, pathlen=0)
    problems = certs.profile_problems(bad, "dac")
    assert any("basicConstraints must be present and critical" in p for p in problems)
    assert any("not 4 upper-case hex digits" in p for p in problems)
    with pytest.raises(AttestationError, match="DAC 'bad': format invalid"):
        certs.verify_chain(bad, pai.cert, paa.cert)
    with pytest.raises(AttestationError, match="upper-case"):
        certs.matter_vid_pid(bad)


def test_duplicate_vid_attribute_is_malformed(chain):
    _, pai, _ = chain
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "dup"),
            x509.NameAttribute(certs.OID_MATTER_VID, "1037"),
            x509.NameAttribute(certs.OID_MATTER_VID, "1037"),
        ]
    )
    with pytest.raises(AttestationError, match="duplicate Matter VID"):
        certs.matter_vid_pid(_hand_built(pai, subject, ca=False))


def test_pai_profile_requires_pathlen_zero(chain):
    paa, _, _ = chain
    # A PAA used where a PAI is expected: CA pathlen 1 is not a PAI, and it has no VID.
    problems = certs.profile_problems(paa.cert, "pai")
    assert "basicConstraints must be CA:TRUE, pathlen:0 for a PAI" in problems
    assert "vendor ID attribute is required" in problems


def test_a_bit_string_typed_name_attribute_is_one_input_error() -> None:
    """cryptography raises TypeError for a BIT STRING name attribute other than x500UniqueIdentifier (the
    factory-data fuzzer found it); loading must turn it into the one 'not a certificate' InputError."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "x")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(datetime(2020, 1, 1))
        .not_valid_after(datetime(2030, 1, 1))
        .sign(key, hashes.SHA256())
    )
    der = bytearray(cert.public_bytes(serialization.Encoding.DER))
    der[der.index(b"\x0c\x01x")] = 0x03  # the CN's UTF8String tag becomes BIT STRING
    with pytest.raises(InputError, match=r"not a PEM or DER X\.509 certificate"):
        certs.load_certificate(bytes(der))
