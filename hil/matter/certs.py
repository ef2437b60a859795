"""PAA, PAI and DAC certificates with `chip-cert gen-att-cert`'s profiles; loading, profile and chain checks.

The builders reproduce chip-cert's TBSCertificate byte for byte (specs/matter-credentials.md §1.1): subject
CN + Matter VID/PID attributes (one RDN each, UTF8String, 4 upper-case hex digits), extensions in the order
basicConstraints, keyUsage, SKID, AKID with chip-cert's criticality, path lengths PAA 1 / PAI 0 / DAC none,
random 63-bit serials, notAfter = valid_from + lifetime days − 1 s (or 9999-12-31 23:59:59 for
4294967295 days), ECDSA P-256 with SHA-256. The checks mirror what the SDK's DefaultDACVerifier enforces
(§1.3), so a credential that passes here is not rejected by a commissioner for its format.

`generate_dac` sits on the bulk-generation path: it does a key generation and one signature and nothing
that re-parses files or re-derives the issuer's identifiers beyond `cryptography`'s cached extensions.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from hil.errors import AttestationError, InputError

#: Matter DN attribute OIDs (Matter Core spec §6.5.6.2; chip-cert `gNIDChipAttAttrVID/PID`).
OID_MATTER_VID = x509.ObjectIdentifier("1.3.6.1.4.1.37244.2.1")
OID_MATTER_PID = x509.ObjectIdentifier("1.3.6.1.4.1.37244.2.2")
#: chip-cert's `kCertValidDays_NoWellDefinedExpiration`: notAfter becomes 99991231235959Z.
NO_WELL_DEFINED_EXPIRATION = 0xFFFFFFFF
NO_EXPIRY_NOT_AFTER = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
DEFAULT_LIFETIME_DAYS = 7305  # generate_certs.py's default (20 years)
MAX_CN_LEN = 64  # X.509 ub-common-name; the SDK also truncates the CN to 64 for the Mvid:/Mpid: fallback
CN_VID_PREFIX = "Mvid:"  # kVIDPrefixForCNEncoding (CN fallback encoding, chip-cert -a)
CN_PID_PREFIX = "Mpid:"

CertKind = Literal["paa", "pai", "dac"]
#: chip-cert's basicConstraints per type (`GetExtensionBasicPathLenValue`).
_PATHLEN: dict[str, int | None] = {"paa": 1, "pai": 0, "dac": None}
_KU_CA = x509.KeyUsage(False, False, False, False, False, True, True, False, False)  # keyCertSign, cRLSign
_KU_DAC = x509.KeyUsage(True, False, False, False, False, False, False, False, False)  # digitalSignature
# chip-cert accepts these --valid-from formats (GeneralUtils.cpp ParseDateTime).
_VALID_FROM_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y%m%d%H%M%SZ",
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y%m%d",
)


@dataclass
class Credential:
    """A certificate and (when known) its private key; the unit PAA/PAI/DAC builders take and return."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey | None = None

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def cert_der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    def key_pem(self) -> bytes:
        """SEC1 PEM (the `EC PRIVATE KEY` block), byte-identical to chip-cert's `PEM_write_ECPrivateKey`."""
        return private_key_bytes(self._need_key(), serialization.Encoding.PEM)

    def key_der(self) -> bytes:
        """SEC1/RFC 5915 DER, what `chip-cert convert-key --x509-der` and NXP's generate.py --dac_key use."""
        return private_key_bytes(self._need_key(), serialization.Encoding.DER)

    def _need_key(self) -> ec.EllipticCurvePrivateKey:
        if self.key is None:
            raise InputError(f"{subject_cn(self.cert)!r}: no private key is available for this certificate")
        return self.key


def private_key_bytes(key: ec.EllipticCurvePrivateKey, encoding: serialization.Encoding) -> bytes:
    return key.private_bytes(
        encoding, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


# --------------------------------------------------------------------------------------------- inputs


def check_id(name: str, value: int | None, *, required: bool) -> None:
    """VID/PID must be 16-bit unsigned (chip-cert parses them as hex into a uint16)."""
    if value is None:
        if required:
            raise InputError(f"{name}: missing; required for this certificate type")
        return
    if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise InputError.field(name, value, "allowed 0..0xFFFF")


def parse_valid_from(text: str) -> datetime:
    """chip-cert's --valid-from formats, as UTC (e.g. '2023-01-01 00:00:00', '2023-01-01', '20230101')."""
    for fmt in _VALID_FROM_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise InputError.field(
        "valid_from", text, "use YYYY-MM-DD [HH:MM:SS], YYYY/MM/DD [HH:MM:SS], YYYYMMDD or YYYYMMDDHHMMSSZ"
    )


def validity(valid_from: datetime | None, lifetime_days: int) -> tuple[datetime, datetime]:
    """(notBefore, notAfter) as chip-cert computes them; valid_from defaults to today 00:00:00 UTC."""
    if valid_from is None:
        valid_from = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    elif valid_from.tzinfo is None:
        valid_from = valid_from.replace(tzinfo=UTC)
    valid_from = valid_from.replace(microsecond=0)
    if not isinstance(lifetime_days, int) or not 1 <= lifetime_days <= NO_WELL_DEFINED_EXPIRATION:
        raise InputError.field(
            "lifetime",
            lifetime_days,
            f"allowed 1..{NO_WELL_DEFINED_EXPIRATION} days "
            f"({NO_WELL_DEFINED_EXPIRATION} = no well-defined expiration)",
        )
    if lifetime_days == NO_WELL_DEFINED_EXPIRATION:
        return valid_from, NO_EXPIRY_NOT_AFTER
    try:
        not_after: datetime | None = valid_from + timedelta(days=lifetime_days) - timedelta(seconds=1)
    except OverflowError:
        not_after = None
    if not_after is None or not_after > NO_EXPIRY_NOT_AFTER:
        raise InputError.field(
            "lifetime",
            lifetime_days,
            f"the certificate would end after 9999-12-31; use {NO_WELL_DEFINED_EXPIRATION} for no expiry",
        )
    return valid_from, not_after


def _subject(common_name: str, vid: int | None, pid: int | None, vid_pid_as_cn: bool) -> x509.Name:
    if not isinstance(common_name, str) or not common_name:
        raise InputError("subject common name: missing; chip-cert requires --subject-cn")
    if vid_pid_as_cn:  # chip-cert -a: "<cn> Mvid:FFF1 Mpid:8000", no Matter attributes
        common_name += (f" {CN_VID_PREFIX}{vid:04X}" if vid is not None else "") + (
            f" {CN_PID_PREFIX}{pid:04X}" if pid is not None else ""
        )
    if len(common_name) > MAX_CN_LEN:
        raise InputError.field("subject common name", common_name, f"at most {MAX_CN_LEN} characters")
    rdns = [x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])]
    if not vid_pid_as_cn:
        for oid, value in ((OID_MATTER_VID, vid), (OID_MATTER_PID, pid)):
            if value is not None:  # unknown OIDs default to UTF8String, as chip-cert registers them
                rdns.append(x509.RelativeDistinguishedName([x509.NameAttribute(oid, f"{value:04X}")]))
    return x509.Name(rdns)


def _new_key(key: ec.EllipticCurvePrivateKey | None) -> ec.EllipticCurvePrivateKey:
    if key is None:
        return ec.generate_private_key(ec.SECP256R1())
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise InputError("key: not an EC P-256 (prime256v1) private key; Matter requires P-256")
    return key


def random_serial() -> int:
    """chip-cert's serial: RAND_bytes(8) & 0x7FFF..., i.e. a positive 63-bit integer (never 0)."""
    return secrets.randbits(63) or 1


# --------------------------------------------------------------------------------------------- builders


def _build(
    kind: CertKind,
    subject: x509.Name,
    issuer: Credential | None,
    key: ec.EllipticCurvePrivateKey | None,
    valid_from: datetime | None,
    lifetime_days: int,
    serial: int | None,
    deterministic: bool = False,
) -> Credential:
    not_before, not_after = validity(valid_from, lifetime_days)
    key = _new_key(key)
    public = key.public_key()
    own_skid = x509.SubjectKeyIdentifier.from_public_key(public)
    if issuer is None:  # self-signed PAA
        issuer_name, issuer_key, issuer_skid = subject, key, own_skid.digest
    else:
        if issuer.key is None:
            raise InputError(f"issuer {subject_cn(issuer.cert)!r}: its private key is needed to sign")
        issuer_name, issuer_key, issuer_skid = issuer.cert.subject, issuer.key, skid(issuer.cert)
    if serial is not None and not 0 < serial < 2**159:
        raise InputError.field("serial", serial, "a positive integer below 2^159")
    path_len = _PATHLEN[kind]
    builder = (
        x509.CertificateBuilder()
        .serial_number(serial if serial is not None else random_serial())
        .issuer_name(issuer_name)
        .subject_name(subject)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .public_key(public)
        .add_extension(x509.BasicConstraints(ca=kind != "dac", path_length=path_len), critical=True)
        .add_extension(_KU_DAC if kind == "dac" else _KU_CA, critical=True)
        .add_extension(own_skid, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(issuer_skid, None, None), critical=False)
    )
    # deterministic: RFC 6979 nonces, so the same inputs give the same certificate bytes (test vectors).
    cert = builder.sign(issuer_key, hashes.SHA256(), ecdsa_deterministic=deterministic or None)
    return Credential(cert, key)


def generate_paa(
    common_name: str,
    vid: int | None = None,
    *,
    valid_from: datetime | None = None,
    lifetime_days: int = DEFAULT_LIFETIME_DAYS,
    key: ec.EllipticCurvePrivateKey | None = None,
    serial: int | None = None,
    vid_pid_as_cn: bool = False,
    deterministic: bool = False,
) -> Credential:
    """A self-signed PAA (`chip-cert gen-att-cert --type a`): CA pathlen 1, optional VID, never a PID."""
    check_id("vendor_id", vid, required=False)
    subject = _subject(common_name, vid, None, vid_pid_as_cn)
    return _build("paa", subject, None, key, valid_from, lifetime_days, serial, deterministic)


def generate_pai(
    paa: Credential,
    common_name: str,
    vid: int,
    pid: int | None = None,
    *,
    valid_from: datetime | None = None,
    lifetime_days: int = DEFAULT_LIFETIME_DAYS,
    key: ec.EllipticCurvePrivateKey | None = None,
    serial: int | None = None,
    vid_pid_as_cn: bool = False,
) -> Credential:
    """A PAI signed by `paa` (`--type i`): CA pathlen 0, VID required, PID optional."""
    return _issue("pai", paa, common_name, vid, pid, valid_from, lifetime_days, key, serial, vid_pid_as_cn)


def generate_dac(
    pai: Credential,
    common_name: str,
    vid: int,
    pid: int,
    *,
    valid_from: datetime | None = None,
    lifetime_days: int = DEFAULT_LIFETIME_DAYS,
    key: ec.EllipticCurvePrivateKey | None = None,
    serial: int | None = None,
    vid_pid_as_cn: bool = False,
) -> Credential:
    """A DAC signed by `pai` (`--type d`): end entity, digitalSignature only, VID and PID required."""
    return _issue("dac", pai, common_name, vid, pid, valid_from, lifetime_days, key, serial, vid_pid_as_cn)


def _issue(
    kind: Literal["pai", "dac"],
    issuer: Credential,
    common_name: str,
    vid: int,
    pid: int | None,
    valid_from: datetime | None,
    lifetime_days: int,
    key: ec.EllipticCurvePrivateKey | None,
    serial: int | None,
    vid_pid_as_cn: bool,
) -> Credential:
    """A PAI or DAC under `issuer` (the PAA of a PAI, the PAI of a DAC): VID always, PID required on a DAC."""
    check_id("vendor_id", vid, required=True)
    check_id("product_id", pid, required=kind == "dac")
    _check_issuer(issuer, "paa" if kind == "pai" else "pai")
    subject = _subject(common_name, vid, pid, vid_pid_as_cn)
    return _build(kind, subject, issuer, key, valid_from, lifetime_days, serial)


def _check_issuer(issuer: Credential, kind: CertKind) -> None:
    """The issuer must be a CA whose key is given and matches; checked per call (cheap: ~2 µs)."""
    try:
        bc = issuer.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except (x509.ExtensionNotFound, ValueError):
        bc = None
    if bc is not None and bc.ca and kind == "paa" and bc.path_length == 0:
        raise InputError(
            f"PAA certificate {subject_cn(issuer.cert)!r}: basicConstraints pathlen:0 cannot issue a PAI "
            "(is it a PAI?)"
        )
    if bc is None or not bc.ca:
        raise InputError(
            f"{kind.upper()} certificate {subject_cn(issuer.cert)!r}: not a CA (basicConstraints "
            "CA:TRUE required to issue certificates)"
        )
    if issuer.key is None:
        raise InputError(f"{kind.upper()} {subject_cn(issuer.cert)!r}: its private key is needed to sign")
    check_key_matches(issuer.cert, issuer.key, what=f"{kind.upper()} key")


# --------------------------------------------------------------------------------------------- loading


def _read(data_or_path: bytes | str | os.PathLike[str], what: str) -> bytes:
    if isinstance(data_or_path, bytes | bytearray | memoryview):
        return bytes(data_or_path)
    try:
        return Path(data_or_path).read_bytes()
    except OSError as exc:
        raise InputError(f"{what}: cannot read {str(data_or_path)!r}: {exc.strerror or exc}") from None


def _label(data_or_path: object, what: str) -> str:
    return (
        what if isinstance(data_or_path, bytes | bytearray | memoryview) else f"{what} {str(data_or_path)!r}"
    )


def load_certificate(
    data_or_path: bytes | str | os.PathLike[str], *, what: str = "certificate"
) -> x509.Certificate:
    """An X.509 certificate from PEM or DER bytes, or from a file holding either."""
    data = _read(data_or_path, what)
    try:
        if b"-----BEGIN" in data:
            cert = x509.load_pem_x509_certificate(data)
        else:
            cert = x509.load_der_x509_certificate(data)
        # cryptography parses lazily: touch what every caller reads, so a malformed certificate fails here
        # with one message instead of as a KeyError, TypeError (a BitString-typed name attribute) or
        # UnsupportedAlgorithm deep in a later check.
        _ = (cert.subject, cert.issuer, cert.extensions, cert.public_key(), cert.serial_number)
    except (ValueError, KeyError, TypeError, x509.InvalidVersion, UnsupportedAlgorithm):
        raise InputError(f"{_label(data_or_path, what)}: not a PEM or DER X.509 certificate") from None
    return cert


def load_private_key(
    data_or_path: bytes | str | os.PathLike[str],
    password: bytes | None = None,
    *,
    what: str = "private key",
) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from PEM or DER (SEC1 or PKCS#8, optionally encrypted) or a raw 32-byte scalar.

    The raw form is what NXP factory data stores; accepting it lets a key be read back from a dump.
    """
    data = _read(data_or_path, what)
    label = _label(data_or_path, what)
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, password)
        elif len(data) == 32:
            key = ec.derive_private_key(int.from_bytes(data, "big"), ec.SECP256R1())
        else:
            key = serialization.load_der_private_key(data, password)
    except TypeError:
        raise InputError(
            f"{label}: encrypted; give its password"
            if password is None
            else f"{label}: not encrypted; give no password"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise InputError(f"{label}: not a readable PEM/DER private key (or wrong password)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise InputError(f"{label}: not an EC P-256 (prime256v1) private key; Matter requires P-256")
    return key


def load_credential(
    cert: bytes | str | os.PathLike[str],
    key: bytes | str | os.PathLike[str] | None = None,
    password: bytes | None = None,
    *,
    what: str = "",
) -> Credential:
    """Certificate (+ key, checked to match) from files or bytes, e.g. an existing PAA to reuse."""
    prefix = f"{what} " if what else ""
    c = load_certificate(cert, what=f"{prefix}certificate")
    k = None
    if key is not None:
        k = load_private_key(key, password, what=f"{prefix}key")
        check_key_matches(c, k, what=f"{prefix}key")
    return Credential(c, k)


# --------------------------------------------------------------------------------------------- inspection


def check_key_matches(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, *, what: str = "key") -> None:
    """Raise InputError unless `key` is the private half of `cert`'s public key."""
    if key.public_key() != cert.public_key():
        raise InputError(f"{what}: does not match the public key of certificate {subject_cn(cert)!r}")


def subject_cn(cert: x509.Certificate) -> str:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else cert.subject.rfc4514_string()


def skid(cert: x509.Certificate) -> bytes:
    """The subjectKeyIdentifier (20 bytes for Matter certificates); the CD signer id and PAA lookup key."""
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        raise InputError(f"certificate {subject_cn(cert)!r}: has no subjectKeyIdentifier extension") from None


def akid(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        return None


def _hex16(text: str) -> int | None:
    """The SDK's UppercaseHexToUint16: exactly 4 characters of 0-9A-F."""
    if len(text) == 4 and all(c in "0123456789ABCDEF" for c in text):
        return int(text, 16)
    return None


def matter_vid_pid(cert: x509.Certificate) -> tuple[int | None, int | None]:
    """(VID, PID) from the subject as the SDK extracts them (`ExtractVIDPIDFromX509Cert`).

    Matter OID attributes win; each must be 4 upper-case hex digits and appear once, else the certificate
    is malformed (AttestationError). Only without any Matter attribute is the CN's `Mvid:XXXX`/`Mpid:XXXX`
    fallback read (CN truncated to 64 characters; unparsable fallback values are ignored, as in the SDK).
    """
    found: dict[x509.ObjectIdentifier, int] = {}
    for attr in cert.subject:
        if attr.oid in (OID_MATTER_VID, OID_MATTER_PID):
            name = "VID" if attr.oid == OID_MATTER_VID else "PID"
            if attr.oid in found:
                raise AttestationError(f"certificate {subject_cn(cert)!r}: duplicate Matter {name} attribute")
            value = _hex16(str(attr.value))
            if value is None:
                raise AttestationError(
                    f"certificate {subject_cn(cert)!r}: Matter {name} attribute "
                    f"{attr.value!r} is not 4 upper-case hex digits"
                )
            found[attr.oid] = value
    if found:
        return found.get(OID_MATTER_VID), found.get(OID_MATTER_PID)
    cn = subject_cn(cert)[:MAX_CN_LEN]
    out: list[int | None] = []
    for prefix in (CN_VID_PREFIX, CN_PID_PREFIX):
        i = cn.find(prefix)
        out.append(_hex16(cn[i + len(prefix) : i + len(prefix) + 4]) if i >= 0 else None)
    return out[0], out[1]


def profile_problems(cert: x509.Certificate, kind: CertKind) -> list[str]:
    """What the SDK's `VerifyAttestationCertificateFormat` would reject in `cert` as a `kind` (empty = ok)."""
    problems: list[str] = []
    if cert.version != x509.Version.v3:
        problems.append("not an X.509 v3 certificate")
    if cert.serial_number <= 0:
        problems.append("serial number must be positive")
    if cert.signature_algorithm_oid != SignatureAlgorithmOID.ECDSA_WITH_SHA256:
        problems.append("signature algorithm is not ecdsa-with-SHA256")
    pub = cert.public_key()
    if not isinstance(pub, ec.EllipticCurvePublicKey) or pub.curve.name != "secp256r1":
        problems.append("public key is not EC P-256")
    try:
        exts = cert.extensions
    except (x509.DuplicateExtension, ValueError) as exc:
        return [*problems, f"extensions unreadable or duplicated ({exc})"]

    def ext(cls: type) -> x509.Extension | None:
        try:
            return exts.get_extension_for_class(cls)
        except x509.ExtensionNotFound:
            return None

    bc = ext(x509.BasicConstraints)
    want_pathlen = _PATHLEN[kind]
    if bc is None or not bc.critical:
        problems.append("basicConstraints must be present and critical")
    elif kind == "dac" and (bc.value.ca or bc.value.path_length is not None):
        problems.append("basicConstraints must be CA:FALSE without pathlen for a DAC")
    elif kind == "pai" and (not bc.value.ca or bc.value.path_length != 0):
        problems.append("basicConstraints must be CA:TRUE, pathlen:0 for a PAI")
    elif kind == "paa" and (not bc.value.ca or bc.value.path_length not in (None, want_pathlen)):
        problems.append("basicConstraints must be CA:TRUE with pathlen absent or 1 for a PAA")

    ku = ext(x509.KeyUsage)
    if ku is None or not ku.critical:
        problems.append("keyUsage must be present and critical")
    else:
        bits = _ku_bits(ku.value)
        if kind == "dac" and bits != {"digital_signature"}:
            problems.append(f"keyUsage must be exactly digitalSignature for a DAC (has {sorted(bits)})")
        if kind != "dac" and not (
            {"key_cert_sign", "crl_sign"} <= bits <= {"key_cert_sign", "crl_sign", "digital_signature"}
        ):
            problems.append(
                f"keyUsage must be keyCertSign+cRLSign (digitalSignature allowed) (has {sorted(bits)})"
            )

    sk = ext(x509.SubjectKeyIdentifier)
    if sk is None or sk.critical or len(sk.value.digest) != 20:
        problems.append("subjectKeyIdentifier must be present, non-critical and 20 bytes")
    ak = ext(x509.AuthorityKeyIdentifier)
    if ak is None:
        if kind != "paa":
            problems.append("authorityKeyIdentifier is mandatory for a DAC or PAI")
    elif ak.critical or ak.value.key_identifier is None or len(ak.value.key_identifier) != 20:
        problems.append("authorityKeyIdentifier must be non-critical with a 20-byte keyIdentifier")

    try:
        vid, pid = matter_vid_pid(cert)
    except AttestationError as exc:
        problems.append(str(exc).split(": ", 1)[-1])
    else:
        if kind == "paa" and pid is not None:
            problems.append("a PAA must not carry a product ID")
        if kind in ("pai", "dac") and vid is None:
            problems.append("vendor ID attribute is required")
        if kind == "dac" and pid is None:
            problems.append("product ID attribute is required for a DAC")
    return problems


def _ku_bits(ku: x509.KeyUsage) -> set[str]:
    names = [
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
    ]
    bits = {n for n in names if getattr(ku, n)}
    if ku.key_agreement:
        bits |= {n for n in ("encipher_only", "decipher_only") if getattr(ku, n)}
    return bits


def check_profile(cert: x509.Certificate, kind: CertKind) -> None:
    """Raise AttestationError naming every profile violation of `cert` as a `kind`."""
    problems = profile_problems(cert, kind)
    if problems:
        raise AttestationError(f"{kind.upper()} {subject_cn(cert)!r}: format invalid: " + "; ".join(problems))


def _fmt(t: datetime) -> str:
    return f"{t:%Y-%m-%d %H:%M:%S}"


def _valid_at(cert: x509.Certificate, when: datetime) -> bool:
    return cert.not_valid_before_utc <= when <= cert.not_valid_after_utc


def verify_chain(
    dac: x509.Certificate,
    pai: x509.Certificate,
    paa: x509.Certificate,
    *,
    at: datetime | None = None,
) -> None:
    """Check DAC ← PAI ← PAA as the SDK does before trusting a device; raise AttestationError with the reason.

    Profiles (format), issuer names and AKID = issuer SKID, signatures, and validity of all three at the
    verification time, which defaults to the DAC's notBefore (the SDK's choice: a DAC stays attestable
    for its whole life even if the PAI is renewed). Pass `at` to check another instant (e.g. now).
    """
    for cert, kind in ((paa, "paa"), (pai, "pai"), (dac, "dac")):
        check_profile(cert, kind)  # type: ignore[arg-type]
    for child, parent, names in ((pai, paa, ("PAI", "PAA")), (dac, pai, ("DAC", "PAI"))):
        if akid(child) != skid(parent):
            raise AttestationError(
                f"{names[0]} authorityKeyIdentifier does not match the {names[1]} "
                "subjectKeyIdentifier (issued by another key)"
            )
        try:
            child.verify_directly_issued_by(parent)
        except ValueError:
            raise AttestationError(f"{names[0]} issuer name does not equal the {names[1]} subject") from None
        except InvalidSignature:
            raise AttestationError(
                f"{names[0]} signature does not verify with the {names[1]} public key"
            ) from None
    try:
        paa.verify_directly_issued_by(paa)
    except (ValueError, InvalidSignature):
        raise AttestationError("PAA is not a valid self-signed certificate") from None
    when = at or dac.not_valid_before_utc
    for cert, name in ((dac, "DAC"), (pai, "PAI"), (paa, "PAA")):
        if not _valid_at(cert, when):
            raise AttestationError(
                f"{name} is not valid at {_fmt(when)} UTC (valid {_fmt(cert.not_valid_before_utc)}"
                f" .. {_fmt(cert.not_valid_after_utc)})"
            )
