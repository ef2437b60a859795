"""`hil commission --board NAME`: commission a provisioned board with a real commissioner; the verdict.

Thin edge over `hil.flow.commission.commission_board`. Defaults come from the board's provisioning record
(`hil provision` writes it in the board's state dir): the PAA that provisioned it and its passcode.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from hil.boards import load_inventory
from hil.commands._args import int_auto
from hil.commands.boards import add_boards_option
from hil.errors import InputError
from hil.flow.commission import COMMISSIONERS, DEFAULT_TIMEOUT, commission_board
from hil.flow.record import BoardRecord, board_dir
from hil.matter import certs

HELP = """\
Commission the board with a real Matter commissioner and print the verdict: the CHIP SDK controller for an
emulated board (its Matter node runs from the factory data its firmware booted with, in a private network
namespace), chip-tool for a real one (`pairing ble-thread` with boards.toml options.thread_dataset, else
`onnetwork-long`).

The commissioner trusts exactly the PAAs of --paa-trust-store-path (every *.der file in DIR, as the SDK's
trust store loads them); by default the PAA that provisioned the board, recorded by `hil provision`.
The passcode defaults to the recorded one too (a board never reveals it).

Exit codes: 0 commissioned, 2 bad input, 3 board failure, 4 attestation or commissioning failure: the
message names the stage and the SDK's attestation result, e.g. "attestation error 101 PaaNotFound"."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "commission",
        help="commission a provisioned board (SDK controller or chip-tool) and print the verdict",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example: hil commission --board k32w1-emu --paa-trust-store-path ./paa-store",
    )
    p.add_argument("--board", required=True, metavar="NAME", help="board name (see `hil boards list`)")
    p.add_argument(
        "--commissioner",
        choices=COMMISSIONERS,
        help="default: controller for an emulated board, chip-tool for a real one",
    )
    p.add_argument(
        "--paa-trust-store-path", type=Path, metavar="DIR", help="PAA store (default: the provisioning PAA)"
    )
    p.add_argument(
        "--passcode", type=int_auto, metavar="N", help="setup passcode (default: the recorded one)"
    )
    p.add_argument(
        "--by", choices=("ip", "discriminator"), default="ip", help="controller: how to find the node"
    )
    p.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S", help=f"default {DEFAULT_TIMEOUT:g} s"
    )
    p.add_argument("--chip-tool", type=Path, metavar="FILE", help="chip-tool binary (default: on PATH)")
    p.add_argument("--log-dir", type=Path, metavar="DIR", help="commissioner logs (default: the state dir)")
    add_boards_option(p)
    p.set_defaults(func=cmd_commission)


def store_paas(directory: Path) -> list[bytes]:
    """The PAAs an SDK trust store directory holds: every `*.der*` file, each a PAA certificate."""
    if not directory.is_dir():
        raise InputError.field(
            "--paa-trust-store-path", str(directory), "an existing directory of PAA .der files"
        )
    files = sorted(p for p in directory.iterdir() if ".der" in p.name and p.is_file())
    if not files:
        raise InputError.field("--paa-trust-store-path", str(directory), "a directory holding PAA .der files")
    return [certs.load_certificate(p, what=f"PAA {p.name}").public_bytes(Encoding.DER) for p in files]


def cmd_commission(args: argparse.Namespace) -> int:
    profile = load_inventory(args.boards).get(args.board)
    if not args.timeout > 0:
        raise InputError.field("--timeout", args.timeout, "a positive number of seconds")
    record = BoardRecord.load(profile.name)
    passcode = args.passcode if args.passcode is not None else record.passcode
    if passcode is None:
        raise InputError(
            f"--passcode: required; board {profile.name} has no provisioning record in "
            f"{board_dir(profile.name)} (run `hil provision --board {profile.name}` first)"
        )
    paa_store = args.paa_trust_store_path
    if paa_store is not None:
        paas: object = store_paas(paa_store)
    else:
        recorded = BoardRecord.paa_path(profile.name)
        if not recorded.exists():
            raise InputError(
                f"--paa-trust-store-path: required; no recorded PAA for {profile.name} at {recorded} "
                f"(run `hil provision --board {profile.name}` first)"
            )
        paas = recorded.read_bytes()
    log_dir = args.log_dir if args.log_dir is not None else board_dir(profile.name) / "runs" / "commission"
    verdict = commission_board(
        profile,
        passcode,
        paas,  # type: ignore[arg-type]
        discriminator=record.discriminator,
        commissioner=args.commissioner or ("controller" if profile.emulated else "chip-tool"),
        by=args.by,
        timeout=args.timeout,
        log_dir=log_dir,
        chip_tool=args.chip_tool,
        paa_store=paa_store,
    )
    verdict.raise_for_failure()
    print(f"{profile.name}: {verdict.summary()}")
    details = verdict.details
    if details:
        vid, pid = details.get("vendor_id", 0), details.get("product_id", 0)
        print(f"  BasicInformation: VID 0x{vid:04X} PID 0x{pid:04X} serial {details.get('serial_number')!r}")
    return 0
