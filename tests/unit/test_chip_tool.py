"""chip-tool for real boards: command lines, trust-store discipline, and reading outcomes from its log.

No chip-tool binary or board is involved. The outcome tests read recorded-style chip-tool logs
(tests/unit/data/chip_tool/, written from the SDK's own log lines; see its README). The end-to-end tests
put a tiny *fake* chip-tool on PATH that records its argv, applies real chip-tool's start-up PAA check and
prints one of those logs: they test OUR invocation, store handling and parsing, not chip-tool.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from hil.commissioning.chip_tool import ChipTool, find_chip_tool, pairing_command, verdict_from_output
from hil.commissioning.trust_store import write_trust_store
from hil.commissioning.verdict import AttestationResult, Stage
from hil.errors import AttestationError, CommissioningError, ConfigError, InputError
from hil.matter import certs

DATA = Path(__file__).parent / "data" / "chip_tool"
DATASET = bytes.fromhex("0e080000000000010000000300000f35060004001fffe0")


@pytest.fixture(scope="module")
def paa():
    return certs.generate_paa("chip-tool test PAA", 0xFFF2)


@pytest.fixture(scope="module")
def other_paa():
    return certs.generate_paa("another PAA", 0xFFF2)


# ---------------------------------------------------------------------------------------- command lines


def test_ble_thread_command_is_the_nxp_guide_form():
    argv = pairing_command(
        "/opt/chip-tool",
        "ble-thread",
        1,
        paa_store="/s",
        passcode=20202021,
        discriminator=3840,
        dataset=DATASET,
    )
    assert argv == [
        "/opt/chip-tool", "pairing", "ble-thread", "1", "hex:" + DATASET.hex(), "20202021", "3840",
        "--paa-trust-store-path", "/s",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("mode", "fields", "args"),
    [
        ("onnetwork", {"passcode": 20202021}, ["7", "20202021"]),
        ("onnetwork-long", {"passcode": 20202021, "discriminator": 3840}, ["7", "20202021", "3840"]),
        ("code", {"code": "MT:-24J0AFN00KA0648G00"}, ["7", "MT:-24J0AFN00KA0648G00"]),
        ("ble-wifi", {"ssid": "lab", "password": "pw", "passcode": 20202021, "discriminator": 3840},
         ["7", "lab", "pw", "20202021", "3840"]),
    ],
)  # fmt: skip
def test_other_pairing_modes(mode, fields, args):
    argv = pairing_command("chip-tool", mode, 7, paa_store="/s", storage_dir="/st", timeout=90, **fields)
    assert argv == [
        "chip-tool", "pairing", mode, *args, "--paa-trust-store-path", "/s", "--storage-directory", "/st",
        "--timeout", "90",
    ]  # fmt: skip


def test_dataset_as_hex_text_with_or_without_prefix():
    for text in (DATASET.hex(), "hex:" + DATASET.hex().upper()):
        argv = pairing_command(
            "c", "ble-thread", 1, paa_store="/s", passcode=20202021, discriminator=1, dataset=text
        )
        assert argv[4] == "hex:" + DATASET.hex()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"passcode": 12345678, "discriminator": 3840, "dataset": DATASET}, "passcode"),
        ({"passcode": 20202021, "discriminator": 4096, "dataset": DATASET}, "discriminator"),
        ({"passcode": 20202021, "discriminator": 3840, "dataset": "zz"}, "thread dataset"),
        ({"passcode": 20202021, "discriminator": 3840, "dataset": b""}, "thread dataset"),
    ],
)
def test_bad_input_names_the_field(fields, field):
    with pytest.raises(InputError) as exc:
        pairing_command("c", "ble-thread", 1, paa_store="/s", **fields)
    assert exc.value.exit_code == 2 and str(exc.value).startswith(field)


def test_bad_node_id_and_mode():
    with pytest.raises(InputError, match="node_id"):
        pairing_command("c", "onnetwork", 0, paa_store="/s", passcode=20202021)
    with pytest.raises(InputError, match="mode"):
        pairing_command("c", "ble", 1, paa_store="/s", passcode=20202021)


# ---------------------------------------------------------------------------------------- finding it


def test_configured_path_must_be_executable(tmp_path):
    not_exec = tmp_path / "chip-tool"
    not_exec.write_text("")
    with pytest.raises(ConfigError, match="not an executable"):
        find_chip_tool(not_exec)


def test_not_on_path_is_a_config_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="not found on PATH"):
        find_chip_tool()


# ---------------------------------------------------------------------------------------- recorded logs


def _verdict(name: str, returncode: int, method: str = "ble-thread"):
    return verdict_from_output((DATA / name).read_text(), returncode, method=method, node_id=1)


def test_success_log():
    v = _verdict("ble_thread_success.log", 0)
    assert v.ok and v.stage is Stage.COMPLETE and v.attestation is None


def test_success_line_without_exit_zero_is_not_success():
    assert not _verdict("ble_thread_success.log", 1).ok


def test_paa_not_found_log():
    v = _verdict("ble_thread_paa_not_found.log", 1)
    assert v.stage is Stage.ATTESTATION and v.attestation is AttestationResult.PaaNotFound
    assert v.step == "AttestationVerification"
    assert v.chip_error == "0x00000020: Failed Device Attestation"


def test_old_sdk_message_format_still_yields_the_code():
    v = _verdict("ble_thread_cd_602_old_format.log", 1)
    assert v.attestation is AttestationResult.CertificationDeclarationInvalidSignature


def test_wrong_passcode_log():
    v = _verdict("onnetwork_wrong_passcode.log", 1, "onnetwork-long")
    assert v.stage is Stage.PASE and "passcode" in v.message


def test_discovery_timeout_log():
    v = _verdict("onnetwork_discovery_timeout.log", 1, "onnetwork-long")
    assert v.stage is Stage.DISCOVERY and v.chip_error == "0x00000032: Timeout"


def test_no_paas_log_is_a_commissioner_failure():
    v = _verdict("no_paas_in_store.log", 1)
    assert v.stage is Stage.CONTROLLER and "no PAA" in v.message


def test_killed_by_our_timeout():
    v = verdict_from_output("[1.0][1:1] CHIP:BLE: BLE scan started\n", None, method="ble-thread", node_id=1)
    assert v.stage is Stage.TIMEOUT


# ---------------------------------------------------------------------------------------- fake chip-tool

_FAKE = """#!{python}
# FAKE chip-tool for tests: records argv, applies chip-tool's start-up PAA check, prints a canned log.
import json, os, sys, time
argv = sys.argv[1:]
with open(os.environ["FAKE_CHIP_TOOL_ARGV"], "w") as f:
    json.dump(argv, f)
store = argv[argv.index("--paa-trust-store-path") + 1]
if not [n for n in os.listdir(store) if ".der" in n]:
    sys.stdout.write(open(os.path.join(os.environ["FAKE_CHIP_TOOL_DATA"], "no_paas_in_store.log")).read())
    sys.exit(1)
time.sleep(float(os.environ.get("FAKE_CHIP_TOOL_SLEEP", "0")))
log = os.path.join(os.environ["FAKE_CHIP_TOOL_DATA"], os.environ["FAKE_CHIP_TOOL_LOG"])
sys.stdout.write(open(log).read())
sys.exit(int(os.environ["FAKE_CHIP_TOOL_RC"]))
"""


@pytest.fixture
def fake_chip_tool(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "chip-tool"
    exe.write_text(_FAKE.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_CHIP_TOOL_ARGV", str(tmp_path / "argv.json"))
    monkeypatch.setenv("FAKE_CHIP_TOOL_DATA", str(DATA))

    def configure(log: str, rc: int) -> Path:
        monkeypatch.setenv("FAKE_CHIP_TOOL_LOG", log)
        monkeypatch.setenv("FAKE_CHIP_TOOL_RC", str(rc))
        return tmp_path / "argv.json"

    return configure


def test_fake_chip_tool_is_found_on_path_and_given_a_store_of_only_the_paa(fake_chip_tool, tmp_path, paa):
    argv_file = fake_chip_tool("ble_thread_success.log", 0)
    tool = ChipTool(log_dir=tmp_path / "logs")
    verdict = tool.pair_ble_thread(5, DATASET, 20202021, 3840, paa=paa.cert_der())
    assert verdict.ok, verdict.summary()
    argv = json.loads(argv_file.read_text())
    assert argv[:6] == ["pairing", "ble-thread", "5", "hex:" + DATASET.hex(), "20202021", "3840"]
    store = Path(argv[argv.index("--paa-trust-store-path") + 1])
    assert [p.read_bytes() for p in store.iterdir()] == [paa.cert_der()]
    assert argv[argv.index("--storage-directory") + 1] == str(tmp_path / "logs" / "storage")
    log = verdict.log_path.read_text()
    assert log.startswith("$ ") and "completed with success" in log


def test_fake_chip_tool_attestation_failure_maps_to_exit_4(fake_chip_tool, tmp_path, paa):
    fake_chip_tool("ble_thread_paa_not_found.log", 1)
    verdict = ChipTool(log_dir=tmp_path).pair_onnetwork(2, 20202021, 3840, paa=paa.cert_der())
    with pytest.raises(AttestationError) as exc:
        verdict.raise_for_failure()
    assert exc.value.exit_code == 4 and "101 PaaNotFound" in str(exc.value)


def test_fake_chip_tool_wrong_passcode_maps_to_commissioning_error(fake_chip_tool, tmp_path, paa):
    fake_chip_tool("onnetwork_wrong_passcode.log", 1)
    verdict = ChipTool(log_dir=tmp_path).pair_code(3, "34970112332", paa=paa.cert_der())
    assert verdict.stage is Stage.PASE
    with pytest.raises(CommissioningError):
        verdict.raise_for_failure()


def test_given_store_is_used_when_it_holds_exactly_the_paa(fake_chip_tool, tmp_path, paa):
    argv_file = fake_chip_tool("ble_thread_success.log", 0)
    store = write_trust_store(tmp_path / "store", paa.cert_der())
    assert ChipTool(log_dir=tmp_path / "logs").pair_onnetwork(1, 20202021, paa=paa, paa_store=store).ok
    argv = json.loads(argv_file.read_text())
    assert argv[argv.index("--paa-trust-store-path") + 1] == str(store)


def test_store_with_anything_but_the_paa_is_refused_before_running(fake_chip_tool, tmp_path, paa, other_paa):
    argv_file = fake_chip_tool("ble_thread_success.log", 0)
    store = write_trust_store(tmp_path / "store", [paa.cert_der(), other_paa.cert_der()])
    with pytest.raises(InputError, match="must hold only the PAA under test"):
        ChipTool(log_dir=tmp_path / "logs").pair_onnetwork(1, 20202021, paa=paa, paa_store=store)
    assert not argv_file.exists()  # chip-tool never ran


def test_fake_chip_tool_that_hangs_is_killed(fake_chip_tool, tmp_path, paa, monkeypatch):
    fake_chip_tool("ble_thread_success.log", 0)
    monkeypatch.setenv("FAKE_CHIP_TOOL_SLEEP", "30")
    tool = ChipTool(log_dir=tmp_path)
    tool.kill_grace = 0.0
    verdict = tool.pair_onnetwork(1, 20202021, paa=paa.cert_der(), timeout=0.5)
    assert verdict.stage is Stage.TIMEOUT and verdict.details["returncode"] is None
