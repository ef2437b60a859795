"""`hil factory-data generate|inspect`: NXP factory-data binaries, generated and explained.

Thin edge over `hil.factory_data`: `generate` takes NXP generate.py's flags unchanged (built from the tag
table) plus the checks' opt-outs; `inspect` reads a binary the way the firmware does.
"""

from __future__ import annotations

import argparse
import json
import sys

from hil.commands._args import add_group, int_auto
from hil.commands.boards import add_boards_option
from hil.factory_data import generate as gen
from hil.factory_data import inspect as insp
from hil.factory_data.rules import CHECKS
from hil.factory_data.tags import TAGS, Kind, TagSpec
from hil.fileio import atomic_write

_GENERATE_HELP = """\
Write an NXP factory-data binary. Takes every flag of NXP's generate.py unchanged and writes the same
bytes for the same arguments, but checks the input first: passcode/salt/iterations (SPAKE2+ rules),
discriminator <= 0xFFF, date YYYY-MM-DD, string lengths, VID/PID against the DAC, PAI and CD, the DAC key
against the DAC, DAC issued by the PAI, a given verifier against passcode+salt+iterations, AES key length,
and the total size against the board's region (--board) or --max-size. Each check has a name; a failed
check says how to opt out (--allow-mismatch NAME) for deliberately inconsistent test data. Nothing is
written unless every check passes; an existing --out file is left untouched on failure. The verifier is
computed natively (no spake2p binary needed).

Example (the NXP guide's, with --board for the size and key checks):
  hil factory-data generate -i 10000 -s UXKLzwHdN3DZZLBaL2iVGhQi/OoQwIwJRQV4rpEalbA= -p 14014 -d 1000 \\
    --vid 0x1037 --pid 0xA220 --vendor_name "NXP Semiconductors" --product_name "Lighting app" \\
    --hw_version 1 --hw_version_str 1.0 --cert_declaration Chip-Test-CD-1037-A220.der \\
    --dac_cert Chip-DAC-NXP-1037-A220-Cert.der --dac_key Chip-DAC-NXP-1037-A220-Key.der \\
    --pai_cert Chip-PAI-NXP-1037-A220-Cert.der --board k32w0x1-emu --out factory_data.bin"""

_INSPECT_HELP = """\
Explain an NXP factory-data binary as the firmware reads it (first match wins, tag 0 stops a scan):
header, hash verdict, every field (DAC private key redacted unless --show-secrets), certificates, CD,
and cross-checks (DAC key, chain, VID/PID, verifier). Exit 0 only when the binary is valid, 2 otherwise."""


def register(sub: argparse._SubParsersAction) -> None:
    group = add_group(sub, "factory-data", "generate and inspect NXP factory-data binaries")
    _register_generate(group)
    _register_inspect(group)


def _register_generate(group: argparse._SubParsersAction) -> None:
    p = group.add_parser(
        "generate",
        help="write a factory-data binary (NXP generate.py flags)",
        description=_GENERATE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    req = p.add_argument_group("required arguments (as in generate.py)")
    opt = p.add_argument_group("optional arguments (as in generate.py)")
    for spec in TAGS:
        if spec.flag is None:
            continue
        names = [spec.short, spec.flag] if spec.short else [spec.flag]
        kw: dict[str, object] = {"dest": gen.dest(spec), "help": spec.help, "metavar": _metavar(spec)}
        (req if spec.required else opt).add_argument(*names, required=spec.required, **kw)  # type: ignore[arg-type]
    req.add_argument(
        "--out", required=True, metavar="PATH", help="[path] output binary (written atomically, mode 0600)"
    )
    opt.add_argument(
        "--spake2p_path",
        metavar="PATH",
        help="[path] accepted for generate.py compatibility and not used: the verifier is computed natively",
    )
    opt.add_argument(
        "--dac_key_password", metavar="PASSWORD", help="[str] password of an encrypted --dac_key"
    )
    opt.add_argument(
        "--dac_key_use_sss_blob",
        action="store_true",
        help="--dac_key is a secure-subsystem blob stored verbatim (56 bytes for K32W1/MCXW71)",
    )
    opt.add_argument(
        "--aes128_key", metavar="HEX", help="[hex] AES-128 key (32 hex digits): encrypt with AES-ECB"
    )
    opt.add_argument(
        "--aes256_key", metavar="HEX", help="[hex] AES-256 key (64 hex digits): encrypt with AES-ECB"
    )
    opt.add_argument(
        "--hw_params",
        action="store_true",
        help="wrap in the K32W1/MCXW71 HW-parameters APP section (APP_FACT_DATA, CRC-16); plain only",
    )
    ours = p.add_argument_group("checks (not in generate.py)")
    ours.add_argument(
        "--max-size",
        type=int_auto,
        metavar="BYTES",
        help="refuse an image larger than BYTES (the board's factory-data region, e.g. 0x800)",
    )
    ours.add_argument(
        "--board",
        metavar="NAME",
        help="aim at this board (see `hil boards list`): its region bounds the size (unless --max-size) and "
        "its firmware decides the AES key (the board's key is used when none is given)",
    )
    add_boards_option(ours)
    ours.add_argument("--paa_cert", metavar="PATH", help="[path] PAA certificate: check the whole DAC chain")
    ours.add_argument(
        "--cd_cert", metavar="PATH", help="[path] CD signing certificate: check the CD signature"
    )
    ours.add_argument(
        "--allow-mismatch",
        action="append",
        default=[],
        metavar="CHECK",
        choices=list(CHECKS),
        help="do not enforce CHECK (repeatable), to build deliberately inconsistent data: "
        + ", ".join(CHECKS),
    )
    p.set_defaults(func=_generate)


def _metavar(spec: TagSpec) -> str:
    if spec.choices:
        return "NAME"
    return {Kind.B64: "BASE64", Kind.STR: "TEXT", Kind.BYTES: "PATH"}.get(spec.kind, "INT")


def _generate(args: argparse.Namespace) -> int:
    request = gen.request_from_args(vars(args))
    blob = gen.generate(request)
    atomic_write(args.out, blob, secret=True)  # holds the DAC private key
    print(f"wrote {args.out}: {gen.describe(blob, request)}")
    return 0


def _register_inspect(group: argparse._SubParsersAction) -> None:
    p = group.add_parser(
        "inspect", help="explain a factory-data binary as the firmware reads it", description=_INSPECT_HELP
    )
    p.add_argument("file", metavar="FILE", help="factory-data binary")
    p.add_argument("--aes128_key", metavar="HEX", help="[hex] AES-128 key the payload is encrypted with")
    p.add_argument("--aes256_key", metavar="HEX", help="[hex] AES-256 key the payload is encrypted with")
    p.add_argument(
        "--hw_params",
        action="store_const",
        const=True,
        default=None,
        help="expect the HW-parameters APP_FACT_DATA wrapper (detected automatically otherwise)",
    )
    p.add_argument("--paa_cert", metavar="PATH", help="[path] PAA certificate: check the whole DAC chain")
    p.add_argument("--cd_cert", metavar="PATH", help="[path] CD signing certificate: check the CD signature")
    p.add_argument(
        "--show-secrets", action="store_true", help="print the DAC private key instead of redacting it"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_inspect)


def _inspect(args: argparse.Namespace) -> int:
    report = insp.inspect_file(
        args.file,
        aes_key=insp.key_from_args(vars(args)),
        hw_params=args.hw_params,
        paa_path=args.paa_cert,
        cd_cert_path=args.cd_cert,
    )
    if args.json:
        json.dump(report.as_dict(show_secrets=args.show_secrets), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(insp.format_text(report, show_secrets=args.show_secrets))
    report.raise_if_invalid()
    return 0
