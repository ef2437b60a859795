"""Factory data: encode per device, validation, verifier, inspect, and the CLI end to end.

Baselines, measured in the same run: a plain SHA-256 of the same image bytes (the floor of any encoder:
it must hash the payload once), raw `hashlib.pbkdf2_hmac` at the same iteration count (the floor of
anything that computes or checks a SPAKE2+ verifier), and `python -c pass` for the CLI (interpreter start).
The inputs are the seed guide's example: a ~1.5 KiB image with DAC, PAI and CD.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from run import paired_us

from hil.factory_data import FactoryData, FactoryDataImage, encode
from hil.factory_data.generate import GenerateRequest, generate
from hil.factory_data.inspect import inspect
from hil.matter import cd, certs, spake2p

SALT = bytes.fromhex("51728bcf01dd3770d964b05a2f68951a1422fcea10c08c09450578ae911a95b0")
KEY128 = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")


def _material(tmp: Path) -> dict[str, Any]:
    paa = certs.generate_paa("Bench PAA", 0x1037)
    pai = certs.generate_pai(paa, "Bench PAI", 0x1037)
    dac = certs.generate_dac(pai, "Bench DAC", 0x1037, 0xA220)
    signer = certs.generate_paa("Bench CD signer")
    decl = cd.CertificationDeclaration(0x1037, [0xA220], 0x100, "ZIG20142ZB330003-24", certification_type=1)
    files = {
        "dac_cert": dac.cert_der(), "pai_cert": pai.cert_der(), "dac_key": dac.key_der(),
        "cert_declaration": cd.sign(decl, signer.key, signer.cert),  # type: ignore[arg-type]
    }  # fmt: skip
    for name, data in files.items():
        (tmp / f"{name}.der").write_bytes(data)
    return {"dac": dac, "pai": pai, "files": files}


def _data(m: dict[str, Any], iterations: int, verifier: bytes | None) -> FactoryData:
    key = m["dac"].key.private_numbers().private_value.to_bytes(32, "big")
    return FactoryData(
        verifier=verifier, salt=SALT, iterations=iterations, dac_key=key, dac_cert=m["files"]["dac_cert"],
        pai_cert=m["files"]["pai_cert"], discriminator=1000, passcode=14014, vid=0x1037, pid=0xA220,
        cert_declaration=m["files"]["cert_declaration"], vendor_name="NXP Semiconductors",
        product_name="Lighting app", serial_num="12345678", date="2023-01-01", hw_version=1,
        hw_version_str="1.0", unique_id="00112233445566778899aabbccddeeff",
    )  # fmt: skip


def _pbkdf2(iterations: int) -> Any:
    """The raw PBKDF2 a SPAKE2+ verifier needs (passcode LE32, salt, 80 bytes), as a callable."""
    return lambda: hashlib.pbkdf2_hmac("sha256", (14014).to_bytes(4, "little"), SALT, iterations, 80)


def _row(case: str, fn: Any, baseline: str, baseline_fn: Any, note: str = "", **kw: Any) -> dict[str, Any]:
    us, base_us = paired_us(fn, baseline_fn, **kw)
    return {"case": case, "us": us, "baseline": baseline, "baseline_us": base_us, "note": note}


def _cli_args(tmp: Path) -> list[str]:
    f = {k: str(tmp / f"{k}.der") for k in ("cert_declaration", "dac_cert", "dac_key", "pai_cert")}
    return [
        sys.executable, "-m", "hil", "factory-data", "generate", "-i", "10000",
        "-s", "UXKLzwHdN3DZZLBaL2iVGhQi/OoQwIwJRQV4rpEalbA=", "-p", "14014", "-d", "1000",
        "--vid", "0x1037", "--pid", "0xA220", "--vendor_name", "NXP Semiconductors",
        "--product_name", "Lighting app", "--hw_version", "1", "--hw_version_str", "1.0",
        "--date", "2023-01-01", "--serial_num", "12345678", "--cert_declaration", f["cert_declaration"],
        "--dac_cert", f["dac_cert"], "--dac_key", f["dac_key"], "--pai_cert", f["pai_cert"],
        "--out", str(tmp / "out.bin"),
    ]  # fmt: skip


def run() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-fd-") as tmpdir:
        tmp = Path(tmpdir)
        m = _material(tmp)
        fd = _data(m, 1000, spake2p.compute_verifier(14014, SALT, 1000))
        image = encode(fd)

        def sha() -> bytes:
            return hashlib.sha256(image).digest()

        size = f"{len(image)} B image"
        rows.append(_row("encode plain", lambda: encode(fd), "sha256 of the image", sha, size))
        rows.append(_row("encode AES-128-ECB", lambda: encode(fd, KEY128), "sha256 of the image", sha, size))
        rows.append(
            _row("encode hw_params", lambda: encode(fd, hw_params=True), "sha256 of the image", sha, size)
        )
        rows.append(_row("firmware-style read", lambda: FactoryDataImage(image), "sha256 of the image", sha))

        checks_only = GenerateRequest(fd, allow=frozenset({"verifier"}))
        given, computed = GenerateRequest(fd), GenerateRequest(_data(m, 10000, None))
        note = "cert parse, key match, chain, VID/PID, CD decode"
        rows.append(_row("generate: checks, no PBKDF2", lambda: generate(checks_only), "encode plain",
                         lambda: encode(fd), note))  # fmt: skip
        rows.append(_row("generate: verifier given, 1000 it", lambda: generate(given), "pbkdf2_hmac 1000 it",
                         _pbkdf2(1000), "verifier recomputed to check it"))  # fmt: skip
        rows.append(_row("generate: verifier computed, 10000 it", lambda: generate(computed),
                         "pbkdf2_hmac 10000 it", _pbkdf2(10000)))  # fmt: skip
        rows.append(_row("inspect, all cross-checks, 1000 it", lambda: inspect(image), "pbkdf2_hmac 1000 it",
                         _pbkdf2(1000)))  # fmt: skip

        cli, start = _cli_args(tmp), [sys.executable, "-c", "pass"]

        def cli_run() -> object:
            return subprocess.run(cli, check=True, capture_output=True)

        rows.append(_row("CLI end to end, 10000 it", cli_run, "python -c pass",
                         lambda: subprocess.run(start, check=True), "one process per device",
                         min_time=0.3, repeats=3))  # fmt: skip
    return rows
