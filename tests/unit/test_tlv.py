"""Matter TLV codec: the SDK's encodings (minimal widths, little-endian, containers) and round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil.matter import tlv


@pytest.mark.parametrize(
    ("value", "tag", "expected"),
    [
        (1, 0, "24 00 01"),
        (0xFFF1, 1, "25 01 f1 ff"),
        (0x1234, 3, "25 03 34 12"),
        (0x12345678, 3, "26 03 78 56 34 12"),
        (1 << 40, None, "07 00 00 00 00 00 01 00 00"),
        (-1, None, "00 ff"),
        (-129, None, "01 7f ff"),
        (tlv.Signed(5), None, "00 05"),
        (True, None, "09"),
        (False, 2, "28 02"),
        (None, None, "14"),
        ("ZIG", 4, "2c 04 03 5a 49 47"),
        (b"\x01\x02", None, "10 02 01 02"),
        (tlv.Float32(1.0), None, "0a 00 00 80 3f"),
        (1.0, None, "0b 00 00 00 00 00 00 f0 3f"),
        (tlv.Array([0x8000]), 2, "36 02 05 00 80 18"),
        (tlv.Structure([]), None, "15 18"),
        (tlv.List([(1, 2), (None, 3)]), None, "17 24 01 02 04 03 18"),
        (5, (0, 0, 0x1234), "44 34 12 05"),
        (5, (0xFFF1, 0xDEED, 1), "c4 f1 ff ed de 01 00 05"),
        (5, (None, None, 7), "84 07 00 05"),
    ],
)
def test_encodings_match_the_sdk(value, tag, expected):
    data = tlv.encode(value, tag)
    assert data == bytes.fromhex(expected)
    decoded, decoded_tag, end = tlv.decode_element(data)
    assert end == len(data)
    assert decoded == value
    assert decoded_tag == tag


def test_long_strings_use_wider_lengths():
    data = tlv.encode("x" * 300)
    assert data[:3] == bytes([0x0D, 0x2C, 0x01])
    assert tlv.decode(data) == "x" * 300


def test_structure_get_and_order():
    s = tlv.decode(bytes.fromhex("15 24 00 01 25 01 f1 ff 36 02 05 00 80 18 18"))
    assert isinstance(s, tlv.Structure)
    assert s.tags() == [0, 1, 2]
    assert s.get(1) == 0xFFF1
    assert s.get(2) == [0x8000] and isinstance(s.get(2), tlv.Array)
    assert s.get(9, "absent") == "absent"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ("25 01 f1", "truncated"),
        ("15 24 00 01", "truncated"),
        ("19", "unknown TLV element type"),
        ("0c 02 ff fe", "UTF-8"),
        ("18", "end-of-container"),
        ("24 00 01 00", "trailing"),
    ],
)
def test_malformed_input_is_a_tlv_error(data, why):
    with pytest.raises(tlv.TLVError, match=why):
        tlv.decode(bytes.fromhex(data))


def test_unencodable_values():
    with pytest.raises(tlv.TLVError):
        tlv.encode(1 << 64)
    with pytest.raises(tlv.TLVError):
        tlv.encode(object())
    with pytest.raises(tlv.TLVError):
        tlv.encode(1, 256)


_scalars = st.one_of(
    st.integers(min_value=0, max_value=2**64 - 1),
    st.integers(min_value=-(2**63), max_value=-1),
    st.booleans(),
    st.none(),
    st.text(max_size=300),
    st.binary(max_size=300),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5).map(tlv.Array),
        st.lists(st.tuples(st.integers(0, 255), inner), max_size=5).map(tlv.Structure),
    ),
    max_leaves=20,
)


@given(_values)
def test_round_trip(value):
    assert tlv.decode(tlv.encode(value)) == value
