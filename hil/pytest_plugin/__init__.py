"""pytest plugin of the harness (registered by conftest.py and the `pytest11` entry point).

A thin adapter over the library (ARCHITECTURE.md): board selection is `hil.lab.selection`, locks are
`hil.lab.locks`, failure categories, redaction, records and the summary are `hil.reports`. This module holds
the options and per-process set-up; `boards` (parameters, markers, board fixtures), `retry` (categories,
infrastructure retry, report redaction) and `reporting` (end-of-session files) are registered with it.

Options: --hil-boards PATH, --hil-target emulated|real|lab|all, --hil-board NAME (repeatable), --hil-keep,
--hil-lock-timeout SECONDS, --hil-reports DIR.

Boards as parameters. A test (or any fixture it uses) that requests `hil_board_name` runs once per selected
board; the parameter is session-scoped, so pytest groups a board's tests together and a session-scoped board
fixture is set up once per board. `@pytest.mark.hil_families("k32w1", "rw61x")` limits a test to families.
Each such run gets the family's marker (`-m k32w1` selects exactly the K32W1 runs) and
`xdist_group(<board>)`, so `pytest -n N --dist loadgroup` keeps a board's tests on one worker; the board lock
(`hil_board_lock`) keeps a board to one worker or process in every other case too. (On pytest 9.2
xdist's own grouping is broken, pytest-xdist #1386; `hil.lab.scheduling` groups by board instead.)

Failures. Every exception escaping a test phase gets its category written into it (see
`hil.reports.categories`). A test whose only failures are infrastructure (programmer timeout, probe lost,
lock timeout) is run once more: allure keeps the first attempt as a retry of the same test, the final
reports carry a `hil_infrastructure_retry` property, and the terminal summary lists it. Product failures
are never retried.

Reports. Allure results are written through a redacting writer; at the end of the session the main process
adds environment.properties and categories.json to the allure results and writes the qualification summary
(<reports>/qualification.md and .html) from the step records of this run.
"""

from __future__ import annotations

from typing import Any

import pytest

from hil.lab.locks import DEFAULT_TIMEOUT
from hil.lab.selection import TARGETS
from hil.pytest_plugin.boards import HilOptions
from hil.pytest_plugin.retry import RETRY_PROPERTY
from hil.pytest_plugin.state import (
    BOARD_PARAM,
    FAMILY_MARKERS,
    STATE,
    HilState,
    new_run_id,
    selection,
)
from hil.reports import records
from hil.reports.allure import install_redacting_logger

pytest_plugins = [
    "hil.pytest_plugin.boards",
    "hil.pytest_plugin.retry",
    "hil.pytest_plugin.reporting",
    "hil.pytest_plugin.fixtures",
    "hil.pytest_plugin.lab",
]

__all__ = ["BOARD_PARAM", "FAMILY_MARKERS", "RETRY_PROPERTY", "HilOptions", "HilState"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "nxp-matter-hil: boards, locks, reports")
    group.addoption(
        "--hil-boards",
        metavar="PATH",
        default=None,
        help="board inventory (default: $HIL_BOARDS, ./boards.toml, the repository's boards.toml)",
    )
    group.addoption(
        "--hil-target",
        choices=TARGETS,
        default="emulated",
        help="which boards of the inventory to run on (default: emulated)",
    )
    group.addoption(
        "--hil-board",
        action="append",
        default=[],
        metavar="NAME",
        help="run only on this board (repeatable)",
    )
    group.addoption(
        "--hil-keep",
        action="store_true",
        help="keep every board's artefacts (factory data, certificates, keys 0600, logs), not only failing "
        "boards', and leave emulated board processes running",
    )
    group.addoption(
        "--hil-lock-timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for a board another run holds (default: {DEFAULT_TIMEOUT:.0f})",
    )
    group.addoption(
        "--hil-reports",
        metavar="DIR",
        default="reports",
        help="where step records and the qualification summary go (default: reports)",
    )


@pytest.hookimpl(trylast=True)  # after allure-pytest has set up (and cleaned) its results directory
def pytest_configure(config: pytest.Config) -> None:
    for family in FAMILY_MARKERS:
        config.addinivalue_line("markers", f"{family}: runs on a {family.upper()} board (set automatically)")
    config.addinivalue_line("markers", "nightly: part of the nightly HIL run")
    config.addinivalue_line("markers", "qualification: part of release qualification")
    config.addinivalue_line(
        "markers", "hil_families(*families): run this board test only on boards of these families"
    )
    workerinput = getattr(config, "workerinput", None)
    invocation = config.invocation_params.dir
    boards = config.getoption("hil_boards")
    s = HilState(
        boards_path=(invocation / boards) if boards else None,
        target=config.getoption("hil_target"),
        board_names=list(config.getoption("hil_board")),
        keep=config.getoption("hil_keep"),
        lock_timeout=config.getoption("hil_lock_timeout"),
        reports_dir=invocation / config.getoption("hil_reports"),
        run_id=workerinput["hil_run_id"] if workerinput else new_run_id(),
        worker=workerinput["workerid"] if workerinput else "main",
    )
    config.stash[STATE] = s
    installed = install_redacting_logger()
    if installed:
        s.alluredir, restore = installed
        config.add_cleanup(restore)
    records.configure(records.RecordSink(s.records_dir, s.worker))
    config.add_cleanup(lambda: records.configure(None))
    if boards or s.board_names or s.target != "emulated":
        # Board options given explicitly: check them now, one line and exit 4, before anything runs.
        # Without them the inventory is read on first use, so a broken boards.toml fails board tests only.
        try:
            selection(config)
        except pytest.fail.Exception as exc:
            raise pytest.UsageError(str(exc)) from None


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: hand the run id to each worker so all records of one run land in one directory."""
    node.workerinput["hil_run_id"] = node.config.stash[STATE].run_id
