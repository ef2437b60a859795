"""The credential plan of a provisioning session: one PKI shared by all boards, per-device values per board.

Why two credential objects: a manufacturing session has ONE PKI (PAA, PAI, signed CD: `Pki`) and one set
of per-device values per board (`DeviceCredentials`: DAC + key, passcode, discriminator, SPAKE2+ salt,
iterations, verifier, serial number, rotating-ID unique id). Commissioners trust the session's PAA; each
board gets its own DAC and passcode, as in NXP's flow (generate_certs.py once, generate.py per device).

Deterministic when asked: with a `seed`, every key (PAA, PAI, DAC), certificate serial, validity start,
passcode, discriminator, salt and unique id is derived from it (HKDF-SHA256 with a label per value), and
certificates are signed with RFC 6979 deterministic ECDSA, so the same seed gives the same bytes in every
process (xdist workers agree on one PAA without talking to each other). Without a seed, everything is
random, as production credentials must be.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from hil.errors import AttestationError, InputError
from hil.matter import cd as cdmod
from hil.matter import certs, onboarding, spake2p
from hil.matter.credential_set import nxp_declaration

if TYPE_CHECKING:
    from hil.boards import BoardProfile

_P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
#: A seeded PKI starts its validity here (fixed, so bytes repeat); 20 years covers any test run.
SEEDED_VALID_FROM = datetime(2024, 1, 1, tzinfo=UTC)
DEFAULT_ITERATIONS = 1000  # the SDK's minimum: PASE costs the same PBKDF2 on both sides, keep tests fast
DEFAULT_DEVICE_TYPE = 0x0100  # On/Off Light
DEFAULT_VENDOR_NAME = "NXP Semiconductors"
DEFAULT_PRODUCT_NAME = "HIL Light"

Seed = int | str | bytes


def _seed_bytes(seed: Seed) -> bytes:
    if isinstance(seed, bytes):
        return seed
    if isinstance(seed, int) and not isinstance(seed, bool):
        return seed.to_bytes((seed.bit_length() + 8) // 8 or 1, "big", signed=True)
    if isinstance(seed, str):
        return seed.encode()
    raise InputError.field("seed", seed, "an int, str or bytes")


class _Derive:
    """Values derived from a seed, one HKDF-like label per value (HMAC-SHA256, counter mode)."""

    def __init__(self, seed: Seed, scope: str) -> None:
        self._key = hmac.new(b"nxp-matter-hil seed v1", _seed_bytes(seed), hashlib.sha256).digest()
        self._scope = scope.encode()

    def bytes(self, label: str, n: int) -> bytes:
        out, counter = b"", 0
        while len(out) < n:
            counter += 1
            msg = self._scope + b"|" + label.encode() + b"|" + counter.to_bytes(4, "big")
            out += hmac.new(self._key, msg, hashlib.sha256).digest()
        return out[:n]

    def key(self, label: str) -> ec.EllipticCurvePrivateKey:
        scalar = int.from_bytes(self.bytes("key:" + label, 40), "big") % (_P256_N - 1) + 1
        return ec.derive_private_key(scalar, ec.SECP256R1())

    def serial(self, label: str) -> int:
        return int.from_bytes(self.bytes("serial:" + label, 8), "big") & 0x7FFF_FFFF_FFFF_FFFF or 1

    def rng(self, label: str) -> random.Random:
        return random.Random(self.bytes("rng:" + label, 32))


def _deterministic(cred: certs.Credential, issuer_key: ec.EllipticCurvePrivateKey) -> certs.Credential:
    """Re-sign `cred`'s TBS with RFC 6979 ECDSA: same key + same fields -> byte-identical certificate."""
    c = cred.cert
    builder = (
        x509.CertificateBuilder()
        .serial_number(c.serial_number)
        .issuer_name(c.issuer)
        .subject_name(c.subject)
        .not_valid_before(c.not_valid_before_utc)
        .not_valid_after(c.not_valid_after_utc)
        .public_key(c.public_key())
    )
    for ext in c.extensions:
        builder = builder.add_extension(ext.value, critical=ext.critical)
    return certs.Credential(builder.sign(issuer_key, hashes.SHA256(), ecdsa_deterministic=True), cred.key)


# ------------------------------------------------------------------------------------------------ PKI


@dataclass(frozen=True, repr=False)
class Pki:
    """A session's attestation PKI: PAA, PAI (VID, PID), the signed CD, and the product's identity.

    `cd_signer_cert` is the certificate the CD was signed with when known (offline CD checks use it).
    """

    vid: int
    pid: int
    paa: certs.Credential
    pai: certs.Credential
    cd: bytes
    vendor_name: str = DEFAULT_VENDOR_NAME
    product_name: str = DEFAULT_PRODUCT_NAME
    cd_signer_cert: x509.Certificate | None = None
    seed: Seed | None = None

    def __repr__(self) -> str:
        return (
            f"Pki(vid=0x{self.vid:04X}, pid=0x{self.pid:04X}, paa={self.id}, seeded={self.seed is not None})"
        )

    @classmethod
    def generate(
        cls,
        vid: int,
        pid: int,
        *,
        cd_signer: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None = None,
        cd: bytes | None = None,
        seed: Seed | None = None,
        paa: certs.Credential | None = None,
        vendor_name: str = DEFAULT_VENDOR_NAME,
        product_name: str = DEFAULT_PRODUCT_NAME,
        device_type: int = DEFAULT_DEVICE_TYPE,
        cd_type: int = 1,
    ) -> Pki:
        """A new PAI (and PAA unless `paa` is given) for VID/PID, and a CD: signed now by `cd_signer`
        (key, cert), or an existing signed `cd` (checked to name this VID/PID). One of the two is needed:
        a commissioner refuses a device without a CD (and one signed by a key it does not trust: 602).
        """
        certs.check_id("vendor_id", vid, required=True)
        certs.check_id("product_id", pid, required=True)
        if (cd_signer is None) == (cd is None):
            raise InputError(
                "cd_signer / cd: give exactly one (a CD signing key + certificate, or a signed CD)"
            )
        declaration = nxp_declaration(vid, pid, device_type=device_type, cd_type=cd_type)
        signer_cert = None
        if cd_signer is not None:
            cdmod.validate(declaration)
            certs.check_key_matches(cd_signer[1], cd_signer[0], what="CD signing key")
            signer_cert = cd_signer[1]
            # seeded: RFC 6979, so the same seed gives the same CD bytes
            cd = cdmod.sign(declaration, *cd_signer, deterministic=seed is not None)
        else:
            assert cd is not None
            try:
                found = cdmod.decode(cd)
            except AttestationError as exc:  # a file the user gave: bad input (2), not a failed attestation
                raise InputError(f"cd: not a signed Certification Declaration ({exc})") from None
            if found.vendor_id != vid or pid not in found.product_ids:
                raise InputError(
                    f"cd: the CD is for VID 0x{found.vendor_id:04X} PIDs "
                    f"{', '.join(f'0x{p:04X}' for p in found.product_ids)}; not allowed for VID 0x{vid:04X} "
                    f"PID 0x{pid:04X} (give the CD of this product)"
                )
        d = _Derive(seed, "pki") if seed is not None else None
        when = SEEDED_VALID_FROM if d else None
        if paa is None:
            paa = certs.generate_paa(
                f"{vendor_name} HIL PAA"[:64],
                None,
                valid_from=when,
                key=d.key("paa") if d else None,
                serial=d.serial("paa") if d else None,
            )
            if d:
                paa = _deterministic(paa, paa.key)  # type: ignore[arg-type]
        pai = certs.generate_pai(
            paa,
            f"{vendor_name} HIL PAI"[:64],
            vid,
            pid,
            valid_from=when,
            key=d.key("pai") if d else None,
            serial=d.serial("pai") if d else None,
        )
        if d:
            pai = _deterministic(pai, paa.key)  # type: ignore[arg-type]
        return cls(vid, pid, paa, pai, cd, vendor_name, product_name, signer_cert, seed)

    @property
    def id(self) -> str:
        """A short stable name of this PKI: the PAA's SKID (what a commissioner's trust store matches)."""
        return certs.skid(self.paa.cert).hex().upper()[:16]

    @property
    def paa_der(self) -> bytes:
        return self.paa.cert_der()

    def files(self) -> list[tuple[str, bytes, bool]]:
        """(name, bytes, secret) with generate_certs.py's names, for `--out` directories."""
        ids = f"{self.vid:X}-{self.pid:X}"
        out: list[tuple[str, bytes, bool]] = []
        for base, cred in (("Chip-PAA-NXP", self.paa), (f"Chip-PAI-NXP-{ids}", self.pai)):
            out += [
                (f"{base}-Cert.der", cred.cert_der(), False),
                (f"{base}-Cert.pem", cred.cert_pem(), False),
            ]
            if cred.key is not None:
                out.append((f"{base}-Key.der", cred.key_der(), True))
        out.append((f"Chip-Test-CD-{ids}.der", self.cd, False))
        return out


# ------------------------------------------------------------------------------------ per-device values


@dataclass(frozen=True, repr=False)
class DeviceCredentials:
    """One board's DAC (+ key) and onboarding / SPAKE2+ values. The passcode never reaches the board."""

    dac: certs.Credential
    passcode: int
    discriminator: int
    salt: bytes
    iterations: int
    verifier: bytes
    serial_number: str
    unique_id: str  # 32 hex digits (rotating device id unique id)

    def __repr__(self) -> str:  # no passcode, no key
        return (
            f"DeviceCredentials(dac_serial={self.dac_serial}, discriminator={self.discriminator}, "
            f"iterations={self.iterations}, serial_number={self.serial_number!r})"
        )

    @property
    def dac_serial(self) -> str:
        return f"{self.dac.cert.serial_number:X}"

    def fingerprint(self) -> str:
        """Stable across processes for the same values (DAC public key, not its signature bytes)."""
        h = hashlib.sha256()
        h.update(certs.skid(self.dac.cert))
        h.update(f"{self.passcode}|{self.discriminator}|{self.iterations}|{self.serial_number}".encode())
        h.update(self.salt + self.verifier)
        return h.hexdigest()[:16]

    def qr_code(self, pki: Pki) -> str:
        return onboarding.qr_payload(
            pki.vid, pki.pid, self.passcode, self.discriminator, rendezvous=onboarding.RENDEZVOUS_ON_NETWORK
        )

    def manual_code(self) -> str:
        return onboarding.manual_code(self.passcode, self.discriminator)

    @classmethod
    def for_board(
        cls,
        pki: Pki,
        profile: BoardProfile | str,
        seed: Seed | None = None,
        *,
        passcode: int | None = None,
        discriminator: int | None = None,
        iterations: int = DEFAULT_ITERATIONS,
        serial_number: str | None = None,
        dac_issuer: certs.Credential | None = None,
    ) -> DeviceCredentials:
        """A DAC issued by the PKI's PAI for the PKI's VID/PID, and fresh onboarding values.

        With `seed` (and the same board name) everything is the same in every process. `dac_issuer` is a
        test hook: a DAC issued by another PAI (one that does not chain to the PKI's PAI: SDK error 301).
        """
        name = profile if isinstance(profile, str) else profile.name
        d = _Derive(seed, f"device|{name}") if seed is not None else None
        rng = d.rng("values") if d else random.SystemRandom()
        if passcode is None:
            passcode = spake2p.random_passcode(rng)
        spake2p.validate_passcode(passcode)
        if discriminator is None:
            discriminator = rng.randrange(0x1000)
        if not isinstance(discriminator, int) or not 0 <= discriminator <= 0xFFF:
            raise InputError.field("discriminator", discriminator, "0..4095 (12 bits)")
        spake2p.validate_iterations(iterations)
        salt = spake2p.random_salt(32, rng)
        unique_id = bytes(rng.getrandbits(8) for _ in range(16)).hex()
        if serial_number is None:
            serial_number = f"HIL-{rng.getrandbits(32):08X}"
        issuer = dac_issuer or pki.pai
        dac = certs.generate_dac(
            issuer,
            f"{pki.product_name} DAC {serial_number}"[:64],
            pki.vid,
            pki.pid,
            valid_from=SEEDED_VALID_FROM if d else None,
            key=d.key("dac") if d else None,
            serial=d.serial("dac") if d else None,
        )
        if d:
            dac = _deterministic(dac, issuer.key)  # type: ignore[arg-type]
        verifier = spake2p.compute_verifier(passcode, salt, iterations)
        return cls(dac, passcode, discriminator, salt, iterations, verifier, serial_number, unique_id)


# ---------------------------------------------------------------------------------------- test hooks


@dataclass(frozen=True)
class TestHooks:
    """Deliberate defects for negative tests. Production flows never set them; each names its failure.

    - `basic_info_product_id`: the factory data (so the firmware's BasicInformation) reports this PID
      while the DAC and CD say the PKI's: the commissioner fails attestation with 605.
    - `foreign_pai`: the DAC is issued by a different PAI under the same PAA, while factory data carries
      the PKI's PAI: the DAC does not chain to the PAI (SDK: 301 DacSignatureInvalid).
    - `corrupt_factory_data`: applied to the encoded image before flashing (e.g. flip a payload byte):
      the firmware's SHA-256 check fails and it reports "not provisioned" with its reason.
    The offline checks that would refuse these images (dac-vid-pid, cd-vid-pid, dac-chain) are allowed
    only for the hook that needs it; every other check still runs.
    """

    __test__ = False  # not a pytest test class, despite the name

    basic_info_product_id: int | None = None
    foreign_pai: certs.Credential | None = None
    corrupt_factory_data: Callable[[bytes], bytes] | None = field(default=None, compare=False)

    @property
    def allow(self) -> frozenset[str]:
        allowed: set[str] = set()
        if self.basic_info_product_id is not None:
            allowed |= {"dac-vid-pid", "cd-vid-pid", "pai-vid-pid"}
        if self.foreign_pai is not None:
            allowed.add("dac-chain")
        return frozenset(allowed)

    @property
    def active(self) -> bool:
        return any(
            v is not None for v in (self.basic_info_product_id, self.foreign_pai, self.corrupt_factory_data)
        )

    def describe(self) -> str:
        parts = []
        if self.basic_info_product_id is not None:
            parts.append(f"basic_info_product_id=0x{self.basic_info_product_id:04X}")
        if self.foreign_pai is not None:
            parts.append(f"foreign_pai={certs.skid(self.foreign_pai.cert).hex()[:8]}")
        if self.corrupt_factory_data is not None:
            parts.append(f"corrupt_factory_data={getattr(self.corrupt_factory_data, '__name__', 'fn')}")
        return ",".join(parts) or "none"


def with_changes(creds: DeviceCredentials, **changes: object) -> DeviceCredentials:
    return replace(creds, **changes)  # type: ignore[arg-type]
