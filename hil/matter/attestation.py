"""Offline device-attestation checks: the parts of the SDK's DefaultDACVerifier that need no live device.

Used before provisioning (catch a DAC/PAI/CD mismatch before it is flashed) and after a failed
commissioning (say which rule broke). Each problem is a `Finding` whose `code` is the SDK's
`AttestationVerificationResult` name, so offline findings and a commissioner's verdict read the same.
Rules and order follow specs/matter-credentials.md §1.3.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from hil.errors import AttestationError, HilError
from hil.matter import cd as cdmod
from hil.matter import certs


@dataclass(frozen=True)
class Finding:
    """One failed attestation rule: the SDK's result name and a sentence saying what differs."""

    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def _hex(v: int | None) -> str:
    return "none" if v is None else f"0x{v:04X}"


def check_vid_pid(
    vid: int | None,
    pid: int | None,
    dac: x509.Certificate,
    pai: x509.Certificate,
    cd: cdmod.CertificationDeclaration | None = None,
) -> list[Finding]:
    """VID/PID consistency of DAC, PAI, CD and the device's Basic Information VID/PID (None = not known).

    Steps 4 and 11 of the SDK's verifier: PAI vs DAC, then CD vs Basic Information, then the CD vs the
    DAC/PAI (through dac_origin_* when present).
    """
    out: list[Finding] = []
    try:
        pai_vid, pai_pid = certs.matter_vid_pid(pai)
    except AttestationError as exc:
        return [Finding("kPaiFormatInvalid", exc.message)]
    try:
        dac_vid, dac_pid = certs.matter_vid_pid(dac)
    except AttestationError as exc:
        return [Finding("kDacFormatInvalid", exc.message)]
    if pai_vid is None or pai_vid != dac_vid:
        out.append(Finding("kDacVendorIdMismatch", f"DAC VID {_hex(dac_vid)} != PAI VID {_hex(pai_vid)}"))
    if dac_pid is None:
        out.append(Finding("kDacProductIdMismatch", "DAC has no product ID"))
    elif pai_pid is not None and pai_pid != dac_pid:
        out.append(Finding("kDacProductIdMismatch", f"DAC PID {_hex(dac_pid)} != PAI PID {_hex(pai_pid)}"))
    if cd is None:
        return out
    if vid is not None and cd.vendor_id != vid:
        out.append(
            Finding(
                "kCertificationDeclarationInvalidVendorId",
                f"CD vendor_id {_hex(cd.vendor_id)} != device VID {_hex(vid)}",
            )
        )
    if pid is not None and pid not in cd.product_ids:
        out.append(
            Finding(
                "kCertificationDeclarationInvalidProductId",
                f"device PID {_hex(pid)} not in CD product_ids {[_hex(p) for p in cd.product_ids]}",
            )
        )
    if cd.dac_origin_vendor_id is not None:
        want_vid, origin = cd.dac_origin_vendor_id, "CD dac_origin_vendor_id"
        pid_ok = dac_pid == cd.dac_origin_product_id and pai_pid in (None, cd.dac_origin_product_id)
        pid_rule = f"CD dac_origin_product_id {_hex(cd.dac_origin_product_id)}"
    else:
        want_vid, origin = cd.vendor_id, "CD vendor_id"
        pid_ok = dac_pid in cd.product_ids and (pai_pid is None or pai_pid in cd.product_ids)
        pid_rule = f"CD product_ids {[_hex(p) for p in cd.product_ids]}"
    if dac_vid != want_vid or pai_vid != want_vid:
        out.append(
            Finding(
                "kCertificationDeclarationInvalidVendorId",
                f"DAC VID {_hex(dac_vid)} / PAI VID {_hex(pai_vid)} != {origin} {_hex(want_vid)}",
            )
        )
    if not pid_ok:
        out.append(
            Finding(
                "kCertificationDeclarationInvalidProductId",
                f"DAC PID {_hex(dac_pid)} / PAI PID {_hex(pai_pid)} do not match {pid_rule}",
            )
        )
    return out


def check(
    dac: x509.Certificate,
    pai: x509.Certificate,
    paa: x509.Certificate | None = None,
    cd: bytes | None = None,
    cd_signing_cert: x509.Certificate | None = None,
    *,
    vid: int | None = None,
    pid: int | None = None,
    now: datetime | None = None,
) -> list[Finding]:
    """Every offline rule that can be checked with what is given; an empty list means attestation would pass.

    `cd` is the signed CD (DER); without `cd_signing_cert` only its content is checked. `now` (default:
    the current time) is used for the DAC-expiry rule; the chain itself is checked at the DAC's notBefore,
    as the SDK does.
    """
    out: list[Finding] = []
    for cert, kind, code in ((pai, "pai", "kPaiFormatInvalid"), (dac, "dac", "kDacFormatInvalid")):
        out += [Finding(code, p) for p in certs.profile_problems(cert, kind)]  # type: ignore[arg-type]
    decoded = _check_cd(cd, cd_signing_cert, out) if cd is not None else None
    reported = {f.code for f in out}
    out += [
        f
        for f in check_vid_pid(vid, pid, dac, pai, decoded)
        if not f.code.endswith("FormatInvalid") or f.code not in reported
    ]
    if paa is not None:
        out += [Finding("kPaaFormatInvalid", p) for p in certs.profile_problems(paa, "paa")]
        out += _check_paa(dac, pai, paa, decoded)
    when = now or datetime.now(UTC)
    if not dac.not_valid_before_utc <= when <= dac.not_valid_after_utc:
        out.append(Finding("kDacExpired", f"DAC is not valid at {when:%Y-%m-%d %H:%M:%S} UTC"))
    return out


def _check_paa(
    dac: x509.Certificate,
    pai: x509.Certificate,
    paa: x509.Certificate,
    cd: cdmod.CertificationDeclaration | None,
) -> list[Finding]:
    out: list[Finding] = []
    try:
        paa_skid = certs.skid(paa)
    except HilError as exc:
        return [Finding("kPaaFormatInvalid", exc.message)]
    if certs.akid(pai) != paa_skid:
        return [Finding("kPaaNotFound", "PAI authorityKeyIdentifier is not this PAA's subjectKeyIdentifier")]
    try:
        paa_vid, _ = certs.matter_vid_pid(paa)
        pai_vid, _ = certs.matter_vid_pid(pai)
    except AttestationError:
        paa_vid = pai_vid = None  # already reported as a format problem
    if paa_vid is not None and paa_vid != pai_vid:
        out.append(Finding("kPaiVendorIdMismatch", f"PAA VID {_hex(paa_vid)} != PAI VID {_hex(pai_vid)}"))
    for cert, name in ((pai, "PAI"), (paa, "PAA")):
        if not cert.not_valid_before_utc <= dac.not_valid_before_utc <= cert.not_valid_after_utc:
            out.append(Finding(f"k{name.title()}Expired", f"DAC notBefore is outside the {name} validity"))
    for child, parent, names in ((pai, paa, "PAI by PAA"), (dac, pai, "DAC by PAI")):
        try:
            child.verify_directly_issued_by(parent)
        except InvalidSignature:
            out.append(Finding("kDacSignatureInvalid", f"chain: {names}: signature does not verify"))
        except (ValueError, TypeError) as exc:
            out.append(Finding("kDacSignatureInvalid", f"chain: {names}: {exc}"))
    if certs.akid(dac) != _skid_or_none(pai):
        out.append(Finding("kDacSignatureInvalid", "DAC authorityKeyIdentifier is not the PAI's key id"))
    if cd is not None and cd.authorized_paa_list is not None and paa_skid not in cd.authorized_paa_list:
        out.append(
            Finding(
                "kCertificationDeclarationInvalidPAA", "PAA key id is not in the CD's authorized_paa_list"
            )
        )
    return out


def _skid_or_none(cert: x509.Certificate) -> bytes | None:
    try:
        return certs.skid(cert)
    except HilError:
        return None


def _check_cd(
    der: bytes, signing_cert: x509.Certificate | None, out: list[Finding]
) -> cdmod.CertificationDeclaration | None:
    try:
        envelope = cdmod.parse_envelope(der)
        decoded = cdmod.decode_content(envelope.content)
    except AttestationError as exc:
        out.append(Finding("kCertificationDeclarationInvalidFormat", exc.message))
        return None
    if signing_cert is None:
        return decoded
    try:
        if envelope.signer_key_id != certs.skid(signing_cert):
            out.append(
                Finding(
                    "kCertificationDeclarationNoCertificateFound",
                    f"CD signer key id {envelope.signer_key_id.hex().upper()} is not the given "
                    "signing certificate's",
                )
            )
            return decoded
        cdmod.verify(der, signing_cert)
    except HilError as exc:
        out.append(Finding("kCertificationDeclarationInvalidSignature", exc.message))
    return decoded


def assert_ok(findings: list[Finding]) -> None:
    """Raise AttestationError listing the findings, if any."""
    if findings:
        raise AttestationError("attestation would fail: " + "; ".join(map(str, findings)))
