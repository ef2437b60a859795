"""Infrastructure failures are retried once and reported as such; product failures never are; a board held by
another pytest process times out naming the holder. Real inner pytest sessions (subprocesses)."""

from __future__ import annotations

import json
import sys
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

BOARDS = """
[board.k32w1-one]
family = "k32w1"
emulated = true
"""

TESTS = """
import pathlib
import pytest
from hil.errors import FirmwareError, ProgrammerError, TransientError
from hil.reports import step


def bump(name):
    path = pathlib.Path(name + ".count")
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    return n


@pytest.fixture(scope="session")
def provisioned(hil_board_name):
    n = bump("provision")
    with step("flashing", hil_board_name):
        if n == 1:
            raise TransientError(hil_board_name + ": write at 0xFE080: no response (programmer timeout)")
    return n


def test_infra_then_ok(provisioned):
    assert provisioned == 2


def test_product_not_retried(hil_board_name):
    bump("product")
    with step("firmware", hil_board_name):
        raise FirmwareError("factory data rejected: SHA-256 mismatch")


def test_verify_mismatch_not_retried(hil_board_name):
    bump("verify")
    raise ProgrammerError("read-back differs at 0xFE080")


def test_assertion_not_retried(hil_board_name):
    bump("assertion")
    assert 1 == 2


def test_infra_twice(hil_board_name):
    bump("twice")
    raise TransientError("J-Link: probe lost")
"""


@pytest.fixture
def lab(pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HIL_STATE_DIR", str(tmp_path_factory.mktemp("state")))
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # when this suite itself runs under xdist
    pytester.makefile(".toml", boards=BOARDS)
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "--hil-boards", "boards.toml", "-p", "no:cacheprovider", *args, timeout=120
    )


def counts(path: Path) -> dict[str, int]:
    return {p.stem: int(p.read_text()) for p in path.glob("*.count")}


@pytest.mark.parametrize("xdist", [(), ("-n", "2", "--dist", "loadgroup")], ids=["main", "xdist"])
def test_only_infrastructure_failures_are_retried_once(lab: pytest.Pytester, xdist: tuple[str, ...]) -> None:
    lab.makepyfile(test_retry=TESTS)
    result = run(lab, *xdist, "--junitxml=junit.xml", "--alluredir=allure", "-rf")
    result.assert_outcomes(passed=1, failed=4)
    assert counts(lab.path) == {"provision": 2, "product": 1, "verify": 1, "assertion": 1, "twice": 2}
    retried_lines = [line for line in result.outlines if ": retried once after: " in line]
    assert {line.split(": retried once after: ")[0] for line in retried_lines} == {
        "test_retry.py::test_infra_then_ok[k32w1-one]",
        "test_retry.py::test_infra_twice[k32w1-one]",
    }
    assert "TransientError: k32w1-one: write at 0xFE080: no response (programmer timeout)" in retried_lines[0]
    result.stdout.fnmatch_lines(
        ["*TransientError: J-Link: probe lost", "*[[]hil category: infrastructure[]]"]
    )
    result.stdout.fnmatch_lines(["*FirmwareError: factory data rejected*", "*[[]hil category: firmware[]]"])
    result.stdout.fnmatch_lines(["*ProgrammerError: read-back differs*", "*[[]hil category: flashing[]]"])

    # JUnit: one test case per test, the retried ones say so.
    cases = {c.get("name"): c for c in ET.parse(lab.path / "junit.xml").getroot().iter("testcase")}
    assert sorted(cases) == sorted(
        f"{n}[k32w1-one]" for n in ("test_infra_then_ok", "test_product_not_retried",
                                    "test_verify_mismatch_not_retried", "test_assertion_not_retried",
                                    "test_infra_twice")
    )  # fmt: skip
    retried = {
        n for n, c in cases.items() for p in c.iter("property") if p.get("name") == "hil_infrastructure_retry"
    }
    assert retried == {"test_infra_then_ok[k32w1-one]", "test_infra_twice[k32w1-one]"}

    # Allure: the first attempt is its own result with the same history id, so it shows as a retry.
    by_history = defaultdict(list)
    for path in (lab.path / "allure").glob("*-result.json"):
        res = json.loads(path.read_text())
        by_history[res["name"]].append(res)
    attempts = sorted(by_history["test_infra_then_ok[k32w1-one]"], key=lambda r: r["start"])
    assert [r["status"] for r in attempts] == ["broken", "passed"]
    assert attempts[0]["historyId"] == attempts[1]["historyId"]
    assert len(by_history["test_product_not_retried[k32w1-one]"]) == 1
    assert [r["status"] for r in by_history["test_infra_twice[k32w1-one]"]] == ["broken", "broken"]


def _wait_for(path: Path, proc) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_board_held_by_another_pytest_process(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        test_hold="""
import pathlib, time

def test_hold(hil_board_lock):
    pathlib.Path("locked").touch()
    deadline = time.monotonic() + 60
    while not pathlib.Path("release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
""",
        test_want="""
def test_want(hil_board_lock):
    pass
""",
    )
    holder = lab.popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--hil-boards",
            "boards.toml",
            "test_hold.py",
        ],
        stdout=-1,
        stderr=-2,
    )
    try:
        _wait_for(lab.path / "locked", holder)
        result = run(lab, "--hil-lock-timeout", "0.2", "test_want.py")
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            [
                f"*BoardLockTimeout: board 'k32w1-one': still locked by pid {holder.pid} (worker main*",
                "*[[]hil category: infrastructure[]]",
            ]
        )
        result.stdout.fnmatch_lines(["*test_want.py::test_want[[]k32w1-one[]]: retried once after: *"])
    finally:
        (lab.path / "release").touch()
        holder.wait(timeout=60)
    assert holder.returncode == 0, holder.stdout.read().decode()
    # The holder is gone: the board is free again for the next run.
    run(lab, "--hil-lock-timeout", "0", "test_want.py").assert_outcomes(passed=1)
