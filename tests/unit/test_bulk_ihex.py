"""hil.bulk.ihex: our Intel HEX, read back by bincopy (an independent parser), is the image at its address."""

from __future__ import annotations

import bincopy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.bulk.ihex import to_ihex


def _read_back(text: str) -> tuple[int, bytes]:
    bf = bincopy.BinFile()
    bf.add_ihex(text)
    return bf.minimum_address, bf.as_binary()


@pytest.mark.parametrize("address", [0x0, 0x9D600, 0xFE080, 0x0BFFF000, 0x607DF000, 0xFFF8, 0x1FFF5])
def test_round_trip_at_board_addresses_and_across_64k_segments(address: int) -> None:
    data = bytes(range(256)) * 7  # 1792 bytes: several records, crosses a segment at 0xFFF8 / 0x1FFF5
    assert _read_back(to_ihex(data, address)) == (address, data)


def test_records_checksums_and_layout() -> None:
    text = to_ihex(bytes(range(20)), 0xFE080)
    lines = text.splitlines()
    assert lines[0] == ":02000004000FEB"  # Extended Linear Address 0x000F
    assert lines[1].startswith(":10E08000")  # 16 data bytes at 0xE080
    assert lines[2].startswith(":04E09000")
    assert lines[-1] == ":00000001FF"
    for line in lines:
        raw = bytes.fromhex(line[1:])
        assert sum(raw) & 0xFF == 0 and raw[0] == len(raw) - 5


def test_identical_to_bincopy_for_16_byte_records() -> None:
    data = bytes(range(256)) * 6
    bf = bincopy.BinFile()
    bf.add_binary(data, address=0xFE080)
    assert to_ihex(data, 0xFE080) == bf.as_ihex(number_of_data_bytes=16)


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=1, max_size=600), st.integers(min_value=0, max_value=0xFFFF_F000))
def test_any_image_round_trips(data: bytes, address: int) -> None:
    assert _read_back(to_ihex(data, address)) == (address, data)


def test_image_beyond_4_gib_is_refused() -> None:
    with pytest.raises(ValueError, match="32-bit"):
        to_ihex(b"\0" * 32, 0xFFFF_FFF0)
