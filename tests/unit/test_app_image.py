"""Our app-image format (build options in flash) and `hil emulator build-app`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hil.emulator import app_image
from hil.emulator.app_image import AppImageError, AppOptions
from hil.errors import InputError


def test_round_trip_and_layout():
    opts = AppOptions(
        name="dac-conversion-app", version="1.2.3", software_version=7, chip_convert_dac_private_key=1,
        hw_params=1, family="k32w1",
    )  # fmt: skip
    data = app_image.build(opts)
    assert data[:8] == b"HILAPP\x00\x01" and int.from_bytes(data[8:10], "little") == 1
    assert int.from_bytes(data[12:16], "little") == len(data) - app_image.HEADER_LEN
    assert app_image.parse(data) == opts
    # the rest of the app region (erased flash) after the image does not matter
    assert app_image.parse(data + b"\xff" * 1000) == opts
    assert "chip_convert_dac_private_key=1" in opts.describe()


def test_corrupt_or_foreign_images_are_refused():
    data = bytearray(app_image.build(AppOptions()))
    with pytest.raises(AppImageError, match="does not start with the magic"):
        app_image.parse(b"\xff" * 64)
    with pytest.raises(AppImageError, match="runs past the image"):
        app_image.parse(bytes(data[:60]))
    data[-3] ^= 0x20
    with pytest.raises(AppImageError, match="corrupt"):
        app_image.parse(bytes(data))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("chip_with_factory_data", 2),
        ("hw_params", "1"),
        ("software_version", -1),
        ("name", ""),
        ("version", 3),
    ],
)
def test_bad_options_name_the_field(field, value):
    with pytest.raises(InputError, match=field):
        AppOptions(**{field: value})


def run_hil(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hil", *args], capture_output=True, text=True, env=env)


def test_build_app_cli_writes_the_image_and_refuses_bad_input(tmp_path):
    out = tmp_path / "conv.bin"
    r = run_hil(
        "emulator", "build-app", "--out", str(out), "--name", "conv", "--chip_convert_dac_private_key", "1",
        "--board", "k32w1-emu",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    opts = app_image.parse(out.read_bytes())
    assert (opts.name, opts.chip_convert_dac_private_key, opts.family, opts.hw_params) == (
        "conv",
        1,
        "k32w1",
        0,
    )
    before = out.read_bytes()
    r = run_hil("emulator", "build-app", "--out", str(out), "--chip_with_factory_data", "2")
    assert r.returncode == 2 and "invalid choice" in r.stderr and "Traceback" not in r.stderr
    r = run_hil("emulator", "build-app", "--out", str(out), "--board", "k32w1-emu", "--family", "rw61x")
    assert r.returncode == 2 and "--family" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert out.read_bytes() == before  # no partial output, nothing clobbered
    r = run_hil("emulator", "build-app", "--flash")
    assert r.returncode == 2 and "--flash: needs --board" in r.stderr
