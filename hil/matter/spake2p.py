"""SPAKE2+ verifier (W0 ‖ L) and the parameter rules the Matter SDK enforces.

Byte-compatible with the SDK's `Spake2pVerifier::Generate/Serialize` and `scripts/tools/spake2p/spake2p.py`
(specs/matter-credentials.md §3). Bulk generators call `compute_verifier` once per device, so it uses
OpenSSL for both halves: `cryptography`'s PBKDF2HMAC (the dominant cost, ≈97%) and its scalar
multiplication for L = w1·G (≈25 µs, an order of magnitude faster than pure-Python EC). PBKDF2 comes from
`cryptography`, not `hashlib`, because its bundled OpenSSL (4.0 with cryptography 49) runs PBKDF2-SHA256
1.6-1.9x faster than the OpenSSL 3.0 CPython links here (measured: 3.2 vs 5.4 ms at 10,000 iterations);
the bytes are identical. Unlike hashlib it holds the GIL, so parallel callers should use processes.
"""

from __future__ import annotations

import random as _random
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hil.errors import InputError

PASSCODE_MIN = 1
PASSCODE_MAX = 99999998  # kSetupPINCodeMaximumValue; a passcode fits in 27 bits
#: Passcodes the SDK refuses (`PayloadContents::IsValidSetupPIN`): trivially guessable ones.
INVALID_PASSCODES: frozenset[int] = frozenset(
    {
        0,
        11111111,
        22222222,
        33333333,
        44444444,
        55555555,
        66666666,
        77777777,
        88888888,
        99999999,
        12345678,
        87654321,
    }
)
#: How messages and --help name INVALID_PASSCODES ("11111111..99999999" read as a range that would exclude
#: most passcodes, 20202021 included).
INVALID_PASSCODES_TEXT = "00000000, 11111111, 22222222, ..., 99999999, 12345678, 87654321"
SALT_MIN_LEN = 16  # kSpake2p_Min_PBKDF_Salt_Length
SALT_MAX_LEN = 32  # kSpake2p_Max_PBKDF_Salt_Length
ITERATIONS_MIN = 1000  # kSpake2p_Min_PBKDF_Iterations
ITERATIONS_MAX = 100000  # kSpake2p_Max_PBKDF_Iterations

VERIFIER_LEN = 97  # kSpake2p_VerifierSerialized_Length = 32-byte w0 + 65-byte uncompressed L
_WS_LEN = 40  # kSpake2p_WS_Length = P-256 field element (32) + 8 bytes, so `mod n` is nearly unbiased
# P-256 group order n.
_P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_CURVE = ec.SECP256R1()


def is_valid_passcode(p: int) -> bool:
    """True when the SDK would accept `p` as a setup passcode (range and not in INVALID_PASSCODES)."""
    return isinstance(p, int) and PASSCODE_MIN <= p <= PASSCODE_MAX and p not in INVALID_PASSCODES


def validate_passcode(passcode: int) -> None:
    if not is_valid_passcode(passcode):
        raise InputError.field(
            "passcode",
            passcode,
            f"allowed {PASSCODE_MIN}..{PASSCODE_MAX} except {INVALID_PASSCODES_TEXT}",
        )


def validate_salt(salt: bytes) -> None:
    if not SALT_MIN_LEN <= len(salt) <= SALT_MAX_LEN:
        raise InputError(
            f"salt: {len(salt)} bytes is not allowed; allowed {SALT_MIN_LEN}..{SALT_MAX_LEN} bytes"
        )


def validate_iterations(iterations: int) -> None:
    if not ITERATIONS_MIN <= iterations <= ITERATIONS_MAX:
        raise InputError.field("iterations", iterations, f"allowed {ITERATIONS_MIN}..{ITERATIONS_MAX}")


def validate(passcode: int, salt: bytes, iterations: int) -> None:
    """Raise InputError naming the first field (passcode, salt, iterations) the SDK would reject."""
    validate_passcode(passcode)
    validate_salt(salt)
    validate_iterations(iterations)


def w0_w1(passcode: int, salt: bytes, iterations: int) -> tuple[int, int]:
    """The two SPAKE2+ scalars from PBKDF2 (no validation; see `compute_verifier`)."""
    ws = PBKDF2HMAC(hashes.SHA256(), 2 * _WS_LEN, salt, iterations).derive(passcode.to_bytes(4, "little"))
    return int.from_bytes(ws[:_WS_LEN], "big") % _P256_N, int.from_bytes(ws[_WS_LEN:], "big") % _P256_N


def verifier_from_scalars(w0: int, w1: int) -> bytes:
    """Serialise W0 ‖ L with L = w1·G; split out so the EC cost can be measured apart from PBKDF2."""
    if w1 == 0:  # probability ~2^-256; derive_private_key would reject it anyway
        raise InputError("spake2p: w1 is zero for these inputs; choose another salt")
    point = (
        ec.derive_private_key(w1, _CURVE)
        .public_key()
        .public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    )
    return w0.to_bytes(32, "big") + point


def compute_verifier(passcode: int, salt: bytes, iterations: int) -> bytes:
    """The 97-byte serialised verifier W0 ‖ L for `passcode`, validated against the SDK's rules."""
    validate(passcode, salt, iterations)
    return verifier_from_scalars(*w0_w1(passcode, salt, iterations))


def random_passcode(rng: _random.Random | None = None) -> int:
    """A uniformly random valid passcode (CSPRNG unless a seeded `rng` is given for reproducible runs)."""
    while True:
        p = rng.randint(PASSCODE_MIN, PASSCODE_MAX) if rng else PASSCODE_MIN + secrets.randbelow(PASSCODE_MAX)
        if p not in INVALID_PASSCODES:
            return p


def random_salt(length: int = SALT_MAX_LEN, rng: _random.Random | None = None) -> bytes:
    """A random salt of `length` bytes (16..32; CSPRNG unless a seeded `rng` is given)."""
    if not SALT_MIN_LEN <= length <= SALT_MAX_LEN:
        raise InputError.field("salt length", length, f"allowed {SALT_MIN_LEN}..{SALT_MAX_LEN} bytes")
    return rng.randbytes(length) if rng else secrets.token_bytes(length)
