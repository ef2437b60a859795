"""Verdicts: the attestation code table, the log parser's stages, and the exit-4 error mapping."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from hil.commissioning.verdict import AttestationResult, Stage, Timings, Verdict, parse_log
from hil.errors import AttestationError, CommissioningError

CTL = "[1795556547.265269] CHIP:CTL: "


def test_codes_have_the_sdk_names_and_print_as_code_and_name():
    assert AttestationResult(101) is AttestationResult.PaaNotFound
    assert str(AttestationResult.PaaNotFound) == "101 PaaNotFound"
    assert AttestationResult.CertificationDeclarationInvalidSignature == 602
    assert AttestationResult.CertificationDeclarationInvalidProductId == 605
    assert AttestationResult.DacSignatureInvalid == 301
    assert AttestationResult.lookup(4242) is None


def test_the_table_matches_the_installed_sdk():
    """Every description is a string of the controller library in use: our table cannot drift from it."""
    spec = importlib.util.find_spec("chip")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the CHIP SDK Python controller is not installed")
    so = Path(next(iter(spec.submodule_search_locations))) / "_ChipDeviceCtrl.so"
    data = so.read_bytes()
    # The SDK keeps the descriptions in one array, in enum order; ours must appear in that order.
    positions = [data.find(r.description.encode() + b"\0") for r in AttestationResult if r.value >= 100]
    assert all(p >= 0 for p in positions)
    assert positions == sorted(positions)


def test_parse_attestation_failure():
    log = (
        f"{CTL}Error on commissioning step 'AttestationVerification': "
        "'src/controller/CHIPDeviceController.cpp:1291: CHIP Error 0x00000020: Failed Device Attestation'\n"
        f"{CTL}Failed in verifying 'Attestation Information' command received from the device: "
        "err 605 (...)\n"
    )
    found = parse_log(log)
    assert found.stage is Stage.ATTESTATION
    assert found.attestation is AttestationResult.CertificationDeclarationInvalidProductId
    assert found.failed_step == "AttestationVerification"
    assert found.chip_error == "0x00000020: Failed Device Attestation"


def test_unknown_code_is_kept_as_a_number():
    found = parse_log(
        f"{CTL}Failed in verifying 'Attestation Information' command received from the device: err 999\n"
    )
    assert found.stage is Stage.ATTESTATION and found.attestation is None and found.attestation_code == 999


def test_later_step_failure_is_commissioning_with_the_step():
    log = (
        f"{CTL}Remote device completed SPAKE2+ handshake\n"
        f"{CTL}Successfully finished commissioning step 'SendNOC'\n"
        f"{CTL}Error on commissioning step 'kFindOperationalForStayActive': "
        "'src/lib/dnssd/minimal_mdns/Server.cpp:344: CHIP Error 0x00000046: No endpoint was available to "
        "send the message'\n"
    )
    found = parse_log(log)
    assert found.stage is Stage.COMMISSIONING and found.failed_step == "kFindOperationalForStayActive"
    assert found.steps_done == ("SendNOC",)
    assert found.chip_error == "0x00000046: No endpoint was available to send the message"


def test_no_outcome_in_a_cut_log():
    assert parse_log(f"{CTL}Commission called for node ID 0x0000000000000001\n").stage is None


def _failed(stage: Stage, **kw) -> Verdict:
    return Verdict(stage, method="ip", node_id=3, log_path=Path("/logs/x.log"), **kw)


def test_attestation_failure_raises_attestation_error_exit_4():
    v = _failed(Stage.ATTESTATION, attestation=AttestationResult.PaaNotFound, step="AttestationVerification")
    with pytest.raises(AttestationError) as exc:
        v.raise_for_failure()
    assert exc.value.exit_code == 4
    assert "101 PaaNotFound" in str(exc.value) and "/logs/x.log" in str(exc.value)


@pytest.mark.parametrize("stage", [s for s in Stage if s not in (Stage.COMPLETE, Stage.ATTESTATION)])
def test_other_failures_raise_commissioning_error_exit_4(stage):
    with pytest.raises(CommissioningError) as exc:
        _failed(stage, message="why").raise_for_failure()
    assert exc.value.exit_code == 4 and f"failed at {stage.value}" in str(exc.value)


def test_success_returns_itself_and_serialises():
    v = Verdict(Stage.COMPLETE, method="discriminator", node_id=1, timings=Timings(1.1, 0.3, 0.02))
    assert v.ok and v.raise_for_failure() is v
    assert v.summary() == "commissioned node 1 by discriminator in 0.30 s"
    d = json.loads(json.dumps(v.to_dict()))
    assert d["ok"] and d["timings"]["controller_start_s"] == 1.1 and d["attestation"] is None


def test_failure_serialises_the_code_by_name():
    d = _failed(Stage.ATTESTATION, attestation=AttestationResult.DacSignatureInvalid).to_dict()
    assert d["attestation"] == {
        "code": 301,
        "name": "DacSignatureInvalid",
        "text": "DAC signature is invalid",
    }
