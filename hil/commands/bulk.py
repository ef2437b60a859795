"""`hil bulk generate`: a production batch of devices, each with its own DAC, passcode, salt and factory data.

Thin edge over `hil.bulk.generate_batch`. The flags every device shares are NXP generate.py's, registered
from the factory-data tag table (so names, help and parsing are generate.py's and `hil factory-data
generate`'s); the per-device ones (passcode, discriminator, salt, verifier, DAC, serial number, unique ID)
are generated and therefore not flags.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from hil.boards import load_inventory
from hil.bulk import generate_batch
from hil.bulk.device import BatchSpec
from hil.bulk.plan import MAX_DEVICES
from hil.commands._args import add_group, int_auto
from hil.commands.boards import add_boards_option
from hil.errors import InputError
from hil.factory_data import generate as gen
from hil.factory_data.tags import TAGS, Kind
from hil.matter import certs, credential_set, onboarding

#: FactoryData fields that differ per device: generated, so not accepted as flags.
PER_DEVICE = frozenset(
    {"verifier", "salt", "dac_key", "dac_cert", "discriminator", "passcode", "serial_num", "unique_id"}
)
#: FactoryData fields `BatchSpec` has a field for; the other shared ones go to `BatchSpec.extra`.
_SPEC_FIELDS = frozenset(
    {
        "iterations",
        "pai_cert",
        "vid",
        "pid",
        "cert_declaration",
        "vendor_name",
        "product_name",
        "date",
        "hw_version",
        "hw_version_str",
    }
)
DEFAULT_ITERATIONS = 10000

_HELP = """\
Generate COUNT devices into OUT: per device a fresh P-256 DAC key and a DAC certificate issued by the PAI
(unique serial), a valid random passcode (unique in the batch), a random discriminator and 32-byte salt,
the SPAKE2+ verifier, the NXP factory-data binary (+ an Intel HEX at the --board's factory-data address
or --address), and the onboarding QR payload and manual code. All inputs are checked on one trial
device before anything is written.

Layout: OUT/devices/NNNNNN/{dac_key.der, dac_cert.der, factory_data.bin, factory_data.hex, device.json};
OUT/manifest.csv and OUT/manifest.jsonl (index, serial, DAC serial, passcode, discriminator, QR, manual
code, SHA-256 of the binary; never a private key). Keys and factory data are mode 0600.

Crash-safe and resumable: each device appears by an atomic rename; run the same command again after a
crash or kill and it completes the batch (same passcodes, no duplicates, no gaps). Runs in parallel on
all cores (-j); a progress bar is shown when stderr is a terminal."""


def register(sub: argparse._SubParsersAction) -> None:
    group = add_group(sub, "bulk", "production batches: many devices, each with its own credentials")
    p = group.add_parser(
        "generate",
        help="generate a batch of devices (DAC, passcode, verifier, factory data, HEX, QR)",
        description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example: hil bulk generate --count 1000 --out batch1 --pai_cert pai.der "
        "--pai_key pai_key.der --cert_declaration cd.der --vid 0xFFF1 --pid 0x8000 --vendor_name Acme "
        "--product_name Bulb --hw_version 1 --hw_version_str 1.0 --address 0xFE080",
    )
    req = p.add_argument_group("required arguments")
    req.add_argument("--count", required=True, type=int_auto, metavar="N", help=f"devices, 1..{MAX_DEVICES}")
    req.add_argument(
        "--out", required=True, metavar="DIR", help="batch directory (created; resumed if it exists)"
    )
    req.add_argument("--pai_key", required=True, metavar="PATH", help="[path] PAI private key (PEM/DER)")
    shared = p.add_argument_group("shared by every device (flags as in generate.py)")
    for spec in TAGS:
        if spec.flag is None or spec.name in PER_DEVICE:
            continue
        names = [spec.short, spec.flag] if spec.short else [spec.flag]
        required = spec.required and spec.name not in ("iterations", "cert_declaration")
        kw: dict[str, object] = {"dest": gen.dest(spec), "metavar": _metavar(spec), "help": spec.help}
        if spec.name == "cert_declaration":
            kw["help"] = (
                f"{spec.help} (default: a development CD for --vid/--pid signed with the Matter test CD key, "
                "as generate_certs.py makes)"
            )
        elif spec.name == "iterations":
            kw["default"] = str(DEFAULT_ITERATIONS)
            kw["help"] = f"{spec.help} (default {DEFAULT_ITERATIONS})"
        elif spec.name == "date":
            kw["help"] = f"{spec.help} (default: the day the batch was started, UTC)"
        (req if required else shared).add_argument(*names, required=required, **kw)  # type: ignore[arg-type]
    shared.add_argument("--aes128_key", metavar="HEX", help="[hex] AES-128 key: encrypt factory data (ECB)")
    shared.add_argument("--aes256_key", metavar="HEX", help="[hex] AES-256 key: encrypt factory data (ECB)")
    shared.add_argument(
        "--hw_params", action="store_true", help="K32W1/MCXW71 HW-parameters wrapper (plain only)"
    )
    ours = p.add_argument_group("batch options (not in generate.py)")
    ours.add_argument(
        "--board",
        metavar="NAME",
        help="target board (see `hil boards list`): HEX address, region size and AES key come from it",
    )
    add_boards_option(ours)
    ours.add_argument(
        "--address",
        type=int_auto,
        metavar="ADDR",
        help="flash address of the Intel HEX (default: the board's factory-data address; neither: no HEX)",
    )
    ours.add_argument(
        "--max-size",
        type=int_auto,
        metavar="BYTES",
        help="refuse factory data larger than BYTES (default: the board's factory-data region size)",
    )
    ours.add_argument(
        "--valid_from",
        metavar="DATE",
        help="DAC validity start 'YYYY-MM-DD [HH:MM:SS]' UTC (default: batch start day 00:00:00)",
    )
    ours.add_argument(
        "--lifetime",
        type=int_auto,
        default=certs.DEFAULT_LIFETIME_DAYS,
        metavar="DAYS",
        help=f"DAC validity in days (default {certs.DEFAULT_LIFETIME_DAYS}; 4294967295 = no expiry)",
    )
    ours.add_argument(
        "--rendezvous",
        type=int_auto,
        default=onboarding.RENDEZVOUS_BLE,
        metavar="MASK",
        help="QR discovery capabilities: 1 SoftAP, 2 BLE (default), 4 on-network, 8 Wi-Fi PAF, 32 Thread",
    )
    ours.add_argument(
        "--serial_prefix",
        metavar="TEXT",
        help="serial number = TEXT + 6-digit index (default 'SN' + 8 hex digits of the batch key + '-')",
    )
    ours.add_argument(
        "-j", "--jobs", type=int_auto, metavar="N", help="worker processes (default: all cores)"
    )
    ours.add_argument(
        "--executor",
        choices=("process", "thread"),
        default="process",
        help="worker processes (default) or threads (for measurement: the PBKDF2 used holds the GIL)",
    )
    ours.add_argument(
        "--seed",
        metavar="TEXT",
        help="derive passcodes, salts, discriminators and serials from TEXT (reproducible tests only; "
        "DAC keys stay random)",
    )
    ours.add_argument("--json", action="store_true", help="print the run's summary as one JSON object")
    p.set_defaults(func=run_generate)


def _metavar(spec: object) -> str:
    choices = getattr(spec, "choices", None)
    kind = getattr(spec, "kind", None)
    return "NAME" if choices else {Kind.STR: "TEXT", Kind.BYTES: "PATH"}.get(kind, "INT")  # type: ignore[arg-type]


def _board_target(
    args: argparse.Namespace, aes_key: bytes | None
) -> tuple[int | None, int | None, str, bytes | None]:
    """(HEX address, region size, region name, AES key): explicit flags win over the board's profile.

    The key must be one the board's firmware can use: the board's own key when it has one, none for a
    family whose firmware reads plain factory data, and one for a family that always decrypts.
    """
    if not args.board:
        return args.address, args.max_size, f"--max-size {args.max_size}", aes_key
    board = load_inventory(args.boards).get(args.board)
    family = board.spec
    board_key = board.aes_key_bytes
    if aes_key is None:
        aes_key = board_key
    elif board_key is not None and aes_key != board_key:
        raise InputError(
            f"--aes128_key/--aes256_key: differs from the key board {board.name!r} decrypts with"
        )
    if aes_key is not None and family.encryption == "none":
        raise InputError(
            f"--aes128_key/--aes256_key: board {board.name!r} ({family.name}) reads plain factory data; "
            "drop the key"
        )
    if aes_key is None and family.encryption not in ("none", "optional"):
        raise InputError(
            f"--aes128_key: board {board.name!r} ({family.name}) decrypts factory data "
            f"({family.encryption}); give its key or set aes_key in boards.toml"
        )
    address = args.address if args.address is not None else board.factory_data_address
    size = args.max_size if args.max_size is not None else board.factory_data_size
    where = f"board {board.name!r}'s factory-data region at 0x{board.factory_data_address:X}"
    return address, size, where if args.max_size is None else f"--max-size {size}", aes_key


def spec_from_args(args: argparse.Namespace) -> BatchSpec:
    """The shared inputs, parsed and read exactly as `hil factory-data generate` does."""
    request = gen.request_from_args(vars(args))
    data = request.data
    address, region_size, region_name, aes_key = _board_target(args, request.aes_key)
    pai_key = certs.load_private_key(gen.read_file("--pai_key", args.pai_key), what="--pai_key")
    valid_from = certs.parse_valid_from(args.valid_from) if args.valid_from else None
    extra = {
        spec.name: value
        for spec in TAGS
        if spec.name not in PER_DEVICE
        and spec.name not in _SPEC_FIELDS
        and (value := getattr(data, spec.name)) is not None
    }
    if args.max_size is not None and args.max_size <= 0:
        raise InputError.field("--max-size", args.max_size, "a positive number of bytes")
    assert data.pai_cert is not None and data.vid is not None and data.pid is not None
    if data.cert_declaration is None:
        data.cert_declaration = credential_set.development_cd(data.vid, data.pid, how="--cert_declaration")
    return BatchSpec(
        pai_cert=data.pai_cert,
        pai_key=certs.private_key_bytes(pai_key, Encoding.DER),
        cert_declaration=data.cert_declaration,
        vid=data.vid,  # type: ignore[arg-type]
        pid=data.pid,  # type: ignore[arg-type]
        vendor_name=data.vendor_name,  # type: ignore[arg-type]
        product_name=data.product_name,  # type: ignore[arg-type]
        iterations=data.iterations,  # type: ignore[arg-type]
        hw_version=data.hw_version,  # type: ignore[arg-type]
        hw_version_str=data.hw_version_str,  # type: ignore[arg-type]
        date=data.date or "",
        valid_from=valid_from,
        lifetime_days=args.lifetime,
        extra=extra,
        aes_key=aes_key,
        hw_params=request.hw_params,
        address=address,
        region_size=region_size,
        region_name=region_name,
        rendezvous=args.rendezvous,
    )


def run_generate(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    result = generate_batch(
        spec,
        Path(args.out),
        args.count,
        jobs=args.jobs,
        seed=args.seed,
        serial_prefix=args.serial_prefix,
        executor=args.executor,
        progress=sys.stderr.isatty(),
    )
    if args.json:
        print(json.dumps(result.as_dict()))
        return 0
    resumed = f", {result.present} already present" if result.present else ""
    print(
        f"{result.count} devices in {result.out} ({result.generated} generated{resumed}) in "
        f"{result.seconds:.1f} s, {result.rate:.1f} devices/s with {result.jobs} job(s); "
        f"manifest {result.manifest_csv}"
    )
    return 0
