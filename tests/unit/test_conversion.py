"""NXP's DAC-key → SSS-blob conversion on emulated K32W1 / RW61x boards, judged only by programmer read-back
and the console: blob size, hash, byte identity of everything else, signing, idempotence, foreign blobs,
a power cut during the rewrite, and `hil convert-dac`."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from emulated_boards import lab
from firmware_support import dac_scalar, factory_data, image, verifies, write_app, write_factory_data

from hil import conversion, programmers
from hil.boot import reboot
from hil.emulator import firmware_link
from hil.emulator.board import _pid_alive
from hil.errors import BoardError, InputError
from hil.factory_data import codec
from hil.factory_data.generate import generate, request_from_args
from hil.factory_data.inspect import inspect
from hil.programmers.base import TargetRegion

KEY = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
BOARDS = {
    "k32w1-a": "k32w1",
    "k32w1-b": "k32w1",
    "k32w1-hwp": "k32w1|factory_data_address = 0xFE080\nfactory_data_size = 0x800\n"
    "[board.k32w1-hwp.options]\nhw_params = true",
    "rw61x-emu": f'rw61x|aes_key = "{KEY.hex().upper()}"',
    "k32w0x1-emu": "k32w0x1",
}


@pytest.fixture(scope="module")
def the_lab(tmp_path_factory):
    with lab(tmp_path_factory.mktemp("conv"), BOARDS) as the_lab:
        yield the_lab


def records(blob: bytes, **kw) -> list[tuple[int, bytes]]:
    parsed = codec.parse(blob, **kw)
    assert parsed.ok, parsed.problems
    return [(r.tag, r.value) for r in parsed.records]


def assert_converted(before: bytes, after: bytes, blob_len: int, **kw) -> bytes:
    """Tag 4 is a blob of `blob_len` that is not the key, the hash is valid, the rest is byte-identical."""
    old, new = records(before, **kw), records(after, **kw)
    blob = dict(new)[4]
    assert len(blob) == blob_len and blob != dict(old)[4] and dac_scalar() not in blob
    assert [(t, v) for t, v in new if t != 4] == [(t, v) for t, v in old if t != 4]
    assert [t for t, _ in new] == [t for t, _ in old]
    return blob


def test_k32w1_conversion_through_the_programmer_then_the_device_signs_through_the_sss(the_lab):
    profile = the_lab.profile("k32w1-a")
    fd_image = image()
    report = conversion.convert_dac(profile, factory_data=fd_image)
    assert not report.already_converted and report.factory_data_written
    assert (report.blob_length, report.size_after - report.size_before) == (56, 24)
    after = programmers.read(profile)
    assert_converted(fd_image, after, 56)
    assert codec.parse(after).hash_ok and inspect(after).valid
    boot = reboot(profile)
    assert boot.provisioned and (boot.dac_key, boot.converted) == ("sss-blob", False), boot.lines
    config = firmware_link.node_config(profile)
    challenge = b"\x15\x30\x01" + bytes(32) + b"attestation nonce"
    assert verifies(config.dac_cert, challenge, config.signer.sign(challenge))


def test_running_the_conversion_app_twice_changes_nothing(the_lab):
    profile = the_lab.profile("k32w1-a")
    if conversion.dac_key_length(programmers.read(profile), profile)[0] != 56:
        conversion.convert_dac(profile, factory_data=image())
    before = programmers.read(profile)
    report = conversion.convert_dac(profile)
    assert report.already_converted and report.size_after == report.size_before
    assert "left it unchanged" in report.summary()
    write_app(profile, chip_convert_dac_private_key=1)  # the conversion app boots once more, by itself
    boot = reboot(profile)
    assert boot.provisioned and not boot.converted
    assert any("already a 56-byte blob; no conversion" in line for line in boot.lines)
    assert programmers.read(profile) == before


def test_sss_blob_factory_data_boots_on_its_own_board_and_fails_on_another(the_lab, tmp_path):
    """generate.py --dac_key_use_sss_blob with a blob board A's SSS made (read back from A)."""
    a, b = the_lab.profile("k32w1-a"), the_lab.profile("k32w1-b")
    if conversion.dac_key_length(programmers.read(a), a)[0] != 56:
        conversion.convert_dac(a, factory_data=image())
    blob = codec.parse(programmers.read(a)).first_record(4).value
    (tmp_path / "blob.bin").write_bytes(blob)
    fd = factory_data()
    files = {
        "dac_cert": fd.dac_cert,
        "pai_cert": fd.pai_cert,
        "cert_declaration": fd.cert_declaration,
    }
    for name, data in files.items():
        (tmp_path / f"{name}.der").write_bytes(data)
    args = {
        "it": "1000", "salt": "MDEyMzQ1Njc4OWFiY2RlZg==", "passcode": "14014", "discriminator": "1000",
        "vid": "0x1037", "pid": "0xA220", "vendor_name": "NXP Semiconductors", "product_name": "Lighting app",
        "hw_version": "1", "hw_version_str": "1.0", "date": "2023-01-01", "serial_num": "12345678",
        "dac_key": str(tmp_path / "blob.bin"), "dac_key_use_sss_blob": True,
        **{name: str(tmp_path / f"{name}.der") for name in files},
    }  # fmt: skip
    blob_image = generate(request_from_args(args))
    assert codec.parse(blob_image).first_record(4).value == blob
    for board in (a, b):
        write_factory_data(board, blob_image)
        write_app(board)
    boot = reboot(a)
    assert boot.provisioned and boot.dac_key == "sss-blob", boot.lines
    config = firmware_link.node_config(a)
    assert verifies(config.dac_cert, b"challenge", config.signer.sign(b"challenge"))
    boot = reboot(b)
    expected = "SSS: blob import failed: the blob was not made by this device's secure subsystem"
    assert not boot.provisioned and boot.reason.startswith(expected)
    assert any(line.endswith(f"[E][DL] {boot.reason}") for line in boot.lines)
    assert boot.summary().startswith(f"k32w1-b: board not provisioned: {expected}")


def test_power_cut_during_the_rewrite_leaves_invalid_data_and_reprovisioning_recovers(the_lab):
    profile = the_lab.profile("k32w1-b")
    fd_image = image()
    write_factory_data(profile, fd_image)
    handle = the_lab.running("k32w1-b")
    firmware_link.arm_power_cut(handle, 300)
    write_app(profile, reset=True, chip_convert_dac_private_key=1)  # boots, converts, loses power
    deadline = time.monotonic() + 15
    while _pid_alive(handle.pid):
        assert time.monotonic() < deadline, "the board did not lose power"
        time.sleep(0.02)
    region = programmers.read(profile)  # the harness restarts the board on demand: flash as it was left
    assert the_lab.running("k32w1-b").pid != handle.pid
    # the new header (24 bytes longer) and 288 payload bytes were programmed; the rest stayed erased
    new_size = int.from_bytes(fd_image[4:8], "little") + 24
    assert region[:4] == codec.MAGIC_BYTES and int.from_bytes(region[4:8], "little") == new_size
    assert set(region[300 : 12 + new_size]) == {0xFF}
    report = inspect(region)
    assert not report.valid and report.errors[0].code == "hash_mismatch"
    boot = reboot(profile)
    assert not boot.provisioned and boot.reason.startswith(
        "Factory data init failed with: CHIP_FACTORY_DATA_SHA_CHECK"
    )
    # recovery: provision again and run the conversion
    result = conversion.convert_dac(profile, factory_data=fd_image)
    assert not result.already_converted
    assert_converted(fd_image, programmers.read(profile), 56)
    assert reboot(profile).provisioned


def test_rw61x_els_blob_with_encrypted_factory_data(the_lab):
    profile = the_lab.profile("rw61x-emu")
    fd_image = image(aes_key=KEY)
    report = conversion.convert_dac(profile, factory_data=fd_image)
    assert report.blob_length == 48 and report.blob == "RW61x ELS blob"
    after = programmers.read(profile)
    assert_converted(fd_image, after, 48, aes_key=KEY)
    assert codec.parse(after, KEY).aes == "AES-128"  # still encrypted with the board's key
    config = firmware_link.node_config(profile)
    assert verifies(config.dac_cert, b"rw61x", config.signer.sign(b"rw61x"))


def test_hw_params_section_is_rewrapped_and_the_shared_sector_is_kept(the_lab):
    profile = the_lab.profile("k32w1-hwp")
    prod_data = TargetRegion(0xFE000, 0x80, 0x2000, "PROD_DATA")
    hw_params = b"PROD_DATA" + bytes(range(100))
    programmers.flash(profile, hw_params, region=TargetRegion(0xFE000, 0x2000, 0x2000, "sector"), reset=False)
    fd_image = image(hw_params=True)
    report = conversion.convert_dac(profile, factory_data=fd_image)
    after = programmers.read(profile)
    assert after.startswith(b"APP_FACT_DATA:  ") and report.size_after == len(fd_image) + 24
    assert_converted(fd_image, after, 56, hw_params=True)
    assert programmers.read(profile, region=prod_data)[: len(hw_params)] == hw_params
    assert reboot(profile).provisioned


def test_refusals_before_touching_the_board(the_lab):
    k32w1, k32w0 = the_lab.profile("k32w1-a"), the_lab.profile("k32w0x1-emu")
    with pytest.raises(InputError, match="a K32W1 or RW61x board"):
        conversion.convert_dac(k32w0, factory_data=image())
    with pytest.raises(InputError, match="--factory-data DAC key"):
        conversion.convert_dac(k32w1, factory_data=image(factory_data(dac_key=b"\x01" * 40)))
    bad = bytearray(image())
    bad[100] ^= 1
    with pytest.raises(InputError, match="hash mismatch"):
        conversion.convert_dac(k32w1, factory_data=bytes(bad))
    # a HW-parameters section 10 bytes below APP_FACTORY_DATA_MAX_LEN: no room for the 24-byte growth
    base = len(image(factory_data(product_url="u"), hw_params=True))
    pad = 0x800 - 10 - base + 1
    fields = {"product_url": "u" * min(pad, 256), "product_label": "l" * max(pad - 256 - 3, 0)}
    tight = image(factory_data(**fields), hw_params=True)
    assert len(tight) == 0x800 - 10
    with pytest.raises(
        InputError, match="room for the blob: 2062 bytes after conversion, the region holds 2048"
    ):
        conversion.convert_dac(the_lab.profile("k32w1-hwp"), factory_data=tight)


def run_hil(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hil", *args], capture_output=True, text=True, timeout=120)


def test_hil_convert_dac_cli(the_lab, tmp_path):
    profile = the_lab.profile("k32w1-b")
    programmers.flash(profile, b"\xff" * 16, reset=False)  # an empty factory-data region
    r = run_hil("convert-dac", "--board", "k32w1-b")
    assert r.returncode == 3 and "Traceback" not in r.stderr
    assert "no valid factory data on the board" in r.stderr and "hil flash --board k32w1-b" in r.stderr
    fd_file = tmp_path / "factory_data.bin"
    fd_file.write_bytes(image())
    r = run_hil("convert-dac", "--board", "k32w1-b", "--factory-data", str(fd_file))
    assert r.returncode == 0, r.stderr
    assert "converted to a 56-byte K32W1 SSS ELKE blob" in r.stdout and "seen after" in r.stdout
    assert len(codec.parse(programmers.read(profile)).first_record(4).value) == 56
    r = run_hil("convert-dac", "--board", "k32w0x1-emu")
    assert r.returncode == 2 and "a K32W1 or RW61x board" in r.stderr
    r = run_hil("convert-dac", "--board", "k32w1-b", "--timeout", "0")
    assert r.returncode == 2 and "--timeout" in r.stderr


def test_real_boards_need_their_app_binaries(tmp_path):
    inventory = tmp_path / "boards.toml"
    inventory.write_text('[board.lab]\nfamily = "k32w1"\n[board.lab.connection]\njlink_serial = 1\n')
    from hil.boards import get_board

    with pytest.raises(InputError, match="--conversion-app and --app: required for the real board lab"):
        conversion.resolve_apps(get_board("lab", inventory), None, None)
    (tmp_path / "conv.bin").write_bytes(b"real conversion app")
    (tmp_path / "app.bin").write_bytes(b"real app")
    inventory.write_text(
        inventory.read_text() + '[board.lab.options]\nconversion_app = "conv.bin"\napp = "app.bin"\n'
    )
    assert conversion.resolve_apps(get_board("lab", inventory), None, None) == (
        b"real conversion app",
        b"real app",
    )
    with pytest.raises(InputError, match="--app"):
        conversion.resolve_apps(get_board("lab", inventory), None, tmp_path / "missing.bin")


def test_timeout_names_the_state(the_lab):
    """A conversion app that never converts (here: a normal app) ends in a clear timeout."""
    profile = the_lab.profile("k32w1-b")
    normal = conversion.default_apps(profile)[1]
    with pytest.raises(BoardError, match=r"not converted within 0.3 s \(tag 4 is 32 bytes\)"):
        conversion.convert_dac(profile, factory_data=image(), conversion_app=normal, timeout=0.3)
