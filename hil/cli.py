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
import signal
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
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more log output: -v info, -vv debug (the harness's own; add --show-secrets for the libraries')",
    )
    parser.add_argument(
        "--show-secrets",
        dest="log_secrets",
        action="store_true",
        help="with -vv, also let through the DEBUG logs of the programmer libraries (spsdk, pylink): they "
        "dump every byte written or read, the DAC private key in factory data included",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=HilArgumentParser)
    sub.required = True
    import hil.commands

    for info in sorted(pkgutil.iter_modules(hil.commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"hil.commands.{info.name}")
        module.register(sub)
    return parser


def _own_debug_only(record: logging.LogRecord) -> bool:
    """Drop other libraries' DEBUG records: wire dumps (key bytes) and tracebacks of errors they handled."""
    return record.levelno >= logging.INFO or record.name == "hil" or record.name.startswith("hil.")


def configure_logging(verbose: int, *, show_secrets: bool = False) -> None:
    """Log to stderr at WARNING, -v INFO, -vv DEBUG.

    Why the filter: at DEBUG spsdk logs every frame's payload (the factory data being flashed, so the DAC
    private key) and tracebacks of exceptions it handled itself; a user asking for -vv asked for more
    detail, not for secrets. `--show-secrets` lifts it for protocol debugging.
    """
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    if not show_secrets:
        handler.addFilter(_own_debug_only)
    logging.basicConfig(level=logging.WARNING - 10 * min(verbose, 2), handlers=[handler])


def main(argv: Sequence[str] | None = None) -> int:
    """Run `hil`; Ctrl-C at any point (also while the command modules load) is one line and exit 130."""
    try:
        return _run(argv)
    except KeyboardInterrupt:
        print("hil: interrupted", file=sys.stderr)
        return 130
    finally:
        if argv is None:  # the `hil` process itself (in-process callers such as tests keep their handler)
            # The command is over; a Ctrl-C while the interpreter joins leftover threads would print a
            # KeyboardInterrupt traceback from threading._shutdown. The default action just ends it.
            signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose, show_secrets=args.log_secrets)
    func = getattr(args, "func", None)
    if func is None:  # a command group given without its sub-command
        parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "--help"])
        return 2
    try:
        return int(func(args) or 0)
    except HilError as exc:
        print(f"hil: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
