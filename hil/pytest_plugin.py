"""pytest plugin of the harness (registered by conftest.py and the `pytest11` entry point).

A thin adapter over the library (ARCHITECTURE.md): board selection is `hil.lab.selection`, locks are
`hil.lab.locks`, failure categories, redaction, records and the summary are `hil.reports`.

Options: --hil-boards PATH, --hil-target emulated|real|all, --hil-board NAME (repeatable), --hil-keep,
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

import logging
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _pytest.runner import runtestprotocol  # the public-by-use entry plugins like pytest-rerunfailures use

import hil
from hil.boards.families import FAMILIES
from hil.errors import HilError
from hil.lab.locks import DEFAULT_TIMEOUT, BoardLock, Holder
from hil.lab.selection import TARGETS, select_boards
from hil.reports import records
from hil.reports.allure import (
    environment_entries,
    install_redacting_logger,
    write_categories,
    write_environment,
)
from hil.reports.categories import INFRASTRUCTURE, annotate
from hil.reports.qualification import write_summary
from hil.reports.redact import redact, register_secret

FAMILY_MARKERS = tuple(FAMILIES)
BOARD_PARAM = "hil_board_name"
RETRY_PROPERTY = "hil_infrastructure_retry"

log = logging.getLogger("hil.pytest")


@dataclass
class HilState:
    """Per-process plugin state (in config.stash)."""

    boards_path: Path | None
    target: str
    board_names: list[str]
    keep: bool
    lock_timeout: float
    reports_dir: Path
    run_id: str
    worker: str
    alluredir: Path | None = None
    inventory: Any = None
    selected: list[Any] | None = None
    summary: tuple[Path, Path] | None = None

    @property
    def records_dir(self) -> Path:
        return self.reports_dir / "hil-records" / self.run_id

    @property
    def is_worker(self) -> bool:
        return self.worker != "main"


_STATE = pytest.StashKey[HilState]()
_PHASE_CATEGORY = pytest.StashKey[dict[str, str | None]]()


# --- options, markers, state -------------------------------------------------------------------------------


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
        help="keep emulated boards' working directories (flash images, logs) after the run",
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
    state = HilState(
        boards_path=(invocation / boards) if boards else None,
        target=config.getoption("hil_target"),
        board_names=list(config.getoption("hil_board")),
        keep=config.getoption("hil_keep"),
        lock_timeout=config.getoption("hil_lock_timeout"),
        reports_dir=invocation / config.getoption("hil_reports"),
        run_id=workerinput["hil_run_id"] if workerinput else _new_run_id(),
        worker=workerinput["workerid"] if workerinput else "main",
    )
    config.stash[_STATE] = state
    installed = install_redacting_logger()
    if installed:
        state.alluredir, restore = installed
        config.add_cleanup(restore)
    records.configure(records.RecordSink(state.records_dir, state.worker))
    config.add_cleanup(lambda: records.configure(None))
    if boards or state.board_names or state.target != "emulated":
        # Board options given explicitly: check them now, one line and exit 4, before anything runs.
        # Without them the inventory is read on first use, so a broken boards.toml fails board tests only.
        try:
            _selection(config)
        except pytest.fail.Exception as exc:
            raise pytest.UsageError(str(exc)) from None


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: hand the run id to each worker so all records of one run land in one directory."""
    node.workerinput["hil_run_id"] = node.config.stash[_STATE].run_id


def _new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def _state(config: pytest.Config) -> HilState:
    return config.stash[_STATE]


def _selection(config: pytest.Config) -> tuple[Any, list[Any]]:
    """The inventory and the selected boards, loaded once per process on first use."""
    state = _state(config)
    if state.selected is None:
        from hil.boards import load_inventory

        try:
            state.inventory = load_inventory(state.boards_path)
            state.selected = select_boards(state.inventory, state.target, state.board_names)
        except HilError as exc:
            pytest.fail(str(exc), pytrace=False)
        for profile in state.inventory:
            if profile.aes_key:
                register_secret(profile.aes_key)
    return state.inventory, state.selected


# --- boards as parameters, markers -------------------------------------------------------------------------


def _author_parametrized(metafunc: pytest.Metafunc) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if BOARD_PARAM in names:
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if BOARD_PARAM not in metafunc.fixturenames or _author_parametrized(metafunc):
        return
    state = _state(metafunc.config)
    inventory, selected = _selection(metafunc.config)
    families: list[str] = []
    for mark in metafunc.definition.iter_markers("hil_families"):
        families.extend(mark.args)
    unknown = sorted(set(families) - set(FAMILY_MARKERS))
    if unknown:
        pytest.fail(
            f"{metafunc.definition.nodeid}: hil_families: {unknown[0]!r} is not one of "
            f"{', '.join(FAMILY_MARKERS)}",
            pytrace=False,
        )
    boards = [b for b in selected if not families or b.family in families]
    if boards:
        metafunc.parametrize(
            BOARD_PARAM, [b.name for b in boards], ids=[b.name for b in boards], indirect=True
        )
        return
    where = inventory.path or "the built-in default inventory"
    chosen = f"--hil-target {state.target}" + "".join(f" --hil-board {n}" for n in state.board_names)
    reason = f"no board selected from {where} by {chosen}"
    if families and selected:
        reason = f"no selected board of family {'/'.join(families)} ({chosen} selects {len(selected)} boards)"
    metafunc.parametrize(
        BOARD_PARAM, [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-board")], indirect=True
    )


@pytest.hookimpl(tryfirst=True)  # before `-m` deselection and xdist's loadgroup grouping read the markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get(BOARD_PARAM) if callspec else None
        if name is None:
            continue
        try:
            inventory, selected = _selection(config)
            profile = inventory.get(name)
        except (HilError, pytest.fail.Exception) as exc:
            raise pytest.UsageError(f"{item.nodeid}: {exc}") from None
        item.add_marker(getattr(pytest.mark, profile.family))
        item.add_marker(pytest.mark.xdist_group(name))
        if profile not in selected:
            item.add_marker(
                pytest.mark.skip(reason=f"board {name} is not selected by --hil-target/--hil-board")
            )


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadgroup`: group by board on the controller (xdist's own grouping is broken on pytest 9.2)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from hil.lab.scheduling import BoardGroupScheduling

    try:
        boards = [b.name for b in _selection(config)[1]]
    except pytest.fail.Exception:
        boards = []  # the workers report the inventory error where a test needs a board
    return BoardGroupScheduling(config, log, boards=boards)


# --- fixtures ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HilOptions:
    """The plugin's options as fixtures see them."""

    boards_path: Path | None
    target: str
    board_names: tuple[str, ...]
    keep: bool
    lock_timeout: float
    reports_dir: Path
    worker: str


@pytest.fixture(scope="session")
def hil_options(pytestconfig: pytest.Config) -> HilOptions:
    s = _state(pytestconfig)
    return HilOptions(
        s.boards_path, s.target, tuple(s.board_names), s.keep, s.lock_timeout, s.reports_dir, s.worker
    )


@pytest.fixture(scope="session")
def hil_inventory(pytestconfig: pytest.Config) -> Any:
    """The loaded board inventory (`hil.boards.Inventory`)."""
    return _selection(pytestconfig)[0]


@pytest.fixture(scope="session")
def hil_board_name(request: pytest.FixtureRequest) -> str:
    """The board this test run is for (parametrized by the plugin over the selected boards)."""
    name = getattr(request, "param", None)
    if name is None:
        pytest.fail(
            f"{request.node.nodeid}: hil_board_name was requested but not parametrized", pytrace=False
        )
    profile = _selection(request.config)[0].get(name)
    records.record_environment(profile, emulated=profile.emulated)
    return name


@pytest.fixture(scope="session")
def hil_board_profile(hil_board_name: str, hil_inventory: Any) -> Any:
    """The `BoardProfile` of this run's board."""
    return hil_inventory.get(hil_board_name)


@pytest.fixture(scope="session")
def hil_board_lock(hil_board_name: str, pytestconfig: pytest.Config) -> Iterator[BoardLock]:
    """Exclusive use of this run's board for as long as this process works on it (see hil.lab.locks)."""
    state = _state(pytestconfig)

    def waiting(holder: Holder | None) -> None:
        who = holder.describe() if holder else "another process"
        log.warning("board %s is in use by %s; waiting up to %.0f s", hil_board_name, who, state.lock_timeout)

    lock = BoardLock(hil_board_name).acquire(state.lock_timeout, on_wait=waiting)
    try:
        yield lock
    finally:
        lock.release()


# --- failure categories and the infrastructure retry -------------------------------------------------------


def _categorize(item: pytest.Item, when: str) -> Iterator[None]:
    try:
        return (yield)
    except BaseException as exc:
        item.stash.setdefault(_PHASE_CATEGORY, {})[when] = annotate(exc)
        raise


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    return (yield from _categorize(item, "setup"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    return (yield from _categorize(item, "call"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    return (yield from _categorize(item, "teardown"))


def _infrastructure_only(item: pytest.Item, reports: list[pytest.TestReport]) -> bool:
    """True when some phase failed and every failed phase failed for an infrastructure reason."""
    categories = item.stash.get(_PHASE_CATEGORY, {})
    failed = [r.when for r in reports if r.failed]
    return bool(failed) and all(categories.get(when) == INFRASTRUCTURE for when in failed)


def _first_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return redact(text.splitlines()[0] if text else "infrastructure failure")


def _close_allure_attempt(item: pytest.Item) -> None:
    """Write the first attempt as its own allure result (same history id: shown as a retry of the test)."""
    listener = item.config.pluginmanager.get_plugin("allure_listener")
    cache = getattr(listener, "_cache", None)
    if cache is None:
        return
    test_uuid = cache.pop(item.nodeid)
    if test_uuid:
        listener.allure_logger.close_test(test_uuid)


def _forget_failed_fixtures(item: pytest.Item) -> None:
    """Drop cached fixture failures (a session fixture that timed out) so the retry runs them again."""
    if not hasattr(item, "_initrequest"):
        return
    item._initrequest()
    info = getattr(item, "_fixtureinfo", None)
    for defs in getattr(info, "name2fixturedefs", {}).values():
        for fixturedef in defs:
            cached = fixturedef.cached_result
            if cached is not None and cached[2] is not None:
                fixturedef.finish(item._request)  # type: ignore[attr-defined]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool:
    """pytest's protocol, plus one re-run when the only failures were infrastructure failures.

    Reports of a test are held until its last attempt, so terminal, JUnit and xdist see one outcome.
    """
    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    item.stash[_PHASE_CATEGORY] = {}
    reports = runtestprotocol(item, nextitem=nextitem, log=False)
    if _infrastructure_only(item, reports):
        first = next(_first_line(r) for r in reports if r.failed)
        _close_allure_attempt(item)
        _forget_failed_fixtures(item)
        item.stash[_PHASE_CATEGORY] = {}
        sink = records.current()
        if sink is not None:
            sink.attempt = 2
        try:
            reports = runtestprotocol(item, nextitem=nextitem, log=False)
        finally:
            if sink is not None:
                sink.attempt = 1
        note = f"attempt 1 failed with an infrastructure error and was retried once: {first}"
        for report in reports:
            report.user_properties.append((RETRY_PROPERTY, first))
            report.sections.append(("hil infrastructure retry", note))
    for report in reports:
        ihook.pytest_runtest_logreport(report=_redacted(item.config, report))
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def _redacted(config: pytest.Config, report: pytest.TestReport) -> pytest.TestReport:
    """The report with secrets removed from tracebacks, messages and captured output, before anyone sees it.

    Done here, in the process that ran the test and registered its secrets, so the terminal, JUnit XML and
    the xdist controller only ever get the redacted report. Goes through pytest's own report serialisation
    (the form xdist ships between processes), so every field is covered without knowing its structure.
    """
    data = config.hook.pytest_report_to_serializable(config=config, report=report)
    if data is None:
        return report
    keywords = data.pop("keywords", None)  # test names such as test_secret_fields are not secrets
    clean = redact(data)
    if clean == data:
        return report
    clean["keywords"] = keywords
    return config.hook.pytest_report_from_serializable(config=config, data=clean) or report


# --- end of session: allure environment + categories, qualification summary --------------------------------


def _board_facts(recs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    boards: dict[str, dict[str, Any]] = {}
    for rec in recs:
        if rec.get("board") and rec.get("kind") in ("env", "step"):
            facts = boards.setdefault(rec["board"], {})
            if rec.get("family"):
                facts["family"] = rec["family"]
            if rec["kind"] == "env":
                facts.update({k: v for k, v in rec.items() if k not in _RECORD_META and v is not None})
    return boards


_RECORD_META = {"kind", "board", "family", "attempt", "worker"}


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    state = _state(session.config)
    if state.is_worker:
        return
    recs = list(records.read_records(state.records_dir))
    if state.alluredir is not None:
        import platform

        extra = {
            "hil.target": state.target,
            "python": platform.python_version(),
            "pytest": pytest.__version__,
        }
        entries = environment_entries(_board_facts(recs), harness_version=hil.__version__, extra=extra)
        write_environment(state.alluredir, entries)
        write_categories(state.alluredir)
    if recs:
        state.summary = write_summary(state.records_dir, state.reports_dir)
        for old in state.records_dir.parent.iterdir():  # keep only the newest run's records
            if old.is_dir() and old != state.records_dir:
                shutil.rmtree(old, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    retried: dict[str, str] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            for name, value in getattr(report, "user_properties", ()):
                if name == RETRY_PROPERTY:
                    retried.setdefault(report.nodeid, str(value))
    if retried:
        terminalreporter.section("hil: infrastructure retries")
        for nodeid, message in retried.items():
            terminalreporter.line(f"{nodeid}: retried once after: {message}")
    summary = _state(config).summary
    if summary:
        terminalreporter.line(f"hil: qualification summary: {summary[0]} and {summary[1]}")
