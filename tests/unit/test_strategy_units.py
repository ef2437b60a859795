"""The strategy's parts without a commissioner: the credential plan, factory data for a board, the board
record, broken boards (a real-board profile whose programmer port does not exist), plan validation."""

from __future__ import annotations

import stat

import pytest
from cd_signing import CREDS as TEST_CREDS
from emulated_boards import lab

from hil.boards import load_inventory
from hil.errors import BoardError, InputError, ProgrammerError, TransientError
from hil.factory_data import codec
from hil.flow import DeviceCredentials, Pki, TestHooks, board_io, factory
from hil.flow.record import PAA_FILE, RECORD_FILE, BoardRecord
from hil.matter import cd as cdmod
from hil.matter import certs
from hil.strategy import BoardBroken, Strategy

VID, PID = 0xFFF2, 0x8001


@pytest.fixture(scope="module")
def signer():
    key = certs.load_private_key(TEST_CREDS / "Chip-Test-CD-Signing-Key.pem")
    return key, certs.load_certificate(TEST_CREDS / "Chip-Test-CD-Signing-Cert.pem")


@pytest.fixture(scope="module")
def pki(signer) -> Pki:
    return Pki.generate(VID, PID, cd_signer=signer, seed="units")


def test_a_seeded_pki_is_the_same_bytes_in_every_process(signer):
    a, b = (Pki.generate(VID, PID, cd_signer=signer, seed=7) for _ in range(2))
    assert (a.paa_der, a.pai.cert_der(), a.cd) == (b.paa_der, b.pai.cert_der(), b.cd)
    assert a.id == b.id and repr(a).startswith("Pki(vid=0xFFF2")
    c = Pki.generate(VID, PID, cd_signer=signer, seed=8)
    assert c.paa_der != a.paa_der
    fresh = Pki.generate(VID, PID, cd_signer=signer)
    assert fresh.paa_der != Pki.generate(VID, PID, cd_signer=signer).paa_der
    device = DeviceCredentials.for_board(a, "b", seed=7)
    certs.verify_chain(device.dac.cert, a.pai.cert, a.paa.cert)  # chip-cert profiles, signatures, validity
    assert cdmod.verify(a.cd, signer[1]).product_ids == [PID]


def test_pki_needs_exactly_one_cd_source_and_a_cd_for_its_product(signer, pki):
    with pytest.raises(InputError, match="give exactly one"):
        Pki.generate(VID, PID)
    with pytest.raises(InputError, match="give exactly one"):
        Pki.generate(VID, PID, cd_signer=signer, cd=pki.cd)
    with pytest.raises(InputError, match="not allowed for VID 0xFFF2 PID 0x8002"):
        Pki.generate(VID, PID + 1, cd=pki.cd)
    reused = Pki.generate(VID, PID, cd=pki.cd, paa=pki.paa)
    assert reused.paa_der == pki.paa_der and reused.pai.cert_der() != pki.pai.cert_der()


def test_device_credentials_are_per_board_and_reproducible(pki):
    a = DeviceCredentials.for_board(pki, "board-a", seed=1)
    assert a.fingerprint() == DeviceCredentials.for_board(pki, "board-a", seed=1).fingerprint()
    assert a.dac.cert_der() == DeviceCredentials.for_board(pki, "board-a", seed=1).dac.cert_der()
    b = DeviceCredentials.for_board(pki, "board-b", seed=1)
    assert (a.passcode, a.dac_serial) != (b.passcode, b.dac_serial)
    assert str(a.passcode) not in repr(a) and "key" not in repr(a).lower()
    assert a.manual_code() and a.qr_code(pki).startswith("MT:")
    fixed = DeviceCredentials.for_board(
        pki, "board-a", passcode=20202021, discriminator=0xF00, iterations=2000
    )
    assert (fixed.passcode, fixed.discriminator, fixed.iterations) == (20202021, 0xF00, 2000)
    with pytest.raises(InputError, match="passcode"):
        DeviceCredentials.for_board(pki, "board-a", passcode=11111111)
    with pytest.raises(InputError, match="discriminator"):
        DeviceCredentials.for_board(pki, "board-a", discriminator=0x1000)


def test_factory_data_follows_the_board_profile(tmp_path, pki):
    inv = tmp_path / "boards.toml"
    inv.write_text(
        '[board.rt]\nfamily = "rt1060"\nemulated = true\naes_key = "2B7E151628AED2A6ABF7158809CF4F3C"\n'
        '[board.hw]\nfamily = "k32w1"\nemulated = true\nfactory_data_address = 0xFE080\n'
        "factory_data_size = 0x800\n[board.hw.options]\nhw_params = true\n"
    )
    boards = load_inventory(inv)
    rt, hw = boards.get("rt"), boards.get("hw")
    device = DeviceCredentials.for_board(pki, "rt", seed=1)
    built = factory.build(pki, device, rt)
    assert "AES-128-ECB" in built.layout and built.request.aes_key == rt.aes_key_bytes
    parsed = codec.parse(built.image, rt.aes_key_bytes)
    assert parsed.ok and parsed.first_record(8).value == device.passcode.to_bytes(4, "little")
    wrapped = factory.build(pki, device, hw)
    assert "hw_params" in wrapped.layout and codec.parse(wrapped.image).layout == "hw_params"
    assert built.sha256[:16] in repr(built) and "image" not in repr(built)
    corrupt = factory.build(pki, device, hw, TestHooks(corrupt_factory_data=factory.flip_payload_byte))
    assert not codec.parse(corrupt.image).ok


def test_test_hooks_relax_only_their_own_checks(pki):
    profile = load_inventory().get("k32w0x1-emu")
    other_pai = certs.generate_pai(pki.paa, "Other PAI", VID, PID)
    foreign = DeviceCredentials.for_board(pki, profile, dac_issuer=other_pai)
    with pytest.raises(InputError, match="dac-chain"):
        factory.build(pki, foreign, profile)
    factory.build(pki, foreign, profile, TestHooks(foreign_pai=other_pai))
    pid_hook = TestHooks(basic_info_product_id=PID + 1)
    assert (
        pid_hook.allow == {"dac-vid-pid", "cd-vid-pid", "pai-vid-pid"} and "dac-chain" not in pid_hook.allow
    )
    with pytest.raises(InputError, match="dac-chain"):  # the PID hook does not excuse a broken chain
        factory.build(pki, foreign, profile, pid_hook)
    image = factory.build(pki, DeviceCredentials.for_board(pki, profile), profile, pid_hook).image
    assert codec.parse(image).first_record(10).value == (PID + 1).to_bytes(2, "little")


# --------------------------------------------------------------------------------------- strategy + boards


def test_the_state_is_recorded_for_the_board_and_shared_by_equal_plans(tmp_path, pki):
    with lab(tmp_path, {"b1": "rw61x"}) as the:
        profile = the.profile("b1")
        s = Strategy(profile, pki, workdir=tmp_path / "w", seed=3)
        assert s.state == "off" and s.broken is None
        results = s.ensure("provisioned")
        assert results.state == "provisioned" and s.boot.dac_key == "plain"
        board = the.root / "b1"
        assert stat.S_IMODE((board / RECORD_FILE).stat().st_mode) == 0o600  # it holds the passcode
        assert (board / PAA_FILE).read_bytes() == pki.paa_der
        record = BoardRecord.load("b1")
        assert record.passcode == s.device.passcode and "passcode" not in record.public()
        assert record.factory_data_sha256 == results.steps[1].details["sha256"]
        # The same plan from another object (another test, another worker): already there.
        twin = Strategy(profile, pki, workdir=tmp_path / "w", seed=3)
        assert twin.state == "provisioned" and twin.ensure("provisioned").steps == []
        # Another plan: the board holds someone else's credentials, so it is "off" for it.
        other = Strategy(profile, pki, workdir=tmp_path / "w", seed=4)
        assert other.state == "off"
        other.ensure("provisioned")
        assert twin.state == "off" and other.state == "provisioned"
        assert s.node_config().discriminator == other.device.discriminator


def test_a_board_whose_programmer_fails_is_broken_and_fails_fast(tmp_path, pki, monkeypatch):
    monkeypatch.setenv("HIL_STATE_DIR", str(tmp_path / "state"))
    inv = tmp_path / "boards.toml"
    inv.write_text(f'[board.real]\nfamily = "rw61x"\n[board.real.connection]\nport = "{tmp_path}/ttyNONE"\n')
    profile = load_inventory(inv).get("real")
    device = DeviceCredentials.for_board(pki, profile)
    s = Strategy(profile, pki, workdir=tmp_path / "w", device=device)
    with pytest.raises(ProgrammerError) as exc:
        s.ensure("provisioned")
    first = str(exc.value)
    assert s.broken == f"provisioned: {first}"
    assert [(r.name, r.ok) for r in s.steps][-1] == ("flash", False)
    for strategy in (s, Strategy(profile, pki, workdir=tmp_path / "w", device=device)):
        with pytest.raises(BoardBroken) as fast:
            strategy.ensure("commissioned")
        assert first in str(fast.value) and isinstance(fast.value, BoardError)
    assert len(s.steps) == 4  # nothing more ran
    s.forget()
    assert s.broken is None
    with pytest.raises(ProgrammerError):  # an explicit re-run meets the fault again
        s.ensure("provisioned")


def test_a_non_hil_error_keeps_its_category_through_the_strategy(tmp_path, pki, monkeypatch):
    """A step's non-HilError becomes a BoardError raised from it: a lab error that declares itself
    infrastructure stays infrastructure (not broken), an unclassified OS error still breaks the board."""
    from hil.reports import category_of

    class LabLinkDown(OSError):
        hil_category = "infrastructure"

    failures = [LabLinkDown("exporter went away"), OSError("disk full")]

    def fail(*args, **kwargs):
        raise failures.pop(0)

    monkeypatch.setattr(board_io, "flash_and_boot", fail)
    with lab(tmp_path, {"b1": "rw61x"}) as the:
        s = Strategy(the.profile("b1"), pki, workdir=tmp_path / "w", seed=5)
        with pytest.raises(BoardError) as exc:
            s.ensure("provisioned")
        assert "flash: LabLinkDown: exporter went away" in str(exc.value)
        assert isinstance(exc.value.__cause__, LabLinkDown)
        assert category_of(exc.value, "flashing") == "infrastructure"
        assert s.broken is None and s.steps[-1].error is exc.value
        with pytest.raises(BoardError) as exc:
            s.ensure("provisioned")
        assert category_of(exc.value, "flashing") == "flashing"
        assert s.broken is not None and "OSError: disk full" in s.broken


def test_an_infrastructure_failure_is_recorded_but_does_not_break_the_board(tmp_path, pki, monkeypatch):
    """A probe lost mid-flash (TransientError, the lab's fault) leaves the board re-triable: the plugin's
    infrastructure retry must run the transition again, not skip on a broken mark."""
    real = board_io.flash_and_boot
    calls = []

    def probe_lost_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise TransientError("J-Link: probe lost")
        return real(*args, **kwargs)

    monkeypatch.setattr(board_io, "flash_and_boot", probe_lost_once)
    with lab(tmp_path, {"b1": "rw61x"}) as the:
        profile = the.profile("b1")
        s = Strategy(profile, pki, workdir=tmp_path / "w", seed=5)
        with pytest.raises(TransientError):
            s.ensure("provisioned")
        assert s.broken is None and s.state == "off"
        assert BoardRecord.load("b1").broken == {}
        failed = s.steps[-1]
        assert (failed.name, failed.ok) == ("flash", False) and "probe lost" in failed.details["error"]
        assert s.ensure("provisioned").state == "provisioned"  # what the retry does
        assert s.state == "provisioned" and len(calls) == 2


def test_plan_validation(tmp_path, pki):
    profile = load_inventory().get("rt1060-emu")
    with pytest.raises(InputError, match="keeps its DAC key plain"):
        Strategy(profile, pki, workdir=tmp_path, convert=True)
    with pytest.raises(InputError, match="commissioner"):
        Strategy(profile, pki, workdir=tmp_path, commissioner="ssh")
    s = Strategy(profile, pki, workdir=tmp_path)
    with pytest.raises(InputError, match="state"):
        s.ensure("flashed")
    k32w1 = load_inventory().get("k32w1-emu")
    assert Strategy(k32w1, pki, workdir=tmp_path, convert=True).path[2] == "converted"


def test_a_corrupt_record_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HIL_STATE_DIR", str(tmp_path))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / RECORD_FILE).write_text("{not json")
    with pytest.raises(InputError, match="delete it to start over"):
        BoardRecord.load("b")
