"""Boards as test parameters: parametrisation over the selected boards, family and group markers, board
grouping for xdist, and the board fixtures (`hil_board_name`, `hil_board_profile`, `hil_board_lock`, ...)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hil.errors import HilError
from hil.lab.locks import BoardLock, Holder
from hil.pytest_plugin.state import BOARD_PARAM, FAMILY_MARKERS, selection, state
from hil.reports import records

log = logging.getLogger("hil.pytest")


def _author_parametrized(metafunc: pytest.Metafunc) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if BOARD_PARAM in names:
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One run per selected board (limited by `hil_families`); a clear skip when no board fits."""
    if BOARD_PARAM not in metafunc.fixturenames or _author_parametrized(metafunc):
        return
    s = state(metafunc.config)
    inventory, selected = selection(metafunc.config)
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
        # indirect + the fixture's session scope: pytest groups each board's tests and a session-scoped
        # board fixture is set up once per board.
        names = [b.name for b in boards]
        metafunc.parametrize(BOARD_PARAM, names, ids=names, indirect=True)
        return
    where = inventory.path or "the built-in default inventory"
    chosen = f"--hil-target {s.target}" + "".join(f" --hil-board {n}" for n in s.board_names)
    reason = f"no board selected from {where} by {chosen}"
    if s.target == "real" and not s.board_names and not any(not b.emulated for b in inventory):
        reason = (
            f"no real board connected: {where} lists none (--hil-target real); add one with "
            "emulated = false and a [board.NAME.connection] table"
        )
    if families and selected:
        reason = f"no selected board of family {'/'.join(families)} ({chosen} selects {len(selected)} boards)"
    # The family markers the test would have had, so `-m k32w1 --hil-target real` shows this skip.
    marks = [pytest.mark.skip(reason=reason), *(getattr(pytest.mark, f) for f in families or FAMILY_MARKERS)]
    skip = pytest.param(None, marks=marks, id="no-board")
    metafunc.parametrize(BOARD_PARAM, [skip], indirect=True)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselection and xdist's loadgroup grouping read the markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Family marker + `xdist_group(<board>)` on every board run (also on author-parametrized ones)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get(BOARD_PARAM) if callspec else None
        if name is None:
            continue
        try:
            inventory, selected = selection(config)
            profile = inventory.get(name)
        except (HilError, pytest.fail.Exception) as exc:
            raise pytest.UsageError(f"{item.nodeid}: {exc}") from None
        item.add_marker(getattr(pytest.mark, profile.family))
        item.add_marker(pytest.mark.xdist_group(name))
        if profile not in selected:
            reason = f"board {name} is not selected by --hil-target/--hil-board"
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadgroup`: group by board on the controller (xdist's own grouping is broken on pytest 9.2)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from hil.lab.scheduling import BoardGroupScheduling

    try:
        boards = [b.name for b in selection(config)[1]]
    except pytest.fail.Exception:
        boards = []  # the workers report the inventory error where a test needs a board
    return BoardGroupScheduling(config, log, boards=boards)


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
    s = state(pytestconfig)
    return HilOptions(
        s.boards_path, s.target, tuple(s.board_names), s.keep, s.lock_timeout, s.reports_dir, s.worker
    )


@pytest.fixture(scope="session")
def hil_inventory(pytestconfig: pytest.Config) -> Any:
    """The loaded board inventory (`hil.boards.Inventory`)."""
    return selection(pytestconfig)[0]


@pytest.fixture(scope="session")
def hil_board_name(request: pytest.FixtureRequest) -> str:
    """The board this test run is for (parametrized by the plugin over the selected boards)."""
    name = getattr(request, "param", None)
    if name is None:
        message = f"{request.node.nodeid}: hil_board_name was requested but not parametrized"
        pytest.fail(message, pytrace=False)
    profile = selection(request.config)[0].get(name)
    records.record_environment(profile, emulated=profile.emulated)
    return name


@pytest.fixture(scope="session")
def hil_board_profile(hil_board_name: str, hil_inventory: Any) -> Any:
    """The `BoardProfile` of this run's board."""
    return hil_inventory.get(hil_board_name)


@pytest.fixture(scope="session")
def hil_board_lock(hil_board_name: str, pytestconfig: pytest.Config) -> Iterator[Any]:
    """Exclusive use of this run's board while this process works on it (see hil.lab.locks).

    Held until pytest moves on to another board in this process (the parameter is session-scoped) or the
    session ends; a timeout is a `BoardLockTimeout`, an infrastructure failure (retried once). A lab board
    (boards.toml `labgrid_place`) is held through its labgrid place instead (hil.pytest_plugin.lab).
    """
    profile = selection(pytestconfig)[0].get(hil_board_name)
    if profile.labgrid_place:
        from hil.pytest_plugin.lab import hold_place

        yield from hold_place(pytestconfig, profile)
        return
    s = state(pytestconfig)
    timeout = s.lock_timeout

    def waiting(holder: Holder | None) -> None:
        who = holder.describe() if holder else "another process"
        log.warning("board %s is in use by %s; waiting up to %g s", hil_board_name, who, timeout)

    lock = BoardLock(hil_board_name, worker=s.worker).acquire(timeout, on_wait=waiting)
    try:
        yield lock
    finally:
        lock.release()
