"""Negatives: each defect is refused where it should be, with the reason the real component gives.

- a commissioner whose trust store lacks the session's PAA refuses the board: SDK attestation error 101;
- corrupted factory data: the firmware's SHA-256 check refuses it at boot, in its own words;
- factory data encrypted with a key the firmware does not hold (AES boards): the firmware refuses it;
- a DAC whose VID/PID disagree with the PAI and CD: refused while generating, before the board is touched.

The plans here are not the session's (hil_make_strategy): a failure marks only that plan broken, and the
session's plan re-provisions the board if a later test needs it. Each expected refusal is reported as a
passing step, so the qualification summary shows the board refused what it must.
"""

from __future__ import annotations

import secrets

import pytest

from hil import programmers
from hil.commissioning.verdict import AttestationResult, Stage
from hil.errors import FirmwareError, InputError
from hil.flow import TestHooks
from hil.flow.credentials import with_changes
from hil.flow.factory import flip_payload_byte
from hil.matter import certs
from hil.pytest_plugin.fixtures import HilBoard, with_aes_key
from hil.reports import attach_file, register_private_key, step
from hil.strategy import BoardBroken

pytestmark = [pytest.mark.nightly]


@pytest.fixture(scope="session")
def unrelated_paa(pki) -> certs.Credential:
    """A PAA of the same vendor that issued nothing here: one per session, so one extra controller."""
    paa = certs.generate_paa("HIL unrelated PAA", pki.vid)
    assert paa.key is not None
    register_private_key(paa.key)
    return paa


def test_trust_store_without_the_session_paa_refuses_with_101(
    commissioned_device: HilBoard, unrelated_paa: certs.Credential
) -> None:
    hb = commissioned_device
    with step("attestation", hb.profile, title="a trust store without the session's PAA: 101") as s:
        verdict = hb.strategy.commission(paas=[unrelated_paa])
        s.facts["verdict"] = verdict.summary()
        if verdict.log_path:
            attach_file(verdict.log_path, f"controller log (unrelated PAA) {hb.name}")
        assert not verdict.ok
        assert verdict.stage is Stage.ATTESTATION, verdict.summary()
        assert verdict.attestation is AttestationResult.PaaNotFound, verdict.summary()
    assert hb.strategy.state == "commissioned" and hb.strategy.broken is None


def test_corrupt_factory_data_is_refused_by_the_firmware(hil_make_strategy, board) -> None:
    strategy = hil_make_strategy("corrupt", hooks=TestHooks(corrupt_factory_data=flip_payload_byte))
    with step("firmware", board, title="corrupted factory data is refused at boot") as s:
        with pytest.raises(FirmwareError) as refused:
            strategy.ensure("provisioned")
        reason = str(refused.value)
        s.facts["reason"] = reason
        # The firmware's own words: its SHA-256 check (after AES decryption on AES boards) failed.
        assert "Factory data init failed with:" in reason and "SHA" in reason, reason
    assert strategy.broken, "a failed transition must mark the plan broken"
    with pytest.raises(BoardBroken, match=r"Factory data init failed"):
        strategy.ensure("provisioned")  # no second attempt, no cascade: the first reason, at once


def test_factory_data_under_a_wrong_aes_key_is_refused(hil_make_strategy, board) -> None:
    if not board.aes_key:
        pytest.skip(f"{board.name}: its firmware reads plain factory data (no AES key in boards.toml)")
    wrong = with_aes_key(board, secrets.token_hex(len(board.aes_key) // 2))
    strategy = hil_make_strategy("wrong-aes-key", profile=wrong)
    with step("firmware", board, title="factory data under a wrong AES key is refused at boot") as s:
        with pytest.raises(FirmwareError) as refused:
            strategy.ensure("provisioned")
        reason = str(refused.value)
        s.facts["reason"] = reason
        assert "Factory data init failed with:" in reason and "wrong key" in reason, reason


def test_vid_pid_mismatch_is_refused_before_flashing(
    hil_make_strategy, board, pki, device_credentials
) -> None:
    other_pid = pki.pid ^ 0x0001
    dac = certs.generate_dac(pki.pai, "HIL DAC with another PID", pki.vid, other_pid)
    device = with_changes(device_credentials, dac=dac)
    strategy = hil_make_strategy("vid-pid-mismatch", device=device)
    before = programmers.read(board)
    title = f"DAC PID 0x{other_pid:04X} vs PAI/CD PID 0x{pki.pid:04X}: refused before flashing"
    with step("generation", board, title=title), pytest.raises(InputError, match=r"(?i)pid"):
        strategy.ensure("provisioned")
    assert not [s for s in strategy.steps if s.name in ("flash", "boot")], [s.line() for s in strategy.steps]
    assert programmers.read(board) == before, "the board was written although the plan was refused"
