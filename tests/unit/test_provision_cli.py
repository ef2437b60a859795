"""`hil provision` and `hil commission` as a user runs them: subprocesses, real board processes, the real
SDK controller, exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cd_signing import CREDS as TEST_CREDS

from hil.commissioning import controller as controller_mod
from hil.matter import cd as cdmod
from hil.matter import certs, test_cd_key

CD_ARGS = [
    "--cd-signing-key",
    str(TEST_CREDS / "Chip-Test-CD-Signing-Key.pem"),
    "--cd-signing-cert",
    str(TEST_CREDS / "Chip-Test-CD-Signing-Cert.pem"),
]
_unavailable = controller_mod.availability()
needs_controller = pytest.mark.skipif(_unavailable is not None, reason=f"commissioning: {_unavailable}")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A private state root (board processes, records) for the module; its boards stopped at the end."""
    root = tmp_path_factory.mktemp("provision-cli-state")
    environ = {**os.environ, "HIL_STATE_DIR": str(root)}
    environ.pop("HIL_BOARDS", None)  # the repository's boards.toml: the default emulated boards
    yield environ
    subprocess.run([sys.executable, "-c", _STOP_ALL], env=environ, check=False, timeout=60)


_STOP_ALL = """
from hil.boards import load_inventory
from hil.emulator.board import stop
for p in load_inventory().emulated():
    stop(p.name)
"""


def hil(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hil", *args], env=env, capture_output=True, text=True, timeout=240
    )


@needs_controller
def test_provision_k32w1_end_to_end_then_commission_again(env, tmp_path):
    """No CD flags: the CD is signed with the Matter test CD key (stderr says so) and the SDK controller,
    which trusts that key for development CDs, commissions the board."""
    out = tmp_path / "out"
    run = hil(env, "provision", "--board", "k32w1-emu", "--convert", "--out", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "note: the CD is signed with the Matter test CD signing key" in run.stderr
    signed = (out / "Chip-Test-CD-1037-A220.der").read_bytes()
    assert cdmod.parse_envelope(signed).signer_key_id == test_cd_key.KEY_ID
    lines = run.stdout.splitlines()
    assert "plan off -> provisioned -> converted -> commissioned" in lines[0]
    timed = {m.group(1) for m in (re.match(r"^  (\S+)\s+\d+\.\d\d s  ok", line) for line in lines) if m}
    assert {"credentials", "factory-data", "flash", "boot", "convert", "commission"} <= timed
    assert re.search(r"^  total\s+\d+\.\d\d s$", run.stdout, re.M)
    assert re.search(r"^verdict: commissioned node \d+ by ip in \d+\.\d\d s$", run.stdout, re.M)
    assert "dac_key=sss-blob" in run.stdout and "k32w1-emu: commissioned;" in run.stdout
    # Artefacts with NXP's names; secrets 0600; no secret in the output.
    files = out
    for name in ("Chip-DAC-NXP-1037-A220-Key.der", "Chip-PAA-NXP-Key.der", "factory_data.bin"):
        assert stat.S_IMODE((files / name).stat().st_mode) == 0o600, name
    dac_key = certs.load_private_key(files / "Chip-DAC-NXP-1037-A220-Key.der")
    assert dac_key.private_numbers().private_value.to_bytes(32, "big").hex() not in run.stdout.lower()

    again = hil(env, "commission", "--board", "k32w1-emu")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "commissioned node" in again.stdout and "PID 0xA220" in again.stdout


@needs_controller
def test_commission_against_a_store_without_our_paa_exits_4_naming_101(env, tmp_path):
    run = hil(env, "provision", "--board", "rw61x-emu", "--no-commission", *CD_ARGS)
    assert run.returncode == 0 and "rw61x-emu: provisioned;" in run.stdout, run.stdout + run.stderr
    assert "commission " not in run.stdout  # --no-commission: no commissioning step ran
    store = tmp_path / "store"
    store.mkdir()
    (store / "other-paa.der").write_bytes(certs.generate_paa("Some other PAA", None).cert_der())
    run = hil(env, "commission", "--board", "rw61x-emu", "--paa-trust-store-path", str(store))
    assert run.returncode == 4, run.stdout + run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    assert "attestation error 101 PaaNotFound" in run.stderr


def test_vid_pid_mismatch_is_refused_before_anything_touches_the_board(env, tmp_path):
    """A CD for product 0xA221 given for --pid 0xA220: exit 2, no board process, no output directory."""
    key = certs.load_private_key(TEST_CREDS / "Chip-Test-CD-Signing-Key.pem")
    cert = certs.load_certificate(TEST_CREDS / "Chip-Test-CD-Signing-Cert.pem")
    decl = cdmod.CertificationDeclaration(
        vendor_id=0x1037, product_ids=[0xA221], device_type_id=0x100, certificate_id="ZIG20142ZB330003-24"
    )
    cd_file = tmp_path / "cd.der"
    cd_file.write_bytes(cdmod.sign(decl, key, cert))
    out = tmp_path / "out"
    run = hil(
        env, "provision", "--board", "k32w0x1-emu", "--pid", "0xA220", "--cd", str(cd_file), "--out", str(out)
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "cd:" in run.stderr and "0xA221" in run.stderr and "Traceback" not in run.stderr
    assert not out.exists()
    assert not (Path(env["HIL_STATE_DIR"]) / "k32w0x1-emu").exists()  # the board was never even started


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--board", "k32w0x1-emu", *CD_ARGS[2:]], "--cd-signing-key: missing; --cd-signing-cert needs it"),
        (["--board", "rt1060-emu", "--convert", *CD_ARGS], "keeps its DAC key plain"),
        (["--board", "k32w0x1-emu", "--passcode", "12345678", *CD_ARGS], "passcode"),
        (["--board", "nope", *CD_ARGS], "nope"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(env, args, message):
    run = hil(env, "provision", *args)
    assert run.returncode == 2, run.stdout + run.stderr
    assert message in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_out_must_be_new_or_empty(env, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    run = hil(env, "provision", "--board", "k32w0x1-emu", *CD_ARGS, "--out", str(tmp_path))
    assert run.returncode == 2 and "--out" in run.stderr
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_commission_without_a_record_says_what_to_do(env):
    run = hil(env, "commission", "--board", "rt1170-emu")
    assert run.returncode == 2
    assert "hil provision --board rt1170-emu" in run.stderr


def test_help_names_every_step():
    run = subprocess.run([sys.executable, "-m", "hil", "provision", "--help"], capture_output=True, text=True)
    assert run.returncode == 0
    for step in ("credentials", "factory-data", "flash", "boot", "convert", "commission", "--out"):
        assert step in run.stdout
    run = subprocess.run(
        [sys.executable, "-m", "hil", "commission", "--help"], capture_output=True, text=True
    )
    assert run.returncode == 0 and "--paa-trust-store-path" in run.stdout and "101" in run.stdout


@pytest.mark.parametrize(
    ("log", "rc", "exit_code"), [("ble_thread_success.log", 0, 0), ("ble_thread_paa_not_found.log", 1, 4)]
)
def test_real_board_is_commissioned_with_chip_tool_as_nxp_guide_says(
    env, tmp_path, monkeypatch, log, rc, exit_code
):
    """A real board (boards.toml: no emulation, a Thread dataset): `chip-tool pairing ble-thread` with the
    recorded passcode and discriminator against a store holding only the recorded PAA. chip-tool itself is
    a fake that records its argv and prints a recorded chip-tool log (see test_chip_tool.py)."""
    from test_chip_tool import _FAKE, DATA

    from hil.flow.record import BoardRecord

    inventory = tmp_path / "boards.toml"
    inventory.write_text(
        '[board.lab-k32w1]\nfamily = "k32w1"\n[board.lab-k32w1.connection]\njlink_serial = 123\n'
        '[board.lab-k32w1.options]\nthread_dataset = "0e080000000000010000"\n'
    )
    fake = tmp_path / "chip-tool"
    fake.write_text(_FAKE.format(python=sys.executable))
    fake.chmod(0o755)
    run_env = {
        **env,
        "HIL_STATE_DIR": str(tmp_path / "state"),
        "FAKE_CHIP_TOOL_ARGV": str(tmp_path / "argv.json"),
        "FAKE_CHIP_TOOL_DATA": str(DATA),
        "FAKE_CHIP_TOOL_LOG": log,
        "FAKE_CHIP_TOOL_RC": str(rc),
    }
    paa = certs.generate_paa("Lab PAA", None)
    monkeypatch.setenv("HIL_STATE_DIR", str(tmp_path / "state"))
    record = BoardRecord("lab-k32w1", state="provisioned", passcode=20202021, discriminator=3840)
    record.save()  # what `hil provision` records for a board (a real board cannot be flashed here)
    record.save_paa(paa.cert_der())
    run = hil(
        run_env, "commission", "--board", "lab-k32w1", "--boards", str(inventory),
        "--commissioner", "chip-tool", "--chip-tool", str(fake),
    )  # fmt: skip
    assert run.returncode == exit_code, run.stdout + run.stderr
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert argv[:6] == ["pairing", "ble-thread", "1", "hex:0e080000000000010000", "20202021", "3840"]
    store = Path(argv[argv.index("--paa-trust-store-path") + 1])
    assert [p.read_bytes() for p in store.iterdir()] == [paa.cert_der()]
    if exit_code:
        assert "101 PaaNotFound" in run.stderr
