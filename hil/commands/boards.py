"""`hil boards list` / `hil boards show NAME`: the inventory (boards.toml) and which emulated boards run.

Thin edge over `hil.boards.load_inventory` and `hil.emulator.board.find_running`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from hil.boards import BoardProfile, load_inventory
from hil.commands._args import add_group

BOARDS_HELP = "board inventory file (default: $HIL_BOARDS, ./boards.toml, or the built-in emulated boards)"


def add_boards_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--boards", metavar="PATH", help=BOARDS_HELP)


def register(sub: argparse._SubParsersAction) -> None:
    group = add_group(sub, "boards", "list the boards of the inventory (boards.toml)")
    p = group.add_parser(
        "list",
        help="one line per board: family, emulated, programmer, factory-data region, running state",
        description="List the boards of the inventory: family, whether emulated, programmer, factory-data "
        "address and size (and where the address came from), connection, and, for emulated boards, "
        "whether their process is running.",
    )
    add_boards_option(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_list)
    p = group.add_parser(
        "show",
        help="everything known about one board",
        description="Print board NAME's profile as JSON: family, programmer, factory-data and app regions "
        "(and where the factory-data address came from: literal, family default, .map or ELF symbol), "
        "connection, whether an AES key is set (never the key), and for an emulated board its process "
        "and ports when running.",
        epilog="Example: hil boards show k32w1-emu --boards ./boards.toml",
    )
    p.add_argument("name", metavar="NAME", help="board name (see `hil boards list`)")
    add_boards_option(p)
    p.set_defaults(func=cmd_show)


def describe(profile: BoardProfile) -> dict[str, Any]:
    """A JSON-able view of a profile (the AES key is reported as present or not, never shown)."""
    from hil.emulator.board import find_running

    conn = profile.connection
    info: dict[str, Any] = {
        "name": profile.name,
        "family": profile.family,
        "emulated": profile.emulated,
        "programmer": profile.programmer,
        "factory_data_address": f"0x{profile.factory_data_address:X}",
        "factory_data_size": f"0x{profile.factory_data_size:X}",
        "sector_size": f"0x{profile.sector_size:X}",
        "address_source": profile.address_source,
        "app_address": f"0x{profile.app_address:X}",
        "app_size": f"0x{profile.app_size:X}",
        "encryption": profile.encryption,
        "aes_key": "set" if profile.aes_key else None,
        "connection": {k: v for k, v in vars(conn).items() if v is not None and k != "emulated"},
    }
    if profile.emulated:
        handle = find_running(profile.name)
        info["running"] = {"pid": handle.pid, **handle.ports} if handle else None
    return info


def cmd_list(args: argparse.Namespace) -> int:
    inventory = load_inventory(args.boards)
    rows = [describe(p) for p in inventory]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(
        f"{'NAME':<16} {'FAMILY':<8} {'KIND':<9} {'PROGRAMMER':<10} {'FACTORY DATA':<22} STATE / CONNECTION"
    )
    for row in rows:
        kind = "emulated" if row["emulated"] else "real"
        region = f"{row['factory_data_address']}+{row['factory_data_size']}"
        if row["emulated"]:
            running = row["running"]
            state = f"running, pid {running['pid']}, serial {running['serial']}" if running else "stopped"
        else:
            conn = row["connection"]
            state = conn.get("port") or conn.get("jlink_ip") or f"J-Link {conn.get('jlink_serial')}"
        print(f"{row['name']:<16} {row['family']:<8} {kind:<9} {row['programmer']:<10} {region:<22} {state}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    profile = load_inventory(args.boards).get(args.name)
    print(json.dumps(describe(profile), indent=1))
    return 0
