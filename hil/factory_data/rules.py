"""The checks NXP's generate.py lacks, each with a name: used to refuse bad input and to judge an image.

The generator raises on the first violation that was not explicitly allowed (`--allow-mismatch NAME`);
the inspector reports every violation of an image it reads. Both call the same functions here, so a
binary the generator accepts is one the inspector calls valid, and the other way round.

Facts: specs/nxp-factory-data.md §8 (what to validate), §3.3 (firmware getters: date must be exactly
YYYY-MM-DD, strings must fit the firmware buffers), specs/matter-credentials.md §1.3 and §3.2 (VID/PID
consistency across DAC, PAI and CD; SPAKE2+ ranges).
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import date as _date

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.utils import CryptographyDeprecationWarning

from hil.errors import AttestationError, HilError
from hil.factory_data.tags import (
    BY_NAME,
    DAC_KEY_BLOB_LENS,
    DAC_KEY_PLAIN_LEN,
    SSS_BLOB_LEN,
    TAGS,
    FactoryData,
    Kind,
)
from hil.matter import cd as cdmod
from hil.matter import certs, spake2p

#: Every check, by the name used in messages, `--allow-mismatch` and the inspector's JSON.
CHECKS: dict[str, str] = {
    "passcode": f"setup passcode: 1..99999998, not {spake2p.INVALID_PASSCODES_TEXT}",
    "salt": "SPAKE2+ salt: 16..32 bytes",
    "iterations": "SPAKE2+ iteration count: 1000..100000",
    "discriminator": "discriminator: 12 bits (0..0xFFF)",
    "date": "manufacturing date: exactly YYYY-MM-DD and a real calendar date",
    "string-length": "strings fit the firmware's buffers (vendor/product/serial/part/unique ID 32 bytes, "
    "hw_version_str/label 64, URL 256, date 16)",
    "enum": "product finish and primary color are known enum values",
    "verifier": "SPAKE2+ verifier: 97 bytes and equal to the one computed from passcode, salt, iterations",
    "dac-key": "the DAC private key is the private half of the DAC certificate's public key",
    "sss-blob-size": "a --dac_key_use_sss_blob blob is 56 bytes (K32W1/MCXW71 SSS blob: 32-byte key + 24)",
    "dac-chain": "the DAC is issued by the PAI (AKID/SKID, issuer name, signature, Matter profiles); "
    "with a PAA, the whole chain",
    "dac-vid-pid": "--vid/--pid equal the VID/PID in the DAC subject",
    "pai-vid-pid": "--vid equals the PAI's VID (and --pid its PID, when the PAI has one)",
    "cd-vid-pid": "--vid equals the CD's vendor_id and --pid is in its product_id_array",
    "cd-signature": "the CD verifies with the given CD signing certificate",
    "region-size": "the image fits the board's factory-data region",
    "board-encryption": "with --board: encrypted exactly as the board's firmware decrypts (boards.toml key)",
    "hw-params-plain": "--hw_params is not combined with an AES key (the wrapper is plain-only)",
}

#: Checks that need the certificates, CD or PBKDF2; the rest are cheap value checks.
CREDENTIAL_CHECKS = (
    "dac-key",
    "sss-blob-size",
    "dac-chain",
    "dac-vid-pid",
    "pai-vid-pid",
    "cd-vid-pid",
    "cd-signature",
)

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


@dataclass(frozen=True)
class Violation:
    """One failed check: `check` is a key of CHECKS, `message` names the field, the value and the rule."""

    check: str
    message: str

    def __str__(self) -> str:
        return self.message


def _flag(name: str) -> str:
    spec = BY_NAME[name]
    return f"{spec.short}/{spec.flag}" if spec.short else str(spec.flag)


def value_violations(fd: FactoryData) -> list[Violation]:
    """Cheap rules on single values (no crypto): passcode, salt, iterations, discriminator, date, lengths."""
    out: list[Violation] = []
    if fd.passcode is not None and not spake2p.is_valid_passcode(fd.passcode):
        out.append(
            Violation("passcode", f"{_flag('passcode')}: {fd.passcode} is not allowed; {CHECKS['passcode']}")
        )
    if fd.salt is not None and not spake2p.SALT_MIN_LEN <= len(fd.salt) <= spake2p.SALT_MAX_LEN:
        out.append(
            Violation(
                "salt",
                f"{_flag('salt')}: {len(fd.salt)} bytes (base64-decoded) is not allowed; "
                f"allowed {spake2p.SALT_MIN_LEN}..{spake2p.SALT_MAX_LEN} bytes",
            )
        )
    if fd.iterations is not None and not spake2p.ITERATIONS_MIN <= fd.iterations <= spake2p.ITERATIONS_MAX:
        out.append(
            Violation(
                "iterations",
                f"{_flag('iterations')}: {fd.iterations} is not allowed; allowed "
                f"{spake2p.ITERATIONS_MIN}..{spake2p.ITERATIONS_MAX}",
            )
        )
    if fd.discriminator is not None and not 0 <= fd.discriminator <= 0xFFF:
        out.append(
            Violation(
                "discriminator",
                f"{_flag('discriminator')}: {fd.discriminator} ({fd.discriminator:#x})"
                " is not allowed; allowed 0..4095 (0xFFF, 12 bits)",
            )
        )
    if fd.date is not None and not _is_date(fd.date):
        out.append(
            Violation(
                "date",
                f"--date: {fd.date!r} is not allowed; the firmware needs exactly YYYY-MM-DD "
                "(10 characters, a real date)",
            )
        )
    for spec in TAGS:
        value = getattr(fd, spec.name)
        if spec.kind is Kind.STR and spec.max_len is not None and isinstance(value, str):
            n = len(value.encode("utf-8", "surrogatepass"))
            if n > spec.max_len:
                out.append(
                    Violation(
                        "string-length",
                        f"{spec.cli}: {n} bytes (UTF-8) is too long; at most "
                        f"{spec.max_len} bytes for the {spec.label}",
                    )
                )
        elif (
            spec.kind is Kind.ENUM8 and spec.choices and isinstance(value, int) and value >= len(spec.choices)
        ):
            out.append(
                Violation(
                    "enum",
                    f"{spec.cli}: index {value} is not allowed; allowed 0..{len(spec.choices) - 1}"
                    f" ({', '.join(spec.choices)})",
                )
            )
    return out


def _is_date(text: str) -> bool:
    if not _DATE_RE.fullmatch(text):
        return False
    try:
        _date.fromisoformat(text)
    except ValueError:
        return False
    return True


def verifier_violations(fd: FactoryData) -> list[Violation]:
    """The stored verifier is 97 bytes and equals W0‖L computed from passcode, salt and iterations.

    Costs one PBKDF2 (the dominant per-device cost). Skipped when the iteration count is out of range
    (already a `value_violations` finding, and 2^32 iterations would take hours); an invalid passcode or
    salt is still checked for consistency, so deliberately bad test data stays self-consistent.
    """
    if fd.verifier is None:
        return []
    if len(fd.verifier) != spake2p.VERIFIER_LEN:
        return [
            Violation(
                "verifier",
                f"--spake2p_verifier: {len(fd.verifier)} bytes (base64-decoded) is not "
                f"allowed; a serialized verifier is {spake2p.VERIFIER_LEN} bytes (W0 32 + L 65)",
            )
        ]
    if fd.passcode is None or fd.salt is None or fd.iterations is None:
        return []
    if not spake2p.ITERATIONS_MIN <= fd.iterations <= spake2p.ITERATIONS_MAX:
        return []
    try:
        expected = spake2p.verifier_from_scalars(*spake2p.w0_w1(fd.passcode, fd.salt, fd.iterations))
    except (HilError, ValueError, OverflowError):
        return []
    if expected != fd.verifier:
        return [
            Violation(
                "verifier",
                "--spake2p_verifier: does not match -p/--passcode, -s/--salt and -i/--it "
                f"(passcode {fd.passcode}, {len(fd.salt)}-byte salt, {fd.iterations} iterations give "
                "another verifier)",
            )
        ]
    return []


@dataclass
class Credentials:
    """The parsed certificates and CD of a FactoryData, with why each one could not be parsed."""

    dac: x509.Certificate | None = None
    pai: x509.Certificate | None = None
    cd: cdmod.CertificationDeclaration | None = None
    errors: dict[str, str] = field(default_factory=dict)


def parse_credentials(fd: FactoryData) -> Credentials:
    """Parse DAC, PAI (DER) and CD (CMS); a field that fails to parse gets its reason in `errors`.

    The bytes may come from an arbitrary binary (the inspector): `certs.load_certificate` accepts a
    certificate only once every part the checks read has parsed (cryptography parses lazily), so a
    malformed one is an InputError here, never an exception in a later check.
    """
    creds = Credentials()
    with quiet_crypto():
        for name, what in (("dac_cert", "DAC certificate"), ("pai_cert", "PAI certificate")):
            der = getattr(fd, name)
            if der is None:
                continue
            label = f"{BY_NAME[name].flag} ({what})"
            try:
                cert = certs.load_certificate(der, what=label)
            except HilError as exc:
                creds.errors[name] = str(exc)
                continue
            if name == "dac_cert":
                creds.dac = cert
            else:
                creds.pai = cert
        if fd.cert_declaration is not None:
            try:
                creds.cd = cdmod.decode(fd.cert_declaration)
            except HilError as exc:
                creds.errors["cert_declaration"] = f"--cert_declaration: {exc}"
            except Exception as exc:  # hand-written DER/TLV parser fed arbitrary bytes: never a traceback
                creds.errors["cert_declaration"] = (
                    f"--cert_declaration: not a decodable CD ({type(exc).__name__})"
                )
    return creds


@contextlib.contextmanager
def quiet_crypto() -> Iterator[None]:
    """Silence cryptography's deprecation warnings (e.g. non-positive serials): the checks report them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        yield


def credential_violations(
    fd: FactoryData,
    *,
    dac_key_is_blob: bool | None = None,
    paa: x509.Certificate | None = None,
    cd_signer: x509.Certificate | None = None,
    creds: Credentials | None = None,
    blob_sizes: Collection[int] = (SSS_BLOB_LEN,),
) -> list[Violation]:
    """DAC key ↔ DAC, DAC ← PAI (← PAA), VID/PID across factory data, DAC, PAI and CD, CD signature.

    `dac_key_is_blob`: True for a secure-subsystem blob (no key check, size check), False for a plain
    scalar, None to decide from the length. `paa` (x509.Certificate) extends the chain check to the root;
    `cd_signer` (certificate) enables the CD signature check. `blob_sizes`: the blob lengths accepted
    (the generator's --dac_key_use_sss_blob means the 56-byte K32W1 SSS blob; an inspector without a
    board accepts every known platform's size). Unparsable certificates are not reported here
    (see `parse_credentials`); the checks that need them are skipped.
    """
    with quiet_crypto():
        return _credential_violations(
            fd,
            dac_key_is_blob=dac_key_is_blob,
            paa=paa,
            cd_signer=cd_signer,
            creds=creds,
            blob_sizes=blob_sizes,
        )


def _credential_violations(
    fd: FactoryData,
    *,
    dac_key_is_blob: bool | None,
    paa: x509.Certificate | None,
    cd_signer: x509.Certificate | None,
    creds: Credentials | None,
    blob_sizes: Collection[int],
) -> list[Violation]:
    creds = creds or parse_credentials(fd)
    dac, pai, cd = creds.dac, creds.pai, creds.cd
    out: list[Violation] = []

    if fd.dac_key is not None:
        blob = len(fd.dac_key) != DAC_KEY_PLAIN_LEN if dac_key_is_blob is None else dac_key_is_blob
        if blob:
            n = len(fd.dac_key)
            if n not in blob_sizes:
                known = DAC_KEY_BLOB_LENS.get(n)
                out.append(
                    Violation(
                        "sss-blob-size",
                        f"--dac_key: a {n}-byte blob is not allowed; a K32W1/MCXW71 SSS blob is 56 bytes "
                        "(32-byte key + 24 metadata)" + (f"; {n} bytes is an {known}" if known else ""),
                    )
                )
        elif dac is not None:
            try:
                key = ec.derive_private_key(int.from_bytes(fd.dac_key, "big"), ec.SECP256R1())
                certs.check_key_matches(dac, key, what="--dac_key")
            except ValueError:
                out.append(
                    Violation("dac-key", "--dac_key: the 32 stored bytes are not a valid P-256 private key")
                )
            except HilError as exc:
                out.append(Violation("dac-key", str(exc)))

    if dac is not None and pai is not None:
        try:
            if paa is not None:
                certs.verify_chain(dac, pai, paa)
            else:
                _verify_issued(dac, pai)
        except HilError as exc:
            out.append(Violation("dac-chain", f"--dac_cert/--pai_cert: {exc}"))

    # Who must carry which VID/PID: with dac_origin_* in the CD, the DAC and PAI carry the origin's IDs
    # while the factory data (Basic Information) carries the CD's (Matter Core §6.2.3.1).
    origin_vid = getattr(cd, "dac_origin_vendor_id", None)
    origin_pid = getattr(cd, "dac_origin_product_id", None)
    want_vid = origin_vid if origin_vid is not None else fd.vid
    want_pid = origin_pid if origin_pid is not None else fd.pid
    why = " (the CD's dac_origin)" if origin_vid is not None else ""
    for cert, name, check in ((dac, "DAC", "dac-vid-pid"), (pai, "PAI", "pai-vid-pid")):
        if cert is None or want_vid is None:
            continue
        try:
            vid, pid = certs.matter_vid_pid(cert)
        except HilError as exc:
            out.append(Violation(check, f"{name} certificate: {exc}"))
            continue
        if vid != want_vid:
            out.append(
                Violation(
                    check,
                    f"--vid: {want_vid:#06x}{why} does not match the {name} certificate's VID {_id(vid)}",
                )
            )
        if want_pid is not None and (pid is not None or name == "DAC") and pid != want_pid:
            out.append(
                Violation(
                    check,
                    f"--pid: {want_pid:#06x}{why} does not match the {name} certificate's PID {_id(pid)}",
                )
            )
    if cd is not None:
        if fd.vid is not None and cd.vendor_id != fd.vid:
            out.append(
                Violation(
                    "cd-vid-pid",
                    f"--vid: {fd.vid:#06x} does not match the CD's vendor_id {cd.vendor_id:#06x}",
                )
            )
        if fd.pid is not None and fd.pid not in cd.product_ids:
            listed = ", ".join(f"{p:#06x}" for p in cd.product_ids[:8])
            more = ", ..." if len(cd.product_ids) > 8 else ""
            out.append(
                Violation(
                    "cd-vid-pid", f"--pid: {fd.pid:#06x} is not in the CD's product_id_array [{listed}{more}]"
                )
            )
        if cd_signer is not None and fd.cert_declaration is not None:
            try:
                cdmod.verify(fd.cert_declaration, cd_signer)
            except HilError as exc:
                out.append(Violation("cd-signature", f"--cert_declaration: {exc}"))
    return out


def _id(value: int | None) -> str:
    return "(none)" if value is None else f"{value:#06x}"


def _verify_issued(dac: x509.Certificate, pai: x509.Certificate) -> None:
    """DAC ← PAI without a PAA: both Matter profiles, AKID = SKID, issuer name and signature."""
    certs.check_profile(pai, "pai")
    certs.check_profile(dac, "dac")
    if certs.akid(dac) != certs.skid(pai):
        raise AttestationError(
            "DAC authorityKeyIdentifier does not match the PAI subjectKeyIdentifier (issued by another key)"
        )
    try:
        dac.verify_directly_issued_by(pai)
    except ValueError:
        raise AttestationError("DAC issuer name does not equal the PAI subject") from None
    except InvalidSignature:
        raise AttestationError("DAC signature does not verify with the PAI public key") from None


def size_violation(total: int, limit: int | None, where: str) -> list[Violation]:
    """The whole file (with any hw_params wrapper) against a region of `limit` bytes."""
    if limit is None or total <= limit:
        return []
    return [
        Violation(
            "region-size",
            f"factory data: {total} bytes does not fit {where} ({limit} bytes, "
            f"{total - limit} over); shorten strings or drop optional fields",
        )
    ]
