"""`hil certs generate`: NXP generate_certs.py's flags, no chip-cert needed (hil.matter.credential_set)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hil.commands._args import add_group, int_auto
from hil.errors import InputError
from hil.fileio import OutputSet
from hil.matter import certs, credential_set


def register(sub: argparse._SubParsersAction) -> None:
    group = add_group(
        sub, "certs", "Matter attestation credentials: PAA, PAI, DAC and Certification Declaration"
    )
    p = group.add_parser(
        "generate",
        help="generate PAA/PAI/DAC (+CD) like NXP's generate_certs.py",
        description="Generate the PAA (unless --paa_cert/--paa_key are given), PAI and DAC with their keys "
        "in PEM and DER, and with --gen_cd a Certification Declaration, under the file names NXP's "
        "scripts/tools/nxp/generate_certs.py writes. Flags are generate_certs.py's; chip-cert is not needed. "
        "All files are written only when everything succeeded; private keys get mode 0600.",
        epilog="Example: hil certs generate --gen_cd --cd_type 1 --vendor_id 0x1037 --product_id 0xA220 "
        '--vendor_name "NXP Semiconductors" --product_name all-clusters-app --device_type 65535 --output . '
        "(the CD is signed with the Matter test CD key unless --cd-signing-key/--cd-signing-cert are given)",
    )
    p.add_argument("--chip_cert_path", help="accepted for compatibility and ignored (no chip-cert needed)")
    p.add_argument("-o", "--output", required=True, help="output directory (created if missing)")
    p.add_argument(
        "--vendor_id", required=True, type=int_auto, help="vendor ID, decimal or 0x-hex (0..0xFFFF)"
    )
    p.add_argument(
        "--product_id", required=True, type=int_auto, help="product ID, decimal or 0x-hex (0..0xFFFF)"
    )
    p.add_argument(
        "--vendor_name", required=True, help="vendor name; the certificates' CN is '<vendor> <product>'"
    )
    p.add_argument("--product_name", required=True, help="product name")
    p.add_argument("--gen_cd", action="store_true", help="also generate a signed Certification Declaration")
    p.add_argument(
        "--cd_type",
        type=int_auto,
        default=1,
        help="CD certification type: 0 development, 1 provisional (default), 2 official",
    )
    p.add_argument(
        "--device_type", type=int_auto, default=0, help="primary device type ID for the CD (default 0)"
    )
    p.add_argument("--paa_cert", help="existing PAA certificate (PEM/DER) to reuse; needs --paa_key")
    p.add_argument("--paa_key", help="existing PAA private key (PEM/DER) to reuse; needs --paa_cert")
    p.add_argument(
        "--valid_from",
        default="2023-01-01 00:00:00",
        help="validity start, 'YYYY-MM-DD [HH:MM:SS]' UTC (default: 2023-01-01 00:00:00)",
    )
    p.add_argument(
        "--lifetime", default="7305", help="validity in days (default 7305; 4294967295 = no expiry)"
    )
    p.add_argument(
        "--cd-signing-key",
        help="CD signing private key (PEM/DER; default: the Matter test CD key, development only, as "
        "generate_certs.py uses the SDK's)",
    )
    p.add_argument(
        "--cd-signing-cert", help="CD signing certificate (with --cd-signing-key); its SKID names the signer"
    )
    p.set_defaults(func=run_generate)


def _lifetime(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise InputError.field("lifetime", text, "a number of days, 1..4294967295") from None


def run_generate(args: argparse.Namespace) -> int:
    lifetime = _lifetime(args.lifetime)
    valid_from = certs.parse_valid_from(args.valid_from)
    if bool(args.paa_cert) != bool(args.paa_key):
        raise InputError("--paa_cert/--paa_key: give both to reuse a PAA, or neither to generate one")
    cd_signer = None
    if args.gen_cd:
        cd_signer = credential_set.load_cd_signer(args.cd_signing_key, args.cd_signing_cert)
    elif args.cd_signing_key or args.cd_signing_cert:
        raise InputError("--cd-signing-key/--cd-signing-cert: only with --gen_cd (they sign the CD)")
    paa = None
    if args.paa_cert:
        paa = certs.Credential(
            certs.load_certificate(args.paa_cert, what="--paa_cert"),
            certs.load_private_key(args.paa_key, what="--paa_key"),
        )
        certs.check_key_matches(paa.cert, paa.key, what="--paa_key")  # type: ignore[arg-type]
    cs = credential_set.generate_set(
        args.vendor_id,
        args.product_id,
        f"{args.vendor_name} {args.product_name}",
        paa=paa,
        valid_from=valid_from,
        lifetime_days=lifetime,
        cd_signer=cd_signer,
        cd_type=args.cd_type,
        device_type=args.device_type,
    )
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise InputError(f"--output: {str(out)!r} exists and is not a directory")
    with OutputSet() as files:
        for name, data, secret in credential_set.nxp_files(cs, args.vendor_id, args.product_id):
            files.add(out / name, data, secret=secret)
    for path in files.written:
        print(path)
    return 0
