"""Certification Declaration: TLV content and CMS SignedData envelope, exactly as the Matter SDK builds them.

Content (specs/matter-credentials.md §2.1): an anonymous TLV structure with context tags 0..11 in a fixed
order. Envelope (§2.3): the SDK hand-writes a minimal CMS SignedData (v3, SKID signer identifier, sha256
without NULL parameters, no signed attributes, no certificates) around an ECDSA-P256-SHA256 signature made
directly over the TLV bytes. `cryptography`'s PKCS7 builder cannot produce that (issuerAndSerialNumber,
signed attributes, certificates), so the few DER elements are written and parsed here by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from hil.errors import AttestationError, InputError
from hil.matter import certs, tlv

FORMAT_VERSION = 1
CERTIFICATE_ID_LEN = 19  # kCertificateIdLength, e.g. "ZIG20141ZB330001-24"
MAX_PRODUCT_IDS = 100  # kMaxProductIdsCount
MAX_AUTHORIZED_PAAS = 10  # kMaxAuthorizedPAAListCount
#: certification_type values (chip-cert gen-cd -t).
CD_TYPES = {0: "development and test", 1: "provisional", 2: "official"}

# Context tags of the content structure (CertificationDeclaration.cpp), in the order they are written.
TAG_FORMAT_VERSION, TAG_VENDOR_ID, TAG_PRODUCT_IDS, TAG_DEVICE_TYPE, TAG_CERTIFICATE_ID = 0, 1, 2, 3, 4
TAG_SECURITY_LEVEL, TAG_SECURITY_INFO, TAG_VERSION_NUMBER, TAG_CERTIFICATION_TYPE = 5, 6, 7, 8
TAG_DAC_ORIGIN_VID, TAG_DAC_ORIGIN_PID, TAG_AUTHORIZED_PAAS = 9, 10, 11

# Integer width of each scalar member as the SDK's decoder stores it (CertificationElements).
_DECODE_WIDTHS = {
    TAG_FORMAT_VERSION: 8,
    TAG_VENDOR_ID: 16,
    TAG_DEVICE_TYPE: 32,
    TAG_SECURITY_LEVEL: 8,
    TAG_SECURITY_INFO: 16,
    TAG_VERSION_NUMBER: 16,
    TAG_CERTIFICATION_TYPE: 8,
    TAG_DAC_ORIGIN_VID: 16,
    TAG_DAC_ORIGIN_PID: 16,
}

_OID_SIGNED_DATA = bytes.fromhex("2a864886f70d010702")  # 1.2.840.113549.1.7.2
_OID_DATA = bytes.fromhex("2a864886f70d010701")  # 1.2.840.113549.1.7.1
_OID_SHA256 = bytes.fromhex("608648016503040201")  # 2.16.840.1.101.3.4.2.1
_OID_ECDSA_SHA256 = bytes.fromhex("2a8648ce3d040302")  # 1.2.840.10045.4.3.2


@dataclass
class CertificationDeclaration:
    """The CD's fields, named as in the Matter spec; `certification_type` is chip-cert's cd_type."""

    vendor_id: int
    product_ids: list[int]
    device_type_id: int
    certificate_id: str
    security_level: int = 0
    security_information: int = 0
    version_number: int = 1
    certification_type: int = 0
    dac_origin_vendor_id: int | None = None
    dac_origin_product_id: int | None = None
    authorized_paa_list: list[bytes] | None = None
    format_version: int = FORMAT_VERSION

    @property
    def cd_type(self) -> int:
        return self.certification_type


@dataclass
class SignedEnvelope:
    """The parts of a CMS-signed CD that matter for verification."""

    content: bytes
    signer_key_id: bytes
    signature: bytes  # DER Ecdsa-Sig-Value
    extra: dict[str, bool] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------ content


def _uint(name: str, value: object, bits: int, *, nonzero: bool = False) -> None:
    lo = 1 if nonzero else 0
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value < (1 << bits):
        raise InputError.field(name, value, f"allowed {lo}..0x{(1 << bits) - 1:X}")


def validate(cd: CertificationDeclaration) -> None:
    """Raise InputError naming the first field `chip-cert gen-cd` would refuse."""
    _uint("format_version", cd.format_version, 8)
    if cd.format_version != FORMAT_VERSION:
        raise InputError.field("format_version", cd.format_version, f"must be {FORMAT_VERSION}")
    _uint("vendor_id", cd.vendor_id, 16, nonzero=True)
    if not cd.product_ids or len(cd.product_ids) > MAX_PRODUCT_IDS:
        raise InputError.field("product_ids", cd.product_ids, f"1..{MAX_PRODUCT_IDS} product IDs")
    for pid in cd.product_ids:
        _uint("product_id", pid, 16, nonzero=True)
    _uint("device_type_id", cd.device_type_id, 32)
    if not isinstance(cd.certificate_id, str) or len(cd.certificate_id) != CERTIFICATE_ID_LEN:
        raise InputError.field(
            "certificate_id",
            cd.certificate_id,
            f"exactly {CERTIFICATE_ID_LEN} characters, e.g. ZIG20141ZB330001-24",
        )
    _uint("security_level", cd.security_level, 8)
    if cd.security_level != 0:
        raise InputError.field("security_level", cd.security_level, "must be 0")
    _uint("security_information", cd.security_information, 16)
    if cd.security_information != 0:
        raise InputError.field("security_information", cd.security_information, "must be 0")
    _uint("version_number", cd.version_number, 16, nonzero=True)
    if cd.certification_type not in CD_TYPES:
        raise InputError.field(
            "cd_type", cd.certification_type, "allowed 0 (development), 1 (provisional), 2 (official)"
        )
    if (cd.dac_origin_vendor_id is None) != (cd.dac_origin_product_id is None):
        raise InputError("dac_origin_vendor_id/dac_origin_product_id: give both or neither")
    if cd.dac_origin_vendor_id is not None:
        _uint("dac_origin_vendor_id", cd.dac_origin_vendor_id, 16, nonzero=True)
        _uint("dac_origin_product_id", cd.dac_origin_product_id, 16, nonzero=True)
    if cd.authorized_paa_list is not None:
        if not 1 <= len(cd.authorized_paa_list) <= MAX_AUTHORIZED_PAAS:
            raise InputError.field(
                "authorized_paa_list", len(cd.authorized_paa_list), f"1..{MAX_AUTHORIZED_PAAS} PAA key ids"
            )
        for kid in cd.authorized_paa_list:
            if not isinstance(kid, bytes) or len(kid) != 20:
                raise InputError.field("authorized_paa_list entry", kid, "a 20-byte PAA subjectKeyIdentifier")


def encode_content(cd: CertificationDeclaration, *, strict: bool = True) -> bytes:
    """The CD's TLV content, byte-identical to the SDK's `EncodeCertificationElements`.

    `strict=False` skips gen-cd's policy rules (format 1, security fields 0, type 0..2, 19-char id) so that
    negative tests can build CDs a commissioner must reject; the encoding itself stays well formed.
    """
    if strict:
        validate(cd)
    members: list[tuple[tlv.Tag, object]] = [
        (TAG_FORMAT_VERSION, cd.format_version),
        (TAG_VENDOR_ID, cd.vendor_id),
        (TAG_PRODUCT_IDS, tlv.Array(cd.product_ids)),
        (TAG_DEVICE_TYPE, cd.device_type_id),
        (TAG_CERTIFICATE_ID, cd.certificate_id),
        (TAG_SECURITY_LEVEL, cd.security_level),
        (TAG_SECURITY_INFO, cd.security_information),
        (TAG_VERSION_NUMBER, cd.version_number),
        (TAG_CERTIFICATION_TYPE, cd.certification_type),
    ]
    if cd.dac_origin_vendor_id is not None:
        members.append((TAG_DAC_ORIGIN_VID, cd.dac_origin_vendor_id))
    if cd.dac_origin_product_id is not None:
        members.append((TAG_DAC_ORIGIN_PID, cd.dac_origin_product_id))
    if cd.authorized_paa_list is not None:
        members.append((TAG_AUTHORIZED_PAAS, tlv.Array(cd.authorized_paa_list)))
    return tlv.encode(tlv.Structure(members))


def decode_content(content: bytes) -> CertificationDeclaration:
    """Parse the TLV content (members in the SDK's order; optional tags 9..11 may be absent)."""
    try:
        root = tlv.decode(content)
    except tlv.TLVError as exc:
        raise AttestationError(f"CD content: malformed TLV ({exc})") from None
    if not isinstance(root, tlv.Structure):
        raise AttestationError("CD content: not a TLV structure")
    tags = root.tags()
    expected = list(range(TAG_CERTIFICATION_TYPE + 1))
    if tags[: len(expected)] != expected or any(t not in (9, 10, 11) for t in tags[len(expected) :]):
        raise AttestationError(
            f"CD content: unexpected member tags {tags} (want 0..8 then optional 9, 10, 11)"
        )
    if tags != sorted(set(tags)):
        raise AttestationError(f"CD content: member tags out of order or repeated {tags}")

    def get(tag: int, kind: type) -> object:
        value = root.get(tag)
        if value is not None and not isinstance(value, kind):
            raise AttestationError(f"CD content: tag {tag} is {type(value).__name__}, want {kind.__name__}")
        return value

    pids, paas = get(TAG_PRODUCT_IDS, tlv.Array), get(TAG_AUTHORIZED_PAAS, tlv.Array)
    if not all(isinstance(p, int) and 0 <= p <= 0xFFFF for p in pids):  # type: ignore[union-attr]
        raise AttestationError("CD content: product_id_array holds a value that is not a 16-bit product ID")
    for tag, bits in _DECODE_WIDTHS.items():  # the SDK reads each into a fixed-width integer
        value = root.get(tag)
        if isinstance(value, int) and not 0 <= value < (1 << bits):
            raise AttestationError(f"CD content: tag {tag} value {value:#x} does not fit in {bits} bits")
    if paas is not None and not all(isinstance(k, bytes) for k in paas):  # type: ignore[union-attr]
        raise AttestationError("CD content: authorized_paa_list holds a non-byte-string")
    return CertificationDeclaration(
        format_version=get(TAG_FORMAT_VERSION, int),  # type: ignore[arg-type]
        vendor_id=get(TAG_VENDOR_ID, int),  # type: ignore[arg-type]
        product_ids=list(pids),  # type: ignore[call-overload]
        device_type_id=get(TAG_DEVICE_TYPE, int),  # type: ignore[arg-type]
        certificate_id=get(TAG_CERTIFICATE_ID, str),  # type: ignore[arg-type]
        security_level=get(TAG_SECURITY_LEVEL, int),  # type: ignore[arg-type]
        security_information=get(TAG_SECURITY_INFO, int),  # type: ignore[arg-type]
        version_number=get(TAG_VERSION_NUMBER, int),  # type: ignore[arg-type]
        certification_type=get(TAG_CERTIFICATION_TYPE, int),  # type: ignore[arg-type]
        dac_origin_vendor_id=get(TAG_DAC_ORIGIN_VID, int),  # type: ignore[arg-type]
        dac_origin_product_id=get(TAG_DAC_ORIGIN_PID, int),  # type: ignore[arg-type]
        authorized_paa_list=list(paas) if paas is not None else None,  # type: ignore[call-overload]
    )


# ------------------------------------------------------------------------------------------------ envelope


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + body


def wrap(content: bytes, signer_key_id: bytes, der_signature: bytes) -> bytes:
    """The SDK's CMS SignedData around `content` (`CMS_Sign`'s layout); exposed for envelope tests."""
    algs = _der(0x31, _der(0x30, _der(0x06, _OID_SHA256)))
    encap = _der(0x30, _der(0x06, _OID_DATA) + _der(0xA0, _der(0x04, content)))
    signer = _der(
        0x31,
        _der(
            0x30,
            _der(0x02, b"\x03")
            + _der(0x80, signer_key_id)  # [0] IMPLICIT SubjectKeyIdentifier
            + _der(0x30, _der(0x06, _OID_SHA256))
            + _der(0x30, _der(0x06, _OID_ECDSA_SHA256))
            + _der(0x04, der_signature),
        ),
    )
    signed_data = _der(0x30, _der(0x02, b"\x03") + algs + encap + signer)
    return _der(0x30, _der(0x06, _OID_SIGNED_DATA) + _der(0xA0, signed_data))


def sign_content(
    content: bytes, key: ec.EllipticCurvePrivateKey, signer_key_id: bytes, *, deterministic: bool = False
) -> bytes:
    """CMS-sign raw TLV content (ECDSA-P256-SHA256 over the content itself, no signed attributes).

    `deterministic`: RFC 6979 nonces, so the same content and key give the same CD bytes (seeded runs,
    development CDs that a resumed batch must reproduce).
    """
    if len(signer_key_id) != 20:
        raise InputError.field("CD signing key id", signer_key_id.hex(), "a 20-byte subjectKeyIdentifier")
    signature = key.sign(content, ec.ECDSA(hashes.SHA256(), deterministic_signing=deterministic))
    return wrap(content, signer_key_id, signature)


def sign(
    cd: CertificationDeclaration,
    key: ec.EllipticCurvePrivateKey,
    cert: x509.Certificate,
    *,
    deterministic: bool = False,
) -> bytes:
    """The signed CD (DER), as `chip-cert gen-cd --key KEY --cert CERT` writes it; key must match cert."""
    certs.check_key_matches(cert, key, what="CD signing key")
    return sign_content(encode_content(cd), key, certs.skid(cert), deterministic=deterministic)


class _DerReader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def fail(self, why: str) -> AttestationError:
        return AttestationError(f"CD envelope: {why} ({self.what} at offset {self.pos})")

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def peek(self) -> int:
        if self.at_end():
            raise self.fail("truncated")
        return self.data[self.pos]

    def read(self, tag: int) -> bytes:
        if self.peek() != tag:
            raise self.fail(f"expected tag 0x{tag:02x}, found 0x{self.data[self.pos]:02x}")
        pos = self.pos + 1
        if pos >= len(self.data):
            raise self.fail("truncated length")
        n = self.data[pos]
        pos += 1
        if n & 0x80:
            k = n & 0x7F
            if not 1 <= k <= 3 or pos + k > len(self.data):
                raise self.fail("bad length")
            n = int.from_bytes(self.data[pos : pos + k], "big")
            pos += k
        if pos + n > len(self.data):
            raise self.fail("truncated value")
        self.pos = pos + n
        return self.data[pos : pos + n]

    def sub(self, tag: int, what: str) -> _DerReader:
        return _DerReader(self.read(tag), what)


def parse_envelope(der: bytes) -> SignedEnvelope:
    """Take the SDK's CMS SignedData apart (content, signer SKID, signature) without verifying it.

    Accepted as the SDK's CMS_Verify/CMS_ExtractKeyId read it: version 3, sha256, id-data content, one
    SignerInfo identified by subjectKeyIdentifier, ecdsa-with-SHA256, no signed attributes. Optional
    certificates/crls are skipped (the SDK never writes them) and noted in `extra`.
    """
    top = _DerReader(der, "ContentInfo").sub(0x30, "ContentInfo")
    if top.read(0x06) != _OID_SIGNED_DATA:
        raise top.fail("content type is not signedData")
    sd = top.sub(0xA0, "[0]").sub(0x30, "SignedData")
    if sd.read(0x02) != b"\x03":
        raise sd.fail("SignedData version is not 3")
    algs = sd.sub(0x31, "digestAlgorithms").sub(0x30, "AlgorithmIdentifier")
    if algs.read(0x06) != _OID_SHA256:
        raise algs.fail("digest algorithm is not sha256")
    encap = sd.sub(0x30, "EncapsulatedContentInfo")
    if encap.read(0x06) != _OID_DATA:
        raise encap.fail("eContentType is not id-data")
    content = encap.sub(0xA0, "[0] eContent").read(0x04)
    extra = {}
    for tag, name in ((0xA0, "certificates"), (0xA1, "crls")):
        if sd.peek() == tag:
            sd.read(tag)
            extra[name] = True
    si = sd.sub(0x31, "signerInfos").sub(0x30, "SignerInfo")
    if si.read(0x02) != b"\x03":
        raise si.fail("SignerInfo version is not 3 (signer must be identified by subjectKeyIdentifier)")
    kid = si.read(0x80)
    if si.sub(0x30, "digestAlgorithm").read(0x06) != _OID_SHA256:
        raise si.fail("SignerInfo digest algorithm is not sha256")
    if si.peek() == 0xA0:
        raise si.fail("signed attributes are not supported (the SDK signs the content directly)")
    if si.sub(0x30, "signatureAlgorithm").read(0x06) != _OID_ECDSA_SHA256:
        raise si.fail("signature algorithm is not ecdsa-with-SHA256")
    signature = si.read(0x04)
    return SignedEnvelope(bytes(content), bytes(kid), bytes(signature), extra)


def decode(der: bytes) -> CertificationDeclaration:
    """The CD's fields from a signed CD, without checking the signature (see `verify`)."""
    return decode_content(parse_envelope(der).content)


def verify(
    der: bytes, signing_cert: x509.Certificate | ec.EllipticCurvePublicKey, key_id: bytes | None = None
) -> CertificationDeclaration:
    """Check a signed CD against its signer and return its fields; AttestationError says what failed.

    With a certificate the signer key id must equal its SKID (as the SDK looks the key up by kid); with a
    bare public key pass `key_id` to get the same check.
    """
    env = parse_envelope(der)
    if isinstance(signing_cert, x509.Certificate):
        public = signing_cert.public_key()
        key_id = certs.skid(signing_cert)
    else:
        public = signing_cert
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise AttestationError("CD signing certificate: public key is not EC")
    if key_id is not None and env.signer_key_id != key_id:
        raise AttestationError(
            f"CD signer key id {env.signer_key_id.hex().upper()} does not match the signing certificate's "
            f"{key_id.hex().upper()}"
        )
    try:
        public.verify(env.signature, env.content, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise AttestationError("CD signature does not verify with the signing certificate's key") from None
    return decode_content(env.content)
