"""FactoryDataProvider semantics of the emulated firmware (spec §3): Init, SearchForId, getters, rewrite."""

from __future__ import annotations

import dataclasses
import struct

import pytest
from firmware_support import factory_data, image

from hil.emulator.factory_data_provider import (
    CHIP_ERROR_BUFFER_TOO_SMALL,
    CHIP_ERROR_INVALID_ARGUMENT,
    CHIP_ERROR_NOT_FOUND,
    CHIP_ERROR_NOT_IMPLEMENTED,
    CHIP_FACTORY_DATA_HASH_ID,
    CHIP_FACTORY_DATA_NULL,
    CHIP_FACTORY_DATA_SHA_CHECK,
    DATE_FORMAT_ERROR,
    PROVIDERS,
    FactoryDataProvider,
    ProviderError,
)
from hil.factory_data import codec

KEY = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
OTHER_KEY = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
REGION = 0x2000


def region(data: bytes, size: int = REGION) -> bytes:
    """The bytes the firmware reads: the image, then erased flash up to the region size."""
    return data + b"\xff" * (size - len(data))


def provider(data: bytes, family: str = "k32w1", **kw) -> FactoryDataProvider:
    p = FactoryDataProvider(region(data), PROVIDERS[family], **kw)
    p.init()
    return p


def init_error(data: bytes, family: str = "k32w1", **kw) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        FactoryDataProvider(region(data), PROVIDERS[family], **kw).init()
    return info.value


def test_error_codes_are_the_sdks():
    # CHIP_FACTORY_DATA_ERROR(e) = ChipError(kLastRange (5), (5 << 2) | e)
    assert CHIP_FACTORY_DATA_SHA_CHECK.code == 0x05000015
    assert CHIP_FACTORY_DATA_HASH_ID.code == 0x05000017
    assert (CHIP_ERROR_INVALID_ARGUMENT.code, CHIP_ERROR_NOT_FOUND.code) == (0x2F, 0xD8)
    assert str(CHIP_FACTORY_DATA_SHA_CHECK) == "CHIP_FACTORY_DATA_SHA_CHECK (0x05000015)"


def test_getters_return_what_was_generated_and_never_need_the_passcode():
    fd = factory_data(product_finish=2, product_primary_color=20, part_number="PN-1")
    p = provider(image(fd))
    assert p.setup_discriminator() == 1000 and p.spake2p_iteration_count() == 1000
    assert p.spake2p_salt() == fd.salt and p.spake2p_verifier() == fd.verifier
    assert (
        p.device_attestation_cert() == fd.dac_cert
        and p.product_attestation_intermediate_cert() == fd.pai_cert
    )
    assert p.certification_declaration() == fd.cert_declaration
    assert (p.vendor_id(), p.product_id(), p.hardware_version()) == (0x1037, 0xA220, 1)
    assert (p.vendor_name(), p.product_name(), p.serial_number()) == (
        "NXP Semiconductors",
        "Lighting app",
        "12345678",
    )
    assert p.manufacturing_date() == (2023, 1, 1) and p.hardware_version_string() == "1.0"
    assert p.rotating_device_id_unique_id() == b"00112233445566778899aabbccddeeff"
    assert (p.product_finish(), p.product_primary_color(), p.part_number()) == (2, 20, "PN-1")
    assert p.dac_private_key_record(56) == fd.dac_key
    assert p.setup_passcode() == 14014


def test_discriminator_keeps_the_low_16_bits_like_the_legacy_provider():
    assert provider(image(factory_data(discriminator=0x12345))).setup_discriminator() == 0x2345


@pytest.mark.parametrize("date", ["2023/01/01", "23-01-01", "2023-01-1x", "2023-01-010", "2023-0a-01"])
def test_bad_date_is_invalid_argument_with_the_firmware_message(date):
    p = provider(image(factory_data(date=date)))
    with pytest.raises(ProviderError) as info:
        p.manufacturing_date()
    assert info.value.error == CHIP_ERROR_INVALID_ARGUMENT and info.value.detail == DATE_FORMAT_ERROR


def test_missing_tags():
    p = provider(image(factory_data(date=None, serial_num=None)))
    for getter in (p.manufacturing_date, p.serial_number, p.part_number):
        with pytest.raises(ProviderError) as info:
            getter()
        assert info.value.error == CHIP_ERROR_NOT_FOUND
    for getter in (p.product_finish, p.product_primary_color):  # the SDK's NOT_IMPLEMENTED for these
        with pytest.raises(ProviderError) as info:
            getter()
        assert info.value.error == CHIP_ERROR_NOT_IMPLEMENTED


def test_first_match_wins():
    payload = codec.encode_payload(factory_data())
    payload += struct.pack("<BH", 12, 5) + b"Other"  # a second vendor name after the first
    p = provider(codec.seal(payload))
    assert p.vendor_name() == "NXP Semiconductors"
    p = provider(codec.seal(struct.pack("<BH", 12, 5) + b"First" + payload))
    assert p.vendor_name() == "First"


def test_short_buffer_is_an_error_on_flash_mapped_providers_and_truncates_on_ram_buffer_ones():
    data = image(factory_data(vendor_name="V" * 40))  # longer than the 32-byte ConfigurationManager buffer
    with pytest.raises(ProviderError) as info:
        provider(data, "k32w1").vendor_name()
    assert info.value.error == CHIP_ERROR_BUFFER_TOO_SMALL
    assert provider(data, "rw61x").vendor_name() == "V" * 32


def test_init_errors_per_provider_family():
    good = image()
    bad_hash = bytearray(good)
    bad_hash[100] ^= 0xFF
    assert init_error(bytes(bad_hash)).error == CHIP_FACTORY_DATA_SHA_CHECK
    assert init_error(bytes(bad_hash), "rw61x").error == CHIP_ERROR_NOT_FOUND
    assert init_error(b"").error == CHIP_FACTORY_DATA_HASH_ID  # erased region
    assert "erased" in init_error(b"").detail
    truncated = init_error(good[: len(good) // 2])
    assert (
        truncated.error == CHIP_FACTORY_DATA_SHA_CHECK
        and "truncated or interrupted write" in truncated.detail
    )


def test_decryption_mandatory_optional_and_wrong_key():
    plain, encrypted = image(), image(aes_key=KEY)
    assert provider(encrypted, "rt1060", aes_key=KEY).vendor_id() == 0x1037
    err = init_error(encrypted, "rt1060", aes_key=OTHER_KEY)
    assert err.error == CHIP_ERROR_NOT_FOUND and "wrong key" in err.detail
    err = init_error(encrypted, "rt1060")
    assert err.error == CHIP_ERROR_INVALID_ARGUMENT and "no AES key" in err.detail
    assert "not a multiple of 16" in init_error(plain, "rt1170", aes_key=KEY).detail  # plain data
    # RW61x: plain hash first, then the key
    assert provider(plain, "rw61x", aes_key=KEY).vendor_id() == 0x1037
    assert provider(encrypted, "rw61x", aes_key=KEY).vendor_id() == 0x1037
    assert "wrong key" in init_error(encrypted, "rw61x", aes_key=OTHER_KEY).detail
    # K32W1 never decrypts: an encrypted image is a hash failure there
    assert init_error(encrypted, "k32w1", aes_key=KEY).error == CHIP_FACTORY_DATA_SHA_CHECK


def test_rt1060_requires_tags_1_to_7():
    err = init_error(image(factory_data(pai_cert=None), aes_key=KEY), "rt1060", aes_key=KEY)
    assert err.error == CHIP_ERROR_NOT_FOUND and "required tag 6" in err.detail


def test_hw_params_section():
    wrapped = image(hw_params=True)
    assert provider(wrapped, hw_params=True).vendor_id() == 0x1037
    assert init_error(image(), hw_params=True).error == CHIP_FACTORY_DATA_NULL
    bad_crc = bytearray(wrapped)
    bad_crc[len(wrapped) - 1] ^= 1
    assert "CRC" in init_error(bytes(bad_crc), hw_params=True).detail


@pytest.mark.parametrize(
    ("family", "kw", "hw_params"),
    [("k32w1", {}, False), ("k32w1", {}, True), ("rw61x", {"aes_key": KEY}, False)],
)
def test_replaced_keeps_every_other_record_byte_identical(family, kw, hw_params):
    fd = factory_data()
    data = image(fd, aes_key=kw.get("aes_key"), hw_params=hw_params)
    p = provider(data, family, hw_params=hw_params, **kw)
    new = p.replaced(4, b"B" * 56)
    q = provider(new, family, hw_params=hw_params, **kw)
    assert q.image.find(4) == b"B" * 56
    before = {(r.tag, r.value) for r in p.image.records if r.tag != 4}
    after = {(r.tag, r.value) for r in q.image.records if r.tag != 4}
    assert before == after and [r.tag for r in q.image.records] == [r.tag for r in p.image.records]
    assert q.image.parsed.layout == p.image.parsed.layout
    expected = codec.encode(dataclasses.replace(fd, dac_key=b"B" * 56), kw.get("aes_key"), hw_params)
    assert new == expected  # exactly what generate.py would write with that blob
