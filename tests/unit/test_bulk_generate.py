"""`hil bulk generate` end to end: every device inspects clean, a killed run resumes exactly, bad input
writes nothing.

Credentials are made with hil.matter (PAA → PAI, CD signed with the CSA test CD key); each device's factory
data is judged by `hil.factory_data.inspect` with the PAA and the CD signer (chain, VID/PID, DAC key,
verifier, hash), the HEX is read back with bincopy, the onboarding codes are parsed back. Iterations are
1000 (the SDK minimum) to keep the suite fast.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import bincopy
import pytest
from cd_signing import CREDS
from cryptography.hazmat.primitives.asymmetric import ec

from hil.bulk import BatchDir
from hil.cli import main
from hil.factory_data import inspect as fd_inspect
from hil.matter import cd, certs, onboarding, spake2p, test_cd_key

VID, PID = 0xFFF1, 0x8000
ADDRESS = 0xFE080
AES128 = "2B7E151628AED2A6ABF7158809CF4F3C"


@dataclass
class Pki:
    paa: certs.Credential
    cd_signer: certs.Credential
    pai_cert: Path
    pai_key: Path
    cd: Path
    cd_other_pid: Path
    other_key: Path
    pai_other_vid: Path
    pai_other_vid_key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    signer = certs.load_credential(
        CREDS / "Chip-Test-CD-Signing-Cert.pem", CREDS / "Chip-Test-CD-Signing-Key.pem"
    )
    paa = certs.generate_paa("Bulk Test PAA")
    pai = certs.generate_pai(paa, "Bulk Test PAI", VID)
    pai2 = certs.generate_pai(paa, "Other PAI", 0xFFF2)

    def write(name: str, data: bytes) -> Path:
        (d / name).write_bytes(data)
        return d / name

    def signed_cd(pids: list[int]) -> bytes:
        decl = cd.CertificationDeclaration(VID, pids, 0x0100, "ZIG20142ZB330003-24")
        assert signer.key is not None
        return cd.sign(decl, signer.key, signer.cert)

    other = ec.generate_private_key(ec.SECP256R1())
    return Pki(
        paa=paa,
        cd_signer=signer,
        pai_cert=write("pai_cert.pem", pai.cert_pem()),
        pai_key=write("pai_key.der", pai.key_der()),
        cd=write("cd.der", signed_cd([PID, PID + 1])),
        cd_other_pid=write("cd_other.der", signed_cd([PID + 5])),
        other_key=write("other_key.der", certs.private_key_bytes(other, certs.serialization.Encoding.DER)),
        pai_other_vid=write("pai2.der", pai2.cert_der()),
        pai_other_vid_key=write("pai2_key.der", pai2.key_der()),
    )


def bulk_args(pki: Pki, out: Path, count: int, *extra: str) -> list[str]:
    return [
        "bulk", "generate", "--count", str(count), "--out", str(out),
        "--pai_cert", str(pki.pai_cert), "--pai_key", str(pki.pai_key), "--cert_declaration", str(pki.cd),
        "--vid", hex(VID), "--pid", hex(PID), "--vendor_name", "Acme", "--product_name", "Bulk Bulb",
        "--hw_version", "2", "--hw_version_str", "2.0", "-i", "1000", "--address", hex(ADDRESS), *extra,
    ]  # fmt: skip


def manifest(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def check_batch_is_good(
    pki: Pki, out: Path, count: int, aes_key: bytes | None = None
) -> list[dict[str, str]]:
    """Exactly `count` complete devices, each inspecting clean, and a manifest that agrees with them."""
    names = sorted(os.listdir(out / "devices"))
    assert names == [f"{i:06d}" for i in range(count)]  # no gaps, no duplicates, no temporaries
    rows = manifest(out)
    assert [int(r["index"]) for r in rows] == list(range(count))
    jsonl = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [{k: str(v) for k, v in r.items()} for r in jsonl] == rows
    passcodes = [int(r["passcode"]) for r in rows]
    assert len(set(passcodes)) == count and all(spake2p.is_valid_passcode(p) for p in passcodes)
    assert len({r["serial_num"] for r in rows}) == count and len({r["dac_serial"] for r in rows}) == count
    manifest_text = (out / "manifest.csv").read_text() + (out / "manifest.jsonl").read_text()
    for row in rows:
        d = out / row["dir"]
        image = (d / "factory_data.bin").read_bytes()
        assert hashlib.sha256(image).hexdigest() == row["factory_data_sha256"]
        report = fd_inspect.inspect(image, aes_key=aes_key, paa=pki.paa.cert, cd_signer=pki.cd_signer.cert)
        failed = [c for c in report.checks if c.status != "pass"]
        assert report.valid and not failed, (row["index"], failed, report.problems)
        names = {c.name for c in report.checks}
        assert {"dac-chain", "dac-vid-pid", "cd-vid-pid", "verifier", "dac-key"} <= names
        fd = fd_inspect.codec.decode(image, aes_key=aes_key)
        assert (fd.passcode, fd.discriminator, fd.serial_num) == (
            int(row["passcode"]), int(row["discriminator"]), row["serial_num"])  # fmt: skip
        assert (fd.vid, fd.pid, fd.iterations, fd.hw_version_str) == (VID, PID, 1000, "2.0")
        key = certs.load_private_key(d / "dac_key.der")
        dac = certs.load_certificate(d / "dac_cert.der")
        certs.check_key_matches(dac, key)
        assert f"{dac.serial_number:016X}" == row["dac_serial"]
        assert key.private_numbers().private_value.to_bytes(32, "big") == fd.dac_key
        assert fd.dac_key.hex() not in manifest_text.lower()
        for name in ("dac_key.der", "factory_data.bin", "factory_data.hex"):
            assert stat.S_IMODE(os.stat(d / name).st_mode) == 0o600, name
        hexfile = bincopy.BinFile()
        hexfile.add_ihex((d / "factory_data.hex").read_text())
        assert (hexfile.minimum_address, hexfile.as_binary()) == (ADDRESS, image)
        qr = onboarding.parse_qr_payload(row["qr_payload"])
        assert (qr.vid, qr.pid, qr.passcode, qr.discriminator) == (VID, PID, fd.passcode, fd.discriminator)
        manual = onboarding.parse_manual_code(row["manual_code"])
        assert (manual.passcode, manual.discriminator) == (fd.passcode, fd.discriminator & 0xF00)
    return rows


def test_every_device_inspects_clean(pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "batch"
    assert main(bulk_args(pki, out, 12, "-j", "2")) == 0
    assert "12 devices" in capsys.readouterr().out
    check_batch_is_good(pki, out, 12)
    assert stat.S_IMODE(os.stat(out / "batch.json").st_mode) == 0o600  # holds the batch key


def test_encrypted_batch_with_threads_inspects_clean(pki: Pki, tmp_path: Path) -> None:
    out = tmp_path / "batch"
    assert main(bulk_args(pki, out, 4, "-j", "2", "--executor", "thread", "--aes128_key", AES128)) == 0
    check_batch_is_good(pki, out, 4, aes_key=bytes.fromhex(AES128))


def test_seed_makes_parameters_reproducible_but_not_keys(pki: Pki, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(bulk_args(pki, a, 3, "-j", "1", "--seed", "s1")) == 0
    assert main(bulk_args(pki, b, 3, "-j", "2", "--seed", "s1")) == 0
    fields = ("passcode", "discriminator", "serial_num", "dac_serial", "qr_payload", "manual_code")
    assert [[r[k] for k in fields] for r in manifest(a)] == [[r[k] for k in fields] for r in manifest(b)]
    assert (a / "devices/000000/dac_key.der").read_bytes() != (b / "devices/000000/dac_key.der").read_bytes()


def test_without_a_cd_the_batch_gets_a_development_cd_signed_with_the_test_key(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "batch"
    args = bulk_args(pki, out, 2)
    at = args.index("--cert_declaration")
    del args[at : at + 2]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "note: the CD is signed with the Matter test CD signing key" in err and "--cert_declaration" in err
    check_batch_is_good(pki, out, 2)  # inspected against the test key's certificate
    signed = fd_inspect.codec.decode((out / "devices/000000/factory_data.bin").read_bytes()).cert_declaration
    assert signed is not None and cd.parse_envelope(signed).signer_key_id == test_cd_key.KEY_ID
    assert cd.decode(signed).product_ids == [PID]
    # Deterministic: resuming (here: re-running) the same command finds the same CD and changes nothing.
    before = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file() and p.name != ".lock"}
    assert main(args) == 0
    assert before == {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file() and p.name != ".lock"}


def test_rerun_of_a_complete_batch_changes_nothing(pki: Pki, tmp_path: Path) -> None:
    out = tmp_path / "batch"
    assert main(bulk_args(pki, out, 3)) == 0
    before = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file() and p.name != ".lock"}
    assert main(bulk_args(pki, out, 3)) == 0
    after = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file() and p.name != ".lock"}
    assert before == after


def _wait_for_devices(out: Path, at_least: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120  # a guard against a hang, not a performance assertion
    while time.monotonic() < deadline and proc.poll() is None:
        devices = out / "devices"
        if devices.is_dir() and sum(1 for n in os.listdir(devices) if n.isdigit()) >= at_least:
            return
        time.sleep(0.005)
    raise AssertionError(f"the run ended or hung before writing {at_least} devices (rc={proc.poll()})")


def test_killed_run_resumes_to_exactly_n_good_devices(pki: Pki, tmp_path: Path) -> None:
    out, count = tmp_path / "batch", 200
    cmd = [sys.executable, "-m", "hil", *bulk_args(pki, out, count, "-j", "2")]
    snapshots: dict[str, bytes] = {}
    for at_least in (5, 80):  # two kills at different points; each SIGKILLs the `hil` process itself
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _wait_for_devices(out, at_least, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        done = BatchDir(out).done_indices()
        assert len(done) < count, "the run finished before it could be killed; raise count"
        snapshots |= {str(i): (out / f"devices/{i:06d}/factory_data.bin").read_bytes() for i in sorted(done)}
    resumed = subprocess.run(cmd, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "already present" in resumed.stdout
    check_batch_is_good(pki, out, count)
    for i, image in snapshots.items():  # devices finished before a kill were kept, not regenerated
        assert (out / f"devices/{int(i):06d}/factory_data.bin").read_bytes() == image


def _swap_pai(args: list[str], cert: Path, key: Path) -> None:
    args[args.index("--pai_cert") + 1] = str(cert)
    args[args.index("--pai_key") + 1] = str(key)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p, a: a.__setitem__(a.index("--pid") + 1, "0x8005"), "--pid"),
        (lambda p, a: a.__setitem__(a.index("--cert_declaration") + 1, str(p.cd_other_pid)), "--pid"),
        (lambda p, a: a.__setitem__(a.index("--pai_key") + 1, str(p.other_key)), "key"),
        (lambda p, a: _swap_pai(a, p.pai_other_vid, p.pai_other_vid_key), "PAI certificate's VID"),
        (lambda p, a: a.__setitem__(a.index("-i") + 1, "999"), "iterations"),
        (lambda p, a: a.__setitem__(a.index("--vendor_name") + 1, "V" * 33), "vendor"),
        (lambda p, a: a.__setitem__(a.index("--count") + 1, "0"), "--count"),
        (lambda p, a: a.extend(["--max-size", "0x200"]), "does not fit"),
        (lambda p, a: a.extend(["--date", "2026-13-01"]), "--date"),
        (lambda p, a: a.extend(["--aes128_key", "00"]), "aes128_key"),
        (lambda p, a: a.extend(["--hw_params", "--aes128_key", AES128]), "hw_params"),
        (lambda p, a: a.__setitem__(a.index("--pai_key") + 1, "/nonexistent/key.der"), "--pai_key"),
    ],
    ids=[
        "pid-not-in-dac-cd",
        "cd-other-pid",
        "pai-key-mismatch",
        "pai-other-vid",
        "iterations",
        "vendor-name-too-long",
        "count-zero",
        "too-big-for-region",
        "bad-date",
        "short-aes-key",
        "hw-params-with-aes",
        "missing-key-file",
    ],
)
def test_bad_input_fails_before_any_device(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str], change: object, message: str
) -> None:
    out = tmp_path / "batch"
    args = bulk_args(pki, out, 3)
    change(pki, args)  # type: ignore[operator]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hil: error: ") and "\n" not in err and "Traceback" not in err
    assert message in err
    assert not out.exists()


def test_resume_with_other_arguments_is_refused_and_keeps_the_batch(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "batch"
    assert main(bulk_args(pki, out, 2, "--seed", "x")) == 0
    before = sorted(p.read_bytes() for p in out.rglob("*.bin"))
    capsys.readouterr()
    args = bulk_args(pki, out, 4, "--seed", "x")
    args[args.index("--product_name") + 1] = "Other"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "product_name" in err and "started with" in err and err.count("\n") == 1
    assert main(bulk_args(pki, out, 4, "--seed", "y")) == 2
    assert "--seed" in capsys.readouterr().err
    assert sorted(p.read_bytes() for p in out.rglob("*.bin")) == before
    assert main(bulk_args(pki, out, 4)) == 0  # same arguments (seed remembered): extends the batch
    check_batch_is_good(pki, out, 4)


def test_board_gives_hex_address_region_and_aes_key(pki: Pki, tmp_path: Path) -> None:
    # rt1060-emu (boards.toml): factory data at 0x607DF000, 4 KiB, firmware decrypts with NXP's example key.
    from hil.boards import get_board

    board = get_board("rt1060-emu")
    assert board.aes_key_bytes is not None
    out = tmp_path / "batch"
    args = [a for a in bulk_args(pki, out, 2) if a not in ("--address", hex(ADDRESS))]
    assert main([*args, "--board", "rt1060-emu"]) == 0
    for d in sorted((out / "devices").iterdir()):
        image = (d / "factory_data.bin").read_bytes()
        report = fd_inspect.inspect(image, aes_key=board.aes_key_bytes, paa=pki.paa.cert)
        assert report.valid and all(c.status != "fail" for c in report.checks)
        hexfile = bincopy.BinFile()
        hexfile.add_ihex((d / "factory_data.hex").read_text())
        assert (hexfile.minimum_address, hexfile.as_binary()) == (board.factory_data_address, image)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--board", "no-such-board"], "board"),
        (["--board", "k32w0x1-emu", "--aes128_key", AES128], "reads plain factory data"),
        (["--board", "rt1060-emu", "--aes128_key", "00" * 16], "differs from the key"),
        (["--board", "k32w0x1-emu", "--max-size", "0x100"], "does not fit"),
    ],
    ids=["unknown-board", "key-for-plain-board", "wrong-board-key", "region-too-small"],
)
def test_board_mismatches_fail_before_any_device(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    out = tmp_path / "batch"
    assert main([*bulk_args(pki, out, 2), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not out.exists()


def test_a_killed_worker_fails_the_run_cleanly_and_resume_completes(pki: Pki, tmp_path: Path) -> None:
    import psutil

    out, count = tmp_path / "batch", 300
    cmd = [sys.executable, "-m", "hil", *bulk_args(pki, out, count, "-j", "2")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for_devices(out, 5, proc)  # type: ignore[arg-type]
    workers = psutil.Process(proc.pid).children()
    assert workers, "no worker processes"
    workers[0].kill()
    _, err = proc.communicate(timeout=120)  # a dead worker must end the run, not hang it
    assert proc.returncode != 0, "the batch finished before the worker could be killed; raise count"
    assert proc.returncode == 1 and "worker process died" in err and err.count("\n") == 1
    assert main(bulk_args(pki, out, count, "-j", "2")) == 0
    check_batch_is_good(pki, out, count)


def test_out_that_is_not_a_batch_directory_is_refused(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(bulk_args(pki, out, 2)) == 2
    assert "not a batch directory" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert main([*bulk_args(pki, tmp_path / "b", 2), "--serial_prefix", "P" * 27]) == 2
    assert "--serial_prefix" in capsys.readouterr().err
