"""Argument types shared by command modules, so every command parses numbers and paths the same way."""

from __future__ import annotations

import argparse


def int_auto(text: str) -> int:
    """An integer in decimal or with a 0x/0o/0b prefix (addresses, VIDs, sizes)."""
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer (decimal or 0x-prefixed hex)") from None


def add_group(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse._SubParsersAction:
    """A command group (`hil certs ...`) whose sub-commands are registered on the returned object."""
    group = sub.add_parser(name, help=help_text, description=help_text)
    group_sub = group.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND", parser_class=type(group))
    group_sub.required = True
    return group_sub
