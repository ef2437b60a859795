"""The strategy end to end: each emulated family provisioned through its own programmer and commissioned by
the real CHIP SDK controller against the session's generated PAA; negatives fail at the right stage.

Real everywhere: board processes speaking DK6 / J-Link / SDP+blhost / blhost on ptys and TCP, the emulated
firmware judging the factory data it finds in its flash and reporting on its console, the Matter node fed
by that firmware's NodeConfig (its signer is the board process: plain key or SSS blob), the SDK controller
in a network namespace. One PKI and one controller per PAA set for the module, as a session would share.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from cd_signing import CREDS as TEST_CREDS
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from emulated_boards import lab

from hil import programmers
from hil.commissioning import controller as controller_mod
from hil.commissioning.controller import ControllerPool
from hil.commissioning.sandbox import Sandbox
from hil.commissioning.verdict import AttestationResult, Stage
from hil.emulator.board import ensure_running, find_running
from hil.errors import AttestationError, FirmwareError, InputError
from hil.factory_data import codec
from hil.flow import DeviceCredentials, Pki, TestHooks
from hil.flow.factory import flip_payload_byte
from hil.matter import certs
from hil.strategy import BoardBroken, Strategy

VID, PID = 0xFFF2, 0x8001
AES = 'aes_key = "2B7E151628AED2A6ABF7158809CF4F3C"'
BOARDS = {
    "k32w0x1-emu": "k32w0x1",
    "k32w1-emu": "k32w1",
    "rt1060-emu": f"rt1060|{AES}",
    "rt1170-emu": f"rt1170|{AES}",
    "rw61x-emu": "rw61x",
    "neg-emu": "rw61x",  # the board the negative plans take turns on
}
FAMILY_PROGRAMMER = {"k32w0x1": "dk6", "k32w1": "jlink", "rt1060": "sdp", "rt1170": "sdp", "rw61x": "blhost"}

_unavailable = controller_mod.availability()
pytestmark = pytest.mark.skipif(_unavailable is not None, reason=f"commissioning: {_unavailable}")


def cd_signer() -> tuple[ec.EllipticCurvePrivateKey, object]:
    key = certs.load_private_key(TEST_CREDS / "Chip-Test-CD-Signing-Key.pem")
    return key, certs.load_certificate(TEST_CREDS / "Chip-Test-CD-Signing-Cert.pem")


@pytest.fixture(scope="module")
def the_lab(tmp_path_factory):
    with lab(tmp_path_factory.mktemp("strategy-lab"), BOARDS) as the:
        yield the


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki.generate(VID, PID, cd_signer=cd_signer())  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def unrelated_paa() -> certs.Credential:
    return certs.generate_paa("Unrelated PAA", VID)


@pytest.fixture(scope="module")
def pool(tmp_path_factory, pki, unrelated_paa):
    with (
        Sandbox(log_dir=tmp_path_factory.mktemp("strategy-logs")) as sandbox,
        ControllerPool(sandbox) as the_pool,
    ):
        the_pool.warm(pki.paa, unrelated_paa)  # both controllers start in parallel
        yield the_pool


def strategy(the_lab, name, pki, pool, tmp_path, **kwargs) -> Strategy:
    return Strategy(the_lab.profile(name), pki, workdir=tmp_path, controller_pool=pool, **kwargs)


@pytest.mark.parametrize("name", ["k32w0x1-emu", "k32w1-emu", "rt1060-emu", "rt1170-emu", "rw61x-emu"])
def test_each_family_is_provisioned_through_its_programmer_and_commissioned(
    the_lab, pki, pool, tmp_path, name
):
    s = strategy(the_lab, name, pki, pool, tmp_path)
    assert s.state == "off" and s.path == ("off", "provisioned", "commissioned")
    results = s.ensure("commissioned")
    assert results.state == s.state == "commissioned" and s.broken is None
    steps = {r.name: r for r in results.steps}
    assert list(steps) == ["credentials", "factory-data", "app-image", "flash", "boot", "commission"]
    assert all(r.ok for r in results.steps)
    profile = the_lab.profile(name)
    assert steps["flash"].details["programmer"] == FAMILY_PROGRAMMER[profile.family] == profile.programmer
    assert steps["boot"].details["boot"] == f"{name}: provisioned (dac_key=plain, converted=no)"
    # The image on the board, read back through the programmer, is the one the factory-data step built.
    region = programmers.read(profile)
    image_len = codec.HEADER_LEN + int.from_bytes(region[4:8], "little")
    assert hashlib.sha256(region[:image_len]).hexdigest() == steps["factory-data"].details["sha256"]
    # The commissioner read BasicInformation over CASE: the board's factory data, not the harness's copy.
    verdict = results.verdict
    assert verdict is not None and verdict.ok, verdict
    assert verdict.details["vendor_id"] == VID and verdict.details["product_id"] == PID
    assert verdict.details["serial_number"] == s.device.serial_number
    # Asking again performs nothing.
    again = s.ensure("commissioned")
    assert again.steps == [] and again.state == "commissioned"
    assert s.ensure("provisioned").steps == []


@pytest.mark.parametrize(("name", "blob_len"), [("k32w1-emu", 56), ("rw61x-emu", 48)])
def test_commissioned_after_the_dac_key_conversion(the_lab, pki, pool, tmp_path, name, blob_len):
    """K32W1 (SSS ELKE blob, 56 bytes) and RW61x (ELS blob, 48 bytes): the node signs through the blob."""
    s = strategy(the_lab, name, pki, pool, tmp_path, convert=True)
    assert s.path == ("off", "provisioned", "converted", "commissioned")
    first = s.ensure("converted")
    assert [r.name for r in first.steps][-2:] == ["convert", "boot"]
    assert s.boot.dac_key == "sss-blob" and s.state == "converted"
    # Tag 4 on the board is now the secure subsystem's blob, not the plain key.
    region = programmers.read(the_lab.profile(name))
    assert len(codec.parse(region).first_record(4).value) == blob_len
    results = s.ensure("commissioned")
    assert [r.name for r in results.steps] == ["commission"]
    assert results.verdict is not None and results.verdict.ok, results.verdict
    assert s.state == "commissioned"


def test_converted_is_not_a_state_of_a_plain_plan(the_lab, pki, pool, tmp_path):
    with pytest.raises(InputError, match="convert=False"):
        strategy(the_lab, "rw61x-emu", pki, pool, tmp_path).ensure("converted")
    with pytest.raises(InputError, match="keeps its DAC key plain"):
        strategy(the_lab, "rt1060-emu", pki, pool, tmp_path, convert=True)


# ------------------------------------------------------------------------------------------- negatives


def test_store_without_our_paa_fails_with_101(the_lab, pki, pool, tmp_path, unrelated_paa):
    s = strategy(the_lab, "neg-emu", pki, pool, tmp_path)
    verdict = s.commission(paas=[unrelated_paa])
    assert verdict.stage is Stage.ATTESTATION and verdict.attestation is AttestationResult.PaaNotFound
    assert s.state == "provisioned" and s.broken is None  # an extra attempt changes nothing
    assert s.commission().ok  # the same board against its own PAA


def test_wrong_passcode_fails_at_pase(the_lab, pki, pool, tmp_path):
    s = strategy(the_lab, "neg-emu", pki, pool, tmp_path)
    wrong = 12345679 if s.device.passcode != 12345679 else 12345680
    verdict = s.commission(passcode=wrong)
    assert verdict.stage is Stage.PASE and verdict.attestation is None, verdict.summary()


def impostor_cd_signer(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """A certificate for `key` that claims the SDK test CD signer's key id (SKID): the SDK finds its own
    trusted certificate by that id and the signature does not verify with it."""
    trusted = cd_signer()[1]
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Impostor CD signer")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier(certs.skid(trusted)), critical=False)  # type: ignore[arg-type]
        .sign(key, hashes.SHA256())
    )


def test_cd_signed_by_a_key_the_sdk_does_not_trust_fails_with_602(the_lab, pool, tmp_path):
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue = Pki.generate(VID, PID, cd_signer=(rogue_key, impostor_cd_signer(rogue_key)))
    verdict = strategy(the_lab, "neg-emu", rogue, pool, tmp_path).commission()
    assert verdict.stage is Stage.ATTESTATION
    assert verdict.attestation is AttestationResult.CertificationDeclarationInvalidSignature, (
        verdict.summary()
    )
    # A signer the SDK has never heard of (its own key id) is refused one step earlier: 601.
    unknown_paa = certs.generate_paa("Unknown CD signer", None, key=rogue_key)
    unknown = Pki.generate(VID, PID, cd_signer=(rogue_key, unknown_paa.cert))
    verdict = strategy(the_lab, "neg-emu", unknown, pool, tmp_path).commission()
    assert verdict.attestation is AttestationResult.CertificationDeclarationNoCertificateFound


def test_basic_information_pid_different_from_the_dac_fails_with_605(the_lab, pki, pool, tmp_path):
    s = strategy(the_lab, "neg-emu", pki, pool, tmp_path, hooks=TestHooks(basic_info_product_id=PID + 1))
    verdict = s.commission()
    assert s.node_config().product_id == PID + 1  # the firmware reports what its factory data says
    assert verdict.stage is Stage.ATTESTATION
    assert verdict.attestation is AttestationResult.CertificationDeclarationInvalidProductId


def test_dac_not_chaining_to_the_pai_fails_with_301_and_breaks_the_commissioned_transition(
    the_lab, pki, pool, tmp_path
):
    other_pai = certs.generate_pai(pki.paa, "Another PAI", VID, PID)
    s = strategy(the_lab, "neg-emu", pki, pool, tmp_path, hooks=TestHooks(foreign_pai=other_pai))
    with pytest.raises(AttestationError, match="301 DacSignatureInvalid") as exc:
        s.ensure("commissioned")
    assert exc.value.exit_code == 4
    assert s.verdict is not None and s.verdict.attestation is AttestationResult.DacSignatureInvalid
    assert s.broken is not None and "commissioned: " in s.broken and "301" in s.broken
    with pytest.raises(BoardBroken, match="301 DacSignatureInvalid"):
        s.ensure("provisioned")


def test_corrupt_factory_data_is_reported_not_provisioned_and_the_board_fails_fast_afterwards(
    the_lab, pki, pool, tmp_path
):
    hooks = TestHooks(corrupt_factory_data=flip_payload_byte)
    device = DeviceCredentials.for_board(pki, "neg-emu")
    s = strategy(the_lab, "neg-emu", pki, pool, tmp_path, hooks=hooks, device=device)
    with pytest.raises(FirmwareError) as exc:
        s.ensure("commissioned")
    assert "board not provisioned" in str(exc.value)
    # RW61x's RAM-buffer provider (NXP): Init returns CHIP_ERROR_NOT_FOUND on a hash mismatch.
    reason = str(exc.value)
    assert "Factory data init failed with: CHIP_ERROR_NOT_FOUND" in reason and "hash mismatch" in reason
    boot = [r for r in s.steps if r.name == "boot"][-1]
    assert not boot.ok and "hash mismatch" in boot.details["error"]
    assert s.broken is not None and s.broken.startswith("provisioned: ")
    assert s.state == "off"

    # Later requests, also from another strategy object with the same plan (another test, another
    # process): the recorded reason, at once, without touching the board.
    handle = find_running("neg-emu")
    resets = handle.status()["resets"]
    again = strategy(the_lab, "neg-emu", pki, pool, tmp_path, hooks=hooks, device=device)
    for req in (lambda: s.ensure("provisioned"), lambda: again.ensure("commissioned"), again.commission):
        with pytest.raises(BoardBroken) as broken:
            req()
        assert "hash mismatch" in str(broken.value) and broken.value.exit_code == 3
    assert handle.status()["resets"] == resets
    # A different plan is not blocked by it: it re-provisions the board.
    assert strategy(the_lab, "neg-emu", pki, pool, tmp_path).ensure("provisioned").state == "provisioned"


def test_vid_pid_mismatch_is_refused_before_the_board_is_touched(the_lab, pki, pool, tmp_path):
    """Device credentials of another product (DAC VID/PID 0x1037/0xA220) under this session's PKI."""
    other = Pki.generate(0x1037, 0xA220, cd_signer=cd_signer())  # type: ignore[arg-type]
    device = DeviceCredentials.for_board(other, "k32w0x1-emu")
    s = strategy(the_lab, "k32w0x1-emu", pki, pool, tmp_path, device=device)
    handle = ensure_running(the_lab.profile("k32w0x1-emu"))  # running, so "untouched" means something
    before = the_lab.flash_file("k32w0x1-emu").read_bytes()
    resets = handle.status()["resets"]
    with pytest.raises(InputError, match=r"dac-vid-pid|pai-vid-pid|dac-chain") as exc:
        s.ensure("provisioned")
    assert exc.value.exit_code == 2
    assert [r.name for r in s.steps] == ["credentials", "factory-data"] and not s.steps[-1].ok
    assert handle.status()["resets"] == resets and the_lab.flash_file("k32w0x1-emu").read_bytes() == before
    assert s.broken is None  # a refused plan is not a broken board
