"""`hil spake2p gen-verifier`: the SPAKE2+ verifier, as the SDK's spake2p.py gen-verifier prints it."""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys

from hil.commands._args import add_group, int_auto
from hil.errors import InputError
from hil.matter import spake2p


def register(sub: argparse._SubParsersAction) -> None:
    group = add_group(sub, "spake2p", "SPAKE2+ commissioning secrets (verifier for the setup passcode)")
    p = group.add_parser(
        "gen-verifier",
        help="print the base64 SPAKE2+ verifier (W0 || L, 97 bytes) for a passcode, salt and iteration count",
        description="Compute the SPAKE2+ verifier a device stores for its setup passcode, byte-compatible "
        "with the Matter SDK's spake2p tool and NXP's generate.py --spake2p_verifier. The salt is base64 "
        f"({spake2p.SALT_MIN_LEN}..{spake2p.SALT_MAX_LEN} bytes); without -s a random 32-byte salt is used "
        "and reported (use --json to get it on stdout).",
        epilog="Example: hil spake2p gen-verifier -p 20202021 -s U1BBS0UyUCBLZXkgU2FsdA== -i 1000",
    )
    p.add_argument(
        "-p",
        "--passcode",
        required=True,
        type=int_auto,
        help=f"setup passcode {spake2p.PASSCODE_MIN}..{spake2p.PASSCODE_MAX}, not a trivial one "
        f"({spake2p.INVALID_PASSCODES_TEXT})",
    )
    p.add_argument("-s", "--salt", help="salt as base64 (default: random 32 bytes)")
    p.add_argument(
        "-i",
        "--iteration-count",
        "--iterations",
        dest="iterations",
        required=True,
        type=int_auto,
        help=f"PBKDF2 iterations {spake2p.ITERATIONS_MIN}..{spake2p.ITERATIONS_MAX}",
    )
    p.add_argument(
        "--json", action="store_true", help="print passcode, salt, iterations and verifier as JSON"
    )
    p.set_defaults(func=run_gen_verifier)


def decode_salt(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InputError.field("salt", text, "base64 text (e.g. U1BBS0UyUCBLZXkgU2FsdA==)") from None


def run_gen_verifier(args: argparse.Namespace) -> int:
    salt = decode_salt(args.salt) if args.salt is not None else spake2p.random_salt()
    verifier = base64.b64encode(spake2p.compute_verifier(args.passcode, salt, args.iterations)).decode()
    salt_b64 = base64.b64encode(salt).decode()
    if args.json:
        doc = {
            "passcode": args.passcode,
            "salt": salt_b64,
            "iterations": args.iterations,
            "verifier": verifier,
        }
        print(json.dumps(doc))
        return 0
    if args.salt is None:
        print(f"hil: random salt {salt_b64}", file=sys.stderr)
    print(verifier)
    return 0
