"""The real CHIP SDK controller commissions an emulated node built from our own credentials, over real UDP.

Everything here is real except the node's engine (circuitmatter): our PAA -> PAI -> DAC, our CD signed
with the SDK's test CD key, our SPAKE2+ verifier, the SDK controller in its own process trusting only our
PAA, mDNS over a private veth link. Negatives must fail at the right stage with the SDK's own attestation
code, read from its log.

Cost: two controller processes (one per trust store, as the SDK requires), started in parallel once for
the module; one fresh node process per scenario (~0.1 s); each commissioning ~0.3 s.
"""

from __future__ import annotations

import os

import pytest
from cd_signing import CREDS as TEST_CREDS
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from hil.commissioning import controller as controller_mod
from hil.commissioning.controller import ControllerPool, commission_emulated
from hil.commissioning.sandbox import Sandbox
from hil.commissioning.verdict import AttestationResult, Stage
from hil.emulator.matter_device import MatterNode, NodeConfig
from hil.errors import AttestationError, BoardError, CommissioningError
from hil.matter import cd as cd_mod
from hil.matter import certs, onboarding, spake2p

VID, PID = 0xFFF2, 0x8001
PASSCODE = 34567890
DISCRIMINATOR = 3840

_unavailable = controller_mod.availability()
pytestmark = pytest.mark.skipif(_unavailable is not None, reason=f"commissioning: {_unavailable}")


class Creds:
    """One generated credential set, as provisioning would produce it for a board."""

    def __init__(self) -> None:
        self.paa = certs.generate_paa("HIL Test PAA", VID)
        self.pai = certs.generate_pai(self.paa, "HIL Test PAI", VID, PID)
        self.dac = certs.generate_dac(self.pai, "HIL Test DAC", VID, PID)
        self.cd_key = certs.load_private_key(TEST_CREDS / "Chip-Test-CD-Signing-Key.pem")
        self.cd_cert = certs.load_certificate(TEST_CREDS / "Chip-Test-CD-Signing-Cert.pem")
        self.cd_fields = cd_mod.CertificationDeclaration(
            vendor_id=VID, product_ids=[PID], device_type_id=0x0100, certificate_id="ZIG20142ZB330003-24"
        )
        self.cd = cd_mod.sign(self.cd_fields, self.cd_key, self.cd_cert)
        self.salt = os.urandom(32)
        self.iterations = 1000
        self.verifier = spake2p.compute_verifier(PASSCODE, self.salt, self.iterations)

    def node_config(self, **changes: object) -> NodeConfig:
        fields: dict[str, object] = dict(
            discriminator=DISCRIMINATOR,
            spake2p_salt=self.salt,
            spake2p_iterations=self.iterations,
            spake2p_verifier=self.verifier,
            dac_cert=self.dac.cert_der(),
            pai_cert=self.pai.cert_der(),
            cd=self.cd,
            signer=self.dac.key_der(),
            vendor_id=VID,
            product_id=PID,
            vendor_name="NXP Semiconductors",
            product_name="HIL Light",
            serial_number="HIL-0001",
        )
        fields.update(changes)
        return NodeConfig(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def creds() -> Creds:
    return Creds()


def _host_data() -> dict[str, float]:
    return {n: os.path.getmtime(os.path.join("/data", n)) for n in os.listdir("/data")}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    before = _host_data()
    with Sandbox(log_dir=tmp_path_factory.mktemp("commissioning-logs")) as sb:
        sb.host_data_before = before  # type: ignore[attr-defined]
        yield sb


@pytest.fixture(scope="module")
def controllers(sandbox, creds):
    """(ours, other): a controller trusting only our PAA, and one trusting only an unrelated PAA."""
    unrelated = certs.generate_paa("Unrelated PAA", VID)
    with ControllerPool(sandbox) as pool:
        pool.warm(creds.paa, unrelated)  # both start in parallel
        ours = pool.get(creds.paa.cert_der())  # same PAA in another form: the same process
        assert pool.get(creds.paa) is ours and pool.get(unrelated) is not ours
        yield ours, pool.get(unrelated)


def test_commissioned_by_ip_against_a_store_holding_only_our_paa(sandbox, controllers, creds):
    ours, _ = controllers
    assert [p.read_bytes() for p in ours.paa_store.iterdir()] == [creds.paa.cert_der()]
    cfg = creds.node_config()
    with MatterNode(cfg, sandbox) as node:
        verdict = ours.commission_ip(node.address, node.port, PASSCODE)
        status = node.wait_for(lambda s: s.commissioned)
    assert verdict.ok, verdict.summary()
    assert verdict.raise_for_failure() is verdict
    # Read back over CASE: the node reports what the firmware's factory data said.
    assert verdict.details["vendor_id"] == VID and verdict.details["product_id"] == PID
    assert verdict.details["product_name"] == "HIL Light" and verdict.details["serial_number"] == "HIL-0001"
    assert verdict.timings.controller_start_s and verdict.timings.commission_s and verdict.timings.pase_s
    assert verdict.log_path and "Commissioning complete for node ID" in verdict.log_path.read_text()
    # Attestation and CSR were both signed through the configured signer; CommissioningComplete closed
    # the commissioning window.
    assert status.commissioned and status.fabrics == 1 and status.signatures == 2 and not status.window_open


def test_store_without_our_paa_fails_attestation_with_101(sandbox, controllers, creds):
    _, other = controllers
    with MatterNode(creds.node_config(), sandbox) as node:
        verdict = other.commission_ip(node.address, node.port, PASSCODE)
    assert verdict.stage is Stage.ATTESTATION
    assert verdict.attestation is AttestationResult.PaaNotFound
    assert verdict.step == "AttestationVerification"
    assert "err 101" in verdict.log_path.read_text()
    with pytest.raises(AttestationError) as exc:
        verdict.raise_for_failure()
    assert exc.value.exit_code == 4 and "101 PaaNotFound" in str(exc.value)


def test_commissioned_by_discriminator_over_mdns_then_the_window_is_closed(sandbox, controllers, creds):
    ours, other = controllers
    signed: list[bytes] = []

    def sss_sign(message: bytes) -> bytes:  # a signing handle, as the emulated secure subsystem offers
        signed.append(message)
        return creds.dac.key.sign(message, ec.ECDSA(hashes.SHA256()))

    cfg = creds.node_config(signer=sss_sign, discriminator=0x123)
    # announce=False: discovery must come from answering the SDK's `_L<discriminator>` query.
    with MatterNode(cfg, sandbox, announce=False) as node:
        verdict = ours.commission_discriminator(0x123, PASSCODE)
        assert verdict.ok, verdict.summary()
        assert len(signed) == 2  # attestation + CSR, both through the handle
        # The window closed on CommissioningComplete: the node no longer answers PASE. (`other` is used
        # because a timed-out attempt costs its controller a restart; it has no more successes to run.)
        again = other.commission_ip(node.address, node.port, PASSCODE, timeout=1.5)
    assert again.stage is Stage.PASE, again.summary()
    assert "never answered PASE" in again.message
    with pytest.raises(CommissioningError) as exc:
        again.raise_for_failure()
    assert exc.value.exit_code == 4 and "failed at pase" in str(exc.value)


@pytest.mark.parametrize("kind", ["qr", "manual"])
def test_commissioned_from_the_onboarding_codes(sandbox, controllers, creds, kind):
    """QR codes carry the long discriminator (`_L` query), manual codes the short one (`_S` query)."""
    ours, _ = controllers
    disc = 0xABC
    if kind == "qr":
        code = onboarding.qr_payload(VID, PID, PASSCODE, disc, rendezvous=onboarding.RENDEZVOUS_ON_NETWORK)
    else:
        code = onboarding.manual_code(PASSCODE, disc)
    with MatterNode(creds.node_config(discriminator=disc), sandbox, announce=False):
        verdict = ours.commission_code(code)
    assert verdict.ok, verdict.summary()


def test_unknown_discriminator_fails_at_discovery(sandbox, controllers, creds):
    ours, _ = controllers
    with MatterNode(creds.node_config(discriminator=0x456), sandbox, announce=False):
        verdict = ours.commission_discriminator(0x789, PASSCODE, timeout=2)
    assert verdict.stage is Stage.DISCOVERY, verdict.summary()
    assert "Mdns discovery timed out" in verdict.log_path.read_text()


def test_wrong_passcode_fails_at_pase(sandbox, controllers, creds):
    ours, _ = controllers
    with MatterNode(creds.node_config(), sandbox) as node:
        verdict = ours.commission_ip(node.address, node.port, PASSCODE + 1)
        status = node.status
    assert verdict.stage is Stage.PASE, verdict.summary()
    assert verdict.attestation is None
    assert "passcode" in verdict.message
    assert status.signatures == 0 and status.fabrics == 0  # nothing past PASE happened


def test_cd_signed_by_an_untrusted_key_fails_with_602(sandbox, controllers, creds):
    ours, _ = controllers
    rogue = ec.generate_private_key(ec.SECP256R1())
    # Same signer id as the SDK's test CD key, different key: the signature cannot validate.
    bad_cd = cd_mod.sign_content(cd_mod.encode_content(creds.cd_fields), rogue, certs.skid(creds.cd_cert))
    with MatterNode(creds.node_config(cd=bad_cd), sandbox) as node:
        verdict = ours.commission_ip(node.address, node.port, PASSCODE)
    assert verdict.stage is Stage.ATTESTATION
    assert verdict.attestation is AttestationResult.CertificationDeclarationInvalidSignature


def test_basic_information_pid_different_from_the_dac_fails_with_605(sandbox, controllers, creds):
    ours, _ = controllers
    with MatterNode(creds.node_config(product_id=PID + 1), sandbox) as node:
        verdict = ours.commission_ip(node.address, node.port, PASSCODE)
    assert verdict.stage is Stage.ATTESTATION
    assert verdict.attestation is AttestationResult.CertificationDeclarationInvalidProductId


def test_dac_not_chaining_to_the_pai_fails_with_301(sandbox, controllers, creds):
    """Found by running it: the SDK reports a DAC issued under another PAI as 301 DacSignatureInvalid."""
    ours, _ = controllers
    other_pai = certs.generate_pai(creds.paa, "Another PAI", VID, PID)
    foreign_dac = certs.generate_dac(other_pai, "DAC of another PAI", VID, PID)
    cfg = creds.node_config(dac_cert=foreign_dac.cert_der(), signer=foreign_dac.key_der())
    with MatterNode(cfg, sandbox) as node:
        verdict = ours.commission_ip(node.address, node.port, PASSCODE)
    assert verdict.stage is Stage.ATTESTATION
    assert verdict.attestation is AttestationResult.DacSignatureInvalid


def test_signing_with_a_key_that_is_not_the_dacs_fails_with_500(sandbox, controllers, creds):
    """E.g. a secure-subsystem blob converted from the wrong key: the attestation signature is refused."""
    ours, _ = controllers
    wrong = ec.generate_private_key(ec.SECP256R1())
    cfg = creds.node_config(signer=lambda m: wrong.sign(m, ec.ECDSA(hashes.SHA256())))
    with MatterNode(cfg, sandbox) as node:
        verdict = ours.commission_ip(node.address, node.port, PASSCODE)
    assert verdict.stage is Stage.ATTESTATION
    assert verdict.attestation is AttestationResult.AttestationSignatureInvalid


def test_a_signer_that_refuses_fails_the_attestation_request(sandbox, controllers, creds):
    ours, _ = controllers

    def broken(message: bytes) -> bytes:
        raise RuntimeError("secure subsystem: no key blob")

    with MatterNode(creds.node_config(signer=broken), sandbox) as node:
        verdict = ours.commission_ip(node.address, node.port, PASSCODE)
        log = node.log_path.read_text()
    assert verdict.stage is Stage.ATTESTATION and verdict.step == "SendAttestationRequest", verdict.summary()
    assert "no key blob" in log


def test_one_shot_commissioning_of_an_emulated_board(creds, tmp_path):
    """The building block of `hil commission`: its own sandbox and controller, logs kept in log_dir."""
    cfg = creds.node_config()
    verdict = commission_emulated(cfg, creds.paa, PASSCODE, by="discriminator", log_dir=tmp_path)
    assert verdict.ok, verdict.summary()
    assert verdict.log_path.parent == tmp_path and verdict.log_path.exists()
    assert any(p.name.startswith("node-") for p in tmp_path.iterdir())


def test_a_node_that_cannot_start_is_a_board_error(sandbox, creds):
    first = MatterNode(creds.node_config(), sandbox).start()
    try:
        with pytest.raises(BoardError, match="Address already in use") as exc:
            MatterNode(creds.node_config(), sandbox, port=first.port).start()
    finally:
        first.close()
    assert exc.value.exit_code == 3


def test_the_sandbox_keeps_the_host_clean(sandbox, controllers):
    """The controller's /data files live in the sandbox's tmpfs; its only link is the private veth pair."""
    inside = sandbox.run(["ls", "/data"], capture_output=True, text=True, check=True).stdout.split()
    assert "chip_config.ini" in inside
    assert _host_data() == sandbox.host_data_before
    links = sandbox.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    names = sorted(line.split(":")[1].strip().split("@")[0] for line in links.splitlines())
    assert names == sorted(["lo", sandbox.info.node_ifname, sandbox.info.controller_ifname])
