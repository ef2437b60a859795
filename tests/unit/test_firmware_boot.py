"""The emulated firmware on board processes: it boots the app in flash, reads factory data from flash, logs
on the console pty; the harness judges it only through the programmer and the console (pyserial)."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography import x509
from emulated_boards import lab
from firmware_support import (
    PASSCODE,
    dac_scalar,
    factory_data,
    image,
    verifies,
    write_app,
    write_factory_data,
)

from hil.boot import reboot
from hil.emulator import firmware_link
from hil.emulator.builtin_credentials import builtin_credentials
from hil.errors import BoardError, FirmwareError
from hil.matter import certs

KEY = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
OTHER_KEY = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
BOARDS = {
    "k32w1-emu": "k32w1",
    "k32w1-hwp": "k32w1|factory_data_address = 0xFE080\nfactory_data_size = 0x800\n"
    "[board.k32w1-hwp.options]\nhw_params = true",
    "rt1060-emu": f'rt1060|aes_key = "{KEY.hex().upper()}"',
    "k32w0x1-emu": "k32w0x1",
}


@pytest.fixture(scope="module")
def the_lab(tmp_path_factory):
    with lab(tmp_path_factory.mktemp("fw"), BOARDS) as the_lab:
        yield the_lab


def provision(the_lab, name: str, data: bytes, **app) -> None:
    profile = the_lab.profile(name)
    write_factory_data(profile, data)
    write_app(profile, family=profile.family, **app)


def test_blank_board_stays_in_the_rom(the_lab):
    profile = the_lab.profile("k32w0x1-emu")
    report = reboot(profile)
    assert not report.booted and not report.provisioned
    assert report.reason == "no application at 0x0 (erased)"
    assert any(
        line.endswith("[E][ROM] Boot failed: no application at 0x0 (erased)") for line in report.lines
    ), report.lines


def test_boots_from_factory_data_and_serves_the_node_config(the_lab):
    fd = factory_data()
    provision(the_lab, "k32w1-emu", image(fd))
    profile = the_lab.profile("k32w1-emu")
    report = reboot(profile)
    assert report.booted and report.provisioned, report.lines
    assert (report.credentials, report.dac_key, report.converted) == ("factory-data", "plain", False)
    assert report.summary() == "k32w1-emu: provisioned (dac_key=plain, converted=no)"
    assert any("K32W1 FactoryDataProviderImpl: factory data at 0xF4000" in line for line in report.lines)

    config = firmware_link.node_config(profile)
    assert (config.discriminator, config.vendor_id, config.product_id) == (1000, 0x1037, 0xA220)
    assert (config.spake2p_salt, config.spake2p_iterations, config.spake2p_verifier) == (
        fd.salt,
        fd.iterations,
        fd.verifier,
    )
    assert (config.dac_cert, config.pai_cert, config.cd) == (fd.dac_cert, fd.pai_cert, fd.cert_declaration)
    assert (config.vendor_name, config.product_name, config.serial_number) == (
        "NXP Semiconductors",
        "Lighting app",
        "12345678",
    )
    assert (config.hardware_version, config.hardware_version_string) == (1, "1.0")
    # what crosses the control channel: no passcode, no key material
    wire = json.dumps(the_lab.running("k32w1-emu").request("node_config"))
    key = dac_scalar()
    assert str(PASSCODE) not in wire and "passcode" not in wire
    assert key.hex() not in wire and base64.b64encode(key).decode() not in wire
    # the DAC key signs inside the board process
    challenge = b"attestation elements || challenge"
    assert verifies(config.dac_cert, challenge, config.signer.sign(challenge))


@pytest.mark.parametrize("fault", ["corrupted hash", "truncated region", "bad date"])
def test_firmware_negatives_show_in_the_boot_log_and_the_board_is_not_provisioned(the_lab, fault):
    good = image()
    if fault == "corrupted hash":
        bad = bytearray(good)
        bad[200] ^= 0x40
        data, firmware_line = (
            bytes(bad),
            "Factory data init failed with: CHIP_FACTORY_DATA_SHA_CHECK (0x05000015)",
        )
    elif fault == "truncated region":
        data = good[: len(good) - 300]
        firmware_line = "Factory data init failed with: CHIP_FACTORY_DATA_SHA_CHECK (0x05000015)"
    else:
        data = image(factory_data(date="2023/01/01"))
        firmware_line = "Manufacturing date is not formatted correctly: YYYY-MM-DD."
    provision(the_lab, "k32w1-emu", data)
    profile = the_lab.profile("k32w1-emu")
    report = reboot(profile)
    assert any(line.endswith(f"[E][DL] {firmware_line}") for line in report.lines), report.lines
    assert not report.provisioned and report.reason.startswith(firmware_line)
    assert report.summary() == f"k32w1-emu: board not provisioned: {report.reason}"
    if fault == "truncated region":
        assert "truncated or interrupted write" in report.reason
    with pytest.raises(FirmwareError, match="k32w1-emu: board not provisioned: "):
        report.raise_if_not_provisioned()
    with pytest.raises(BoardError, match="no Matter node config"):
        firmware_link.node_config(profile)


def test_wrong_aes_key_on_a_decrypting_family(the_lab):
    profile = the_lab.profile("rt1060-emu")
    provision(the_lab, "rt1060-emu", image(aes_key=OTHER_KEY))
    report = reboot(profile)
    line = "Factory data init failed with: CHIP_ERROR_NOT_FOUND (0x000000D8)"
    assert any(x.endswith(f"[E][DL] {line}") for x in report.lines), report.lines
    assert not report.provisioned and report.reason.startswith(line) and "wrong key" in report.reason
    write_factory_data(profile, image(aes_key=KEY))  # the board profile's key: it boots
    report = reboot(profile)
    assert report.provisioned, report.lines
    assert any("AES-128-ECB decrypted" in x for x in report.lines)


def test_hw_params_layout_when_the_app_is_built_for_it(the_lab):
    profile = the_lab.profile("k32w1-hwp")
    provision(the_lab, "k32w1-hwp", image(hw_params=True), hw_params=1)
    report = reboot(profile)
    assert report.provisioned, report.lines
    assert any("HW parameters section at 0xFE080" in x for x in report.lines)
    write_factory_data(profile, image())  # a bare image where the SDK expects the APP_FACT_DATA section
    report = reboot(profile)
    assert report.reason.startswith("Factory data init failed with: CHIP_FACTORY_DATA_NULL")
    assert "APP_FACT_DATA" in report.reason


def test_without_factory_data_the_app_uses_builtin_test_credentials(the_lab):
    profile = the_lab.profile("k32w0x1-emu")
    write_app(profile, chip_with_factory_data=0)  # factory-data region left erased
    report = reboot(profile)
    assert report.booted and not report.provisioned and report.credentials == "built-in"
    assert "chip_with_factory_data=0" in report.reason
    config = firmware_link.node_config(profile)
    assert (config.vendor_id, config.product_id, config.discriminator) == (0xFFF1, 0x8000, 3840)
    creds = builtin_credentials()
    dac = x509.load_der_x509_certificate(config.dac_cert)
    pai = x509.load_der_x509_certificate(config.pai_cert)
    certs.verify_chain(dac, pai, creds.paa.cert)  # derived keys: the same chain in every process
    assert dac.public_key().public_numbers() == creds.dac.cert.public_key().public_numbers()
    assert verifies(config.dac_cert, b"challenge", config.signer.sign(b"challenge"))


def test_family_without_sss_refuses_a_blob_and_apps_for_other_families(the_lab):
    profile = the_lab.profile("k32w0x1-emu")
    provision(the_lab, "k32w0x1-emu", image(factory_data(dac_key=b"\x01" * 56)))
    report = reboot(profile)
    # K32W0's SearchForId has a 32-byte buffer for the key: the SDK's own error
    assert report.reason.startswith("GetDacPrivateKey failed: CHIP_ERROR_BUFFER_TOO_SMALL (0x00000019)")
    write_app(profile, family="k32w1")
    report = reboot(profile)
    assert not report.booted and "built for k32w1, not k32w0x1" in report.reason
