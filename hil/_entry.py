"""The `hil` executable's first code: a Ctrl-C while the command is still loading ends it quietly.

Loading the command (argparse, cryptography, spsdk, ...) takes a few hundred milliseconds, before
`hil.cli.main` can turn a KeyboardInterrupt into its one 'interrupted' line. During that window a SIGINT
would print a traceback from deep inside some import; nothing has been written yet, so the right answer is
to stop at once with the conventional status 130.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType


def _interrupted_while_loading(signum: int, frame: FrameType | None) -> None:
    sys.stderr.write("hil: interrupted\n")
    sys.stderr.flush()
    os._exit(130)


def main() -> int:
    signal.signal(signal.SIGINT, _interrupted_while_loading)
    from hil.cli import main as cli_main

    signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on, hil.cli handles Ctrl-C
    return cli_main()
