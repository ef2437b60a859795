"""DAC private key -> secure-subsystem blob (K32W1, RW61x): NXP's conversion on a provisioned board.

After the conversion app ran, the factory data in flash holds a blob of the family's size in tag 4 and
no longer the plain key, every other field is unchanged and valid, the normal app boots on the blob, and
(on an emulated board) what the secure subsystem signs verifies with the DAC: the blob is this DAC's key.
Families without a secure subsystem are skipped by `converted_board` with that reason.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from hil import boot, programmers
from hil.conversion import dac_key_length
from hil.emulator.sss import blob_format
from hil.pytest_plugin.fixtures import HilBoard, inspect_image
from hil.reports import attach_text, step

pytestmark = [pytest.mark.nightly, pytest.mark.qualification]


def test_dac_key_is_a_secure_subsystem_blob_in_flash(converted_board: HilBoard) -> None:
    hb = converted_board
    fmt = blob_format(hb.profile.family)
    assert fmt is not None
    with step("conversion", hb.profile, title="read back the converted factory data") as s:
        region = programmers.read(hb.profile)
        length, parsed = dac_key_length(region, hb.profile)
        s.facts["dac_key_length"] = length
    assert length == fmt.length, f"tag 4 is {length} bytes, expected the {fmt.name} ({fmt.length})"
    key = hb.device.dac.key
    assert key is not None
    plain = key.private_numbers().private_value.to_bytes(32, "big")
    assert plain not in parsed.payload and plain not in region, "the plain DAC key is still in flash"
    # Every other field is what was generated; the converted image is valid as the firmware reads it.
    generated = dac_key_length(hb.factory_data.image, hb.profile)[1]
    before = {r.tag: r.value for r in generated.records if r.tag != 4}
    after = {r.tag: r.value for r in parsed.records if r.tag != 4}
    assert after == before
    report = inspect_image(region, hb.profile, hb.pki)
    assert report["valid"], report["problems"]


def test_app_boots_on_the_blob_and_signs_as_the_dac(converted_board: HilBoard) -> None:
    hb = converted_board
    with step("conversion", hb.profile, title="boot on the converted key") as s:
        report = boot.firmware_status(hb.profile)
        attach_text("\n".join(report.lines), f"console {hb.name}")
        s.facts["boot"] = report.summary()
        report.raise_if_not_provisioned()
    assert report.dac_key == "sss-blob", report.fields
    if not hb.profile.emulated:
        return  # a real board's signature is checked by commissioning (device attestation)
    message = f"hil attestation challenge {hb.name}".encode()
    signature = hb.strategy.node_config().signer.sign(message)  # type: ignore[union-attr]
    public = hb.device.dac.cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
