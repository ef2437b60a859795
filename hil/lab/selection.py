"""Which boards of the inventory a run uses: `--hil-target` (emulated, real, lab, all) and `--hil-board NAME`.

Kept out of the pytest plugin so the `hil` command line can select boards with the same rules and the same
messages. A board named explicitly but excluded by the target is an error, not a silent drop: the user
asked for it, so the fix (`--hil-target all`) is spelled out.

A board with a `labgrid_place` is a lab board (`--hil-target lab`): it is reached only through its place,
which the run must hold, so `emulated` and `real` never select it, whatever its `emulated` flag says.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hil.errors import InputError

TARGETS = ("emulated", "real", "lab", "all")


def board_kind(profile: Any) -> str:
    """'lab' (has a labgrid place), else 'emulated' or 'real'."""
    if getattr(profile, "labgrid_place", None):
        return "lab"
    return "emulated" if profile.emulated else "real"


def select_boards(inventory: Iterable[Any], target: str = "emulated", names: Sequence[str] = ()) -> list[Any]:
    """The profiles to run on, in inventory order (names first checked to exist, in the order given)."""
    if target not in TARGETS:
        raise InputError.field("--hil-target", target, f"one of {', '.join(TARGETS)}")
    boards = list(inventory)
    by_name = {b.name: b for b in boards}
    for name in names:
        if name not in by_name:
            raise InputError.field("--hil-board", name, f"a board of the inventory: {', '.join(by_name)}")
        kind = board_kind(by_name[name])
        if target not in ("all", kind):
            article = "an" if target == "emulated" else "a"
            raise InputError.field(
                "--hil-board",
                name,
                f"{article} {target} board; it is {kind} (add --hil-target {kind} or all)",
            )
    wanted = set(names)
    return [b for b in boards if target in ("all", board_kind(b)) and (not wanted or b.name in wanted)]
