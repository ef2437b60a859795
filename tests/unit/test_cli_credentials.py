"""`hil certs generate`, `hil spake2p gen-verifier`, `hil onboarding`: outputs, and the bad-input contract
(exit 2, one clear line, no output files, nothing clobbered)."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from cd_signing import CREDS

from hil.cli import main
from hil.matter import cd, certs, spake2p, test_cd_key

CD_KEY = str(CREDS / "Chip-Test-CD-Signing-Key.pem")
CD_CERT = str(CREDS / "Chip-Test-CD-Signing-Cert.pem")
# NXP's documented example (nxp_manufacturing_data_guide.txt), plus the CD signing inputs.
NXP_EXAMPLE = [
    "--gen_cd",
    "--cd_type",
    "1",
    "--chip_cert_path",
    "./out/chip-cert",
    "--vendor_id",
    "0x1037",
    "--product_id",
    "0xA220",
    "--vendor_name",
    "NXP Semiconductors",
    "--product_name",
    "all-clusters-app",
    "--device_type",
    "65535",
    "--cd-signing-key",
    CD_KEY,
    "--cd-signing-cert",
    CD_CERT,
]
NXP_FILES = sorted(
    [
        f"Chip-{k}-NXP{ids}-{t}.{e}"
        for k, ids in (("PAA", ""), ("PAI", "-1037-A220"), ("DAC", "-1037-A220"))
        for t in ("Cert", "Key")
        for e in ("pem", "der")
    ]
    + ["Chip-Test-CD-1037-A220.der"]
)


def hil(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hil", *args], capture_output=True, text=True, check=False)


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------------------------------- certs generate


def test_certs_generate_nxp_example(tmp_path):
    out = tmp_path / "out"
    proc = hil("certs", "generate", *NXP_EXAMPLE, "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(out)) == NXP_FILES
    for name in NXP_FILES:
        mode = stat.S_IMODE((out / name).stat().st_mode)
        assert mode == (0o600 if "-Key." in name else 0o644), name

    paa = certs.load_certificate(out / "Chip-PAA-NXP-Cert.der")
    pai = certs.load_certificate(out / "Chip-PAI-NXP-1037-A220-Cert.pem")
    dac = certs.load_certificate(out / "Chip-DAC-NXP-1037-A220-Cert.der")
    assert certs.load_certificate(out / "Chip-DAC-NXP-1037-A220-Cert.pem") == dac
    for cert in (paa, pai, dac):
        assert certs.subject_cn(cert) == "NXP Semiconductors all-clusters-app"
        assert cert.not_valid_before_utc == datetime(2023, 1, 1, tzinfo=UTC)
        assert cert.not_valid_after_utc == datetime(2023, 1, 1, tzinfo=UTC) + timedelta(days=7305, seconds=-1)
    assert [certs.matter_vid_pid(c) for c in (paa, pai, dac)] == [
        (None, None),
        (0x1037, None),
        (0x1037, 0xA220),
    ]
    for base, cert in (("PAA-NXP", paa), ("PAI-NXP-1037-A220", pai), ("DAC-NXP-1037-A220", dac)):
        pem_key = certs.load_private_key(out / f"Chip-{base}-Key.pem")
        der_key = certs.load_private_key(out / f"Chip-{base}-Key.der")
        assert pem_key.private_numbers() == der_key.private_numbers()
        certs.check_key_matches(cert, der_key)
        assert (out / f"Chip-{base}-Key.pem").read_bytes().startswith(b"-----BEGIN EC PRIVATE KEY-----")

    certs.verify_chain(dac, pai, paa)
    verify = subprocess.run(
        [
            "openssl",
            "verify",
            "-x509_strict",
            "-attime",
            str(int(datetime(2023, 6, 1, tzinfo=UTC).timestamp())),
            "-CAfile",
            str(out / "Chip-PAA-NXP-Cert.pem"),
            "-untrusted",
            str(out / "Chip-PAI-NXP-1037-A220-Cert.pem"),
            str(out / "Chip-DAC-NXP-1037-A220-Cert.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr

    decl = cd.verify((out / "Chip-Test-CD-1037-A220.der").read_bytes(), certs.load_certificate(CD_CERT))
    assert decl == cd.CertificationDeclaration(
        vendor_id=0x1037,
        product_ids=[0xA220],
        device_type_id=65535,
        certificate_id="ZIG20142ZB330003-24",
        version_number=0x9876,
        certification_type=1,
    )


def test_certs_generate_gen_cd_without_a_key_signs_with_the_test_cd_key_and_says_so(tmp_path):
    """generate_certs.py's default: the SDK's test CD key; one stderr line says so and how to change it."""
    out = tmp_path / "out"
    example = NXP_EXAMPLE[: NXP_EXAMPLE.index("--cd-signing-key")]
    proc = hil("certs", "generate", *example, "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        "note: the CD is signed with the Matter test CD signing key (public test vector, development only; "
        "commissioners in production refuse it); give a real one with --cd-signing-key and --cd-signing-cert"
    ]
    signed = out / "Chip-Test-CD-1037-A220.der"
    assert cd.parse_envelope(signed.read_bytes()).signer_key_id == test_cd_key.KEY_ID
    assert cd.verify(signed.read_bytes(), test_cd_key.signing_credential().cert).vendor_id == 0x1037
    # openssl, independently, accepts it with the certificate the library builds for the test key.
    cms = subprocess.run(
        ["openssl", "cms", "-verify", "-inform", "DER", "-in", signed, "-noverify", "-certfile", CD_CERT],
        capture_output=True,
        check=False,
    )
    assert cms.returncode == 0, cms.stderr
    assert b"Verification successful" in cms.stderr


def test_certs_generate_reuses_given_paa(tmp_path, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    base = [
        "certs",
        "generate",
        "--vendor_id",
        "4151",
        "--product_id",
        "41504",
        "--vendor_name",
        "NXP",
        "--product_name",
        "light",
        "--lifetime",
        "4294967295",
    ]
    assert run_main(capsys, *base, "-o", str(first))[0] == 0
    code, out, _ = run_main(
        capsys,
        *base,
        "-o",
        str(second),
        "--paa_cert",
        str(first / "Chip-PAA-NXP-Cert.der"),
        "--paa_key",
        str(first / "Chip-PAA-NXP-Key.der"),
    )
    assert code == 0
    assert not any(n.startswith("Chip-PAA") for n in os.listdir(second))  # reused, not regenerated
    assert not any(n.startswith("Chip-Test-CD") for n in os.listdir(second))  # no --gen_cd
    paa = certs.load_certificate(first / "Chip-PAA-NXP-Cert.pem")
    pai = certs.load_certificate(second / "Chip-PAI-NXP-1037-A220-Cert.pem")
    dac = certs.load_certificate(second / "Chip-DAC-NXP-1037-A220-Cert.pem")
    certs.verify_chain(dac, pai, paa)
    assert dac.not_valid_after_utc == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert str(second / "Chip-DAC-NXP-1037-A220-Key.pem") in out


@pytest.fixture
def paa_files(tmp_path):
    paa = certs.generate_paa("PAA")
    other = certs.generate_paa("Other")
    (tmp_path / "paa.pem").write_bytes(paa.cert_pem())
    (tmp_path / "paa-key.pem").write_bytes(paa.key_pem())
    (tmp_path / "other-key.pem").write_bytes(other.key_pem())
    (tmp_path / "garbage-key.pem").write_bytes(b"not a key\n")
    return tmp_path


BASE = ["--vendor_id", "0x1037", "--product_id", "0xA220", "--vendor_name", "NXP", "--product_name", "light"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--vendor_id", "0x10000"], "vendor_id: 65536 is not allowed; allowed 0..0xFFFF"),
        (["--product_id", "-1"], "product_id: -1 is not allowed"),
        (
            ["--cd_type", "3"],
            "cd_type: 3 is not allowed; allowed 0 (development), 1 (provisional), 2 (official)",
        ),
        (["--gen_cd", "--cd-signing-key", CD_KEY], "--cd-signing-cert: missing; --cd-signing-key needs it"),
        (["--cd-signing-key", CD_KEY, "--cd-signing-cert", CD_CERT], "only with --gen_cd"),
        (
            ["--gen_cd", "--cd-signing-key", "{d}/missing.pem", "--cd-signing-cert", CD_CERT],
            "--cd-signing-key: cannot read",
        ),
        (["--paa_cert", "{d}/paa.pem", "--paa_key", "{d}/missing-key.pem"], "--paa_key: cannot read"),
        (["--paa_cert", "{d}/paa.pem", "--paa_key", "{d}/garbage-key.pem"], "--paa_key '"),
        (
            ["--paa_cert", "{d}/paa.pem", "--paa_key", "{d}/other-key.pem"],
            "--paa_key: does not match the public key",
        ),
        (["--paa_cert", "{d}/paa.pem"], "--paa_cert/--paa_key: give both"),
        (["--valid_from", "yesterday"], "valid_from: 'yesterday' is not allowed"),
        (["--lifetime", "0"], "lifetime: 0 is not allowed"),
        (["--lifetime", "forever"], "lifetime: 'forever' is not allowed"),
        (["--vendor_name", "V" * 60], "subject common name"),
        (
            [
                "--gen_cd",
                "--device_type",
                str(1 << 32),
                "--cd-signing-key",
                CD_KEY,
                "--cd-signing-cert",
                CD_CERT,
            ],
            "device_type_id",
        ),
    ],
)
def test_certs_generate_bad_input(paa_files, capsys, args, message):
    out = paa_files / "out"
    out.mkdir()
    existing = out / "Chip-DAC-NXP-1037-A220-Cert.pem"
    existing.write_bytes(b"keep me")
    code, stdout, stderr = run_main(
        capsys, "certs", "generate", *BASE, *[a.format(d=paa_files) for a in args], "-o", str(out)
    )
    assert code == 2
    assert stdout == ""
    assert len(stderr.strip().splitlines()) == 1
    assert message in stderr
    assert os.listdir(out) == [existing.name] and existing.read_bytes() == b"keep me"


def test_certs_generate_bad_input_via_subprocess(tmp_path):
    proc = hil("certs", "generate", *BASE, "--vendor_id", "0x10000", "-o", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == "hil: error: vendor_id: 65536 is not allowed; allowed 0..0xFFFF"
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------- spake2p


def test_spake2p_gen_verifier_sdk_vector(capsys):
    code, out, _ = run_main(
        capsys, "spake2p", "gen-verifier", "-p", "20202021", "-s", "U1BBS0UyUCBLZXkgU2FsdA==", "-i", "1000"
    )
    assert code == 0
    assert (
        out.strip()
        == base64.b64encode(spake2p.compute_verifier(20202021, b"SPAKE2P Key Salt", 1000)).decode()
    )
    assert out.startswith("uWFwqugDNGiEck/po7KHwwMwwqZgN10XuyBajPGuyzUE")


def test_spake2p_json_with_random_salt(capsys):
    code, out, _ = run_main(capsys, "spake2p", "gen-verifier", "-p", "14014", "-i", "1000", "--json")
    assert code == 0
    doc = json.loads(out)
    salt = base64.b64decode(doc["salt"])
    assert len(salt) == 32 and doc["iterations"] == 1000 and doc["passcode"] == 14014
    assert base64.b64decode(doc["verifier"]) == spake2p.compute_verifier(14014, salt, 1000)


def test_spake2p_random_salt_is_reported(capsys):
    code, out, err = run_main(capsys, "spake2p", "gen-verifier", "-p", "14014", "-i", "1000")
    assert code == 0
    salt = base64.b64decode(err.strip().rsplit(" ", 1)[1])
    assert base64.b64decode(out.strip()) == spake2p.compute_verifier(14014, salt, 1000)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "12345678", "-i", "1000"], "passcode: 12345678 is not allowed"),
        (
            ["-p", "14014", "-s", base64.b64encode(b"8 bytes!").decode(), "-i", "1000"],
            "salt: 8 bytes is not allowed",
        ),
        (["-p", "14014", "-s", "not base64!", "-i", "1000"], "salt: 'not base64!' is not allowed; base64"),
        (["-p", "14014", "-i", "999"], "iterations: 999 is not allowed; allowed 1000..100000"),
    ],
)
def test_spake2p_bad_input(capsys, args, message):
    code, out, err = run_main(capsys, "spake2p", "gen-verifier", *args)
    assert (code, out) == (2, "")
    assert len(err.strip().splitlines()) == 1 and message in err


# ------------------------------------------------------------------------------------------- onboarding


def test_onboarding_codes(capsys):
    code, out, _ = run_main(
        capsys, "onboarding", "-p", "20202021", "-d", "3840", "--vid", "0xFFF1", "--pid", "0x8000"
    )
    assert code == 0
    assert out.splitlines() == ["QR code:     MT:Y.K9042C00KA0648G00", "Manual code: 34970112332"]
    code, out, _ = run_main(
        capsys,
        "onboarding",
        "-p",
        "23005908",
        "-d",
        "2310",
        "--vid",
        "0xFFF3",
        "--pid",
        "0x8098",
        "--flow",
        "2",
        "--rendezvous",
        "4",
        "--json",
    )
    assert json.loads(out) == {"qr": "MT:MZWA6G6026O2XP0II00", "manual": "619156140465523329207"}


def test_onboarding_bad_input():
    proc = hil("onboarding", "-p", "12345678", "-d", "3840", "--vid", "0xFFF1", "--pid", "0x8000")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("hil: error: passcode: 12345678") and len(proc.stderr.splitlines()) == 1


@pytest.mark.parametrize("command", [["certs", "generate"], ["spake2p", "gen-verifier"], ["onboarding"]])
def test_help(capsys, command):
    with pytest.raises(SystemExit) as exc:
        main([*command, "--help"])
    assert exc.value.code == 0
    assert "Example:" in capsys.readouterr().out
