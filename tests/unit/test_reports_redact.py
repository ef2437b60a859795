"""The one redaction function: PEM private keys, secret-named fields, registered secrets in every shape."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st

from hil.emulator.app_image import AppOptions
from hil.errors import InputError
from hil.reports.allure import write_environment
from hil.reports.redact import (
    REDACTED,
    clear_secrets,
    is_clean,
    redact,
    register_private_key,
    register_secret,
)

AES = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")


@pytest.fixture(autouse=True)
def _fresh_registry():
    clear_secrets()
    yield
    clear_secrets()


def _pem(key, fmt, encryption=None) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, fmt, encryption or serialization.NoEncryption()
    ).decode()


@pytest.mark.parametrize(
    "pem",
    [
        _pem(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.TraditionalOpenSSL),
        _pem(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.PKCS8),
        _pem(rsa.generate_private_key(65537, 1024), serialization.PrivateFormat.TraditionalOpenSSL),
        _pem(
            ec.generate_private_key(ec.SECP256R1()),
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        ),
    ],
    ids=["ec", "pkcs8", "rsa", "encrypted"],
)
def test_pem_private_keys_are_removed_whole(pem: str) -> None:
    body = pem.splitlines()[1]
    text = f"before\n{pem}after"
    out = redact(text)
    assert "PRIVATE KEY" not in out.replace("[REDACTED PRIVATE KEY]", "")
    assert body not in out
    assert out.startswith("before\n") and out.endswith("after")
    assert redact(text.encode()) == out.encode()


def test_a_truncated_pem_key_is_removed_to_the_end() -> None:
    pem = _pem(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.PKCS8)
    cut = pem[: len(pem) // 2]
    assert redact("log: " + cut) == "log: [REDACTED PRIVATE KEY]"


def test_certificates_and_public_keys_stay() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert is_clean(public.decode())


@pytest.mark.parametrize(
    "text",
    [
        AES.hex(),
        AES.hex().upper(),
        ":".join(f"{b:02x}" for b in AES),
        ", ".join(f"0x{b:02X}" for b in AES),
        "    " + ":".join(f"{b:02x}" for b in AES[:15]) + ":\n    " + f"{AES[15]:02x}",  # openssl -text
        base64.b64encode(AES).decode(),
        base64.urlsafe_b64encode(AES).decode().rstrip("="),
    ],
    ids=["hex", "HEX", "colons", "c-array", "openssl", "base64", "base64url"],
)
def test_registered_secret_in_every_printed_shape(text: str) -> None:
    register_secret(AES)
    out = redact(f"key={text};")
    assert REDACTED in out
    assert "2b7e" not in out.lower() and "KzfhU" not in out


@pytest.mark.parametrize("shift", [0, 1, 2])
def test_registered_secret_inside_a_larger_base64_blob(shift: int) -> None:
    register_secret(AES)
    blob = base64.b64encode(b"x" * shift + AES + b"tail-bytes").decode()
    out = redact(blob)
    assert out != blob and REDACTED in out


def test_secret_fields_lose_their_values() -> None:
    data = {
        "vid": 0xFFF1,
        "dac_private_key": "30770201...",
        "nested": [{"aes128_key": "2B7E", "name": "ok"}],
        "secret": None,
    }
    out = redact(data)
    assert out == {
        "vid": 0xFFF1,
        "dac_private_key": REDACTED,
        "nested": [{"aes128_key": REDACTED, "name": "ok"}],
        "secret": None,
    }
    text = json.dumps(data) + "\ndac_private_key: 3077abcd\n--aes128_key 2B7E1516 --dac_key dac.pem"
    out = redact(text)
    assert '"dac_private_key": "[REDACTED]"' in out
    assert "dac_private_key: [REDACTED]" in out
    assert "--aes128_key [REDACTED] --dac_key dac.pem" in out  # a key path is not a secret
    assert "3077" not in out


def test_build_flags_named_after_keys_stay(tmp_path) -> None:
    """`chip_convert_dac_private_key` is an app build option; its 0/1 value is no secret (firmware column)."""
    firmware = AppOptions(chip_convert_dac_private_key=0).describe()
    assert "chip_convert_dac_private_key=0" in firmware
    assert is_clean(firmware)
    assert is_clean({"chip_convert_dac_private_key": 1, "secret": False, "aes128_key": "0"})
    assert is_clean("--aes128_key=1 'dac_private_key': 'true'")
    env = write_environment(tmp_path, {"board.k32w1-one": f"family k32w1, firmware {firmware}"})
    assert "chip_convert_dac_private_key\\=0" in env.read_text() and REDACTED not in env.read_text()
    assert redact({"dac_private_key": 2, "password": "hunter2"}) == {
        "dac_private_key": REDACTED,
        "password": REDACTED,
    }


def test_key_fields_lose_key_material_but_keep_paths_and_kinds() -> None:
    scalar = bytes(range(1, 33))
    assert redact({"dac_key": scalar, "dac_key_path": "dac.der"}) == {
        "dac_key": REDACTED,
        "dac_key_path": "dac.der",
    }
    for text in (
        f"dac_key={scalar.hex()}",
        f"dac_key: {scalar.hex().upper()}",
        f"--dac_key {':'.join(f'{b:02x}' for b in scalar)}",
        f'"dac_key": "{base64.b64encode(scalar).decode()}"',
        f"FactoryData(dac_key={scalar!r}, vid=1)",
    ):
        out = redact(text)
        assert REDACTED in out and "0102" not in out.replace(":", "") and "AQID" not in out, (text, out)
    assert is_clean("Boot complete: dac_key=sss-blob converted=no --dac_key dac.pem --hil-cd-key /tmp/cd.pem")


def test_raw_secret_in_binary_keeps_its_length() -> None:
    register_secret(AES)
    image = b"\x00" * 10 + AES + b"\xff" * 10
    out = redact(image)
    assert len(out) == len(image) and AES not in out and out.startswith(b"\x00" * 10 + b"[REDACTED]")


def test_private_key_scalar_is_removed_from_der_and_hex_dumps() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    register_private_key(key)
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert scalar not in redact(der)
    assert scalar.hex() not in redact(f"priv: {scalar.hex()}")


def test_register_accepts_hex_text_and_rejects_short_values() -> None:
    register_secret("0x" + AES.hex().upper())
    assert redact(AES) != AES
    with pytest.raises(InputError, match="secret: '<4 bytes>' is not allowed; at least 8 bytes"):
        register_secret(b"abcd")


@given(
    secret=st.binary(min_size=16, max_size=32),
    prefix=st.text(alphabet="ghijklmnopqrstuvwxyz ,:\n", max_size=20),
    suffix=st.text(alphabet="ghijklmnopqrstuvwxyz ,:\n", max_size=20),
    upper=st.booleans(),
    sep=st.sampled_from(["", ":", " ", ", 0x"]),
)
def test_hex_forms_never_survive_and_redaction_is_idempotent(secret, prefix, suffix, upper, sep) -> None:
    clear_secrets()
    register_secret(secret)
    hexed = sep.join(f"{b:02X}" if upper else f"{b:02x}" for b in secret)
    out = redact(prefix + hexed + suffix)
    assert secret.hex() not in out.lower().replace(":", "").replace(" ", "").replace(",", "").replace(
        "0x", ""
    )
    assert redact(out) == out
    assert is_clean(out)


@given(secret=st.binary(min_size=8, max_size=32), prefix=st.binary(max_size=8), suffix=st.binary(max_size=8))
def test_bytes_repr_in_a_traceback_is_redacted(secret: bytes, prefix: bytes, suffix: bytes) -> None:
    clear_secrets()
    register_secret(secret)
    out = redact(f"flashed = {prefix + secret + suffix!r}")
    assert REDACTED in out


def test_text_attachment_bytes_get_the_text_marker() -> None:
    register_secret(AES)
    assert redact(f"aes {AES.hex()}\n".encode()) == b"aes [REDACTED]\n"
