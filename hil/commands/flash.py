"""`hil flash` and `hil read`: write a file into a board (erase, write, verify, reset) or read it back.

Thin edge over `hil.programmers.flash` / `hil.programmers.read`. On an emulated board both start the board's
process when it is not running; its flash persists between commands, as a real board's does.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hil import programmers
from hil.boards import load_inventory
from hil.commands._args import int_auto
from hil.commands.boards import add_boards_option
from hil.errors import InputError
from hil.fileio import atomic_write

FLASH_HELP = """\
Write FILE into the board's flash with the board's programmer (boards.toml: dk6, jlink, blhost or sdp):
the whole target region is erased first (stale bytes after a shorter image would confuse the firmware's
scan), FILE is programmed, the region is read back and compared, then the board is reset. Transient faults
(timeout, NAK, garbled frame) are retried a bounded number of times.

Default target: the factory-data region (address from boards.toml: literal, family default, or a symbol in
a .map file / ELF). --address A writes elsewhere: the whole factory-data region if A is its start, else
FILE rounded up to whole sectors (at the app address: the app region's sectors FILE needs, not all of it;
bytes of those sectors outside FILE are preserved)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "flash",
        help="write a file (factory data by default) into a board, verify it, reset the board",
        description=FLASH_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example: hil flash --board k32w0x1-emu factory_data.bin",
    )
    p.add_argument("--board", required=True, metavar="NAME", help="board name (see `hil boards list`)")
    p.add_argument("file", metavar="FILE", type=Path, help="binary image to write (e.g. factory_data.bin)")
    p.add_argument(
        "--address", type=int_auto, metavar="A", help="write at A instead of the factory-data region"
    )
    p.add_argument("--no-reset", action="store_true", help="leave the board in its bootloader after writing")
    p.add_argument(
        "--retries", type=int_auto, default=3, metavar="N", help="transient-fault retries (default 3)"
    )
    add_boards_option(p)
    p.set_defaults(func=cmd_flash)

    p = sub.add_parser(
        "read",
        help="read a board's factory-data region (or any range) into a file",
        description="Read the board's factory-data region (default) or LENGTH bytes at --address into "
        "--out, through the board's programmer. The output is written only if the read succeeds, with "
        "mode 0600 (factory data holds the DAC private key).",
        epilog="Example: hil read --board k32w1-emu --out fd_readback.bin",
    )
    p.add_argument("--board", required=True, metavar="NAME", help="board name (see `hil boards list`)")
    p.add_argument("--out", required=True, type=Path, metavar="FILE", help="output file")
    p.add_argument("--address", type=int_auto, metavar="A", help="start address (default: factory data)")
    p.add_argument("--length", type=int_auto, metavar="N", help="bytes to read (default: the region size)")
    add_boards_option(p)
    p.set_defaults(func=cmd_read)


def cmd_flash(args: argparse.Namespace) -> int:
    profile = load_inventory(args.boards).get(args.board)
    try:
        image = args.file.read_bytes()
    except OSError as exc:
        raise InputError.field("FILE", str(args.file), f"a readable file ({exc.strerror})") from None
    region = profile.region_at(args.address, len(image)) if args.address is not None else None
    if args.retries < 0:
        raise InputError.field("--retries", args.retries, "0 or more")
    report = programmers.flash(profile, image, region=region, retries=args.retries, reset=not args.no_reset)
    print(report.summary())
    return 0


def cmd_read(args: argparse.Namespace) -> int:
    profile = load_inventory(args.boards).get(args.board)
    region = profile.factory_data_region
    if args.address is not None or args.length is not None:
        address = region.address if args.address is None else args.address
        length = region.size if args.length is None else args.length
        if length <= 0:
            raise InputError.field("--length", length, "a positive byte count")
        region = profile.span(address, length)
    data = programmers.read(profile, region=region)
    atomic_write(args.out, data, secret=True)  # a flash dump: the factory data holds the DAC private key
    print(f"{profile.name}: read {len(data)} bytes at 0x{region.address:X} into {args.out}")
    return 0
