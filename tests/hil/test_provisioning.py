"""Provisioning round trip: generate -> flash -> read back -> the inspector finds the image clean.

The read-back goes through the board's own programmer (DK6, J-Link, blhost, SDP), and the inspector reads
it the way the firmware does (the board's AES key and layout), judged against the session's PAA and CD
signer: what is in flash is exactly what was generated, and it is a valid, self-consistent credential set.
"""

from __future__ import annotations

import hashlib

import pytest

from hil import programmers
from hil.flow.factory import hw_params
from hil.pytest_plugin.fixtures import HilBoard, inspect_image
from hil.reports import FACT_DAC_SERIAL, FACT_FACTORY_DATA_SHA256, attach_json, step

pytestmark = [pytest.mark.nightly, pytest.mark.qualification]


def test_factory_data_reads_back_as_generated_and_inspects_clean(provisioned_board: HilBoard) -> None:
    hb = provisioned_board
    image = hb.factory_data.image
    with step("flashing", hb.profile, title="read back the factory-data region") as s:
        region = programmers.read(hb.profile)
        s.facts[FACT_FACTORY_DATA_SHA256] = hashlib.sha256(region[: len(image)]).hexdigest()
    assert region[: len(image)] == image, "the board holds other bytes than the generated factory data"

    with step("generation", hb.profile, title="inspect the read-back factory data") as s:
        report = inspect_image(region[: len(image)], hb.profile, hb.pki)
        s.facts[FACT_DAC_SERIAL] = hb.device.dac_serial
        attach_json(report, f"inspector (read back) {hb.name}")
        assert report["valid"], report["problems"]
        assert report["problems"] == []
        assert [c for c in report["checks"] if c["status"] == "fail"] == []
        assert report["header"]["hash_ok"] is True
        passed = {c["name"] for c in report["checks"] if c["status"] == "pass"}
        assert {"dac-chain", "dac-vid-pid", "cd-signature"} <= passed, report["checks"]
        dac = report["certificates"]["dac"]
        assert int(dac["serial"], 16) == hb.device.dac.cert.serial_number
        assert (report["layout"] == "hw_params") == hw_params(hb.profile)
        assert bool(report["aes"]) == bool(hb.profile.aes_key)
        fields = {f["name"]: f["value"] for f in report["fields"]}
        assert (fields["vid"], fields["pid"]) == (hb.pki.vid, hb.pki.pid)
        assert fields["discriminator"] == hb.device.discriminator
        assert fields["serial_num"] == hb.device.serial_number
        assert fields["unique_id"] == hb.device.unique_id
