"""`hil convert-dac`: NXP's DAC private key → secure-subsystem blob conversion on a K32W1 or RW61x board.

Thin edge over `hil.conversion.convert_dac`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hil.boards import load_inventory
from hil.commands.boards import add_boards_option
from hil.conversion import DEFAULT_POLL, DEFAULT_TIMEOUT, NXP_FIXED_WAIT_S, convert_dac
from hil.errors import InputError

HELP = f"""\
Convert the board's DAC private key into a blob of its secure subsystem (NXP manufacturing guide §6):

  1. write --factory-data FILE (if given; otherwise the factory data already on the board is used),
  2. write the conversion app (built with chip_with_factory_data=1 chip_convert_dac_private_key=1),
     reset, and poll the factory-data region through the programmer until tag 4 holds a blob
     (K32W1 56 bytes, RW61x 48; NXP's J-Link script sleeps a fixed {NXP_FIXED_WAIT_S:.0f} s instead),
  3. write the normal app and reset.

On emulated boards both apps default to images the harness builds, so `hil convert-dac --board k32w1-emu`
runs the whole flow. Real boards need --conversion-app and --app (or boards.toml options conversion_app
and app). Running it on a converted board changes nothing (the firmware sees the blob and skips)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert-dac",
        help="convert a K32W1/RW61x board's DAC private key into a secure-subsystem blob",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example: hil convert-dac --board k32w1-emu --factory-data factory_data.bin",
    )
    p.add_argument("--board", required=True, metavar="NAME", help="a K32W1 or RW61x board")
    p.add_argument("--conversion-app", type=Path, metavar="FILE", help="app built with the conversion option")
    p.add_argument("--app", type=Path, metavar="FILE", help="the normal app, written after the conversion")
    p.add_argument("--factory-data", type=Path, metavar="FILE", help="write this factory data first")
    p.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S", help=f"default {DEFAULT_TIMEOUT:g} s"
    )
    p.add_argument(
        "--poll",
        type=float,
        default=DEFAULT_POLL,
        metavar="S",
        help=f"poll interval, default {DEFAULT_POLL:g} s",
    )
    add_boards_option(p)
    p.set_defaults(func=cmd_convert_dac)


def cmd_convert_dac(args: argparse.Namespace) -> int:
    profile = load_inventory(args.boards).get(args.board)
    for name, value in (("--timeout", args.timeout), ("--poll", args.poll)):
        if not value > 0:
            raise InputError.field(name, value, "a positive number of seconds")
    factory_data = None
    if args.factory_data is not None:
        try:
            factory_data = args.factory_data.read_bytes()
        except OSError as exc:
            raise InputError.field(
                "--factory-data", str(args.factory_data), f"a readable file ({exc.strerror})"
            ) from None
    report = convert_dac(
        profile,
        conversion_app=args.conversion_app,
        app=args.app,
        factory_data=factory_data,
        timeout=args.timeout,
        poll_interval=args.poll,
    )
    print(report.summary())
    return 0
