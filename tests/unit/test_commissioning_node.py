"""NodeConfig, the contract between an emulated board's firmware and its Matter node; and its signers.

The node itself is exercised against the real SDK controller in test_commissioning_e2e.py.
"""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hil.emulator.matter_device import CallableSigner, KeySigner, NodeConfig, Signer, as_signer
from hil.errors import InputError


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _config(key: ec.EllipticCurvePrivateKey, **changes: object) -> NodeConfig:
    fields: dict[str, object] = dict(
        discriminator=3840,
        spake2p_salt=b"S" * 32,
        spake2p_iterations=1000,
        spake2p_verifier=b"V" * 97,
        dac_cert=b"dac",
        pai_cert=b"pai",
        cd=b"cd",
        signer=_sec1(key),
        vendor_id=0x1037,
        product_id=0xA220,
        vendor_name="NXP Semiconductors",
        product_name="K32W1 light",
    )
    fields.update(changes)
    return NodeConfig(**fields)  # type: ignore[arg-type]


def _sec1(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _verifies(key: ec.EllipticCurvePrivateKey, signer: Signer) -> bool:
    key.public_key().verify(signer.sign(b"attestation tbs"), b"attestation tbs", ec.ECDSA(hashes.SHA256()))
    return True


def test_there_is_no_passcode_field(key):
    """The node gets the verifier only, as firmware does: the passcode never reaches the device side."""
    assert not any("passcode" in name for name in NodeConfig.__dataclass_fields__)


def test_dac_key_in_every_factory_data_form_becomes_a_signer(key):
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    raw = key.private_numbers().private_value.to_bytes(32, "big")  # NXP factory data stores the scalar
    for form in (_sec1(key), pkcs8, raw):
        cfg = _config(key, signer=form)
        assert isinstance(cfg.signer, KeySigner) and _verifies(key, cfg.signer)


def test_secure_subsystem_handles_plug_in(key):
    calls: list[bytes] = []

    def sss_sign(message: bytes) -> bytes:
        calls.append(message)
        return key.sign(message, ec.ECDSA(hashes.SHA256()))

    cfg = _config(key, signer=sss_sign)
    assert isinstance(cfg.signer, CallableSigner) and _verifies(key, cfg.signer) and calls

    class Handle:  # anything with sign(message) -> DER is a Signer
        def sign(self, message: bytes) -> bytes:
            return key.sign(message, ec.ECDSA(hashes.SHA256()))

    handle = Handle()
    assert as_signer(handle) is handle


def test_bad_signer_inputs(key):
    with pytest.raises(InputError, match="DAC private key"):
        _config(key, signer=b"not a key")
    with pytest.raises(InputError, match="signer"):
        _config(key, signer=42)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("discriminator", 4096),
        ("discriminator", -1),
        ("vendor_id", 0x10000),
        ("product_id", True),
        ("spake2p_iterations", "1000"),
        ("dac_cert", b""),
        ("cd", "text"),
        ("vendor_name", "x" * 33),
    ],
)
def test_values_the_node_cannot_run_with_are_refused_naming_the_field(key, field, value):
    with pytest.raises(InputError) as exc:
        _config(key, **{field: value})
    assert str(exc.value).startswith(field) and exc.value.exit_code == 2


def test_values_the_commissioner_must_judge_pass_through(key):
    """Out-of-spec SPAKE2+ parameters are the commissioner's to reject (PASE), not the emulator's."""
    cfg = _config(key, spake2p_iterations=1, spake2p_salt=b"s", spake2p_verifier=b"v")
    assert cfg.spake2p_iterations == 1


def test_repr_shows_sizes_not_secrets_and_public_dict_has_no_signer(key):
    cfg = _config(key)
    text = repr(cfg)
    assert "signer=KeySigner" in text and "spake2p_verifier=<97 bytes>" in text
    assert _sec1(key).hex() not in text and "VVVV" not in text
    public = json.loads(json.dumps(cfg.public_dict()))
    assert "signer" not in public and public["discriminator"] == 3840
