"""The Matter test CD signing key and certificate as files, for tests that pass paths to commands.

Written once per test process from `hil.matter.test_cd_key` (the published test vector; the certificate is
rebuilt by the library), into a private temporary directory that is removed at exit. Nothing is read from
outside the repository. `CREDS / "Chip-Test-CD-Signing-Key.pem"` keeps the SDK's file names.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from hil.fileio import atomic_write
from hil.matter import test_cd_key

KEY_NAME, CERT_NAME = "Chip-Test-CD-Signing-Key.pem", "Chip-Test-CD-Signing-Cert.pem"


def _write() -> Path:
    root = Path(tempfile.mkdtemp(prefix="hil-test-cd-key-"))
    atexit.register(shutil.rmtree, root, True)
    credential = test_cd_key.signing_credential()
    atomic_write(root / KEY_NAME, credential.key_pem(), secret=True)
    atomic_write(root / CERT_NAME, credential.cert_pem())
    return root


#: Directory holding Chip-Test-CD-Signing-Key.pem (0600) and Chip-Test-CD-Signing-Cert.pem.
CREDS = _write()
KEY, CERT = CREDS / KEY_NAME, CREDS / CERT_NAME


def signer() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """(key, certificate), as `Pki.generate(cd_signer=...)` and `cd.sign` take them."""
    credential = test_cd_key.signing_credential()
    assert credential.key is not None
    return credential.key, credential.cert
