"""`hil factory-data generate`: generate.py's flags and bytes, the checks it lacks, atomic output.

Expected images are rebuilt from the spec's §8 checklist (`spec_image`) and the guide's published
verifier; every refusal asserts the one-line message, exit 2, and that no file was written (and an
existing one was left untouched).
"""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from test_factory_data_support import (
    AES128,
    AES256,
    GUIDE_ITERATIONS,
    GUIDE_PASSCODE,
    GUIDE_SALT,
    GUIDE_VERIFIER,
    TEST_SALT,
    TEST_VERIFIER,
    Creds,
    creds,
    guide_args,
    run_generate,
    run_inspect,
    spec_image,
)

from hil.factory_data import FactoryData, decode, parse
from hil.factory_data.generate import GenerateRequest, generate, request_from_args
from hil.factory_data.rules import CHECKS
from hil.matter import spake2p

__all__ = ["creds"]  # the session fixture, re-exported for pytest

KEY128 = bytes.fromhex(AES128)
KEY256 = bytes.fromhex(AES256)


def _expected_records(c: Creds, *, key_bytes: bytes | None = None, extra: dict[int, bytes] | None = None):
    """The guide example's records per spec §1.3, built from the credential files directly."""
    key = serialization.load_der_private_key(c.dac_key.read_bytes(), None)
    scalar = key.private_numbers().private_value.to_bytes(32, "big")  # type: ignore[union-attr]
    records = {
        1: GUIDE_VERIFIER.encode(),
        2: GUIDE_SALT.encode(),
        3: GUIDE_ITERATIONS.to_bytes(4, "little"),
        4: key_bytes if key_bytes is not None else scalar,
        5: c.dac.read_bytes(),
        6: c.pai.read_bytes(),
        7: (1000).to_bytes(4, "little"),
        8: GUIDE_PASSCODE.to_bytes(4, "little"),
        9: (0x1037).to_bytes(2, "little"),
        10: (0xA220).to_bytes(2, "little"),
        11: c.cd.read_bytes(),
        12: b"NXP Semiconductors",
        13: b"Lighting app",
        14: b"12345678",
        15: b"2023-01-01",
        16: (1).to_bytes(2, "little"),
        17: b"1.0",
        18: b"00112233445566778899aabbccddeeff",
    }
    records.update(extra or {})
    return list(records.items())


def test_guide_example_computes_the_published_verifier(creds, tmp_path, capsys):
    """The guide's first command (spake2p run) and second (verifier given) give the same bytes."""
    out1, out2 = tmp_path / "a.bin", tmp_path / "b.bin"
    code, stdout, _ = run_generate(guide_args(creds, verifier=False), out1, capsys)
    assert code == 0 and "wrote" in stdout
    assert run_generate(guide_args(creds), out2, capsys)[0] == 0
    assert out1.read_bytes() == out2.read_bytes() == spec_image(_expected_records(creds))
    assert decode(out1.read_bytes()).verifier == base64.b64decode(GUIDE_VERIFIER)


def test_spake2p_path_is_optional(creds, tmp_path, capsys):
    code, _, _ = run_generate(guide_args(creds, spake2p_path=None), tmp_path / "f.bin", capsys)
    assert code == 0
    assert (tmp_path / "f.bin").read_bytes() == spec_image(_expected_records(creds))


def test_output_is_secret_mode(creds, tmp_path, capsys):
    out = tmp_path / "f.bin"
    run_generate(guide_args(creds), out, capsys)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


LAYOUTS = {
    "plain": ([], {}),
    "aes128": (["--aes128_key", AES128], {"key": KEY128}),
    "aes256": (["--aes256_key", AES256], {"key": KEY256}),
    "hw_params": (["--hw_params"], {"hw": True}),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layouts_match_spec_and_inspect_round_trip(layout, creds, tmp_path, capsys):
    extra_args, kw = LAYOUTS[layout]
    out = tmp_path / "f.bin"
    assert run_generate(guide_args(creds) + extra_args, out, capsys)[0] == 0
    assert out.read_bytes() == spec_image(_expected_records(creds), **kw)
    inspect_args = [str(out), *extra_args[:2]] if "key" in kw else [str(out)]
    code, text, err = run_inspect(inspect_args, capsys)
    assert code == 0, text + err
    assert "verdict: VALID" in text
    assert "PASS  verifier" in text and "PASS  dac-chain" in text


def test_sss_blob_stored_verbatim_and_round_trips(creds, tmp_path, capsys):
    out = tmp_path / "f.bin"
    args = guide_args(creds, dac_key=str(creds.blob56), dac_key_use_sss_blob="")
    assert run_generate(args, out, capsys)[0] == 0
    blob = out.read_bytes()
    assert blob == spec_image(_expected_records(creds, key_bytes=creds.blob56.read_bytes()))
    assert len(decode(blob).dac_key) == 56
    code, text, _ = run_inspect([str(out)], capsys)
    assert code == 0
    assert "SKIP  dac-key" in text and "secure-subsystem blob" in text


def test_every_optional_tag_round_trips(creds, tmp_path, capsys):
    out = tmp_path / "f.bin"
    args = guide_args(
        creds,
        part_number="PN-1",
        product_url="https://example.com/p",
        product_label="Lamp",
        product_finish="Satin",
        product_primary_color="Gold",
    )
    assert run_generate(args, out, capsys)[0] == 0
    extra = {19: b"PN-1", 20: b"https://example.com/p", 21: b"Lamp", 22: b"\x02", 23: b"\x14"}
    assert out.read_bytes() == spec_image(_expected_records(creds, extra=extra))
    code, text, _ = run_inspect([str(out), "--json"], capsys)
    assert code == 0
    assert '"name": "Gold"' in text


def test_pem_inputs_give_the_der_bytes(creds, tmp_path, capsys):
    der, pem = tmp_path / "der.bin", tmp_path / "pem.bin"
    run_generate(guide_args(creds), der, capsys)
    assert (
        run_generate(
            guide_args(creds, dac_cert=str(creds.dac_pem), dac_key=str(creds.dac_key_pem)), pem, capsys
        )[0]
        == 0
    )
    assert pem.read_bytes() == der.read_bytes()


def test_dac_key_password_works(creds, tmp_path, capsys):
    plain, enc = tmp_path / "plain.bin", tmp_path / "enc.bin"
    run_generate(guide_args(creds), plain, capsys)
    args = guide_args(creds, dac_key=str(creds.dac_key_pkcs8_encrypted), dac_key_password="s3cret")
    assert run_generate(args, enc, capsys)[0] == 0
    assert enc.read_bytes() == plain.read_bytes()


def test_max_size_and_paa_accept_a_good_image(creds, tmp_path, capsys):
    out = tmp_path / "f.bin"
    args = [
        *guide_args(creds),
        "--max-size",
        "0x800",
        "--paa_cert",
        str(creds.paa),
        "--cd_cert",
        str(creds.cd_signer),
    ]
    assert run_generate(args, out, capsys)[0] == 0


# ------------------------------------------------------------------------------------ refusals

B64_15 = base64.b64encode(bytes(15)).decode()
B64_33 = base64.b64encode(bytes(33)).decode()
B64_96 = base64.b64encode(bytes(96)).decode()


def _refusals(c: Creds) -> list[tuple[str, list[str], str]]:
    """(id, args, expected message fragment); the id is the check name when the check is skippable."""
    fast = {"fast": True}
    return [
        ("passcode", guide_args(c, p="12345678"), "-p/--passcode: 12345678 is not allowed"),
        ("passcode", guide_args(c, p="0"), "-p/--passcode: 0 is not allowed"),
        ("passcode", guide_args(c, p="100000000"), "-p/--passcode: 100000000 is not allowed"),
        (
            "salt",
            guide_args(c, s=B64_15),
            "-s/--salt: 15 bytes (base64-decoded) is not allowed; allowed 16..32",
        ),
        ("salt", guide_args(c, s=B64_33), "-s/--salt: 33 bytes"),
        ("iterations", guide_args(c, i="999"), "-i/--it: 999 is not allowed; allowed 1000..100000"),
        ("iterations", guide_args(c, i="100001"), "-i/--it: 100001 is not allowed"),
        ("discriminator", guide_args(c, d="0x1000"), "-d/--discriminator: 4096 (0x1000) is not allowed"),
        (
            "date",
            guide_args(c, date="2023-1-01"),
            "--date: '2023-1-01' is not allowed; the firmware needs exactly",
        ),
        ("date", guide_args(c, date="2023-02-30"), "--date: '2023-02-30' is not allowed"),
        ("date", guide_args(c, date="01/01/2023"), "--date: '01/01/2023'"),
        (
            "string-length",
            guide_args(c, vendor_name="V" * 33),
            "--vendor_name: 33 bytes (UTF-8) is too long; at most 32",
        ),
        (
            "string-length",
            guide_args(c, product_name="é" * 17),
            "--product_name: 34 bytes (UTF-8) is too long",
        ),
        ("string-length", guide_args(c, hw_version_str="h" * 65), "--hw_version_str: 65 bytes"),
        ("string-length", guide_args(c, product_url="u" * 257), "--product_url: 257 bytes"),
        ("string-length", guide_args(c, unique_id="0" * 33), "--unique_id: 33 bytes"),
        (
            "verifier",
            guide_args(c, **fast, spake2p_verifier=GUIDE_VERIFIER),
            "--spake2p_verifier: does not match",
        ),
        ("verifier", guide_args(c, spake2p_verifier=B64_96), "--spake2p_verifier: 96 bytes"),
        (
            "dac-key",
            guide_args(c, **fast, dac_key=str(c.other_key)),
            "--dac_key: does not match the public key",
        ),
        (
            "sss-blob-size",
            guide_args(c, **fast, dac_key=str(c.blob48), dac_key_use_sss_blob=""),
            "48-byte blob",
        ),
        (
            "dac-chain",
            guide_args(c, **fast, dac_cert=str(c.other_dac), dac_key=str(c.other_key)),
            "DAC authorityKeyIdentifier does not match the PAI",
        ),
        (
            "dac-vid-pid",
            guide_args(c, **fast, dac_cert=str(c.dac_other_pid), dac_key=str(c.dac_other_pid_key)),
            "--pid: 0xa220 does not match the DAC certificate's PID 0xa221",
        ),
        (
            "pai-vid-pid",
            guide_args(
                c,
                **fast,
                pai_cert=str(c.pai_other_vid),
                dac_cert=str(c.dac_under_other_vid_pai),
                dac_key=str(c.dac_under_other_vid_pai_key),
            ),
            "--vid: 0x1037 does not match the PAI certificate's VID 0xfff1",
        ),
        (
            "cd-vid-pid",
            guide_args(c, **fast, cert_declaration=str(c.cd_other_pid)),
            "--pid: 0xa220 is not in the CD",
        ),
        (
            "dac-vid-pid",
            guide_args(c, **fast, vid="0x1038"),
            "--vid: 0x1038 does not match the DAC certificate's VID 0x1037",
        ),
        ("cd-signature", [*guide_args(c, **fast), "--cd_cert", str(c.paa)], "CD signer key id"),
        (
            "region-size",
            [*guide_args(c, **fast), "--max-size", "1000"],
            "does not fit --max-size 1000 (1000 bytes",
        ),
        (
            "hw-params-plain",
            guide_args(c, **fast, hw_params="", aes128_key=AES128),
            "--hw_params: cannot be combined",
        ),
        # not skippable: the value cannot be stored or the input cannot be read
        (
            "",
            guide_args(c, vid="0x10000"),
            "--vid: '0x10000' is not allowed; allowed 0..0xffff (16-bit field)",
        ),
        ("", guide_args(c, pid="-1"), "--pid: '-1' is not allowed; allowed 0..0xffff"),
        ("", guide_args(c, hw_version="70000"), "--hw_version: '70000' is not allowed"),
        ("", guide_args(c, d="0100"), "-d/--discriminator: '0100' is not allowed; expected an integer"),
        (
            "",
            guide_args(c, s="not base64!"),
            "-s/--salt: 'not base64!' is not allowed; expected standard base64",
        ),
        (
            "",
            guide_args(c, aes128_key=AES128[:30]),
            "--aes128_key: 30 hex digits is not allowed; expected 32",
        ),
        ("", guide_args(c, aes128_key="zz" * 16), "--aes128_key: not a hex string (value not shown)"),
        ("", guide_args(c, aes256_key=AES128), "--aes256_key: 32 hex digits is not allowed; expected 64"),
        ("", guide_args(c, aes128_key=AES128, aes256_key=AES256), "give one AES key, not both"),
        (
            "",
            guide_args(c, product_finish="Shiny"),
            "--product_finish: 'Shiny' is not allowed; allowed: Other, Matte",
        ),
        ("", guide_args(c, dac_key="/nonexistent/key.der"), "--dac_key: cannot read '/nonexistent/key.der'"),
        (
            "",
            guide_args(c, dac_cert=str(c.blob56)),
            "--dac_cert (DAC certificate): not a PEM or DER X.509 certificate",
        ),
        ("", guide_args(c, cert_declaration=str(c.blob56)), "--cert_declaration:"),
        (
            "",
            guide_args(c, dac_key=str(c.dac_key_pkcs8_encrypted)),
            "--dac_key: encrypted; give its password",
        ),
        (
            "",
            guide_args(c, dac_key=str(c.dac_key_pkcs8_encrypted), dac_key_password="wrong"),
            "wrong password",
        ),
        ("", guide_args(c, dac_key_password="x"), "--dac_key: not encrypted; give no password"),
    ]


def _refusal_ids() -> list[str]:
    return [f"{i}-{case[0] or 'input'}" for i, case in enumerate(_refusals(_DummyCreds()))]


class _DummyCreds:
    def __getattr__(self, name: str) -> Path:
        return Path("/" + name)


@pytest.mark.parametrize("index", range(len(_refusal_ids())), ids=_refusal_ids())
def test_each_refusal_names_the_problem_and_writes_nothing(index, creds, tmp_path, capsys):
    check, args, fragment = _refusals(creds)[index]
    out = tmp_path / "sub" / "factory_data.bin"
    code, stdout, err = run_generate(args, out, capsys)
    assert code == 2, stdout + err
    assert len(err.strip().splitlines()) == 1, err
    assert fragment in err
    if check:
        assert f"[check '{check}'; --allow-mismatch {check} to override]" in err
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())  # no temporary left behind either


def test_existing_output_is_untouched_on_failure(creds, tmp_path, capsys):
    out = tmp_path / "factory_data.bin"
    out.write_bytes(b"previous image")
    code, _, _ = run_generate(guide_args(creds, p="11111111"), out, capsys)
    assert code == 2
    assert out.read_bytes() == b"previous image"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["factory_data.bin"]


@pytest.mark.parametrize(
    ("check", "overrides", "extra"),
    [
        ("passcode", {"p": "12345678", "spake2p_verifier": None}, []),
        ("discriminator", {"d": "0xFFFF"}, []),
        ("cd-vid-pid", {"cert_declaration": "cd_other_pid"}, []),
        ("hw-params-plain", {"hw_params": "", "aes128_key": AES128}, []),
    ],
)
def test_allow_mismatch_builds_deliberately_bad_data_that_inspect_rejects(
    check, overrides, extra, creds, tmp_path, capsys
):
    overrides = {k: str(getattr(creds, v)) if v in ("cd_other_pid",) else v for k, v in overrides.items()}
    out = tmp_path / "f.bin"
    args = guide_args(creds, fast=True, **overrides) + extra
    assert run_generate(args, out, capsys)[0] == 2
    code, _, err = run_generate([*args, "--allow-mismatch", check], out, capsys)
    assert code == 0, err
    inspect_args = [str(out), "--aes128_key", AES128] if check == "hw-params-plain" else [str(out)]
    code, text, err = run_inspect(inspect_args, capsys)
    if check == "hw-params-plain":  # generate.py's behaviour: encrypted, wrapper dropped; a valid image
        assert code == 0 and parse(out.read_bytes(), aes_key=KEY128).layout == "encrypted"
    else:
        assert code == 2 and "invalid factory data" in err
        assert f"{check}:" in text


def test_unknown_allow_mismatch_name_is_a_usage_error(creds, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run_generate([*guide_args(creds), "--allow-mismatch", "everything"], tmp_path / "f.bin", capsys)
    assert exc.value.code == 2


def test_missing_required_flag_is_a_usage_error(creds, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run_generate(guide_args(creds, vid=None), tmp_path / "f.bin", capsys)
    assert exc.value.code == 2
    assert "--vid" in capsys.readouterr().err


def test_secrets_never_echoed(creds, tmp_path, capsys):
    key = "ab" * 15 + "q1"
    _, out, err = run_generate(guide_args(creds, aes128_key=key), tmp_path / "f.bin", capsys)
    assert key not in out + err
    _, out, err = run_generate(
        guide_args(creds, dac_key=str(creds.dac_key_pkcs8_encrypted), dac_key_password="hunter2-wrong"),
        tmp_path / "f.bin",
        capsys,
    )
    assert "hunter2" not in out + err


def test_help_lists_every_generate_py_flag(capsys):
    from hil.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["factory-data", "generate", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    flags = """-i -s -p -d --vid --pid --vendor_name --product_name --hw_version --hw_version_str
        --cert_declaration --dac_cert --dac_key --pai_cert --out --spake2p_path --spake2p_verifier
        --dac_key_password --dac_key_use_sss_blob --aes128_key --date --part_number --product_url
        --product_label --serial_num --unique_id --aes256_key --product_finish --product_primary_color
        --hw_params --max-size --allow-mismatch --paa_cert --cd_cert --board --boards"""
    for flag in flags.split():
        assert f" {flag}" in text, flag
    compact = "".join(text.split())  # argparse wraps long help at hyphens
    for check in CHECKS:
        assert check in compact


def test_cli_in_a_real_process_fails_with_one_line(creds, tmp_path):
    out = tmp_path / "f.bin"
    args = [
        sys.executable,
        "-m",
        "hil",
        "factory-data",
        "generate",
        *guide_args(creds, d="5000"),
        "--out",
        str(out),
    ]
    proc = subprocess.run(
        args, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"}
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "-d/--discriminator: 5000 (0x1388) is not allowed" in proc.stderr
    assert not out.exists()


# ------------------------------------------------------------------------------------ library API


def test_library_generate_fills_in_the_verifier(creds):
    req = request_from_args({
        "it": "1000", "salt": TEST_SALT, "passcode": "20202021", "discriminator": "3840", "vid": "0x1037",
        "pid": "0xA220", "vendor_name": "V", "product_name": "P", "hw_version": "1", "hw_version_str": "1",
        "cert_declaration": str(creds.cd), "dac_cert": str(creds.dac), "dac_key": str(creds.dac_key),
        "pai_cert": str(creds.pai),
    })  # fmt: skip
    assert req.data.verifier is None
    blob = generate(req)
    assert decode(blob).verifier == base64.b64decode(TEST_VERIFIER)
    assert (
        base64.b64encode(spake2p.compute_verifier(20202021, b"SPAKE2P Key Salt", 1000)).decode()
        == TEST_VERIFIER
    )


def test_library_generate_requires_the_generate_py_fields():
    with pytest.raises(Exception, match="required"):
        generate(GenerateRequest(FactoryData(vid=1)))


# ------------------------------------------------------------------------------------ --board

BOARDS_TOML = f"""
[board.plain-k32w0]
family = "k32w0x1"
emulated = true

[board.rt-encrypted]
family = "rt1060"
emulated = true
aes_key = "{AES128}"

[board.tiny]
family = "k32w0x1"
emulated = true
factory_data_size = 0x400
"""


@pytest.fixture
def boards(tmp_path) -> str:
    path = tmp_path / "boards.toml"
    path.write_text(BOARDS_TOML)
    return str(path)


def test_board_plain_region_accepts(creds, tmp_path, capsys, boards):
    out = tmp_path / "f.bin"
    assert (
        run_generate([*guide_args(creds), "--board", "plain-k32w0", "--boards", boards], out, capsys)[0] == 0
    )
    assert out.read_bytes() == spec_image(_expected_records(creds))


def test_board_key_is_used_when_none_is_given(creds, tmp_path, capsys, boards):
    by_board, explicit = tmp_path / "a.bin", tmp_path / "b.bin"
    assert (
        run_generate([*guide_args(creds), "--board", "rt-encrypted", "--boards", boards], by_board, capsys)[0]
        == 0
    )
    assert run_generate([*guide_args(creds), "--aes128_key", AES128], explicit, capsys)[0] == 0
    assert by_board.read_bytes() == explicit.read_bytes()


@pytest.mark.parametrize(
    ("board", "extra", "fragment"),
    [
        ("plain-k32w0", ["--aes128_key", AES128], "board 'plain-k32w0' (k32w0x1) reads plain factory data"),
        (
            "rt-encrypted",
            ["--aes128_key", "00" * 16],
            "differs from the key board 'rt-encrypted' decrypts with",
        ),
        ("tiny", [], "does not fit board 'tiny''s factory-data region at 0x9D600 (1024 bytes"),
    ],
)
def test_board_refusals(creds, tmp_path, capsys, boards, board, extra, fragment):
    out = tmp_path / "f.bin"
    code, _, err = run_generate(
        [*guide_args(creds), "--board", board, "--boards", boards, *extra], out, capsys
    )
    assert code == 2 and fragment in err, err
    assert "[check '" in err
    assert not out.exists()


def test_unknown_board(creds, tmp_path, capsys, boards):
    code, _, err = run_generate(
        [*guide_args(creds), "--board", "nope", "--boards", boards], tmp_path / "f", capsys
    )
    assert code == 2 and "nope" in err
