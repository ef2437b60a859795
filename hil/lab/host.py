"""A lab host with emulated boards: board processes, their exporter, and the places that name them.

What a machine runs to add emulated boards to a lab (real boards need only labgrid's own exporter and a
hand-written exporter YAML, see README "A lab bigger than one machine"):

    python -m hil.lab.host --coordinator 10.0.0.1:20408 --name host2 --hostname 10.0.0.12 \\
        --boards host2-boards.toml rw61x-emu=rw61x-02 k32w0x1-emu=k32w0x1-02

It starts each emulated board process (`hil.emulator.board`), writes the exporter YAML from the boards' ptys
(`hil.lab.exporter_config`), runs `labgrid-exporter` supervised and with the tuned ser2net
(`hil.lab.daemons`), creates the places idempotently with a `family` tag, and serves until SIGTERM/SIGINT.
The tests and the benchmark use `EmulatedLabHost` the same way, several per machine, optionally each in its
own network namespace.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hil.errors import HilError, InputError
from hil.lab.daemons import Exporter
from hil.lab.exporter_config import emulated_board_export, place_matches, place_tags, write_exporter_config
from hil.lab.labgrid import LabClient, make_identity

if TYPE_CHECKING:
    from hil.boards.profile import BoardProfile
    from hil.emulator.board import BoardHandle


@dataclass
class EmulatedLabHost:
    """Emulated boards (profile -> place) exported by one supervised labgrid exporter named `name`."""

    coordinator: str
    name: str
    boards: list[tuple[BoardProfile, str]]
    directory: Path
    hostname: str = "127.0.0.1"
    tuned: bool = True
    state_root: Path | None = None  # HIL_STATE_DIR of the board processes (default: the usual one)
    netns: str | None = None
    handles: dict[str, BoardHandle] = field(default_factory=dict)  # place -> running board process
    exporter: Exporter | None = None

    def start(self) -> EmulatedLabHost:
        from hil.emulator.board import ensure_running

        try:
            exports = []
            for profile, place in self.boards:
                handle = ensure_running(profile, root=self.state_root)
                self.handles[place] = handle
                exports.append(emulated_board_export(handle, place, location=f"{self.name}: {profile.name}"))
            config = write_exporter_config(self.directory / f"exporter-{self.name}.yaml", exports)
            self.exporter = Exporter(
                self.coordinator, self.name, config, hostname=self.hostname, directory=self.directory,
                tuned=self.tuned, netns=self.netns,
            ).start()  # fmt: skip
        except BaseException:
            self.stop()
            raise
        return self

    def create_places(self, client: LabClient | None = None) -> list[str]:
        """Create (or complete) this host's places; idempotent (lab-notes §10.4)."""
        own = client is None
        client = client or LabClient(self.coordinator, make_identity("lab-admin")).connect()
        try:
            for profile, place in self.boards:
                client.ensure_place(place, place_matches(self.name, place), place_tags(profile.family))
        finally:
            if own:
                client.close()
        return [place for _, place in self.boards]

    def stop(self, *, boards: bool = True) -> None:
        """Stop the exporter (and its ser2net processes) and, unless `boards=False`, the board processes."""
        exporter, self.exporter = self.exporter, None
        if exporter is not None:
            exporter.stop()
        if boards:
            for handle in self.handles.values():
                with contextlib.suppress(HilError, OSError):
                    handle.stop()
            self.handles.clear()

    def __enter__(self) -> EmulatedLabHost:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def _board_place(text: str) -> tuple[str, str]:
    board, sep, place = text.partition("=")
    if not sep or not board or not place:
        raise InputError.field("BOARD=PLACE", text, "an inventory board name, '=', a place name")
    return board, place


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hil.lab.host",
        description="Run emulated boards on this machine and export them to a labgrid lab (see the module "
        "docstring); serves until SIGTERM or Ctrl-C.",
    )
    parser.add_argument("--coordinator", required=True, help="the lab's coordinator, host:port")
    parser.add_argument("--name", required=True, help="this exporter's name (unique in the lab)")
    parser.add_argument("--hostname", default="127.0.0.1", help="address clients reach this host at")
    parser.add_argument("--boards", help="inventory with the emulated boards (default: the default one)")
    parser.add_argument("--dir", type=Path, default=Path("lab-host"), help="exporter YAML and logs")
    parser.add_argument("--untuned", action="store_true", help="labgrid's own ser2net settings (slow)")
    parser.add_argument("board_place", nargs="+", metavar="BOARD=PLACE")
    args = parser.parse_args(argv)
    from hil.boards import load_inventory
    from hil.lab.config import normalize_address

    try:
        inventory = load_inventory(args.boards)
        boards = [(inventory.get(b), p) for b, p in map(_board_place, args.board_place)]
        not_emulated = [p.name for p, _ in boards if not p.emulated]
        if not_emulated:
            raise InputError.field("BOARD", not_emulated[0], "an emulated board (emulated = true)")
        host = EmulatedLabHost(
            normalize_address(args.coordinator), args.name, boards, args.dir.resolve(),
            hostname=args.hostname, tuned=not args.untuned,
        ).start()  # fmt: skip
    except HilError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    stop = threading.Event()

    def _stop(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        for place in host.create_places():
            print(f"{place}: exported by {args.name} at {args.hostname}", flush=True)
        stop.wait()
    finally:
        host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
