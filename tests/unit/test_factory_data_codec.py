"""hil.factory_data codec: every tag, the three layouts, and the firmware-style reader.

Expected bytes come from specs/nxp-factory-data.md (the §1.8 worked example, the §1.1/1.5/1.6 layouts) and
from an independent re-statement of the §8 checklist in this file (`_spec_image`), never from the code
under test. AES is cross-checked with PyCryptodome, the library NXP's generate.py uses.
"""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from Crypto.Cipher import AES
from hypothesis import given, settings
from hypothesis import strategies as st
from test_factory_data_support import spec_image

from hil.errors import InputError
from hil.factory_data import (
    TAGS,
    FactoryData,
    FactoryDataError,
    FactoryDataImage,
    Kind,
    decode,
    encode,
    encode_payload,
    find,
    parse,
    replace_record,
)
from hil.factory_data.codec import crc16_xmodem

WORKED_PAYLOAD = bytes.fromhex("070400e8030000 0804002542340 1 0902003710".replace(" ", ""))
WORKED_FILE = bytes.fromhex("5eba47ce 13000000 40b3c2e3".replace(" ", "")) + WORKED_PAYLOAD
WORKED_HW = b"APP_FACT_DATA:  " + bytes.fromhex("1f000000") + WORKED_FILE + bytes.fromhex("d855")
WORKED = FactoryData(discriminator=1000, passcode=20202021, vid=0x1037)
KEY128 = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
KEY256 = KEY128 + bytes(range(16))

#: One value per tag, and the bytes spec §1.3 says are stored for it.
SAMPLES: dict[str, tuple[object, bytes]] = {
    "verifier": (bytes(range(97)), base64.b64encode(bytes(range(97)))),
    "salt": (b"SPAKE2P Key Salt", b"U1BBS0UyUCBLZXkgU2FsdA=="),
    "iterations": (10000, (10000).to_bytes(4, "little")),
    "dac_key": (bytes(range(1, 33)), bytes(range(1, 33))),
    "dac_cert": (b"\x30\x82\x01\x00dac", b"\x30\x82\x01\x00dac"),
    "pai_cert": (b"\x30\x82\x01\x00pai", b"\x30\x82\x01\x00pai"),
    "discriminator": (3840, bytes.fromhex("000f0000")),
    "passcode": (20202021, bytes.fromhex("25423401")),
    "vid": (0x1037, bytes.fromhex("3710")),
    "pid": (0xA220, bytes.fromhex("20a2")),
    "cert_declaration": (b"\x30\x81\xe8cd", b"\x30\x81\xe8cd"),
    "vendor_name": ("NXP Semiconductors", b"NXP Semiconductors"),
    "product_name": ("Lampe à café", "Lampe à café".encode()),
    "serial_num": ("12345678", b"12345678"),
    "date": ("2023-01-01", b"2023-01-01"),
    "hw_version": (1, bytes.fromhex("0100")),
    "hw_version_str": ("1.0", b"1.0"),
    "unique_id": ("00112233445566778899aabbccddeeff", b"00112233445566778899aabbccddeeff"),
    "part_number": ("PN-1", b"PN-1"),
    "product_url": ("https://example.com/p", b"https://example.com/p"),
    "product_label": ("Lamp", b"Lamp"),
    "product_finish": (2, b"\x02"),  # Satin
    "product_primary_color": (20, b"\x14"),  # Gold
    "el2go_blob": (b"@\x0bedgelock2go", b"@\x0bedgelock2go"),
    "el2go_dac_key_id": (0x7FFF0001, bytes.fromhex("0100ff7f")),
    "el2go_dac_cert_id": (0x7FFF0002, bytes.fromhex("0200ff7f")),
}


def _full() -> FactoryData:
    return FactoryData(**{name: value for name, (value, _) in SAMPLES.items()})


def test_table_covers_every_tag_once_in_order():
    assert [s.tag for s in TAGS] == list(range(1, 27))
    assert set(SAMPLES) == {s.name for s in TAGS}


@pytest.mark.parametrize("spec", TAGS, ids=lambda s: f"{s.tag}-{s.name}")
def test_each_tag_stores_the_spec_bytes_and_reads_back(spec):
    value, stored = SAMPLES[spec.name]
    blob = encode(FactoryData(**{spec.name: value}))
    assert blob == spec_image([(spec.tag, stored)])
    assert find(blob, spec.tag) == stored
    assert getattr(decode(blob), spec.name) == value


def test_worked_example_plain_and_hw_params():
    assert encode(WORKED) == WORKED_FILE
    assert encode(WORKED, hw_params=True) == WORKED_HW
    assert decode(WORKED_FILE) == WORKED
    assert decode(WORKED_HW) == WORKED  # wrapper detected
    assert parse(WORKED_HW).layout == "hw_params"


def test_records_sorted_by_tag_and_absent_fields_skipped():
    payload = encode_payload(FactoryData(vid=1, discriminator=2, vendor_name="x"))
    assert [payload[0], payload[7], payload[12]] == [7, 9, 12]
    assert encode_payload(FactoryData()) == b""


@pytest.mark.parametrize(("key", "bits"), [(KEY128, 128), (KEY256, 256)])
def test_encrypted_layout_matches_pycryptodome(key, bits):
    fd = _full()
    blob = encode(fd, aes_key=key)
    records = [(s.tag, SAMPLES[s.name][1]) for s in TAGS]
    assert blob == spec_image(records, key=key)
    size = struct.unpack_from("<I", blob, 4)[0]
    assert size % 16 == 0 and len(blob) == 12 + size
    plain = AES.new(key, AES.MODE_ECB).decrypt(blob[12:])
    assert hashlib.sha256(plain).digest()[:4] == blob[8:12]  # hash over the padded plaintext
    assert plain.startswith(encode_payload(fd))
    p = parse(blob, aes_key=key)
    assert p.ok and p.layout == "encrypted" and p.aes == f"AES-{bits}"
    assert p.data == fd


def test_aligned_payload_still_gets_a_full_block_of_padding():
    fd = FactoryData(vendor_name="x" * 13)  # 3 + 13 = 16 bytes of payload
    assert len(encode_payload(fd)) == 16
    blob = encode(fd, aes_key=KEY128)
    assert struct.unpack_from("<I", blob, 4)[0] == 32
    assert AES.new(KEY128, AES.MODE_ECB).decrypt(blob[12:])[16:] == bytes(16)


def test_hw_params_layout_and_crc():
    assert crc16_xmodem(b"123456789") == 0x31C3  # CRC-16/XMODEM check value
    fd = _full()
    blob = encode(fd, hw_params=True)
    records = [(s.tag, SAMPLES[s.name][1]) for s in TAGS]
    assert blob == spec_image(records, hw=True)
    assert blob[20:-2] == encode(fd)


def test_hw_params_with_a_key_is_refused():
    with pytest.raises(InputError, match="hw_params"):
        encode(WORKED, aes_key=KEY128, hw_params=True)


@pytest.mark.parametrize(
    ("fd", "match"),
    [
        (FactoryData(vid=0x10000), r"--vid: 65536 .*0\.\.0xffff"),
        (FactoryData(discriminator=-1), "--discriminator"),
        (FactoryData(passcode="1234"), "expected int"),
        (FactoryData(vendor_name=b"bytes"), "expected str"),
        (FactoryData(dac_cert=5), "expected bytes"),  # bytes(5) would be five zero bytes
        (FactoryData(salt="text"), "expected bytes"),
        (FactoryData(product_url="x" * 70000), "at most 65535"),
        (FactoryData(product_finish=256), "--product_finish"),
    ],
)
def test_encode_refuses_what_cannot_be_stored(fd, match):
    with pytest.raises(InputError, match=match):
        encode(fd)


def test_bad_aes_key_length():
    with pytest.raises(InputError, match="AES key: 24 bytes"):
        encode(WORKED, aes_key=bytes(24))


# ------------------------------------------------------------------------------------ reading like firmware


def _codes(blob: bytes, **kw) -> list[str]:
    return [p.code for p in parse(blob, **kw).problems]


def test_bad_magic_explained():
    p = parse(b"\x00" * 31)
    assert [x.code for x in p.problems] == ["bad_magic"]
    assert "5e ba 47 ce" in p.problems[0].message
    assert "erased" in parse(b"\xff" * 40).problems[0].message
    assert "--hw_params" in parse(WORKED_HW, hw_params=False).problems[0].message


def test_too_short():
    assert _codes(WORKED_FILE[:11]) == ["too_short"]


def test_size_beyond_file():
    p = parse(WORKED_FILE[:-3])
    assert "size_beyond_file" in [x.code for x in p.problems]
    assert "only 16 payload bytes" in p.problems[0].message
    with pytest.raises(FactoryDataError) as exc:
        FactoryDataImage(WORKED_FILE[:-3])
    assert exc.value.code == "size_beyond_file"


def test_hash_mismatch():
    bad = bytearray(WORKED_FILE)
    bad[-1] ^= 1
    p = parse(bytes(bad))
    assert [x.code for x in p.problems] == ["hash_mismatch"]
    assert "40 b3 c2 e3" in p.problems[0].message
    with pytest.raises(FactoryDataError, match="hash mismatch"):
        find(bytes(bad), 9)


def test_truncated_record():
    payload = WORKED_PAYLOAD + bytes([14, 0x20, 0x00]) + b"short"  # declares 32 bytes, 5 remain
    blob = _raw_image(payload)
    p = parse(blob)
    assert [x.code for x in p.problems] == ["truncated_record"]
    assert "declares 32 bytes but only 5 remain" in p.problems[0].message
    assert p.data == WORKED  # the records before it still read
    assert find(blob, 14) is None  # the firmware view tolerates it: Init passes, the getter misses


def test_truncated_record_header():
    p = parse(_raw_image(WORKED_PAYLOAD + b"\x0e\x01"))
    assert [x.code for x in p.problems] == ["truncated_record"]


def test_wrong_key_and_not_encrypted():
    blob = encode(WORKED, aes_key=KEY128)
    assert _codes(blob, aes_key=KEY256) == ["wrong_key"]
    assert "wrong key" in parse(blob, aes_key=bytes(16)).problems[0].message
    assert _codes(WORKED_FILE, aes_key=KEY128)[-1] == "not_encrypted"
    no_key = parse(blob)
    assert no_key.problems[0].code == "hash_mismatch" and "--aes128_key" in no_key.problems[0].message
    with pytest.raises(FactoryDataError) as exc:
        FactoryDataImage(blob, aes_key=KEY256)
    assert exc.value.code == "wrong_key"


def test_first_match_wins_and_tag_zero_stops():
    payload = (
        bytes([9, 2, 0])
        + (0x1037).to_bytes(2, "little")
        + bytes([9, 2, 0])
        + (0xFFF1).to_bytes(2, "little")
        + b"\x00"
        + bytes([10, 2, 0, 0x20, 0xA2])
    )
    blob = _raw_image(payload)
    p = parse(blob)
    assert p.data.vid == 0x1037 and p.data.pid is None
    assert find(blob, 9) == (0x1037).to_bytes(2, "little")
    assert find(blob, 10) is None  # after tag 0: never read
    assert {x.code for x in p.problems} == {"duplicate_tag", "tag_zero"}
    assert p.ok  # warnings only


def test_unknown_and_firmware_tags():
    blob = _raw_image(WORKED_PAYLOAD + bytes([0x63, 1, 0, 7]) + bytes([0xFE, 2, 0, 1, 2]))
    p = parse(blob)
    assert [x.code for x in p.problems] == ["unknown_tag"]  # 0xFE is the firmware's AES key blob
    assert find(blob, 0xFE) == b"\x01\x02"


def test_bad_values_named():
    payload = bytes([7, 2, 0, 1, 2]) + bytes([12, 2, 0, 0xFF, 0xFE]) + bytes([2, 3, 0]) + b"!!!"
    p = parse(_raw_image(payload))
    msgs = [x.message for x in p.problems]
    assert p.problems and all(x.code == "bad_value" for x in p.problems)
    assert any("--discriminator (tag 7" in m and "expected 4" in m for m in msgs)
    assert any("--vendor_name" in m and "UTF-8" in m for m in msgs)
    assert any("--salt" in m and "base64" in m for m in msgs)


def test_trailing_bytes_after_payload():
    assert _codes(WORKED_FILE + b"\xff" * 100) == ["trailing_bytes"]
    assert parse(WORKED_FILE + b"\xff" * 100).ok
    assert "erase the region" in parse(WORKED_FILE + b"stale").problems[0].message


def test_hw_params_faults():
    bad_crc = bytearray(WORKED_HW)
    bad_crc[-1] ^= 0xFF
    assert _codes(bytes(bad_crc)) == ["hw_params_crc"]
    assert _codes(WORKED_HW[:-5])[0] == "hw_params_length"
    assert _codes(WORKED_FILE, hw_params=True) == ["hw_params_missing"]
    big = encode(FactoryData(product_url="u" * 256, dac_cert=bytes(1800)), hw_params=True)
    assert "hw_params_too_big" in _codes(big)


def test_replace_record_like_dac_conversion():
    fd = FactoryData(dac_key=bytes(range(32)), dac_cert=b"cert", vid=0x1037)
    for hw in (False, True):
        image = encode(fd, hw_params=hw)
        converted = replace_record(image, 4, bytes(56))
        assert len(converted) == len(image) + 24
        assert decode(converted).dac_key == bytes(56)
        assert decode(converted).vid == 0x1037
        assert converted == encode(FactoryData(dac_key=bytes(56), dac_cert=b"cert", vid=0x1037), hw_params=hw)
    with pytest.raises(InputError, match="tag 11: not present"):
        replace_record(encode(fd), 11, b"x")


def _raw_image(payload: bytes) -> bytes:
    return struct.pack("<II", 0xCE47BA5E, len(payload)) + hashlib.sha256(payload).digest()[:4] + payload


# ------------------------------------------------------------------------------------ properties

_values = {
    Kind.B64: st.binary(max_size=120),
    Kind.BYTES: st.binary(max_size=600),
    Kind.STR: st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
    Kind.U32: st.integers(0, 2**32 - 1),
    Kind.U16: st.integers(0, 2**16 - 1),
    Kind.ENUM8: st.integers(0, 255),
}
factory_data = st.builds(FactoryData, **{s.name: st.none() | _values[s.kind] for s in TAGS})


@settings(max_examples=150, deadline=None)
@given(fd=factory_data, mode=st.sampled_from(["plain", "aes128", "aes256", "hw"]))
def test_round_trip_and_spec_bytes_for_any_values(fd, mode):
    key = {"aes128": KEY128, "aes256": KEY256}.get(mode)
    blob = encode(fd, aes_key=key, hw_params=mode == "hw")
    records = []
    for spec in TAGS:
        value = getattr(fd, spec.name)
        if value is None:
            continue
        if spec.kind is Kind.B64:
            raw = base64.b64encode(value)
        elif spec.kind is Kind.STR:
            raw = value.encode()
        elif spec.kind is Kind.BYTES:
            raw = value
        else:
            raw = value.to_bytes({Kind.U32: 4, Kind.U16: 2, Kind.ENUM8: 1}[spec.kind], "little")
        records.append((spec.tag, raw))
    assert blob == spec_image(records, key=key, hw=mode == "hw")
    assert decode(blob, aes_key=key) == fd
