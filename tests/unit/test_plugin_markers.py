"""The plugin's board parametrisation: family markers, selection options, and board grouping under xdist.

Every case runs a real inner pytest session (in a subprocess, so the plugin's per-process state and allure's
global plugin manager of this session are untouched) against a small boards.toml loaded by the real
`hil.boards` loader.
"""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from hil.lab.scheduling import board_in_nodeid
from hil.pytest_plugin import FAMILY_MARKERS

pytest_plugins = ["pytester"]

BOARDS = """
[board.k32w1-one]
family = "k32w1"
emulated = true

[board.k32w1-two]
family = "k32w1"
emulated = true

[board.rw61x-one]
family = "rw61x"
emulated = true

[board.rw61x-lab]
family = "rw61x"
[board.rw61x-lab.connection]
port = "/dev/ttyUSB9"
"""

TESTS = """
import pytest

def test_board(hil_board_name):
    pass

@pytest.mark.hil_families("rw61x")
def test_rw_only(hil_board_profile):
    assert hil_board_profile.family == "rw61x"

@pytest.mark.parametrize("case", ["a", "b"])
def test_cases(hil_board_name, case):
    pass

@pytest.mark.nightly
def test_no_board():
    pass
"""


@pytest.fixture
def lab(pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HIL_STATE_DIR", str(tmp_path_factory.mktemp("state")))
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # when this suite itself runs under xdist
    pytester.makefile(".toml", boards=BOARDS)
    pytester.makepyfile(test_lab=TESTS)
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "--hil-boards", "boards.toml", "-p", "no:cacheprovider", *args, timeout=120
    )


def collected(result: pytest.RunResult) -> set[str]:
    return {line.split("::", 1)[1] for line in result.outlines if line.startswith("test_lab.py::")}


def test_family_marker_selects_exactly_that_family(lab: pytest.Pytester) -> None:
    k32w1 = collected(run(lab, "--collect-only", "-q", "-m", "k32w1"))
    assert k32w1 == {
        "test_board[k32w1-one]",
        "test_board[k32w1-two]",
        "test_cases[k32w1-one-a]",
        "test_cases[k32w1-one-b]",
        "test_cases[k32w1-two-a]",
        "test_cases[k32w1-two-b]",
    }
    rw61x = collected(run(lab, "--collect-only", "-q", "-m", "rw61x"))
    assert rw61x == {
        "test_board[rw61x-one]",
        "test_rw_only[rw61x-one]",
        "test_cases[rw61x-one-a]",
        "test_cases[rw61x-one-b]",
    }
    everything = collected(run(lab, "--collect-only", "-q"))
    assert everything - k32w1 - rw61x == {"test_no_board"}  # only the board-less test has no family


def test_target_and_board_options(lab: pytest.Pytester) -> None:
    real = collected(run(lab, "--collect-only", "-q", "--hil-target", "real"))
    assert real == {
        "test_board[rw61x-lab]",
        "test_rw_only[rw61x-lab]",
        "test_cases[rw61x-lab-a]",
        "test_cases[rw61x-lab-b]",
        "test_no_board",
    }
    one = collected(run(lab, "--collect-only", "-q", "--hil-board", "k32w1-two", "--hil-board", "rw61x-one"))
    assert {n for n in one if "[" in n} == {
        "test_board[k32w1-two]",
        "test_board[rw61x-one]",
        "test_rw_only[rw61x-one]",
        "test_cases[k32w1-two-a]",
        "test_cases[k32w1-two-b]",
        "test_cases[rw61x-one-a]",
        "test_cases[rw61x-one-b]",
    }


def test_a_named_board_excluded_by_the_target_is_a_usage_error(lab: pytest.Pytester) -> None:
    result = run(lab, "--collect-only", "-q", "--hil-board", "rw61x-lab")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--hil-board: 'rw61x-lab' is not allowed; an emulated board; it is real*"])
    result = run(lab, "--collect-only", "-q", "--hil-board", "nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--hil-board: 'nope' is not allowed; a board of the inventory: k32w1-one*"])


def test_no_matching_board_skips_with_the_reason(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        test_k32=(
            "import pytest\n@pytest.mark.hil_families('k32w1')\ndef test_k(hil_board_name):\n    pass\n"
        )
    )
    result = run(lab, "-q", "-rs", "--hil-target", "real")
    result.assert_outcomes(passed=5, skipped=1)
    result.stdout.fnmatch_lines(["*no selected board of family k32w1 (--hil-target real selects 1 boards)*"])


def test_unknown_family_in_marker_is_reported(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        test_bad=("import pytest\n@pytest.mark.hil_families('k64')\ndef test_k(hil_board_name):\n    pass\n")
    )
    result = run(lab, "-q", "test_bad.py")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*hil_families: 'k64' is not one of {', '.join(FAMILY_MARKERS)}"])


def test_loadgroup_keeps_each_board_on_one_worker(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        test_lab="""
import json, os, pytest

@pytest.mark.parametrize("i", range(8))
def test_where(hil_board_name, i):
    with open("where.jsonl", "a") as f:
        f.write(json.dumps([hil_board_name, os.environ["PYTEST_XDIST_WORKER"]]) + "\\n")
"""
    )
    result = run(lab, "-q", "-n", "2", "--dist", "loadgroup")
    result.assert_outcomes(passed=24)
    workers = defaultdict(set)
    for line in (lab.path / "where.jsonl").read_text().splitlines():
        board, worker = json.loads(line)
        workers[board].add(worker)
    assert set(workers) == {"k32w1-one", "k32w1-two", "rw61x-one"}
    assert all(len(w) == 1 for w in workers.values()), dict(workers)


@pytest.mark.parametrize(
    ("nodeid", "board"),
    [
        ("t.py::test_x[k32w1-emu]", "k32w1-emu"),
        ("t.py::test_x[k32w1-emu-2-a]", "k32w1-emu-2"),
        ("t.py::test_x[a-k32w1-emu]", "k32w1-emu"),
        ("t.py::test_x[k32w1-emulated]", None),
        ("t.py::test_x", None),
        ("t.py::TestC::test_x[rw61x-emu-0x10]", "rw61x-emu"),
    ],
)
def test_board_in_nodeid(nodeid: str, board: str | None) -> None:
    assert board_in_nodeid(nodeid, ["k32w1-emu", "k32w1-emu-2", "rw61x-emu"]) == board
