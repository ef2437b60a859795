"""hil.bulk.plan: per-device parameters are valid, unique in a batch, and a pure function of key + index."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.bulk import plan
from hil.bulk.plan import MAX_DEVICES, FeistelPermutation, Planner, key_from_seed
from hil.errors import InputError
from hil.matter import spake2p

KEY = key_from_seed("test")


def test_feistel_is_a_permutation_and_cycle_walk_stays_in_the_subset() -> None:
    perm = FeistelPermutation(KEY, 10, b"t")
    images = [perm.permute(x) for x in range(1 << 10)]
    assert sorted(images) == list(range(1 << 10))
    assert images != list(range(1 << 10))

    def member(x: object) -> bool:
        return isinstance(x, int) and x % 3 == 0 and x < 700

    subset = [x for x in range(1 << 10) if member(x)]
    walked = [perm.walk(x, member) for x in subset]
    assert sorted(walked) == subset  # a bijection of the subset onto itself


def test_valid_passcodes_are_ranked_around_every_invalid_one() -> None:
    # Every invalid passcode inside the range is skipped, and ranks stay strictly increasing across it.
    invalid = sorted(p for p in spake2p.INVALID_PASSCODES if 1 <= p <= spake2p.PASSCODE_MAX)
    for bad in invalid:
        rank = bad - 1 - sum(1 for b in invalid if b < bad)  # rank of the valid passcode just below `bad`
        values = [plan._nth_valid_passcode(r) for r in range(rank - 2, rank + 3)]
        assert values == sorted(set(values))
        assert bad not in values and all(spake2p.is_valid_passcode(v) for v in values)
    assert plan._nth_valid_passcode(0) == 1
    assert plan._nth_valid_passcode(MAX_DEVICES - 1) == spake2p.PASSCODE_MAX
    assert MAX_DEVICES == spake2p.PASSCODE_MAX - 10  # 10 invalid values lie inside 1..99999998


def test_passcodes_and_dac_serials_are_unique_and_valid_in_a_batch() -> None:
    planner = Planner(KEY, serial_prefix="SN-")
    devices = [planner.device(i) for i in range(20000)]
    passcodes = [d.passcode for d in devices]
    assert len(set(passcodes)) == len(passcodes)
    assert all(spake2p.is_valid_passcode(p) for p in passcodes)
    serials = [d.dac_serial for d in devices]
    assert len(set(serials)) == len(serials)
    assert all(0 < s < 2**63 for s in serials)
    assert len({d.salt for d in devices}) == len(devices)
    assert all(len(d.salt) == 32 and 0 <= d.discriminator <= 0xFFF for d in devices)
    assert len({d.discriminator for d in devices}) > 4000  # spread over the 12-bit space
    assert devices[7].serial_num == "SN-000007"
    assert all(len(d.unique_id) == 32 and int(d.unique_id, 16) >= 0 for d in devices[:10])


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=MAX_DEVICES - 1))
def test_any_index_gets_a_valid_passcode(index: int) -> None:
    assert spake2p.is_valid_passcode(Planner(KEY, serial_prefix="").device(index).passcode)


def test_plan_is_a_function_of_key_and_index() -> None:
    a = Planner(KEY, serial_prefix="X").device(42)
    assert a == Planner(KEY, serial_prefix="X").device(42)
    b = Planner(key_from_seed("other"), serial_prefix="X").device(42)
    assert (a.passcode, a.salt, a.dac_serial) != (b.passcode, b.salt, b.dac_serial)


def test_index_outside_the_passcode_space_is_refused() -> None:
    with pytest.raises(InputError, match="device index"):
        Planner(KEY, serial_prefix="").device(MAX_DEVICES)
