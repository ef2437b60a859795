"""One device's attestation credentials in one call: PAA (new or reused), PAI, DAC and optionally a signed CD.

This is what NXP's `generate_certs.py` produces with several chip-cert runs, as a library function so the
CLI (`hil certs generate`), the bulk factory-data generator and test fixtures share one implementation.
Everything is validated and built in memory first; nothing is written here (see `nxp_files`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from hil.errors import InputError
from hil.matter import cd as cdmod
from hil.matter import certs, test_cd_key

CdSigner = tuple[ec.EllipticCurvePrivateKey, x509.Certificate]

#: generate_certs.py's fixed gen-cd arguments: certificate id and `--version-number 9876` (parsed as hex).
NXP_CD_CERTIFICATE_ID = "ZIG20142ZB330003-24"
NXP_CD_VERSION_NUMBER = 0x9876


@dataclass
class CredentialSet:
    paa: certs.Credential
    pai: certs.Credential
    dac: certs.Credential
    cd: bytes | None = None  # signed CD (DER)
    paa_generated: bool = True


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def load_cd_signer(
    key: str | os.PathLike[str] | None,
    cert: str | os.PathLike[str] | None,
    *,
    flags: tuple[str, str] = ("--cd-signing-key", "--cd-signing-cert"),
    notice: Callable[[str], None] = _stderr,
) -> CdSigner:
    """The CD signing key and certificate from files, or the Matter test CD key when neither is given.

    The default is the reference tools' (NXP's generate_certs.py signs development CDs with the SDK's test
    key, which commissioners trust for development); `notice` gets one line saying so and naming `flags`.
    One file without the other is bad input: a key is useless without the certificate that names it.
    """
    key_flag, cert_flag = flags
    if key is None and cert is None:
        notice(test_cd_key.NOTICE.format(how=f"{key_flag} and {cert_flag}"))
        signer = test_cd_key.signing_credential()
        assert signer.key is not None
        return signer.key, signer.cert
    if key is None or cert is None:
        missing, given = (key_flag, cert_flag) if key is None else (cert_flag, key_flag)
        raise InputError(f"{missing}: missing; {given} needs it (give both, or neither for the test CD key)")
    signer_key = certs.load_private_key(key, what=key_flag)
    signer_cert = certs.load_certificate(cert, what=cert_flag)
    certs.check_key_matches(signer_cert, signer_key, what=key_flag)
    return signer_key, signer_cert


def nxp_declaration(
    vid: int, pid: int, *, device_type: int = 0, cd_type: int = 1,
    certificate_id: str = NXP_CD_CERTIFICATE_ID, version_number: int = NXP_CD_VERSION_NUMBER,
) -> cdmod.CertificationDeclaration:
    """The CD content generate_certs.py asks chip-cert for: one PID, its fixed id and version number."""
    return cdmod.CertificationDeclaration(
        vendor_id=vid,
        product_ids=[pid],
        device_type_id=device_type,
        certificate_id=certificate_id,
        version_number=version_number,
        certification_type=cd_type,
    )


def development_cd(
    vid: int,
    pid: int,
    *,
    device_type: int = 0,
    cd_type: int = 1,
    how: str = "a signed CD",
    notice: Callable[[str], None] = _stderr,
) -> bytes:
    """A CD for VID/PID with generate_certs.py's fixed fields, signed with the Matter test CD key.

    Deterministic (RFC 6979): the same VID/PID give the same bytes, so a resumed batch is unchanged.
    """
    certs.check_id("vendor_id", vid, required=True)
    certs.check_id("product_id", pid, required=True)
    declaration = nxp_declaration(vid, pid, device_type=device_type, cd_type=cd_type)
    cdmod.validate(declaration)
    notice(test_cd_key.NOTICE.format(how=how))
    signer = test_cd_key.signing_credential()
    assert signer.key is not None
    return cdmod.sign(declaration, signer.key, signer.cert, deterministic=True)


def generate_set(
    vid: int,
    pid: int,
    common_name: str,
    *,
    paa: certs.Credential | None = None,
    valid_from: datetime | None = None,
    lifetime_days: int = certs.DEFAULT_LIFETIME_DAYS,
    cd_signer: CdSigner | None = None,
    cd_type: int = 1,
    device_type: int = 0,
    certificate_id: str = NXP_CD_CERTIFICATE_ID,
    version_number: int = NXP_CD_VERSION_NUMBER,
) -> CredentialSet:
    """PAA (generated without VID unless `paa` is given), PAI (VID), DAC (VID+PID), and a CD if `cd_signer`.

    Every input is checked before any key is made, so a bad value fails fast with an InputError.
    """
    certs.check_id("vendor_id", vid, required=True)
    certs.check_id("product_id", pid, required=True)
    certs.validity(valid_from, lifetime_days)
    declaration = nxp_declaration(
        vid, pid, device_type=device_type, cd_type=cd_type, certificate_id=certificate_id,
        version_number=version_number,
    )
    if cd_type not in cdmod.CD_TYPES:  # checked even without a CD: generate_certs.py users pass it blindly
        raise InputError.field("cd_type", cd_type, "allowed 0 (development), 1 (provisional), 2 (official)")
    if cd_signer is not None:
        cdmod.validate(declaration)
        certs.check_key_matches(cd_signer[1], cd_signer[0], what="CD signing key")
        certs.skid(cd_signer[1])
    generated = paa is None
    if paa is None:
        paa = certs.generate_paa(common_name, None, valid_from=valid_from, lifetime_days=lifetime_days)
    pai = certs.generate_pai(paa, common_name, vid, valid_from=valid_from, lifetime_days=lifetime_days)
    dac = certs.generate_dac(pai, common_name, vid, pid, valid_from=valid_from, lifetime_days=lifetime_days)
    signed = cdmod.sign(declaration, *cd_signer) if cd_signer is not None else None
    return CredentialSet(paa, pai, dac, signed, generated)


def nxp_files(cs: CredentialSet, vid: int, pid: int) -> list[tuple[str, bytes, bool]]:
    """(file name, bytes, is_secret) with generate_certs.py's names; VID/PID as `f'{v:X}'` (no padding).

    A reused PAA is not written again (generate_certs.py only converts a PAA it generated).
    """
    ids = f"{vid:X}-{pid:X}"
    files: list[tuple[str, bytes, bool]] = []
    pairs = [("Chip-PAA-NXP", cs.paa)] if cs.paa_generated else []
    pairs += [(f"Chip-PAI-NXP-{ids}", cs.pai), (f"Chip-DAC-NXP-{ids}", cs.dac)]
    for base, cred in pairs:
        files += [
            (f"{base}-Cert.pem", cred.cert_pem(), False),
            (f"{base}-Cert.der", cred.cert_der(), False),
            (f"{base}-Key.pem", cred.key_pem(), True),
            (f"{base}-Key.der", cred.key_der(), True),
        ]
    if cs.cd is not None:
        files.append((f"Chip-Test-CD-{ids}.der", cs.cd, False))
    return files
