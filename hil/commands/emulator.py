"""`hil emulator build-app`: an application image for emulated boards, carrying NXP's build options.

Thin edge over `hil.emulator.app_image` (format) and `hil.programmers` (writing it to the app region).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hil import programmers
from hil.boards import load_inventory
from hil.commands._args import add_group, int_auto
from hil.commands.boards import add_boards_option
from hil.emulator import app_image
from hil.errors import InputError
from hil.fileio import atomic_write

BUILD_HELP = """\
Build an app image for emulated boards. An emulated board boots whatever app is in its flash after reset,
as silicon does; this image carries the gn build options of NXP's Matter examples, and the emulated
firmware behaves as an app built with them:

  chip_with_factory_data=1        read the factory data (=0: built-in test credentials)
  chip_convert_dac_private_key=1  K32W1/RW61x: replace the plain DAC key in flash by a secure-subsystem
                                  blob at boot (the "conversion app" of NXP's manufacturing guide §6)
  hw_params=1                     K32W1/MCXW71: read the HW-parameters section ("APP_FACT_DATA:")

Write it with --flash --board NAME (the app region's first sectors, verified, then reset), or with
`hil flash --board NAME --address <app address> FILE`."""


def register(sub: argparse._SubParsersAction) -> None:
    group = add_group(sub, "emulator", "emulated boards: application images")
    p = group.add_parser(
        "build-app",
        help="build an app image (build options) for emulated boards",
        description=BUILD_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example: hil emulator build-app --out conv.bin --chip_convert_dac_private_key 1 "
        "--board k32w1-emu --flash",
    )
    p.add_argument("--out", type=Path, metavar="FILE", help="write the image here")
    p.add_argument("--name", default="lighting-app", help="app name (default lighting-app)")
    p.add_argument("--version", default="1.0", help="SoftwareVersionString (default 1.0)")
    p.add_argument(
        "--software-version", type=int_auto, default=1, metavar="N", help="SoftwareVersion (default 1)"
    )
    for flag, default, text in (
        ("chip_with_factory_data", 1, "use factory data (default 1)"),
        ("chip_convert_dac_private_key", 0, "convert the DAC key to an SSS blob at boot (default 0)"),
        ("hw_params", None, "read the K32W1 HW-parameters section (default: the board's options.hw_params)"),
    ):
        p.add_argument(
            f"--{flag}", type=int_auto, choices=(0, 1), default=default, metavar="{0,1}", help=text
        )
    p.add_argument("--family", help="board family the app is built for (default: --board's family, or any)")
    p.add_argument("--board", metavar="NAME", help="the board it is for (family, hw_params; with --flash)")
    p.add_argument("--flash", action="store_true", help="write it to --board's app region and reset")
    p.add_argument("--no-reset", action="store_true", help="with --flash: do not reset after writing")
    add_boards_option(p)
    p.set_defaults(func=cmd_build_app)


def cmd_build_app(args: argparse.Namespace) -> int:
    if args.out is None and not args.flash:
        raise InputError("--out / --flash: give at least one (where should the image go?)")
    profile = load_inventory(args.boards).get(args.board) if args.board else None
    if args.flash and profile is None:
        raise InputError("--flash: needs --board NAME")
    hw_params = args.hw_params
    if hw_params is None:
        hw_params = int(bool(profile.options.get("hw_params", False))) if profile else 0
    family = args.family or (profile.family if profile else None)
    if profile is not None and args.family and args.family != profile.family:
        raise InputError.field("--family", args.family, f"{profile.family} (the family of {profile.name})")
    options = app_image.AppOptions(
        name=args.name,
        version=args.version,
        software_version=args.software_version,
        chip_with_factory_data=args.chip_with_factory_data,
        chip_convert_dac_private_key=args.chip_convert_dac_private_key,
        hw_params=hw_params,
        family=family,
    )
    image = app_image.build(options)
    region = profile.app_region_for(len(image)) if profile is not None else None
    if args.out is not None:
        atomic_write(args.out, image)
        print(f"{args.out}: {len(image)} bytes, {options.describe()}")
    if args.flash and profile is not None and region is not None:
        report = programmers.flash(profile, image, region=region, reset=not args.no_reset)
        print(report.summary())
    return 0
