"""A `ser2net` for labgrid's exporter that does not stall: TCP_NODELAY, no chardelay, 4 KiB buffers.

labgrid 26.0.1 starts ser2net with a configuration it builds on the command line and that cannot be changed
through labgrid (lab-notes §2.3). Its defaults cost an emulated board most of its speed: `chardelay` adds
about 1 ms to every chunk and Nagle plus delayed ACK stall every multi-segment reply for about 40 ms, so a
256 KiB read-back took 22.9 s instead of 1.2 s (§6). labgrid finds ser2net with `shutil.which`, so a
`ser2net` first on the exporter's PATH can rewrite the command line; this module is that program.

    python -m hil.lab.ser2net_tuned --wrapper-dir DIR    # writes DIR/ser2net, prints DIR
    PATH=DIR:$PATH labgrid-exporter ...                  # (hil.lab.daemons.Exporter does this itself)

Only labgrid's exact YAML form (ser2net >= 4.2) is rewritten; any other command line, including the
`ser2net -v` version check, passes through unchanged. The rewrite depends on labgrid's command-line format,
which is why pyproject pins labgrid.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

ENV_REAL = "SER2NET_REAL"
DEFAULT_REAL = "/usr/sbin/ser2net"
_ACCEPTER = "accepter: telnet(rfc2217,mode=server),tcp,"
_EXTRA_OPTIONS = ("    chardelay: false", "    dev-to-net-bufsize: 4096", "    net-to-dev-bufsize: 4096")


def tune_args(args: Sequence[str]) -> list[str]:
    """labgrid's ser2net arguments with `tcp(nodelay)` and the extra options; other arguments unchanged."""
    out = list(args)
    accepter = [i for i, a in enumerate(out) if _ACCEPTER in a]
    options = [i for i, a in enumerate(out) if a.strip() == "options:"]
    if len(accepter) != 1 or len(options) != 1 or "-Y" not in out:
        return out
    i = accepter[0]
    out[i] = out[i].replace(",tcp,", ",tcp(nodelay),", 1)
    for line in _EXTRA_OPTIONS:
        out += ["-Y", line]
    return out


def real_ser2net() -> str:
    return os.environ.get(ENV_REAL, DEFAULT_REAL)


def write_wrapper(directory: Path) -> Path:
    """Write `directory/ser2net` (runs this module with this interpreter); returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "ser2net"
    text = f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m hil.lab.ser2net_tuned "$@"\n'
    tmp = script.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.chmod(0o755)
    tmp.replace(script)
    return directory


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--wrapper-dir"]:
        parser = argparse.ArgumentParser(prog="python -m hil.lab.ser2net_tuned", description=__doc__)
        parser.add_argument("--wrapper-dir", type=Path, required=True, help="where to write the wrapper")
        print(write_wrapper(parser.parse_args(argv).wrapper_dir))
        return 0
    real = real_ser2net()
    os.execv(real, ["ser2net", *tune_args(argv)])
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main())
