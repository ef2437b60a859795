"""`hil onboarding`: a device's QR code payload and manual pairing code."""

from __future__ import annotations

import argparse
import json

from hil.commands._args import int_auto
from hil.matter import onboarding


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "onboarding",
        help="print the QR code payload (MT:...) and manual pairing code for a device",
        description="Print the Matter onboarding codes a commissioner reads: the QR code text "
        "('MT:' + base38) and the 11-digit manual pairing code (21 digits, with VID and PID, when --flow "
        "is not 0). Same bits as the Matter SDK's setup-payload generators.",
        epilog="Example: hil onboarding -p 20202021 -d 3840 --vid 0xFFF1 --pid 0x8000 --rendezvous 2",
    )
    p.add_argument("-p", "--passcode", required=True, type=int_auto, help="setup passcode (1..99999998)")
    p.add_argument(
        "-d", "--discriminator", required=True, type=int_auto, help="12-bit discriminator (0..4095)"
    )
    p.add_argument("--vid", required=True, type=int_auto, help="vendor ID (decimal or 0x-hex)")
    p.add_argument("--pid", required=True, type=int_auto, help="product ID (decimal or 0x-hex)")
    p.add_argument(
        "--flow",
        type=int_auto,
        default=0,
        help="commissioning flow: 0 standard (default), 1 user action required, 2 custom",
    )
    p.add_argument(
        "--rendezvous",
        type=int_auto,
        default=onboarding.RENDEZVOUS_BLE,
        help="discovery mask: 1 SoftAP, 2 BLE (default), 4 on-network, 8 Wi-Fi PAF, 16 NFC, 32 Thread; "
        "add bits to combine",
    )
    p.add_argument("--json", action="store_true", help="print both codes as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    qr = onboarding.qr_payload(
        args.vid, args.pid, args.passcode, args.discriminator, args.flow, args.rendezvous
    )
    manual = onboarding.manual_code(args.passcode, args.discriminator, args.vid, args.pid, args.flow)
    if args.json:
        print(json.dumps({"qr": qr, "manual": manual}))
    else:
        print(f"QR code:     {qr}")
        print(f"Manual code: {manual}")
    return 0
