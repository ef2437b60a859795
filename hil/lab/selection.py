"""Which boards of the inventory a run uses: `--hil-target` (emulated, real, all) and `--hil-board NAME`.

Kept out of the pytest plugin so the `hil` command line can select boards with the same rules and the same
messages. A board named explicitly but excluded by the target is an error, not a silent drop: the user
asked for it, so the fix (`--hil-target all`) is spelled out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hil.errors import InputError

TARGETS = ("emulated", "real", "all")


def select_boards(inventory: Iterable[Any], target: str = "emulated", names: Sequence[str] = ()) -> list[Any]:
    """The profiles to run on, in inventory order (names first checked to exist, in the order given)."""
    if target not in TARGETS:
        raise InputError.field("--hil-target", target, f"one of {', '.join(TARGETS)}")
    boards = list(inventory)
    by_name = {b.name: b for b in boards}
    for name in names:
        if name not in by_name:
            raise InputError.field("--hil-board", name, f"a board of the inventory: {', '.join(by_name)}")
        kind = "emulated" if by_name[name].emulated else "real"
        if target not in ("all", kind):
            article = "an" if target == "emulated" else "a"
            raise InputError.field(
                "--hil-board",
                name,
                f"{article} {target} board; it is {kind} (add --hil-target {kind} or all)",
            )
    wanted = set(names)
    return [
        b
        for b in boards
        if (target == "all" or b.emulated == (target == "emulated")) and (not wanted or b.name in wanted)
    ]
