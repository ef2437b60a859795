"""SPAKE2+ verifier against the SDK's and NXP's published vectors, and the SDK's parameter rules."""

from __future__ import annotations

import base64
import random

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hil.errors import InputError
from hil.matter import spake2p

# scripts/tools/spake2p/README.md (the SDK-wide test verifier).
SDK_VERIFIER = (
    "uWFwqugDNGiEck/po7KHwwMwwqZgN10XuyBajPGuyzUEV/iree4lOrao5GuwnlQ65CJzbeUB49s31EH+NEkg0JVI5MGCQGMMT/SRPFN"
    "RODm3wH/MBiehuFc6FJ/NH6Rmzw=="
)
# The NXP manufacturing guide's own example (generate.py -p 14014 -i 10000 -s ... --spake2p_verifier ...).
NXP_SALT = "UXKLzwHdN3DZZLBaL2iVGhQi/OoQwIwJRQV4rpEalbA="
NXP_VERIFIER = (
    "ivD5n3L2t5+zeFt6SjW7BhHRF30gFXWZVvvXgDxgCNcE+BGuTA5AUaVm3qDZBcMMKn1a6CakI4SxyPUnJr0CpJ4pwpr0DvpTlkQKqaR"
    "vkOQfAQ1XDyf55DuavM5KVGdDrg=="
)


def test_sdk_vector():
    v = spake2p.compute_verifier(20202021, b"SPAKE2P Key Salt", 1000)
    assert len(v) == spake2p.VERIFIER_LEN == 97
    assert base64.b64encode(v).decode() == SDK_VERIFIER


def test_nxp_guide_vector():
    v = spake2p.compute_verifier(14014, base64.b64decode(NXP_SALT), 10000)
    assert base64.b64encode(v).decode() == NXP_VERIFIER


def test_l_is_w1_times_generator_on_curve():
    """L must be a valid uncompressed P-256 point equal to w1·G (checked through an independent route)."""
    w0, w1 = spake2p.w0_w1(20202021, b"SPAKE2P Key Salt", 1000)
    v = spake2p.compute_verifier(20202021, b"SPAKE2P Key Salt", 1000)
    assert int.from_bytes(v[:32], "big") == w0
    point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), v[32:])
    numbers = ec.derive_private_key(w1, ec.SECP256R1()).private_numbers().public_numbers
    assert (point.public_numbers().x, point.public_numbers().y) == (numbers.x, numbers.y)
    assert point.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint) == v[32:]


@pytest.mark.parametrize("passcode", [*sorted(spake2p.INVALID_PASSCODES), 99999999, 100000000, -1])
def test_invalid_passcodes_rejected(passcode):
    assert not spake2p.is_valid_passcode(passcode)
    with pytest.raises(InputError, match="passcode"):
        spake2p.compute_verifier(passcode, b"S" * 16, 1000)


@pytest.mark.parametrize("passcode", [1, 14014, 20202021, 99999998, 12345679])
def test_valid_passcodes(passcode):
    assert spake2p.is_valid_passcode(passcode)


@pytest.mark.parametrize(("salt_len", "ok"), [(8, False), (15, False), (16, True), (32, True), (33, False)])
def test_salt_length_rule(salt_len, ok):
    if ok:
        spake2p.validate(20202021, b"x" * salt_len, 1000)
    else:
        with pytest.raises(InputError, match=r"salt: \d+ bytes"):
            spake2p.validate(20202021, b"x" * salt_len, 1000)


@pytest.mark.parametrize(("iterations", "ok"), [(999, False), (1000, True), (100000, True), (100001, False)])
def test_iteration_rule(iterations, ok):
    if ok:
        spake2p.validate(20202021, b"x" * 16, iterations)
    else:
        with pytest.raises(InputError, match="iterations"):
            spake2p.validate(20202021, b"x" * 16, iterations)


def test_validation_names_the_first_bad_field():
    with pytest.raises(InputError, match=r"^passcode"):
        spake2p.validate(12345678, b"short", 5)


def test_random_passcode_and_salt():
    rng = random.Random(7)
    codes = [spake2p.random_passcode(rng) for _ in range(500)]
    assert all(spake2p.is_valid_passcode(c) for c in codes)
    assert len(set(codes)) > 490
    rng2 = random.Random(7)
    assert codes == [spake2p.random_passcode(rng2) for _ in range(500)]  # seeded runs are reproducible
    assert spake2p.is_valid_passcode(spake2p.random_passcode())
    assert len(spake2p.random_salt()) == 32
    assert len(spake2p.random_salt(16, random.Random(1))) == 16
    assert spake2p.random_salt(16, random.Random(1)) == spake2p.random_salt(16, random.Random(1))
    with pytest.raises(InputError):
        spake2p.random_salt(8)
