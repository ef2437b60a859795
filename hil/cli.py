"""The `hil` command: a thin edge over the library.

Sub-commands live one group per module in `hil.commands` and are discovered here, so each area of the
harness owns its command-line surface without editing a central list. Every module exposes
`register(subparsers)`, adding its parsers and setting `func(args) -> int` on each leaf.

Errors: a `HilError` becomes one line on stderr and its exit code (2 bad input, 3 board/programmer,
4 attestation/commissioning); argparse usage errors are one line and exit 2 as well.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

from hil import __version__
from hil.errors import HilError


class HilArgumentParser(argparse.ArgumentParser):
    """argparse with the harness's error contract: one line, exit 2, no usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = HilArgumentParser(
        prog="hil",
        description="nxp-matter-hil: generate Matter credentials and NXP factory data, flash real or "
        "emulated NXP boards, convert the DAC key, and commission against your own PAA.",
        epilog="Exit codes: 0 ok, 2 bad input, 3 board or programmer failure, "
        "4 attestation or commissioning failure.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (repeatable)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=HilArgumentParser)
    sub.required = True
    import hil.commands

    for info in sorted(pkgutil.iter_modules(hil.commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"hil.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    func = getattr(args, "func", None)
    if func is None:  # a command group given without its sub-command
        parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "--help"])
        return 2
    try:
        return int(func(args) or 0)
    except HilError as exc:
        print(f"hil: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("hil: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
