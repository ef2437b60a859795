"""One owner per board: an exclusive `flock` on a per-board lock file, dropped by the kernel with its holder.

Why flock and not a PID file or labgrid's coordinator locks: the kernel releases an flock when the last
file descriptor of the holding open-file-description closes, which includes the holder being SIGKILLed,
so no stale lock survives a cancelled CI job and nothing needs a clean-up step. It works across pytest-xdist
workers (separate processes) and across unrelated pytest processes alike, because they all open the same
path. The lock file also carries a small JSON note about the holder (pid, xdist worker, host, since,
command) so a waiter can say who it is waiting for; the note is advisory, the flock is the truth.

Files live in `$HIL_STATE_DIR/locks` or, by default, `$XDG_STATE_HOME/nxp-matter-hil/locks`
(`~/.local/state/nxp-matter-hil/locks`). Lock files are never deleted: unlinking a lock file while another
process waits on it would let two processes hold "the same" lock on two different inodes.

Caveat: a child made by `fork()` without `exec` inherits the descriptor and so keeps the lock alive after
the parent dies. Descriptors are opened close-on-exec, so `subprocess` children (emulators, tools) do not.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from hil.errors import BoardError, InputError

DEFAULT_TIMEOUT = 600.0
"""Seconds to wait for a board before giving up: long enough for another run's test on that board."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_POLL_FIRST = 0.002
_POLL_MAX = 0.05

# Boards locked by this process, so a second lock of the same board in the same process fails at once
# instead of waiting out its timeout on itself.
_held_here: set[str] = set()


def lock_dir() -> Path:
    """The directory of the lock files: `locks` in the boards' state root (hil.emulator.board.state_root)."""
    from hil.emulator.board import state_root

    return state_root() / "locks"


@dataclass(frozen=True)
class Holder:
    """Who holds a board: enough to find the process and the run it belongs to."""

    pid: int
    worker: str
    host: str
    since: str
    command: str

    @classmethod
    def this_process(cls, worker: str | None = None) -> Holder:
        return cls(
            pid=os.getpid(),
            worker=worker or os.environ.get("PYTEST_XDIST_WORKER", "main"),
            host=socket.gethostname(),
            since=datetime.now(UTC).isoformat(timespec="seconds"),
            command=" ".join(sys.argv)[:200],
        )

    def describe(self) -> str:
        where = f"worker {self.worker} on {self.host}, since {self.since}"
        return f"pid {self.pid} ({where}, command {self.command!r})"


class BoardLockTimeout(BoardError):
    """The board stayed locked by someone else for the whole wait; an infrastructure condition."""

    def __init__(self, board: str, waited: float, holder: Holder | None, path: Path) -> None:
        who = holder.describe() if holder else "an unknown process (no holder note in the lock file)"
        super().__init__(
            f"board {board!r}: still locked by {who} after waiting {waited:.1f} s "
            f"(lock file {path}); wait for that run to finish, or raise --hil-lock-timeout"
        )
        self.board = board
        self.holder = holder


def _check_name(board: str) -> str:
    if not _NAME.fullmatch(board):
        raise InputError.field(
            "board", board, "1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return board


def _read_note(fd: int) -> Holder | None:
    try:
        raw = os.pread(fd, 4096, 0)
        return Holder(**json.loads(raw))
    except (OSError, ValueError, TypeError):
        return None  # empty (being written, or released) or not ours: the flock is what counts


def read_holder(board: str, directory: Path | None = None) -> Holder | None:
    """The holder of `board` if it is locked right now, else None (for `hil` status output and messages)."""
    path = (directory or lock_dir()) / f"{_check_name(board)}.lock"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_note(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class BoardLock:
    """An exclusive, process-death-safe lock on one board.

    `acquire()` waits up to `timeout` seconds and raises `BoardLockTimeout` naming the holder; `on_wait` is
    called once with the current holder (or None) when the board is found busy, so callers can log
    "waiting for ...". Use as a context manager for the default timeout.
    """

    def __init__(self, board: str, *, directory: Path | None = None, worker: str | None = None) -> None:
        self.board = _check_name(board)
        self.worker = worker  # for the holder note; default: $PYTEST_XDIST_WORKER or "main"
        self.path = (directory or lock_dir()) / f"{board}.lock"
        self._fd: int | None = None
        self.waited = False
        """True when the last acquire found the board busy and had to wait."""

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _open(self) -> tuple[int, bool]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644), True
        except PermissionError:  # a shared lock dir with someone else's file: lock it, skip the note
            return os.open(self.path, os.O_RDONLY | os.O_CLOEXEC), False

    def acquire(
        self,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        on_wait: Callable[[Holder | None], None] | None = None,
    ) -> BoardLock:
        if self._fd is not None:
            raise RuntimeError(f"board {self.board!r}: this BoardLock is already held")
        if self.board in _held_here:
            raise BoardError(f"board {self.board!r}: already locked by this process (pid {os.getpid()})")
        fd, writable = self._open()
        start = time.monotonic()
        delay = _POLL_FIRST
        self.waited = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                        raise
                waited = time.monotonic() - start
                if not self.waited:
                    self.waited = True
                    if on_wait is not None:
                        on_wait(_read_note(fd))
                if waited >= timeout:
                    raise BoardLockTimeout(self.board, waited, _read_note(fd), self.path)
                time.sleep(min(delay, max(timeout - waited, 0.0)))
                delay = min(delay * 2, _POLL_MAX)
        except BaseException:
            os.close(fd)
            raise
        if writable:
            note = json.dumps(asdict(Holder.this_process(self.worker))).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, note, 0)
        self._fd = fd
        _held_here.add(self.board)
        return self

    def release(self) -> None:
        """Give the board back; a no-op when not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        _held_here.discard(self.board)
        with contextlib.suppress(OSError):  # read-only descriptor: the note belongs to its writer
            os.ftruncate(fd, 0)
        os.close(fd)  # closing drops the flock

    def __enter__(self) -> BoardLock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"BoardLock({self.board!r}, held={self.held}, path={str(self.path)!r})"
