"""The plugin's per-process state: options as parsed, the run id, and the board selection (loaded once)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hil.boards.families import FAMILIES
from hil.errors import HilError
from hil.lab.selection import select_boards
from hil.reports.redact import register_secret

FAMILY_MARKERS = tuple(FAMILIES)
BOARD_PARAM = "hil_board_name"


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
    worker: str  # "main", or the xdist worker id ("gw0", ...)
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


STATE = pytest.StashKey[HilState]()


def new_run_id() -> str:
    """Sortable and unique: `<UTC-ish local timestamp>-<random>`."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def state(config: pytest.Config) -> HilState:
    return config.stash[STATE]


def selection(config: pytest.Config) -> tuple[Any, list[Any]]:
    """The inventory and the selected boards, loaded once per process on first use.

    A bad inventory or selection fails with the library's one-line message (`pytest.fail`, no traceback).
    Boards' AES keys are registered as secrets here, so no report ever shows them.
    """
    s = state(config)
    if s.selected is None:
        from hil.boards import load_inventory

        try:
            s.inventory = load_inventory(s.boards_path)
            s.selected = select_boards(s.inventory, s.target, s.board_names)
        except HilError as exc:
            pytest.fail(str(exc), pytrace=False)
        for profile in s.inventory:
            if profile.aes_key:
                register_secret(profile.aes_key)
    return s.inventory, s.selected
