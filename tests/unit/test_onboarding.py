"""QR payload and manual pairing code vs the SDK's published vectors (specs/matter-credentials.md §4.3)."""

from __future__ import annotations

import pytest

from hil.errors import InputError
from hil.matter import onboarding

# passcode, discriminator, vid, pid, flow, rendezvous, QR, manual
VECTORS = [
    (20202021, 3840, 0xFFF1, 0x8001, 0, 4, "MT:-24J0AFN00KA0648G00", "34970112332"),
    (20202021, 3840, 0xFFF1, 0x8000, 0, 2, "MT:Y.K9042C00KA0648G00", "34970112332"),
    (20202021, 3840, 0, 0, 0, 4, "MT:00000CQM00KA0648G00", "34970112332"),
    (49910688, 3431, 0x1317, 0x0002, 0, 2, "MT:-8VJ0OMV172PX813210", "32140830464"),
    (54757432, 80, 0x2345, 0x1023, 0, 4, "MT:0A.T0RTM00Y0OJ0.510", "00210433428"),
    (43338551, 3091, 0x1123, 0x0012, 2, 4, "MT:KSNK4SIC13-JPR4UY00", "702871264504387000187"),
    (12349876, 3781, 1, 1, 1, 4, "MT:A3L90ARR15G6N57Y900", "745492075300001000013"),
    (43338551, 3091, 0x1123, 0x0012, 2, 2, "MT:KSNK4M5113-JPR4UY00", "702871264504387000187"),
    (81235604, 174, 0x0045, 0x0010, 1, 7, "MT:EPX0482F26DAVY09R10", "403732495800069000166"),
    (23005908, 2310, 0xFFF3, 0x8098, 2, 4, "MT:MZWA6G6026O2XP0II00", "619156140465523329207"),
]


@pytest.mark.parametrize(("passcode", "disc", "vid", "pid", "flow", "rv", "qr", "manual"), VECTORS)
def test_sdk_vectors(passcode, disc, vid, pid, flow, rv, qr, manual):
    assert onboarding.qr_payload(vid, pid, passcode, disc, flow, rv) == qr
    assert onboarding.manual_code(passcode, disc, vid, pid, flow) == manual


@pytest.mark.parametrize(("passcode", "disc", "vid", "pid", "flow", "rv", "qr", "manual"), VECTORS)
def test_parsers_read_the_vectors_back(passcode, disc, vid, pid, flow, rv, qr, manual):
    p = onboarding.parse_qr_payload(qr)
    assert (p.passcode, p.discriminator, p.vid, p.pid, p.flow, p.rendezvous) == (
        passcode,
        disc,
        vid,
        pid,
        flow,
        rv,
    )
    m = onboarding.parse_manual_code(manual)
    assert m.passcode == passcode
    assert m.discriminator == disc & 0xF00 and m.short_discriminator
    assert (m.vid, m.pid) == ((vid, pid) if flow else (None, None))


def test_base38_chunking():
    assert onboarding.base38_encode(b"") == ""
    assert onboarding.base38_encode(b"\x00") == "00"
    assert onboarding.base38_encode(b"\x01\x00") == "1000"
    # 0xFFFFFF = 25 + 21*38 + 28*38**2 + 1*38**3 + 8*38**4, digits least significant first: P L S 1 8
    assert onboarding.base38_encode(b"\xff\xff\xff") == "PLS18"
    for data in (b"\x01", b"\x01\x02", b"\x01\x02\x03", bytes(range(11))):
        assert onboarding.base38_decode(onboarding.base38_encode(data)) == data


def test_manual_code_typo_detected():
    code = "34970112332"
    for i in range(len(code)):
        typo = code[:i] + str((int(code[i]) + 1) % 10) + code[i + 1 :]
        with pytest.raises(InputError, match="Verhoeff"):
            onboarding.parse_manual_code(typo)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"passcode": 12345678}, "passcode"),
        ({"passcode": 100000000}, "passcode"),
        ({"discriminator": 4096}, "discriminator"),
        ({"flow": 3}, "flow"),
        ({"rendezvous": 0x40}, "rendezvous"),
        ({"vid": 0x10000}, "vendor_id"),
        ({"vid": 0xFFF5}, "vendor_id"),
        ({"pid": 0}, "product_id"),
    ],
)
def test_qr_rejects_bad_fields(kwargs, field):
    args = {
        "vid": 0xFFF1,
        "pid": 0x8000,
        "passcode": 20202021,
        "discriminator": 3840,
        "flow": 0,
        "rendezvous": 2,
    }
    args.update(kwargs)
    with pytest.raises(InputError, match=f"^{field}"):
        onboarding.qr_payload(**args)


def test_long_manual_code_needs_vid_and_pid():
    with pytest.raises(InputError, match="vendor_id/product_id"):
        onboarding.manual_code(20202021, 3840, flow=1)
