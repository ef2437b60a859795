"""`--hil-target lab`: boards in a labgrid lab, held through their places for as long as a run needs them.

A lab board (boards.toml `labgrid_place`) is a parameter like any other board; what differs is the lock.
`hil_board_lock` delegates to `hold_place` here, which holds the board's labgrid place instead of a local
flock (`hil.lab.places`: reservation in the coordinator's queue, acquire, lease, release). So
`pytest -n K --hil-target lab` spreads each board's group of tests over the workers (the board scheduler
of `hil.lab.scheduling`), every worker holds the places of the boards it is running, and a second run
waits in the coordinator's queue for a place this run holds.

* Identity: `host/hil-<run id>-<worker>` (one per xdist worker and run; `job<CI_JOB_ID>-` in front on CI),
  so workers never share a lock (lab-notes §10.2) and a stale lock says which job left it.
* Busy: a place still taken after `--hil-lock-timeout` seconds skips its board's tests with a line naming
  the holder; the lab being busy is not a product failure.
* Health check: after the acquire the board's programmer is opened through the place (the ROM must answer
  the programmer's own handshake: DK6 unlock, mboot ping, SDP, J-Link connect). A place that fails is
  released, marked broken for the whole run (a file under `<reports>/hil-lab/<run id>/`, seen by every
  worker), and its tests skip with the reason.
* Exit: the teardown releases (cancel before release); a SIGTERM or SIGHUP releases every held place
  before the process dies as the signal says; SIGKILL leaves the place to the lease (`[lab] lease_seconds`).
* labgrid's own pytest plugin (auto-loaded through its `pytest11` entry point) is blocked: it replaces
  pytest's log formatters and adds fixtures named `target`, `env` and `strategy`. This also covers pytest
  runs outside this repository's rootdir, where pyproject's `-p no:labgrid` does not apply.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import pytest

from hil.pytest_plugin.state import selection, state

if TYPE_CHECKING:
    from hil.boards.profile import BoardProfile
    from hil.lab.places import HeldPlace, LabSession

log = logging.getLogger("hil.pytest")

_SESSION = pytest.StashKey["LabSession"]()
_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Block labgrid's auto-loaded pytest plugin (unregisters it if it was loaded first)."""
    pluginmanager.set_blocked("labgrid")


def _lab_run(config: pytest.Config) -> bool:
    return config.getoption("hil_target", "emulated") in ("lab", "all")


def pytest_configure(config: pytest.Config) -> None:
    if _lab_run(config):
        _install_signal_handlers()


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(_SESSION, None)
    if session is not None:
        del config.stash[_SESSION]
        session.close()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """Release every held place, then die of the signal as if no handler had been installed."""
    from hil.lab.places import release_all

    try:
        release_all()
    finally:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _install_signal_handlers() -> None:
    for signum in _SIGNALS:
        try:
            if signal.getsignal(signum) in (signal.SIG_DFL, None):
                signal.signal(signum, _on_signal)
        except ValueError:  # not the main thread
            return


def identity_for(config: pytest.Config) -> str:
    from hil.lab.labgrid import make_identity

    s = state(config)
    job = os.environ.get("CI_JOB_ID")
    return make_identity(f"job{job}-{s.run_id}" if job else s.run_id, s.worker)


def lab_session(config: pytest.Config) -> LabSession:
    """This process's lab session (one identity, one lease), opened on first use."""
    session = config.stash.get(_SESSION, None)
    if session is None:
        from hil.lab.places import LabSession

        inventory = selection(config)[0]
        session = LabSession(inventory.lab, identity_for(config))
        config.stash[_SESSION] = session
    return session


def broken_dir(config: pytest.Config) -> Path:
    s = state(config)
    return s.reports_dir / "hil-lab" / s.run_id / "broken"


def broken_reason(config: pytest.Config, place: str) -> str | None:
    try:
        return (broken_dir(config) / place).read_text(encoding="utf-8").strip() or "health check failed"
    except OSError:
        return None


def mark_broken(config: pytest.Config, place: str, reason: str) -> None:
    from hil.fileio import atomic_write_text

    directory = broken_dir(config)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_text(directory / place, reason + "\n")


def hold_place(config: pytest.Config, profile: BoardProfile) -> Iterator[HeldPlace]:
    """The body of `hil_board_lock` for a lab board (see the module docstring)."""
    from hil.errors import HilError
    from hil.lab.places import PlaceBusy, health_check

    place = profile.labgrid_place
    assert place
    reason = broken_reason(config, place)
    if reason:
        pytest.skip(f"board {profile.name}: place {place} is marked broken for this run: {reason}")
    timeout = state(config).lock_timeout
    session = lab_session(config)

    def waiting(phrase: str) -> None:
        log.warning("board %s: place %s is %s; waiting up to %g s", profile.name, place, phrase, timeout)

    try:
        held = session.hold(place, timeout=timeout, on_wait=waiting)
    except PlaceBusy as exc:
        pytest.skip(f"board {profile.name}: {exc}")
    try:
        problem = health_check(profile)
        if problem:
            mark_broken(config, place, problem)
            session.release(place)
            pytest.skip(f"board {profile.name}: place {place} failed its health check, marked broken for "
                        f"this run: {problem}")  # fmt: skip
        yield held
    finally:
        try:
            session.release(place)
        except HilError as exc:  # the lease and the next run's recovery take care of it
            log.warning("board %s: releasing place %s: %s", profile.name, place, exc)

