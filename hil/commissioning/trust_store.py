"""PAA trust-store directories that hold exactly the PAAs a run means to trust, and nothing else.

The SDK's FileAttestationTrustStore loads every `*.der*` file of a directory (PEM files are ignored) and,
depending on the SDK version, an empty or all-invalid store may fall back to the SDK's built-in test roots
(matter-credentials.md §1.3). A commissioning test is only meaningful when the commissioner trusts the
PAA under test and nothing more, so stores are written fresh, and a store handed to chip-tool is refused
unless it holds only the expected PAA(s).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from hil.errors import InputError
from hil.fileio import atomic_write
from hil.matter import certs

PaaInput = bytes | x509.Certificate | certs.Credential | str | os.PathLike[str]
_SINGLE = (bytes, x509.Certificate, certs.Credential, str, os.PathLike)


def load_paas(paas: PaaInput | Sequence[PaaInput]) -> list[x509.Certificate]:
    """PAAs from DER/PEM bytes, certificates, Credentials or files; at least one; each must be a PAA."""
    items: Iterable[PaaInput] = [paas] if isinstance(paas, _SINGLE) else list(paas)  # type: ignore[list-item]
    out = []
    for item in items:
        if isinstance(item, certs.Credential):
            cert = item.cert
        elif isinstance(item, x509.Certificate):
            cert = item
        else:
            cert = certs.load_certificate(item, what="PAA")
        problems = certs.profile_problems(cert, "paa")
        if problems:
            raise InputError(f"PAA {certs.subject_cn(cert)!r}: not a PAA certificate: " + "; ".join(problems))
        out.append(cert)
    if not out:
        raise InputError(
            "PAA trust store: empty is not allowed; give the PAA to trust (an empty store may fall back to "
            "the SDK's test roots)"
        )
    return out


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def write_trust_store(directory: str | os.PathLike[str], paas: PaaInput | Sequence[PaaInput]) -> Path:
    """Create `directory` holding exactly `paas` as `<SKID>.der`; refuses a directory that has files."""
    path = Path(directory)
    if path.exists() and any(path.iterdir()):
        raise InputError(f"PAA trust store {str(path)!r}: not empty; give a new or empty directory")
    for cert in load_paas(paas):
        atomic_write(path / f"{certs.skid(cert).hex().upper()}.der", der(cert))
    return path


def check_trust_store(directory: str | os.PathLike[str], paas: PaaInput | Sequence[PaaInput]) -> Path:
    """Refuse a store holding anything but `paas` (extra files, other PAAs, PEM-only copies, missing PAA)."""
    path = Path(directory)
    if not path.is_dir():
        raise InputError(f"PAA trust store {str(path)!r}: not a directory")
    wanted = {der(c) for c in load_paas(paas)}
    found: set[bytes] = set()
    for entry in sorted(path.iterdir()):
        if not entry.is_file():
            raise InputError(
                f"PAA trust store {str(path)!r}: {entry.name!r} is not allowed; only the PAA DER file(s)"
            )
        data = entry.read_bytes()
        try:
            cert = certs.load_certificate(data, what=str(entry))
        except InputError:
            raise InputError(
                f"PAA trust store {str(path)!r}: {entry.name!r} is not a certificate; "
                "only the PAA DER file(s)"
            ) from None
        if der(cert) not in wanted:
            raise InputError(
                f"PAA trust store {str(path)!r}: {entry.name!r} ({certs.subject_cn(cert)!r}) is not allowed; "
                "the store must hold only the PAA under test"
            )
        if not entry.name.lower().endswith(".der") or data != der(cert):
            raise InputError(
                f"PAA trust store {str(path)!r}: {entry.name!r} must be DER with a .der name (the SDK "
                "ignores other files)"
            )
        found.add(data)
    missing = wanted - found
    if missing:
        names = ", ".join(repr(certs.subject_cn(x509.load_der_x509_certificate(d))) for d in missing)
        raise InputError(f"PAA trust store {str(path)!r}: does not hold the PAA {names}")
    return path
