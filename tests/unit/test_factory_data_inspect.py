"""`hil factory-data inspect`: verdicts, explanations, redaction, JSON, cross-checks."""

from __future__ import annotations

import json
import struct

import pytest
from test_factory_data_support import (
    AES128,
    AES256,
    Creds,
    creds,
    guide_args,
    run_generate,
    run_inspect,
)

from hil.factory_data import FactoryData, decode, encode, replace_record
from hil.factory_data.inspect import REDACTED, inspect

__all__ = ["creds"]


@pytest.fixture(scope="module")
def image(creds: Creds, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("fd-inspect") / "f.bin"
    from hil.cli import main

    assert main(["factory-data", "generate", *guide_args(creds, fast=True), "--out", str(out)]) == 0
    return out.read_bytes()


def _write(tmp_path, data: bytes, name: str = "f.bin") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_valid_image_report(image, creds, tmp_path, capsys):
    path = _write(tmp_path, image)
    code, text, err = run_inspect(
        [path, "--paa_cert", str(creds.paa), "--cd_cert", str(creds.cd_signer)], capsys
    )
    assert code == 0 and err == ""
    assert "magic 0xce47ba5e (ok)" in text and ": ok" in text
    assert "'NXP Semiconductors'" in text and "1000 (0x3e8)" in text
    assert "DAC:     CN='Test DAC' VID 0x1037 PID 0xa220" in text
    assert "CD:      vendor_id 0x1037 product_ids [0xa220]" in text and "signer 62FA8233" in text
    for check in (
        "dac-key",
        "dac-chain",
        "dac-vid-pid",
        "pai-vid-pid",
        "cd-vid-pid",
        "cd-signature",
        "verifier",
    ):
        assert f"PASS  {check}" in text
    assert text.rstrip().endswith("verdict: VALID")


def test_private_key_redacted_unless_asked(image, tmp_path, capsys):
    path = _write(tmp_path, image)
    scalar = decode(image).dac_key.hex()
    _, text, _ = run_inspect([path], capsys)
    assert scalar not in text and REDACTED in text
    _, text, _ = run_inspect([path, "--json"], capsys)
    assert scalar not in text
    _, text, _ = run_inspect([path, "--show-secrets"], capsys)
    assert scalar in text


def test_json_report(image, tmp_path, capsys):
    code, text, _ = run_inspect([_write(tmp_path, image), "--json"], capsys)
    report = json.loads(text)
    assert code == 0 and report["valid"] is True
    assert report["header"]["hash_ok"] is True and report["layout"] == "plain"
    fields = {f["name"]: f for f in report["fields"]}
    assert fields["vid"]["value"] == 0x1037 and fields["dac_key"]["value"] == REDACTED
    assert {c["name"]: c["status"] for c in report["checks"]}["cd-signature"] == "skip"


@pytest.mark.parametrize(
    ("mutate", "code", "fragment"),
    [
        (lambda b: b"\x00\x00\x00\x00" + b[4:], "bad_magic", "bad magic 00 00 00 00"),
        (lambda b: b[:-40], "size_beyond_file", "payload bytes follow the header"),
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "hash_mismatch", "hash mismatch"),
        (lambda b: b[:6], "too_short", "too short for the 12-byte header"),
    ],
)
def test_each_structural_problem_is_explained_and_exits_2(image, tmp_path, capsys, mutate, code, fragment):
    path = _write(tmp_path, mutate(image))
    rc, text, err = run_inspect([path], capsys)
    assert rc == 2
    assert f"{code}: " in text and fragment in text
    assert err.startswith("hil: error: ") and "invalid factory data" in err and err.count("\n") == 1
    assert "verdict: INVALID" in text


def test_truncated_record_explained(tmp_path, capsys):
    payload = bytes([9, 2, 0, 0x37, 0x10, 12, 40, 0]) + b"NXP"
    import hashlib

    blob = struct.pack("<II", 0xCE47BA5E, len(payload)) + hashlib.sha256(payload).digest()[:4] + payload
    rc, text, _ = run_inspect([_write(tmp_path, blob)], capsys)
    assert rc == 2
    assert (
        "truncated_record: truncated record at payload offset 5: tag 12 declares 40 bytes but only 3" in text
    )
    assert "missing_tag" in text  # and the generator's required tags are reported missing


@pytest.mark.parametrize("flag,key", [("--aes128_key", AES128), ("--aes256_key", AES256)])
def test_encrypted_needs_the_right_key(creds, tmp_path, capsys, flag, key):
    out = tmp_path / "enc.bin"
    assert run_generate([*guide_args(creds, fast=True), flag, key], out, capsys)[0] == 0
    rc, text, _ = run_inspect([str(out), flag, key], capsys)
    assert rc == 0 and "encrypted, AES-" in text
    rc, text, _ = run_inspect([str(out)], capsys)
    assert rc == 2 and "pass --aes128_key or --aes256_key" in text
    wrong = "00" * (len(key) // 2)
    rc, text, _ = run_inspect([str(out), flag, wrong], capsys)
    assert rc == 2 and "wrong_key: wrong key" in text


def test_hw_params_detected_and_crc_checked(creds, tmp_path, capsys):
    out = tmp_path / "hw.bin"
    assert run_generate([*guide_args(creds, fast=True), "--hw_params"], out, capsys)[0] == 0
    rc, text, _ = run_inspect([str(out)], capsys)
    assert rc == 0 and "layout:  hw_params, CRC-16" in text and "ok" in text
    bad = bytearray(out.read_bytes())
    bad[-2] ^= 0x55
    rc, text, _ = run_inspect([_write(tmp_path, bytes(bad), "bad.bin"), "--hw_params"], capsys)
    assert rc == 2 and "hw_params_crc" in text


def test_sss_converted_image_is_valid(image):
    """What K32W1 firmware leaves in flash after converting the key (tag 4: 32 → 56 bytes) still inspects."""
    converted = replace_record(image, 4, bytes(56))
    report = inspect(converted, check_verifier=False)
    assert report.valid, [p.message for p in report.errors]
    assert {c.name: c.status for c in report.checks}["dac-key"] == "skip"


def test_cross_checks_catch_inconsistent_content(creds, image):
    fd = decode(image)
    other = decode(image)
    other.vid = 0x1038
    other.discriminator = 0x1000
    other.date = "2023-13-01"
    other.dac_key = bytes(range(1, 33))
    report = inspect(encode(other))
    failed = {c.name for c in report.checks if c.status == "fail"}
    assert failed >= {"dac-key", "dac-vid-pid", "pai-vid-pid", "cd-vid-pid"}
    codes = {p.code for p in report.errors}
    assert {"discriminator", "date"} <= codes
    assert inspect(encode(fd)).valid


def test_wrong_verifier_detected(image):
    fd = decode(image)
    fd.verifier = bytes(97)
    report = inspect(encode(fd))
    assert {c.name: c.status for c in report.checks}["verifier"] == "fail"
    assert not report.valid


def test_firmware_view_duplicate_tag_first_wins(image):
    """A later duplicate of tag 9 is reported but does not change what the firmware (and we) read."""
    fd = decode(image)
    extra = bytes([9, 2, 0, 0xF1, 0xFF])
    payload = encode(fd)[12:] + extra
    import hashlib

    blob = struct.pack("<II", 0xCE47BA5E, len(payload)) + hashlib.sha256(payload).digest()[:4] + payload
    report = inspect(blob, check_verifier=False)
    assert report.parsed.data.vid == 0x1037
    assert any(p.code == "duplicate_tag" for p in report.problems) and report.valid


def test_unreadable_file_is_one_line(tmp_path, capsys):
    rc, _, err = run_inspect([str(tmp_path / "missing.bin")], capsys)
    assert rc == 2 and "FILE: cannot read" in err


def test_empty_data_report():
    report = inspect(encode(FactoryData()))
    assert not report.valid
    assert sum(p.code == "missing_tag" for p in report.problems) == 15
