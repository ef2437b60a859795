"""`hil provision --board NAME`: NXP's manufacturing flow on one board, each step timed, then the verdict.

Thin edge over `hil.strategy.Strategy` (credentials -> factory data -> flash + app -> boot report ->
DAC-key conversion where planned -> commissioning by a real commissioner against the generated PAA).
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from pathlib import Path

from hil.boards import load_inventory
from hil.commands._args import int_auto
from hil.commands.boards import add_boards_option
from hil.errors import InputError
from hil.flow import DeviceCredentials, Pki
from hil.flow.commission import COMMISSIONERS
from hil.flow.credentials import DEFAULT_ITERATIONS
from hil.flow.record import board_dir
from hil.matter import certs, credential_set
from hil.strategy import StepRecord, Strategy

HELP = """\
Provision one board the way NXP's manufacturing guide does, as one command, and prove it with a real
commissioner:

  credentials   PAA (new, or --paa-cert/--paa-key), PAI and DAC for VID/PID, CD signed with
                --cd-signing-key/--cd-signing-cert (default: the Matter test CD key, development only)
                or an existing signed --cd, passcode, discriminator, SPAKE2+ salt/iterations/verifier
  factory-data  generate.py's image, encrypted / wrapped as the board's firmware reads it (boards.toml),
                every VID/PID/key/chain check run: a mismatch stops here (exit 2), nothing is written
  flash         factory data and the app through the board's programmer (dk6, jlink, blhost, sdp),
                read back and compared, reset
  boot          the firmware's verdict on its console: provisioned, or not provisioned with its reason
  convert       (K32W1 / RW61x, with --convert or boards.toml options.convert_dac_key) the DAC key becomes
                a secure-subsystem blob: NXP's conversion app, then the normal app
  commission    the CHIP SDK controller (emulated boards) or chip-tool (real boards) commissions the board
                against a trust store holding only the generated PAA

Every step prints its time. The PAA and the passcode are recorded in the board's state dir, so
`hil commission --board NAME` can commission it again later. --out DIR keeps every artefact with
generate_certs.py / generate.py names (private keys and factory_data.bin mode 0600).

Exit codes: 0 commissioned, 2 bad input (nothing touched), 3 board / programmer / firmware failure,
4 attestation or commissioning failure (the SDK's reason, e.g. "101 PaaNotFound")."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "provision",
        help="credentials, factory data, flash, boot, (DAC conversion,) commissioning: one board, timed",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example: hil provision --board k32w1-emu --convert   (CD signed with the Matter test CD "
        "key; a real one: --cd-signing-key KEY --cd-signing-cert CERT, or --cd CD.der)",
    )
    p.add_argument("--board", required=True, metavar="NAME", help="board name (see `hil boards list`)")
    ident = p.add_argument_group("product")
    ident.add_argument(
        "--vid", type=int_auto, default=0x1037, metavar="ID", help="vendor id (default 0x1037)"
    )
    ident.add_argument(
        "--pid", type=int_auto, default=0xA220, metavar="ID", help="product id (default 0xA220)"
    )
    ident.add_argument("--vendor-name", default="NXP Semiconductors", metavar="TEXT", help="vendor name")
    ident.add_argument("--product-name", default="Lighting app", metavar="TEXT", help="product name")
    ident.add_argument(
        "--device-type", type=int_auto, default=0x0100, metavar="ID", help="CD device type (default 0x0100)"
    )
    pki = p.add_argument_group("attestation")
    pki.add_argument(
        "--cd-signing-key",
        type=Path,
        metavar="FILE",
        help="CD signing private key (PEM/DER; default: the Matter test CD key, development only)",
    )
    pki.add_argument("--cd-signing-cert", type=Path, metavar="FILE", help="CD signing certificate (PEM/DER)")
    pki.add_argument("--cd", type=Path, metavar="FILE", help="an existing signed CD (DER) instead")
    pki.add_argument("--paa-cert", type=Path, metavar="FILE", help="reuse this PAA (needs --paa-key)")
    pki.add_argument("--paa-key", type=Path, metavar="FILE", help="the reused PAA's private key")
    dev = p.add_argument_group("device")
    dev.add_argument("--passcode", type=int_auto, metavar="N", help="setup passcode (default: random)")
    dev.add_argument(
        "--discriminator", type=int_auto, metavar="N", help="12-bit discriminator (default: random)"
    )
    dev.add_argument(
        "--iterations",
        type=int_auto,
        default=DEFAULT_ITERATIONS,
        metavar="N",
        help=f"SPAKE2+ iterations (default {DEFAULT_ITERATIONS})",
    )
    dev.add_argument(
        "--seed", metavar="TEXT", help="derive every key and value from TEXT (reproducible runs)"
    )
    flow = p.add_argument_group("flow")
    conv = flow.add_mutually_exclusive_group()
    conv.add_argument(
        "--convert", dest="convert", action="store_const", const=True, help="convert the DAC key"
    )
    conv.add_argument("--no-convert", dest="convert", action="store_const", const=False, help="keep it plain")
    flow.add_argument(
        "--commissioner",
        choices=COMMISSIONERS,
        help="default: controller for an emulated board, chip-tool for a real one",
    )
    flow.add_argument("--no-commission", action="store_true", help="stop once the board is provisioned")
    flow.add_argument(
        "--out", type=Path, metavar="DIR", help="keep artefacts and logs here (new or empty dir)"
    )
    add_boards_option(p)
    p.set_defaults(func=cmd_provision)


def _check_out(out: Path | None) -> None:
    if out is None:
        return
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError.field(
            "--out", str(out), "a new or empty directory (existing files are never replaced)"
        )


def _cd_inputs(args: argparse.Namespace) -> dict[str, object]:
    key, cert, cd = args.cd_signing_key, args.cd_signing_cert, args.cd
    if cd is not None and (key or cert):
        raise InputError("--cd: not allowed with --cd-signing-key/--cd-signing-cert; give one or the other")
    if cd is not None:
        try:
            return {"cd": cd.read_bytes()}
        except OSError as exc:
            raise InputError.field("--cd", str(cd), f"a readable signed CD ({exc.strerror})") from None
    return {"cd_signer": credential_set.load_cd_signer(key, cert)}


def _paa(args: argparse.Namespace) -> certs.Credential | None:
    if (args.paa_cert is None) != (args.paa_key is None):
        raise InputError("--paa-cert and --paa-key: give both to reuse a PAA, or neither to generate one")
    if args.paa_cert is None:
        return None
    return certs.load_credential(args.paa_cert, args.paa_key, what="PAA")


def _print_step(record: StepRecord) -> None:
    print(f"  {record.line()}", flush=True)


def cmd_provision(args: argparse.Namespace) -> int:
    profile = load_inventory(args.boards).get(args.board)
    _check_out(args.out)
    pki = Pki.generate(
        args.vid,
        args.pid,
        seed=args.seed,
        paa=_paa(args),
        vendor_name=args.vendor_name,
        product_name=args.product_name,
        device_type=args.device_type,
        **_cd_inputs(args),  # type: ignore[arg-type]
    )
    device = DeviceCredentials.for_board(
        pki,
        profile,
        args.seed,
        passcode=args.passcode,
        discriminator=args.discriminator,
        iterations=args.iterations,
    )
    workdir = args.out if args.out is not None else _run_dir(profile.name)
    strategy = Strategy(
        profile,
        pki,
        device=device,
        workdir=workdir,
        keep=args.out is not None,
        convert=args.convert,
        commissioner=args.commissioner,
        on_step=_print_step,
    )
    target = strategy.path[-2] if args.no_commission else "commissioned"
    print(
        f"{profile.name} ({profile.family}, {profile.programmer}{', emulated' if profile.emulated else ''}): "
        f"VID 0x{pki.vid:04X} PID 0x{pki.pid:04X}, PAA {pki.id}, plan {' -> '.join(strategy.path)}",
        flush=True,
    )
    strategy.forget()  # an explicit run provisions from scratch
    try:
        results = strategy.ensure(target)
    finally:
        total = sum(r.seconds for r in strategy.steps)
        print(f"  {'total':<13} {total:7.2f} s", flush=True)
    if results.verdict is not None:
        print(f"verdict: {results.verdict.summary()}")
    print(f"{profile.name}: {results.state}; manual code {device.manual_code()}, QR {device.qr_code(pki)}")
    if args.out is not None:
        print(f"artefacts: {args.out}")
    sys.stdout.flush()
    return 0


def _run_dir(board: str) -> Path:
    """A new directory name for this run's logs in the board's state dir. Not created here: the first log
    or artefact written creates it, so a run refused for bad input leaves no empty directory behind."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return board_dir(board) / "runs" / f"provision-{stamp}-{secrets.token_hex(3)}"
