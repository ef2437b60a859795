"""`--dist loadgroup` that keeps each board's tests on one xdist worker, on every pytest version.

Why this exists: xdist's loadgroup passes a test's group to the scheduler by appending `@group` to the node
id on the worker. pytest 9.2 builds node ids from a structured id, so that mutation silently has no effect
and grouped tests are spread over all workers (pytest-xdist issue #1386, fix pending in PR #1388). A board
spread over workers is still safe (the board lock serialises it) but slow: each worker would set the board
up again and wait for the other. This scheduler groups on the controller instead, from the node id it
already has: a board test's parameter id contains the board name (the plugin uses the name as the id), and
the controller knows the selected board names. Explicit `@group` suffixes are still honoured, so nothing
changes once xdist is fixed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from xdist.scheduler.loadgroup import LoadGroupScheduling


def board_in_nodeid(nodeid: str, boards: Iterable[str]) -> str | None:
    """The board whose name appears as whole '-'-separated words in the node id's parameter id."""
    if not nodeid.endswith("]"):
        return None
    start = nodeid.find("[", nodeid.rfind("::") + 2)
    if start < 0:
        return None
    words = nodeid[start + 1 : -1].split("-")
    for board in sorted(boards, key=len, reverse=True):  # longest first: k32w1-emu-2 before k32w1-emu
        parts = board.split("-")
        n = len(parts)
        if any(words[i : i + n] == parts for i in range(len(words) - n + 1)):
            return board
    return None


class BoardGroupScheduling(LoadGroupScheduling):
    """LoadGroupScheduling whose groups are the boards (then explicit `@group`s, then single tests)."""

    def __init__(self, config: Any, log: Any = None, *, boards: Iterable[str] = ()) -> None:
        super().__init__(config, log)
        self.boards = tuple(boards)

    def _split_scope(self, nodeid: str) -> str:
        scope = super()._split_scope(nodeid)
        if scope != nodeid:  # an explicit @group from xdist (works again once xdist is fixed)
            return scope
        board = board_in_nodeid(nodeid, self.boards)
        return f"hil-board:{board}" if board else nodeid
