"""Board locks across real processes: contention, timeout naming the holder, release on SIGKILL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hil.errors import BoardError, InputError
from hil.lab import BoardLock, BoardLockTimeout, lock_dir, read_holder

BOARD = "k32w1-emu-0"

# A separate process (as another xdist worker or another pytest run would be) that takes the lock, says so,
# and gives it back when told to on stdin.
HOLDER = """
import sys
from pathlib import Path
from hil.lab import BoardLock
lock = BoardLock(sys.argv[1], directory=Path(sys.argv[2])).acquire(timeout=30)
print("locked", flush=True)
sys.stdin.readline()
lock.release()
print("released", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def holder(tmp_path: Path):
    """Start a holder process for BOARD and wait until it owns the lock."""
    procs: list[subprocess.Popen[str]] = []

    def start(board: str = BOARD) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTEST_XDIST_WORKER": "gw7"}
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, board, str(tmp_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        procs.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_second_process_waits_then_gets_the_board(tmp_path: Path, holder) -> None:
    child = holder()
    seen = []

    def on_wait(who):
        # The board is busy now; only after we have seen that does the holder let go.
        seen.append(who)
        child.stdin.write("release\n")
        child.stdin.flush()

    lock = BoardLock(BOARD, directory=tmp_path).acquire(timeout=60, on_wait=on_wait)
    try:
        assert lock.waited
        assert len(seen) == 1 and seen[0] is not None
        assert (seen[0].pid, seen[0].worker) == (child.pid, "gw7")
        assert child.stdout.readline().strip() == "released"
        assert read_holder(BOARD, tmp_path).pid == os.getpid()
    finally:
        lock.release()


def test_timeout_names_the_holder(tmp_path: Path, holder) -> None:
    child = holder()
    with pytest.raises(BoardLockTimeout) as err:
        BoardLock(BOARD, directory=tmp_path).acquire(timeout=0.2)
    message = str(err.value)
    assert f"pid {child.pid}" in message and "worker gw7" in message and BOARD in message
    assert err.value.holder.pid == child.pid
    assert err.value.exit_code == 3


def test_sigkilled_holder_releases_the_board(tmp_path: Path, holder) -> None:
    child = holder()
    assert read_holder(BOARD, tmp_path).pid == child.pid
    child.kill()  # SIGKILL: no chance to clean up
    child.wait()
    assert read_holder(BOARD, tmp_path) is None
    lock = BoardLock(BOARD, directory=tmp_path).acquire(timeout=0)  # no waiting needed
    try:
        assert not lock.waited
    finally:
        lock.release()


def test_other_boards_are_independent(tmp_path: Path, holder) -> None:
    holder("rw61x-emu-0")
    with BoardLock(BOARD, directory=tmp_path) as lock:
        assert not lock.waited


def test_release_frees_and_keeps_the_file(tmp_path: Path) -> None:
    lock = BoardLock(BOARD, directory=tmp_path).acquire(timeout=0)
    assert read_holder(BOARD, tmp_path).pid == os.getpid()
    lock.release()
    lock.release()  # idempotent
    assert read_holder(BOARD, tmp_path) is None
    assert lock.path.exists()  # never unlinked (a waiter may hold the inode)


def test_same_process_cannot_lock_twice(tmp_path: Path) -> None:
    with BoardLock(BOARD, directory=tmp_path), pytest.raises(BoardError, match=f"pid {os.getpid()}"):
        BoardLock(BOARD, directory=tmp_path).acquire(timeout=30)


def test_exec_children_do_not_inherit_the_lock(tmp_path: Path) -> None:
    lock = BoardLock(BOARD, directory=tmp_path).acquire(timeout=0)
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        lock.release()
        BoardLock(BOARD, directory=tmp_path).acquire(timeout=0).release()  # the child keeps nothing
    finally:
        child.stdin.close()
        child.wait()


def test_bad_board_name_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"board: '../etc/passwd' is not allowed"):
        BoardLock("../etc/passwd", directory=tmp_path)


def test_lock_dir_follows_hil_state_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HIL_STATE_DIR", str(tmp_path))
    assert lock_dir() == tmp_path / "locks"
    monkeypatch.delenv("HIL_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert lock_dir() == tmp_path / "xdg" / "nxp-matter-hil" / "locks"
