"""Factory-data acceptance by the firmware: the app boots on the generated data and serves exactly it.

The verdict comes from where a technician reads it: the boot log on the board's console after a reset
(hil.boot), and, on an emulated board, the values the firmware's FactoryDataProvider getters returned
(the NodeConfig its Matter node is built from) plus a signature made with the DAC key the firmware holds.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from hil import boot
from hil.pytest_plugin.fixtures import HilBoard
from hil.reports import attach_text, step

pytestmark = [pytest.mark.nightly, pytest.mark.qualification]


def test_firmware_boots_provisioned_from_the_factory_data(provisioned_board: HilBoard) -> None:
    hb = provisioned_board
    with step("firmware", hb.profile, title="reset and read the boot log") as s:
        report = boot.firmware_status(hb.profile)
        attach_text("\n".join(report.lines), f"console {hb.name}")
        s.facts["boot"] = report.summary()
        report.raise_if_not_provisioned()
    assert report.booted and report.provisioned, report.summary()
    assert report.credentials == "factory-data", report.fields
    assert report.fields.get("discriminator") == str(hb.device.discriminator)


def test_firmware_serves_the_generated_credentials(provisioned_board: HilBoard) -> None:
    hb = provisioned_board
    if not hb.profile.emulated:
        pytest.skip(f"{hb.name} is real: its getters are read over Matter by the commissioning suite")
    with step("firmware", hb.profile, title="the firmware's factory-data getters") as s:
        node = hb.strategy.node_config()
        s.facts["serial_number"] = node.serial_number
        assert node.dac_cert == hb.device.dac.cert_der()
        assert node.pai_cert == hb.pki.pai.cert_der()
        assert node.cd == hb.pki.cd
        assert (node.vendor_id, node.product_id) == (hb.pki.vid, hb.pki.pid)
        assert node.discriminator == hb.device.discriminator
        assert (node.spake2p_salt, node.spake2p_iterations) == (hb.device.salt, hb.device.iterations)
        assert node.spake2p_verifier == hb.device.verifier
        assert node.serial_number == hb.device.serial_number
        # The key the firmware signs with is the DAC's: a signature made on the board verifies with it.
        message = f"hil attestation challenge {hb.name}".encode()
        signature = node.signer.sign(message)
        public = hb.device.dac.cert.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
