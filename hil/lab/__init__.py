"""The lab: who may use which board, right now.

A board (real or emulated) has exactly one owner at a time across pytest-xdist workers and separate pytest
processes on the machine. Ownership is an OS file lock (`locks.BoardLock`) that the kernel drops when the
holder dies, so a killed CI job never leaves a board locked (labgrid issue #1739 is the failure this
avoids). Remote places and reservations can grow here later.
"""

from __future__ import annotations

from hil.lab.locks import BoardLock, BoardLockTimeout, Holder, lock_dir, read_holder

__all__ = ["BoardLock", "BoardLockTimeout", "Holder", "lock_dir", "read_holder"]
