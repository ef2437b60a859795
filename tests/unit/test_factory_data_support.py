"""Shared material for the factory-data tests (no tests here): credentials on disk and generate.py args.

The credentials are built once per session with hil.matter.certs/cd (PAA → PAI → DAC, CD signed with the
Matter test CD key, `hil.matter.test_cd_key`) plus deliberately wrong ones for the negative
tests: a DAC from another PAI, a PAI with another VID, a foreign key, a CD for another product.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
from cd_signing import CREDS
from Crypto.Cipher import AES
from cryptography.hazmat.primitives import serialization

from hil.cli import main
from hil.matter import cd, certs

VID, PID = 0x1037, 0xA220
# The seed guide's example (nxp_manufacturing_data_guide.txt §2c) and its published verifier.
GUIDE_SALT = "UXKLzwHdN3DZZLBaL2iVGhQi/OoQwIwJRQV4rpEalbA="
GUIDE_PASSCODE = 14014
GUIDE_ITERATIONS = 10000
GUIDE_VERIFIER = (
    "ivD5n3L2t5+zeFt6SjW7BhHRF30gFXWZVvvXgDxgCNcE+BGuTA5AUaVm3qDZBcMMKn1a6CakI4SxyPUnJr0CpJ4pwpr0DvpTlkQKqa"
    "RvkOQfAQ1XDyf55DuavM5KVGdDrg=="
)
AES128 = "2B7E151628AED2A6ABF7158809CF4F3C"  # NXP's example key (spec §2.4)
AES256 = AES128 + "000102030405060708090A0B0C0D0E0F"
# A cheap valid verifier for tests that do not care about PBKDF2 cost: passcode 20202021, 1000 iterations.
TEST_SALT = base64.b64encode(b"SPAKE2P Key Salt").decode()
TEST_VERIFIER = (
    "uWFwqugDNGiEck/po7KHwwMwwqZgN10XuyBajPGuyzUEV/iree4lOrao5GuwnlQ65CJzbeUB49s31EH+NEkg0JVI5MGCQGMMT/SRPFNRODm3"
    "wH/MBiehuFc6FJ/NH6Rmzw=="
)


def spec_image(records: list[tuple[int, bytes]], key: bytes | None = None, hw: bool = False) -> bytes:
    """The §8 checklist, written out independently of hil.factory_data."""
    payload = b"".join(struct.pack("<BH", t, len(v)) + v for t, v in sorted(records, key=lambda r: r[0]))
    if key is not None:
        padded = payload + b"\0" * (16 - len(payload) % 16)
        cipher = AES.new(key, AES.MODE_ECB).encrypt(padded)
        return struct.pack("<II", 0xCE47BA5E, len(padded)) + hashlib.sha256(padded).digest()[:4] + cipher
    image = struct.pack("<II", 0xCE47BA5E, len(payload)) + hashlib.sha256(payload).digest()[:4] + payload
    if hw:
        crc = struct.pack("<H", binascii.crc_hqx(image, 0))
        return b"APP_FACT_DATA:  " + struct.pack("<I", len(image)) + image + crc
    return image


@dataclass
class Creds:
    dir: Path
    paa: Path
    pai: Path
    dac: Path
    dac_key: Path
    dac_pem: Path
    dac_key_pem: Path
    dac_key_pkcs8_encrypted: Path
    cd: Path
    cd_signer: Path
    blob56: Path
    blob48: Path
    # wrong ones
    other_dac: Path  # issued by another PAI with the same VID
    other_key: Path  # a key that matches no certificate
    pai_other_vid: Path  # PAI with VID 0xFFF1 ...
    dac_under_other_vid_pai: Path  # ... and a DAC (VID 0x1037) it issued
    dac_under_other_vid_pai_key: Path
    dac_other_pid: Path  # PID 0xA221 from the right PAI
    dac_other_pid_key: Path
    cd_other_pid: Path  # lists only 0xA221


def make_creds(root: Path) -> Creds:
    root.mkdir(parents=True, exist_ok=True)

    def put(name: str, data: bytes) -> Path:
        path = root / name
        path.write_bytes(data)
        return path

    paa = certs.generate_paa("Test PAA", VID)
    pai = certs.generate_pai(paa, "Test PAI", VID)
    dac = certs.generate_dac(pai, "Test DAC", VID, PID)
    pai2 = certs.generate_pai(paa, "Other PAI", VID)
    dac2 = certs.generate_dac(pai2, "Other DAC", VID, PID)
    pai_fff1 = certs.generate_pai(paa, "PAI FFF1", 0xFFF1)
    dac_fff1 = certs.generate_dac(pai_fff1, "DAC under FFF1", VID, PID)
    dac_a221 = certs.generate_dac(pai, "DAC A221", VID, 0xA221)
    signer_key = serialization.load_pem_private_key(
        (CREDS / "Chip-Test-CD-Signing-Key.pem").read_bytes(), None
    )
    signer = certs.load_certificate(CREDS / "Chip-Test-CD-Signing-Cert.pem")

    def sign_cd(pids: list[int]) -> bytes:
        decl = cd.CertificationDeclaration(
            vendor_id=VID,
            product_ids=pids,
            device_type_id=0x100,
            certificate_id="ZIG20142ZB330003-24",
            certification_type=1,
            version_number=9876,
        )
        return cd.sign(decl, signer_key, signer)  # type: ignore[arg-type]

    encrypted = dac.key.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret"),
    )
    return Creds(
        dir=root,
        paa=put("paa.der", paa.cert_der()),
        pai=put("pai.der", pai.cert_der()),
        dac=put("dac.der", dac.cert_der()),
        dac_key=put("dac_key.der", dac.key_der()),
        dac_pem=put("dac.pem", dac.cert_pem()),
        dac_key_pem=put("dac_key.pem", dac.key_pem()),
        dac_key_pkcs8_encrypted=put("dac_key_enc.der", encrypted),
        cd=put("cd.der", sign_cd([PID])),
        cd_signer=CREDS / "Chip-Test-CD-Signing-Cert.pem",
        blob56=put("blob56.bin", bytes(range(0x80, 0x80 + 56))),
        blob48=put("blob48.bin", bytes(range(48))),
        other_dac=put("other_dac.der", dac2.cert_der()),
        other_key=put("other_key.der", dac2.key_der()),
        pai_other_vid=put("pai_fff1.der", pai_fff1.cert_der()),
        dac_under_other_vid_pai=put("dac_fff1.der", dac_fff1.cert_der()),
        dac_under_other_vid_pai_key=put("dac_fff1_key.der", dac_fff1.key_der()),
        dac_other_pid=put("dac_a221.der", dac_a221.cert_der()),
        dac_other_pid_key=put("dac_a221_key.der", dac_a221.key_der()),
        cd_other_pid=put("cd_a221.der", sign_cd([0xA221])),
    )


@pytest.fixture(scope="session")
def creds(tmp_path_factory: pytest.TempPathFactory) -> Creds:
    return make_creds(tmp_path_factory.mktemp("fd-creds"))


def guide_args(c: Creds, *, verifier: bool = True, fast: bool = False, **overrides: str | None) -> list[str]:
    """The seed guide's generate.py command line (with a precomputed verifier unless told otherwise).

    `fast`: passcode 20202021 / 1000 iterations / the SDK test salt, so a verifier check costs ~1 ms.
    `overrides`: flag name (without dashes) → value; None removes the flag, "" makes it a bare switch.
    """
    args: dict[str, str | None] = {
        "-i": str(GUIDE_ITERATIONS),
        "-s": GUIDE_SALT,
        "-p": str(GUIDE_PASSCODE),
        "-d": "1000",
        "--vid": "0x1037",
        "--pid": "0xA220",
        "--vendor_name": "NXP Semiconductors",
        "--product_name": "Lighting app",
        "--serial_num": "12345678",
        "--date": "2023-01-01",
        "--hw_version": "1",
        "--hw_version_str": "1.0",
        "--cert_declaration": str(c.cd),
        "--dac_cert": str(c.dac),
        "--dac_key": str(c.dac_key),
        "--pai_cert": str(c.pai),
        "--spake2p_path": "./out/spake2p",
        "--unique_id": "00112233445566778899aabbccddeeff",
    }
    if fast:
        args.update({"-i": "1000", "-s": TEST_SALT, "-p": "20202021"})
        if verifier:
            args["--spake2p_verifier"] = TEST_VERIFIER
    elif verifier:
        args["--spake2p_verifier"] = GUIDE_VERIFIER
    for name, value in overrides.items():
        flag = {"i": "-i", "s": "-s", "p": "-p", "d": "-d"}.get(name, "--" + name)
        args[flag] = value
    out: list[str] = []
    for flag, value in args.items():
        if value is None:
            continue
        out += [flag] if value == "" else [flag, value]
    return out


def run_generate(args: list[str], out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`hil factory-data generate ARGS --out OUT` in-process: (exit code, stdout, stderr)."""
    code = main(["factory-data", "generate", *args, "--out", str(out)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_inspect(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["factory-data", "inspect", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err
