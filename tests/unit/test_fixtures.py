"""The state fixtures (hil.pytest_plugin.fixtures) in real inner pytest sessions against emulated boards.

Each case runs `pytest` in a subprocess on a small test file and boards.toml, with its own state root, so
board processes, locks and broken-board records are the real ones and nothing leaks into this session:
a board whose transition fails is marked broken (one failure with its category, then skips with the
reason) while a silent cable is retried as infrastructure, tests run in state order per board, --hil-keep
keeps artefacts (keys 0600) and board processes while a normal run removes both and never lets a generated
key into the allure results, a real board that is not connected is skipped with the reason, and a missing
CD key is one clear line.
"""

from __future__ import annotations

import itertools
import json
import os
import stat
from pathlib import Path

import pytest
from cd_signing import CREDS
from emulated_boards import inventory_text

from hil.emulator.board import find_running

pytest_plugins = ["pytester"]


@pytest.fixture
def inner(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
):
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("HIL_STATE_DIR", str(state))
    monkeypatch.setenv("HIL_CD_KEY", str(CREDS / "Chip-Test-CD-Signing-Key.pem"))
    monkeypatch.setenv("HIL_CD_CERT", str(CREDS / "Chip-Test-CD-Signing-Cert.pem"))
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # when this suite itself runs under xdist
    monkeypatch.delenv("HIL_SEED", raising=False)
    pytester.state_root = state  # type: ignore[attr-defined]
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "--hil-boards", "boards.toml", "-p", "no:cacheprovider", "-p", "no:labgrid", "-rs", *args, timeout=180
    )


def test_tests_run_in_state_order_within_each_board(inner: pytest.Pytester) -> None:
    inner.makefile(".toml", boards=inventory_text({"one-emu": "k32w1", "two-emu": "rw61x"}))
    inner.makepyfile(
        test_order="""
        def test_negative(hil_make_strategy): pass
        def test_commissioned(commissioned_device): pass
        def test_converted(converted_board): pass
        def test_provisioned(provisioned_board): pass
        def test_plain(board): pass
        """
    )
    result = run(inner, "--collect-only", "-q")
    order = [line for line in result.outlines if line.startswith("test_order.py::")]
    expected = []
    for board in ("one-emu", "two-emu"):
        for name in ("plain", "provisioned", "converted", "commissioned", "negative"):
            expected.append(f"test_order.py::test_{name}[{board}]")
    assert order == expected


def test_a_broken_board_fails_once_then_its_tests_skip_with_the_reason(inner: pytest.Pytester) -> None:
    inner.makefile(".toml", boards=inventory_text({"dk6-emu": "k32w0x1"}))
    inner.makepyfile(
        test_broken="""
        from hil.emulator.board import find_running

        def test_a_flash_bit_sticks(board):  # a verify mismatch: the product's failure, not the lab's
            find_running(board.name).install_faults({"flip_bit": [0x9D600 + 100, 3]})

        def test_b_provisioned(provisioned_board):
            raise AssertionError("unreachable: provisioning cannot succeed")

        def test_c_provisioned_again(provisioned_board):
            raise AssertionError("unreachable: the board is broken")
        """
    )
    result = run(inner, "-q")
    result.assert_outcomes(passed=1, errors=1, skipped=1)  # the transition fails in set-up
    text = result.stdout.str()
    assert "[hil category: flashing]" in text
    result.stdout.fnmatch_lines(["*test_broken.py:* board dk6-emu is broken: provisioned: *"])
    record = json.loads((inner.state_root / "dk6-emu" / "strategy.json").read_text())  # type: ignore[attr-defined]
    assert [r.startswith("provisioned: ") for r in record["broken"].values()] == [True]
    assert find_running("dk6-emu", inner.state_root) is None  # type: ignore[attr-defined]


def test_a_silent_cable_is_infrastructure_and_does_not_break_the_board(inner: pytest.Pytester) -> None:
    """A link fault that outlasts the programmer's own retries is the lab's, not the board's: the plugin
    retries the test once (a fresh board process: the cable is back) and no broken-board record is left."""
    inner.makefile(".toml", boards=inventory_text({"dk6-emu": "k32w0x1"}))
    inner.makepyfile(
        test_silent="""
        from hil.emulator.board import find_running

        def test_a_cable_goes_silent(board):
            find_running(board.name).install_faults({"disconnect_after_bytes": 64})

        def test_b_provisioned(provisioned_board):
            pass
        """
    )
    result = run(inner, "-q")
    result.assert_outcomes(passed=2)
    retried = [line for line in result.outlines if ": retried once after: " in line]
    assert [line.split(": retried once after: ")[0] for line in retried] == [
        "test_silent.py::test_b_provisioned[dk6-emu]"
    ]
    assert "TransientError: dk6-emu: write of factory data at 0x9D600 failed after 4 attempts" in retried[0]
    record = json.loads((inner.state_root / "dk6-emu" / "strategy.json").read_text())  # type: ignore[attr-defined]
    assert record["broken"] == {} and record["state"] == "provisioned"


INNER_PROVISION = """
import os
from pathlib import Path

def test_provisioned(provisioned_board):
    key = provisioned_board.device.dac.key.private_numbers().private_value.to_bytes(32, "big")
    Path(os.environ["HIL_TEST_OUT"]).write_text(key.hex())
    assert provisioned_board.state == "provisioned"
"""


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_artefacts_and_board_processes_kept_only_with_hil_keep(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    inner.makefile(".toml", boards=inventory_text({"rw-emu": "rw61x"}))
    inner.makepyfile(test_keep=INNER_PROVISION)
    out = inner.path / "dac-key.hex"
    monkeypatch.setenv("HIL_TEST_OUT", str(out))
    root = inner.state_root  # type: ignore[attr-defined]

    result = run(inner, "-q", "--alluredir", "allure", "--hil-reports", "plain")
    result.assert_outcomes(passed=1)
    assert not (inner.path / "plain" / "hil-artifacts").exists()
    assert find_running("rw-emu", root) is None, "a board process started by the session was left running"
    key_hex = out.read_text()
    allure = _files(inner.path / "allure")
    assert any(b"BEGIN CERTIFICATE" in p.read_bytes() for p in allure)  # PAA/PAI/DAC attached
    assert any(b"factory_data_sha256" in p.read_bytes() for p in allure)  # step facts attached
    for path in allure:
        data = path.read_bytes()
        assert key_hex.encode() not in data.lower() and bytes.fromhex(key_hex) not in data, path

    try:
        result = run(inner, "-q", "--hil-keep", "--hil-reports", "kept")
        result.assert_outcomes(passed=1)
        kept = _files(inner.path / "kept" / "hil-artifacts")
        factory = [p for p in kept if p.name == "factory_data.bin"]
        assert factory and stat.S_IMODE(factory[0].stat().st_mode) == 0o600
        keys = [p for p in kept if p.name.endswith("-Key.der")]
        assert keys and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in keys)
        assert find_running("rw-emu", root) is not None
    finally:
        handle = find_running("rw-emu", root)
        if handle is not None:
            handle.stop()


def test_a_real_board_that_is_not_connected_is_skipped_with_the_reason(inner: pytest.Pytester) -> None:
    inner.makefile(
        ".toml",
        boards='[board.rw-lab]\nfamily = "rw61x"\n[board.rw-lab.connection]\nport = "/dev/ttyHIL404"\n',
    )
    inner.makepyfile(
        test_real="def test_flash(provisioned_board):\n    raise AssertionError('unreachable')\n"
    )
    result = run(inner, "-q", "-m", "rw61x", "--hil-target", "real")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*board rw-lab (rw61x, real) is not connected: serial port /dev/ttyHIL404 does not exist*"]
    )
    # No real board in the inventory at all: the family's tests still show up, skipped with why.
    inner.makefile(".toml", boards=inventory_text({"rw-emu": "rw61x"}))
    result = run(inner, "-q", "-m", "rw61x", "--hil-target", "real")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no real board connected: *boards.toml lists none (--hil-target real)*"])


def test_without_a_cd_key_the_test_key_signs_and_the_run_says_so(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    inner.makefile(".toml", boards=inventory_text({"rw-emu": "rw61x"}))
    inner.makepyfile(
        test_pki="from hil.matter import cd, test_cd_key\n"
        "def test_pki(pki):\n"
        "    assert cd.parse_envelope(pki.cd).signer_key_id == test_cd_key.KEY_ID\n"
    )
    monkeypatch.delenv("HIL_CD_KEY")
    monkeypatch.delenv("HIL_CD_CERT")
    result = run(inner, "-q")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["hil: note: the CD is signed with the Matter test CD signing key*development*"]
    )
    # A key without its certificate is one clear line, not a silent fall-back to the test key.
    result = run(inner, "-q", "--hil-cd-key", os.fspath(CREDS / "Chip-Test-CD-Signing-Key.pem"))
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*--hil-cd-key and --hil-cd-cert: give both*"])
    assert "Traceback" not in result.stdout.str()
    assert "hil: note: the CD is signed" not in result.stdout.str()


INNER_STEPS = """
import json, os
from pathlib import Path

def test_provisioned(provisioned_board):
    steps = [[r.name, r.seconds] for r in provisioned_board.steps()]
    Path(os.environ["HIL_TEST_OUT"]).write_text(json.dumps(steps))
"""


def _allure_steps(results: Path, board: str) -> list[dict]:
    """The allure steps the fixtures reported for `board` (in the fixtures' `befores`), in order."""
    steps = []
    for path in results.glob("*-container.json"):
        for before in json.loads(path.read_text()).get("befores", []):
            steps += [s for s in before.get("steps", []) if s["name"].endswith(f": {board}")]
    return sorted(steps, key=lambda s: s["start"])


def test_strategy_steps_are_reported_live_with_their_duration_and_facts(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    inner.makefile(".toml", boards=inventory_text({"rw-emu": "rw61x"}))
    inner.makepyfile(test_steps=INNER_STEPS)
    out = inner.path / "steps.json"
    monkeypatch.setenv("HIL_TEST_OUT", str(out))
    result = run(inner, "-q", "--alluredir", "allure", "--hil-reports", "rep")
    result.assert_outcomes(passed=1)
    recorded = json.loads(out.read_text())
    reported = _allure_steps(inner.path / "allure", "rw-emu")
    names = [name for name, _ in recorded]
    assert names == ["credentials", "factory-data", "app-image", "flash", "boot"]
    assert [s["name"] for s in reported] == [f"{name}: rw-emu" for name in names]
    for (name, seconds), shown in zip(recorded, reported, strict=True):
        # the allure step was open while the strategy ran the step: it lasts at least what the step
        # measured of itself (allure keeps milliseconds: 2 ms of rounding between the two clocks)
        assert shown["stop"] - shown["start"] >= seconds * 1000 - 2, (name, seconds, shown)
        assert shown["status"] == "passed"
    for before, after in itertools.pairwise(reported):
        assert after["start"] >= before["stop"]  # one after the other, as the strategy ran them
    facts = {}
    for path in (inner.path / "rep" / "hil-records").rglob("*.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record["kind"] == "step" and (record["title"] or "").endswith(": rw-emu"):
                facts[record["title"].split(":")[0]] = record["facts"]
    assert len(facts["factory-data"]["factory_data_sha256"]) == 64
    assert facts["credentials"]["dac_serial"]
    summary = (inner.path / "rep" / "qualification.md").read_text()
    assert facts["factory-data"]["factory_data_sha256"] in summary


def test_an_infrastructure_failure_is_retried_not_skipped(inner: pytest.Pytester) -> None:
    inner.makefile(".toml", boards=inventory_text({"rw-emu": "rw61x"}))
    inner.makeconftest(
        """
        import pytest
        from hil.errors import TransientError
        from hil.flow import board_io

        @pytest.fixture(autouse=True, scope="session")
        def probe_lost_once():
            real, calls = board_io.flash_and_boot, []

            def flaky(*args, **kwargs):  # the lab loses the probe once, mid-flash
                calls.append(1)
                if len(calls) == 1:
                    raise TransientError("J-Link: probe lost")
                return real(*args, **kwargs)

            board_io.flash_and_boot = flaky
            yield
            board_io.flash_and_boot = real
        """
    )
    inner.makepyfile(
        test_retry="""
        def test_provisioned(provisioned_board):
            assert provisioned_board.state == "provisioned"

        def test_still_provisioned(provisioned_board):
            assert provisioned_board.state == "provisioned"
        """
    )
    result = run(inner, "-q")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*hil: infrastructure retries*", "*test_provisioned*: retried once after: *probe lost*"]
    )
    record = json.loads((inner.state_root / "rw-emu" / "strategy.json").read_text())  # type: ignore[attr-defined]
    assert record["broken"] == {} and record["state"] == "provisioned"
