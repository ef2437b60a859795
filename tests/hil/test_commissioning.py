"""Commissioning against the session's PAA: the real commissioner accepts the board as provisioned.

The SDK controller (a real CHIP stack, in a private network namespace) trusts exactly the session's PAA;
the board's node is built from what its firmware read from flash and signs with the key the firmware holds
(after conversion on K32W1 / RW61x, the secure-subsystem blob). PASE with the board's passcode, device
attestation (DAC -> PAI -> PAA, CD signature and VID/PID), CSR/NOC and CASE must all pass, and over CASE the
node reports the identity that was generated for it.
"""

from __future__ import annotations

import pytest

from hil.commissioning.verdict import Stage
from hil.pytest_plugin.fixtures import HilBoard
from hil.reports import step

pytestmark = [pytest.mark.nightly, pytest.mark.qualification]


def test_commissioned_against_the_session_paa(commissioned_device: HilBoard) -> None:
    hb = commissioned_device
    verdict = hb.verdict
    assert verdict is not None, "the board reached 'commissioned' without a verdict"
    with step("attestation", hb.profile, title="device attestation against the session's PAA") as s:
        s.facts["verdict"] = verdict.summary()
        assert verdict.ok, verdict.summary()
        assert verdict.stage is Stage.COMPLETE and verdict.attestation is None
    assert hb.state == "commissioned"
    details = verdict.details
    if not hb.profile.emulated and "vendor_id" not in details:
        return  # chip-tool's pairing log carries no BasicInformation read-back
    assert (details["vendor_id"], details["product_id"]) == (hb.pki.vid, hb.pki.pid)
    assert details["serial_number"] == hb.device.serial_number
    assert details["product_name"] == hb.pki.product_name
