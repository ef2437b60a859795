"""NXP generate.py's arguments → a validated `FactoryData` → the same bytes NXP would write.

Two entry points:
* `request_from_args(mapping)`: generate.py-style strings (flag names without dashes, e.g. "it",
  "vendor_name", "dac_key") → `GenerateRequest`, reading the files. Each bad value is an InputError
  naming the flag.
* `generate(request) -> bytes`: every check in `rules.CHECKS` that the request does not `allow`, the
  native SPAKE2+ verifier when none was given (no external spake2p binary), then `codec.encode` and the
  region-size check. Nothing is written here; callers write the bytes atomically (secret: the image holds
  the DAC private key).

Differences from generate.py, all on input it would mishandle (specs/nxp-factory-data.md §2.1): bad
base64, AES keys and 16-bit overflows are one-line errors instead of tracebacks or empty files; both AES
keys, or --hw_params with a key, are refused instead of silently resolved; PEM inputs are converted to the
DER the firmware needs; --dac_key_password works (generate.py passes a str where bytes are needed).
For every input it accepts, the output is byte-identical.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from hil.errors import InputError
from hil.factory_data import codec, rules
from hil.factory_data.tags import TAGS, FactoryData, Kind, TagSpec
from hil.matter import certs, spake2p

if TYPE_CHECKING:
    from hil.boards import BoardProfile

log = logging.getLogger(__name__)

AES_FLAGS = {"aes128_key": 16, "aes256_key": 32}
_HEX_RE = re.compile(r"[0-9A-Fa-f]*", re.ASCII)


@dataclass
class GenerateRequest:
    """Everything `generate` needs, already parsed. `data.verifier` None means: compute it natively."""

    data: FactoryData
    aes_key: bytes | None = None
    hw_params: bool = False
    dac_key_is_blob: bool = False
    max_size: int | None = None  # the region the image must fit (whole file, wrapper included)
    region: str = "the --max-size limit"  # what max_size is, for the message
    allow: frozenset[str] = frozenset()  # check names (rules.CHECKS) deliberately not enforced
    paa: x509.Certificate | None = None  # extends the chain check to the root
    cd_signer: x509.Certificate | None = None  # enables the CD signature check


class CheckFailed(InputError):
    """A named check failed; `check` is its rules.CHECKS key (what --allow-mismatch takes)."""

    def __init__(self, violation: rules.Violation) -> None:
        super().__init__(
            f"{violation.message} [check '{violation.check}'; --allow-mismatch {violation.check} to override]"
        )
        self.check = violation.check


def check_allow(names: Iterable[str]) -> frozenset[str]:
    """Validate --allow-mismatch names against rules.CHECKS."""
    out = frozenset(names)
    unknown = sorted(out - rules.CHECKS.keys())
    if unknown:
        raise InputError.field("--allow-mismatch", unknown[0], "allowed: " + ", ".join(rules.CHECKS))
    return out


def _enforce(violations: list[rules.Violation], allow: frozenset[str]) -> None:
    for v in violations:
        if v.check not in allow:
            raise CheckFailed(v)
        log.warning("allowed by --allow-mismatch %s: %s", v.check, v.message)


def generate(req: GenerateRequest) -> bytes:
    """Validate `req` (all checks not in `req.allow`) and return the image bytes; InputError otherwise."""
    allow = check_allow(req.allow)
    fd = req.data
    if req.hw_params and req.aes_key is not None:
        _enforce(
            [
                rules.Violation(
                    "hw-params-plain",
                    "--hw_params: cannot be combined with an AES key; the "
                    "K32W1/MCXW71 hw_params section is read in plain text",
                )
            ],
            allow,
        )
    missing = [
        spec.cli
        for spec in TAGS
        if spec.required and spec.name != "verifier" and getattr(fd, spec.name) is None
    ]
    if missing:
        raise InputError(f"{', '.join(missing)}: required (generate.py requires them too)")
    if req.aes_key is not None:
        codec.check_aes_key(req.aes_key)
    _enforce(rules.value_violations(fd), allow)
    creds = rules.parse_credentials(fd)
    if creds.errors:
        raise InputError(next(iter(creds.errors.values())))
    _enforce(
        rules.credential_violations(
            fd, dac_key_is_blob=req.dac_key_is_blob, paa=req.paa, cd_signer=req.cd_signer, creds=creds
        ),
        allow,
    )
    if fd.verifier is None:
        fd = dataclasses.replace(fd, verifier=_compute_verifier(fd))
    elif "verifier" not in allow:
        _enforce(rules.verifier_violations(fd), allow)
    aes_key = req.aes_key
    blob = codec.encode(fd, aes_key, req.hw_params and aes_key is None)
    _enforce(rules.size_violation(len(blob), req.max_size, req.region), allow)
    return blob


def _compute_verifier(fd: FactoryData) -> bytes:
    """W0‖L as spake2p gen-verifier computes it; without validation when the user allowed bad parameters."""
    assert fd.passcode is not None and fd.salt is not None and fd.iterations is not None
    try:
        return spake2p.verifier_from_scalars(*spake2p.w0_w1(fd.passcode, fd.salt, fd.iterations))
    except (ValueError, OverflowError) as exc:
        raise InputError(f"-p/-s/-i: cannot compute a SPAKE2+ verifier from these values ({exc})") from None


# --------------------------------------------------------------------------------------------- arguments


def dest(spec: TagSpec) -> str:
    """The argparse destination of a tag's flag (generate.py's names: --it → "it")."""
    assert spec.flag is not None
    return spec.flag.lstrip("-")


def _flag_name(spec: TagSpec) -> str:
    return f"{spec.short}/{spec.flag}" if spec.short else str(spec.flag)


def parse_int(flag: str, text: str, max_value: int) -> int:
    """generate.py's `int(x, 0)`: decimal or 0x/0o/0b; 0..max_value (the stored width)."""
    try:
        value = int(text, 0)
    except (TypeError, ValueError):
        raise InputError.field(flag, text, "expected an integer (decimal, or hex with 0x)") from None
    if not 0 <= value <= max_value:
        raise InputError.field(flag, text, f"allowed 0..{max_value:#x} ({max_value.bit_length()}-bit field)")
    return value


def parse_base64(flag: str, text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InputError.field(flag, text, "expected standard base64 (A-Z a-z 0-9 + /, = padding)") from None


def parse_aes_key(flag: str, text: str, length: int) -> bytes:
    """A hex AES key of exactly `length` bytes. The value is a secret: never echoed in messages."""
    text = text.strip()
    if not _HEX_RE.fullmatch(text):
        raise InputError(f"--{flag}: not a hex string (value not shown); expected {2 * length} hex digits")
    if len(text) != 2 * length:
        raise InputError(
            f"--{flag}: {len(text)} hex digits is not allowed; expected {2 * length} "
            f"({length}-byte AES-{8 * length} key)"
        )
    return bytes.fromhex(text)


def read_file(flag: str, path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{flag}: cannot read {str(path)!r}: {exc.strerror or exc}") from None


def _pem_to_der(flag: str, data: bytes) -> bytes:
    """The DER inside a PEM file (any label); DER input is returned unchanged (byte identity)."""
    if b"-----BEGIN" not in data:
        return data
    match = re.search(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", data, re.S)
    if match is None:
        raise InputError(f"{flag}: PEM without a matching END line")
    try:
        return base64.b64decode(b"".join(match.group(2).split()), validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{flag}: PEM body is not base64") from None


def _certificate_der(flag: str, data: bytes) -> bytes:
    if b"-----BEGIN" not in data:
        return data  # stored verbatim, as generate.py does; parsed (and refused if bad) by the checks
    cert = certs.load_certificate(data, what=flag)
    return cert.public_bytes(serialization.Encoding.DER)


def dac_key_scalar(path: str | os.PathLike[str], password: str | bytes | None = None) -> bytes:
    """The 32-byte big-endian private scalar generate.py stores, from a DER/PEM (SEC1/PKCS#8) key file."""
    data = read_file("--dac_key", path)
    pw = password.encode() if isinstance(password, str) else password
    key = certs.load_private_key(data, pw, what="--dac_key")
    return key.private_numbers().private_value.to_bytes(32, "big")


def request_from_args(args: Mapping[str, Any]) -> GenerateRequest:
    """generate.py-style arguments (argparse dests; strings as typed) → a GenerateRequest.

    Accepts every generate.py flag, plus: aes256_key, hw_params, max_size (int), allow_mismatch (list),
    paa_cert and cd_cert (paths), region (text for messages). spake2p_path is accepted and unused: the
    verifier is computed natively.
    """
    values: dict[str, Any] = {}
    for spec in TAGS:
        if spec.flag is None:
            continue
        text = args.get(dest(spec))
        if text is None:
            continue
        flag = _flag_name(spec)
        if spec.kind in (Kind.U32, Kind.U16):
            values[spec.name] = parse_int(flag, text, spec.max_int or 0)
        elif spec.kind is Kind.B64:
            values[spec.name] = parse_base64(flag, text)
        elif spec.kind is Kind.STR:
            values[spec.name] = str(text)
        elif spec.kind is Kind.ENUM8:
            choices = spec.choices or ()
            if text not in choices:
                raise InputError.field(flag, text, "allowed: " + ", ".join(choices))
            values[spec.name] = choices.index(text)
        elif spec.name == "dac_key":
            if args.get("dac_key_use_sss_blob"):
                values[spec.name] = read_file(flag, text)
            else:
                values[spec.name] = dac_key_scalar(text, args.get("dac_key_password"))
        elif spec.name in ("dac_cert", "pai_cert"):
            values[spec.name] = _certificate_der(flag, read_file(flag, text))
        else:
            values[spec.name] = _pem_to_der(flag, read_file(flag, text))

    keys = [(name, args[name]) for name in AES_FLAGS if args.get(name)]
    if len(keys) > 1:
        raise InputError(
            "--aes128_key, --aes256_key: give one AES key, not both "
            "(generate.py silently prefers --aes256_key)"
        )
    aes_key = parse_aes_key(keys[0][0], keys[0][1], AES_FLAGS[keys[0][0]]) if keys else None
    if args.get("spake2p_path"):
        log.info("--spake2p_path is not needed: the SPAKE2+ verifier is computed natively")
    paa, cd_signer = (
        certs.load_certificate(read_file(f"--{name}", args[name]), what=f"--{name}")
        if args.get(name)
        else None
        for name in ("paa_cert", "cd_cert")
    )
    max_size = args.get("max_size")
    if max_size is not None and max_size <= 0:
        raise InputError.field("--max-size", max_size, "expected a positive number of bytes")
    req = GenerateRequest(
        data=FactoryData(**values),
        aes_key=aes_key,
        hw_params=bool(args.get("hw_params")),
        dac_key_is_blob=bool(args.get("dac_key_use_sss_blob")),
        max_size=max_size,
        region=args.get("region") or f"--max-size {max_size}",
        allow=check_allow(args.get("allow_mismatch") or ()),
        paa=paa,
        cd_signer=cd_signer,
    )
    if args.get("board"):
        from hil.boards import load_inventory  # only when asked: the inventory pulls in the programmers

        req = for_board(req, load_inventory(args.get("boards")).get(args["board"]))
    return req


def for_board(req: GenerateRequest, board: BoardProfile) -> GenerateRequest:
    """`req` aimed at `board`: its region bounds the size (unless --max-size was given) and its firmware's
    decryption decides the AES key: the board's key when none was given; a different key, a key for a
    plain-only family, or no key for a family that always decrypts fail check 'board-encryption'.
    """
    key, board_key, family = req.aes_key, board.aes_key_bytes, board.spec
    violations = []
    if key is None:
        key = board_key
    elif board_key is not None and key != board_key:
        violations.append(
            f"--aes128_key/--aes256_key: differs from the key board {board.name!r} decrypts with"
        )
    if key is not None and family.encryption == "none":
        violations.append(
            f"--aes128_key/--aes256_key: board {board.name!r} ({family.name}) reads plain factory data"
        )
    if key is None and family.encryption not in ("none", "optional"):
        violations.append(
            f"--aes128_key: board {board.name!r} ({family.name}) decrypts factory data "
            f"({family.encryption}); give its key or set aes_key in boards.toml"
        )
    _enforce([rules.Violation("board-encryption", v) for v in violations], req.allow)
    if req.max_size is not None:
        return dataclasses.replace(req, aes_key=key)
    region = f"board {board.name!r}'s factory-data region at 0x{board.factory_data_address:X}"
    return dataclasses.replace(req, aes_key=key, max_size=board.factory_data_size, region=region)


def describe(blob: bytes, req: GenerateRequest) -> str:
    """One line for the user after writing: size, layout, hash prefix (never secret values)."""
    layout = (
        "AES-256-ECB"
        if req.aes_key and len(req.aes_key) == 32
        else "AES-128-ECB"
        if req.aes_key
        else "hw_params"
        if req.hw_params
        else "plain"
    )
    header_hash = (
        blob[codec.HW_PARAMS_PREFIX_LEN + 8 : codec.HW_PARAMS_PREFIX_LEN + 12]
        if (req.hw_params and not req.aes_key)
        else blob[8:12]
    )
    tags = len(req.data.specs_present()) + (1 if req.data.verifier is None else 0)
    return f"{len(blob)} bytes, {layout}, {tags} tags, header hash {header_hash.hex()}"
