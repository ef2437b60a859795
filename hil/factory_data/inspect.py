"""Explain a factory-data binary: header, hash verdict, every field, certificates, CD, cross-checks.

Reads like the firmware (`codec.parse`: first match wins, tag 0 stops a scan) and then judges the content
with the generator's own rules (`rules`), so "valid" here means what the generator would have accepted
and the firmware will read. Nothing in here raises for bad bytes: every fault becomes a `Problem` with an
explanation; `Report.raise_if_invalid` turns the verdict into the CLI's exit code (InputError, exit 2).
Private keys are redacted unless asked for.
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from hil.errors import HilError, InputError
from hil.factory_data import codec, rules
from hil.factory_data.generate import AES_FLAGS, parse_aes_key, read_file
from hil.factory_data.tags import (
    ALWAYS_WRITTEN,
    BY_TAG,
    DAC_KEY_BLOB_LENS,
    DAC_KEY_PLAIN_LEN,
    FIRMWARE_TAGS,
    Kind,
    TagSpec,
)
from hil.matter import cd as cdmod
from hil.matter import certs

REDACTED = "<redacted; --show-secrets to show>"
_ACCEPTED_KEY_LENS = (DAC_KEY_PLAIN_LEN, *DAC_KEY_BLOB_LENS)


@dataclass
class Field:
    """One decoded record (the first of its tag) for display."""

    tag: int
    name: str
    label: str
    offset: int
    length: int
    value: Any  # JSON-friendly value
    text: str  # human rendering
    secret: bool = False
    error: str | None = None


@dataclass
class CheckResult:
    name: str
    status: str  # "pass" | "fail" | "skip"
    message: str


@dataclass
class Report:
    """Everything the inspector found; `valid` is the verdict (no error-severity problem)."""

    source: str
    parsed: codec.Parsed
    fields: list[Field] = field(default_factory=list)
    certificates: dict[str, dict[str, Any]] = field(default_factory=dict)
    cd: dict[str, Any] | None = None
    checks: list[CheckResult] = field(default_factory=list)
    problems: list[codec.Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[codec.Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def valid(self) -> bool:
        return not self.errors

    def raise_if_invalid(self) -> None:
        """InputError (exit 2) naming the first error when the binary is not valid."""
        errors = self.errors
        if errors:
            more = f" (+{len(errors) - 1} more, listed above)" if len(errors) > 1 else ""
            raise InputError(f"{self.source}: invalid factory data: {errors[0].message}{more}")

    def as_dict(self, show_secrets: bool = False) -> dict[str, Any]:
        p = self.parsed
        return {
            "file": self.source,
            "size": p.size_of_file,
            "valid": self.valid,
            "layout": p.layout,
            "aes": p.aes,
            "hw_params": None
            if p.layout != "hw_params"
            else {
                "length": p.hw_params_length,
                "crc_stored": p.hw_params_crc[0] if p.hw_params_crc else None,
                "crc_computed": p.hw_params_crc[1] if p.hw_params_crc else None,
            },
            "header": {
                "magic": None if p.magic is None else f"{p.magic:#010x}",
                "size": p.size,
                "hash_stored": _hex_or_none(p.stored_hash),
                "hash_computed": _hex_or_none(p.computed_hash),
                "hash_ok": p.hash_ok,
            },
            "records": len(p.records),
            "fields": [
                {
                    "tag": f.tag,
                    "name": f.name,
                    "label": f.label,
                    "offset": f.offset,
                    "length": f.length,
                    "value": REDACTED if f.secret and not show_secrets else f.value,
                    **({"error": f.error} if f.error else {}),
                }
                for f in self.fields
            ],
            "certificates": self.certificates,
            "cd": self.cd,
            "checks": [vars(c) for c in self.checks],
            "problems": [pr.as_dict() for pr in self.problems],
        }


def _hex_or_none(b: bytes | None) -> str | None:
    return None if b is None else b.hex()


def key_from_args(args: Mapping[str, Any]) -> bytes | None:
    """The AES key from --aes128_key/--aes256_key (one at most), validated; never echoed."""
    keys = [(name, args[name]) for name in AES_FLAGS if args.get(name)]
    if len(keys) > 1:
        raise InputError("--aes128_key, --aes256_key: give one AES key, not both")
    return parse_aes_key(keys[0][0], keys[0][1], AES_FLAGS[keys[0][0]]) if keys else None


def inspect_file(
    path: str | os.PathLike[str],
    *,
    aes_key: bytes | None = None,
    hw_params: bool | None = None,
    paa_path: str | os.PathLike[str] | None = None,
    cd_cert_path: str | os.PathLike[str] | None = None,
) -> Report:
    """`inspect` on a file; InputError when a file cannot be read (not when its content is bad)."""
    blob = read_file("FILE", path)
    paa = certs.load_certificate(read_file("--paa_cert", paa_path), what="--paa_cert") if paa_path else None
    cd_signer = (
        certs.load_certificate(read_file("--cd_cert", cd_cert_path), what="--cd_cert")
        if cd_cert_path
        else None
    )
    return inspect(blob, aes_key=aes_key, hw_params=hw_params, paa=paa, cd_signer=cd_signer, source=str(path))


def inspect(
    blob: bytes,
    *,
    aes_key: bytes | None = None,
    hw_params: bool | None = None,
    paa: x509.Certificate | None = None,
    cd_signer: x509.Certificate | None = None,
    check_verifier: bool = True,
    source: str = "<bytes>",
) -> Report:
    """Decode and judge `blob`. `check_verifier=False` skips the PBKDF2 recomputation (bulk re-checks)."""
    parsed = codec.parse(blob, aes_key, hw_params)
    report = Report(source=source, parsed=parsed, problems=list(parsed.problems))
    fd = parsed.data
    report.fields = [_field(rec) for rec in _first_records(parsed)]
    structural_ok = not any(p.code in codec.FATAL_CODES for p in parsed.problems)
    if not structural_ok:
        report.checks.append(
            CheckResult("content", "skip", "the image did not pass the firmware's validation")
        )
        return report

    for spec in ALWAYS_WRITTEN:
        if parsed.first_record(spec.tag) is None:
            report.problems.append(
                codec.Problem(
                    "missing_tag",
                    f"{spec.cli} (tag {spec.tag}, {spec.label}) is missing; generate.py always writes it",
                )
            )
    if fd.dac_key is not None and len(fd.dac_key) not in _ACCEPTED_KEY_LENS:
        report.problems.append(
            codec.Problem(
                "bad_value",
                f"--dac_key (tag 4): {len(fd.dac_key)} bytes is neither a 32-byte P-256 scalar nor a "
                "known secure-subsystem blob (56 K32W1/MCXW71, 48 RW61x)",
            )
        )

    for v in rules.value_violations(fd):
        report.problems.append(codec.Problem(v.check, v.message))

    creds = _guarded_credentials(fd, report)
    with rules.quiet_crypto():
        report.certificates = {
            name: _cert_summary(cert)
            for name, cert in (("dac", creds.dac), ("pai", creds.pai), ("paa", paa))
            if cert is not None
        }
    report.cd = _cd_summary(fd.cert_declaration, creds.cd)
    try:
        cross = rules.credential_violations(
            fd, paa=paa, cd_signer=cd_signer, creds=creds, blob_sizes=tuple(DAC_KEY_BLOB_LENS)
        )
    except (HilError, ValueError) as exc:  # a certificate that parses but is malformed deeper down
        cross = [rules.Violation("dac-chain", f"certificates: cannot be checked ({exc})")]
    if check_verifier:
        cross += rules.verifier_violations(fd)
    failed: dict[str, list[str]] = {}
    for v in cross:
        failed.setdefault(v.check, []).append(v.message)
        report.problems.append(codec.Problem(v.check, v.message))
    for name, reason in _applicable(fd, creds, cd_signer, check_verifier).items():
        if name in failed:
            report.checks.append(CheckResult(name, "fail", "; ".join(failed[name])))
        elif reason is None:
            report.checks.append(CheckResult(name, "pass", rules.CHECKS[name]))
        else:
            report.checks.append(CheckResult(name, "skip", reason))
    return report


def _guarded_credentials(fd: Any, report: Report) -> rules.Credentials:
    creds = rules.parse_credentials(fd)
    for name, message in creds.errors.items():
        report.problems.append(codec.Problem("unparsable_" + name, message))
    return creds


def _applicable(
    fd: Any, creds: rules.Credentials, cd_signer: Any, check_verifier: bool
) -> dict[str, str | None]:
    """For each cross-check: None when it ran, else why it was skipped."""
    plain_key = fd.dac_key is not None and len(fd.dac_key) == DAC_KEY_PLAIN_LEN
    both = creds.dac is not None and creds.pai is not None
    verifier_inputs = None not in (fd.verifier, fd.passcode, fd.salt, fd.iterations)
    return {
        "dac-key": None
        if plain_key and creds.dac is not None
        else "the key is a secure-subsystem blob"
        if fd.dac_key is not None and not plain_key
        else "no DAC key or DAC certificate",
        "dac-chain": None if both else "DAC or PAI certificate missing or unreadable",
        "dac-vid-pid": None if creds.dac is not None and fd.vid is not None else "no DAC certificate or VID",
        "pai-vid-pid": None if creds.pai is not None and fd.vid is not None else "no PAI certificate or VID",
        "cd-vid-pid": None if creds.cd is not None else "no decodable CD",
        "cd-signature": None
        if cd_signer is not None and creds.cd is not None
        else "give --cd_cert (the CD signing certificate) to check it",
        "verifier": None
        if check_verifier and verifier_inputs
        else "not requested"
        if not check_verifier
        else "verifier, passcode, salt or iteration count missing",
    }


def _first_records(parsed: codec.Parsed) -> list[codec.Record]:
    seen: set[int] = set()
    out = []
    for rec in parsed.records:
        if rec.tag not in seen:
            seen.add(rec.tag)
            out.append(rec)
    return out


def _field(rec: codec.Record) -> Field:
    spec = BY_TAG.get(rec.tag)
    if spec is None:
        label = FIRMWARE_TAGS.get(rec.tag, "unknown tag")
        return Field(
            rec.tag,
            f"tag_{rec.tag}",
            label,
            rec.offset,
            len(rec.value),
            rec.value.hex(),
            _short_hex(rec.value),
            secret=rec.tag in FIRMWARE_TAGS,
        )
    base = Field(rec.tag, spec.name, spec.label, rec.offset, len(rec.value), None, "", secret=spec.secret)
    try:
        value = codec.decode_value(spec, rec.value)
    except ValueError as exc:
        base.error = str(exc)
        base.value = rec.value.hex()
        base.text = f"{_short_hex(rec.value)}  ({exc})"
        return base
    base.value, base.text = _render(spec, value)
    return base


def _render(spec: TagSpec, value: Any) -> tuple[Any, str]:
    if spec.kind in (Kind.U32, Kind.U16):
        return value, f"{value} ({value:#x})"
    if spec.kind is Kind.ENUM8:
        choices = spec.choices or ()
        name = choices[value] if value < len(choices) else "(unknown)"
        return {"index": value, "name": name}, f"{value} ({name})"
    if spec.kind is Kind.STR:
        return value, repr(value)
    if spec.kind is Kind.B64:
        text = base64.b64encode(value).decode()
        return text, f"{text}  ({len(value)} bytes)"
    if spec.name == "dac_key":
        what = (
            "P-256 private scalar"
            if len(value) == DAC_KEY_PLAIN_LEN
            else DAC_KEY_BLOB_LENS.get(len(value), "?")
        )
        return value.hex(), f"{value.hex()}  ({len(value)} bytes, {what})"
    if spec.name in ("dac_cert", "pai_cert"):
        return value.hex(), f"{len(value)} bytes DER (see certificates)"
    if spec.name == "cert_declaration":
        return value.hex(), f"{len(value)} bytes CMS (see CD)"
    return value.hex(), _short_hex(value)


def _short_hex(b: bytes, limit: int = 32) -> str:
    return b[:limit].hex(" ") + (f" ... ({len(b)} bytes)" if len(b) > limit else "")


def _cert_summary(cert: x509.Certificate) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        out["subject_cn"] = certs.subject_cn(cert)
        out["issuer"] = cert.issuer.rfc4514_string()
        out["serial"] = f"{cert.serial_number:x}"
        out["not_before"] = cert.not_valid_before_utc.isoformat()
        out["not_after"] = cert.not_valid_after_utc.isoformat()
        try:
            vid, pid = certs.matter_vid_pid(cert)
            out["vid"] = None if vid is None else f"{vid:#06x}"
            out["pid"] = None if pid is None else f"{pid:#06x}"
        except HilError as exc:
            out["vid_pid_error"] = str(exc)
        try:
            out["skid"] = certs.skid(cert).hex()
        except HilError:
            out["skid"] = None
        akid = certs.akid(cert)
        out["akid"] = None if akid is None else akid.hex()
    except (ValueError, HilError) as exc:
        out["error"] = f"unreadable certificate field ({exc})"
    return out


def _cd_summary(der: bytes | None, decl: cdmod.CertificationDeclaration | None) -> dict[str, Any] | None:
    if der is None or decl is None:
        return None
    out: dict[str, Any] = {
        "vendor_id": f"{decl.vendor_id:#06x}",
        "product_ids": [f"{p:#06x}" for p in decl.product_ids],
        "device_type_id": f"{decl.device_type_id:#x}",
        "certificate_id": decl.certificate_id,
        "certification_type": cdmod.CD_TYPES.get(decl.certification_type, str(decl.certification_type)),
        "version_number": decl.version_number,
    }
    if decl.dac_origin_vendor_id is not None:
        out["dac_origin"] = f"{decl.dac_origin_vendor_id:#06x}/{decl.dac_origin_product_id or 0:#06x}"
    with contextlib.suppress(HilError, ValueError):
        out["signer_key_id"] = cdmod.parse_envelope(der).signer_key_id.hex().upper()
    return out


# --------------------------------------------------------------------------------------------- text


def format_text(report: Report, show_secrets: bool = False) -> str:
    """The human rendering (what `hil factory-data inspect` prints)."""
    p = report.parsed
    lines = [f"file:    {report.source} ({p.size_of_file} bytes)"]
    layout = p.layout
    if p.aes:
        layout += f", {p.aes}-ECB"
    if p.hw_params_crc:
        stored, computed = p.hw_params_crc
        layout += f", CRC-16 {stored:#06x} " + (
            "ok" if stored == computed else f"!= computed {computed:#06x}"
        )
    lines.append(f"layout:  {layout}")
    if p.magic is not None:
        verdict = "ok" if p.hash_ok else "MISMATCH" if p.computed_hash is not None else "not checkable"
        lines.append(
            f"header:  magic {p.magic:#010x} ({'ok' if p.magic == codec.MAGIC else 'BAD'}), size {p.size}, "
            f"hash {_hex_or_none(p.stored_hash)} (computed {_hex_or_none(p.computed_hash)}): {verdict}"
        )
    if report.fields:
        lines.append(f"records: {len(p.records)} (the firmware uses the first of each tag)")
        lines.append(f"  {'tag':>3} {'offset':>6} {'len':>5}  {'field':<30} value")
        for f in report.fields:
            text = REDACTED if f.secret and not show_secrets else f.text
            lines.append(f"  {f.tag:>3} {f.offset:>6} {f.length:>5}  {f.label:<30} {text}")
    for name, summary in report.certificates.items():
        if "error" in summary:
            lines.append(f"{name.upper()}:     {summary['error']}")
            continue
        lines.append(
            f"{name.upper()}:     CN={summary.get('subject_cn')!r} VID {summary.get('vid')} "
            f"PID {summary.get('pid')} "
            f"serial {summary.get('serial')} valid {summary.get('not_before', '')[:10]}.."
            f"{summary.get('not_after', '')[:10]} issuer {summary.get('issuer')!r}"
        )
    if report.cd:
        cd = report.cd
        lines.append(
            f"CD:      vendor_id {cd['vendor_id']} product_ids [{', '.join(cd['product_ids'])}] "
            f"device_type {cd['device_type_id']} certificate_id {cd['certificate_id']!r} "
            f"type {cd['certification_type']} version {cd['version_number']}"
            + (f" dac_origin {cd['dac_origin']}" if "dac_origin" in cd else "")
            + (f" signer {cd['signer_key_id']}" if "signer_key_id" in cd else "")
        )
    if report.checks:
        lines.append("checks:")
        for c in report.checks:
            lines.append(f"  {c.status.upper():<4}  {c.name:<13} {c.message}")
    if report.problems:
        lines.append("problems:")
        for pr in report.problems:
            lines.append(f"  {pr.severity:<7} {pr.code}: {pr.message}")
    n = len(report.errors)
    lines.append("verdict: " + ("VALID" if report.valid else f"INVALID ({n} error{'s' if n != 1 else ''})"))
    return "\n".join(lines) + "\n"
