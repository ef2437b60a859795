"""This repository's HIL suites: the CD of the session's PKI is signed with the Matter SDK's test CD key.

The product never embeds a CD key: the plugin takes it from --hil-cd-key/--hil-cd-cert or $HIL_CD_KEY/
$HIL_CD_CERT. Only when neither is given do these suites fall back to the SDK test credentials next to
the repository (../shared/matter-test-credentials), which the SDK controller trusts for test CDs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TEST_CREDENTIALS = Path(__file__).resolve().parents[2] / "../shared/matter-test-credentials"


@pytest.fixture(scope="session")
def hil_cd_signer_files(hil_cd_signer_files: tuple[Path, Path] | None) -> tuple[Path, Path] | None:
    if hil_cd_signer_files is not None:
        return hil_cd_signer_files
    key = TEST_CREDENTIALS / "Chip-Test-CD-Signing-Key.pem"
    cert = TEST_CREDENTIALS / "Chip-Test-CD-Signing-Cert.pem"
    return (key, cert) if key.is_file() and cert.is_file() else None
