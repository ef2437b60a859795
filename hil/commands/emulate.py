"""`hil emulate --board NAME`: run an emulated board in the foreground and print its ports.

Thin edge over `hil.emulator.board.run`. The board is the same process `hil flash` would start in the
background; its flash is the file in its state dir, so what one run writes the next one reads.
"""

from __future__ import annotations

import argparse
import json
import sys

from hil.boards import load_inventory
from hil.commands.boards import add_boards_option
from hil.emulator import board as emu
from hil.errors import BoardError, InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "emulate",
        help="run an emulated board in the foreground and print its ports",
        description="Run the emulated board NAME in the foreground until Ctrl-C (or SIGTERM), printing its "
        "ports: the ROM's serial port (a pty for dk6prog / blhost / sdphost / spsdk), the firmware console "
        "pty, the J-Link probe (pylink: JLink(lib=EmulatedJLinkLibrary()).open(ip_addr=...)) and the "
        "control channel. State (flash files, logs) lives in $HIL_STATE_DIR/NAME "
        "(default ~/.local/state/nxp-matter-hil/NAME).",
        epilog="Example: hil emulate --board k32w0x1-emu   then: dk6prog -b PYSERIAL -n -d <serial> info",
    )
    p.add_argument("--board", required=True, metavar="NAME", help="an emulated board (see `hil boards list`)")
    p.add_argument("--json", action="store_true", help="print the ports as one JSON line")
    p.add_argument("--stop", action="store_true", help="stop the board's background process instead")
    add_boards_option(p)
    p.set_defaults(func=cmd_emulate)


def cmd_emulate(args: argparse.Namespace) -> int:
    profile = load_inventory(args.boards).get(args.board)
    if not profile.emulated:
        raise InputError.field("--board", args.board, "an emulated board (emulated = true in boards.toml)")
    if args.stop:
        stopped = emu.stop(profile.name)
        print(f"{profile.name}: {'stopped' if stopped else 'was not running'}")
        return 0
    running = emu.find_running(profile.name)
    if running is not None:
        raise BoardError(
            f"{profile.name}: already running in the background (pid {running.pid}, serial "
            f"{running.serial_port}); stop it with: hil emulate --board {profile.name} --stop"
        )

    def announce(board: emu.Board) -> None:
        status = board.status()
        ports = {
            "serial": status["serial"],
            "console": status["console"],
            "jlink": f"127.0.0.1:{status['probe_port']}",
            "control": f"127.0.0.1:{status['control_port']}",
        }
        if args.json:
            print(json.dumps({"board": profile.name, "pid": status["pid"], **ports}), flush=True)
            return
        print(f"{profile.name} ({profile.family}) running, pid {status['pid']}; Ctrl-C to stop")
        print(f"  serial   {ports['serial']}   (ROM: {status['rom']})")
        print(f"  console  {ports['console']}")
        print(f"  jlink    {ports['jlink']}")
        print(f"  control  {ports['control']}")
        print(f"  state    {status['state_dir']}", flush=True)

    directory = emu.make_state_dir(profile.name)
    sys.stdout.flush()
    return emu.run(profile, directory, announce=announce)
