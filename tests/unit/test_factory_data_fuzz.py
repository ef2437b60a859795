"""Inspecting random and mutated binaries never raises anything but HilError, never a traceback.

Three sources of input: random bytes; random payloads under a correct header (so the scan, the value
decoders and the certificate/CD parsers all see garbage, not just the magic check); and valid images
(plain, AES-128, hw_params, SSS blob) mutated byte-wise, with and without re-sealing the hash.
"""

from __future__ import annotations

import hashlib
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_factory_data_support import AES128, TEST_SALT, TEST_VERIFIER, VID, make_creds

from hil.cli import main
from hil.errors import HilError
from hil.factory_data import inspect, parse
from hil.factory_data.codec import wrap_hw_params
from hil.factory_data.generate import generate, request_from_args

KEY = bytes.fromhex(AES128)
_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _images() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory(prefix="fd-fuzz-") as tmp:
        return _images_in(Path(tmp))


def _images_in(tmp: Path) -> dict[str, bytes]:
    c = make_creds(tmp)
    base = {
        "it": "1000", "salt": TEST_SALT, "passcode": "20202021", "spake2p_verifier": TEST_VERIFIER,
        "discriminator": "3840", "vid": hex(VID), "pid": "0xA220", "vendor_name": "V", "product_name": "P",
        "hw_version": "1", "hw_version_str": "1.0", "date": "2024-05-06", "serial_num": "SN1",
        "cert_declaration": str(c.cd), "dac_cert": str(c.dac), "dac_key": str(c.dac_key),
        "pai_cert": str(c.pai), "product_finish": "Matte", "product_primary_color": "Red",
    }  # fmt: skip
    return {
        "plain": generate(request_from_args(base)),
        "aes128": generate(request_from_args({**base, "aes128_key": AES128})),
        "hw_params": generate(request_from_args({**base, "hw_params": True})),
        "sss": generate(request_from_args({**base, "dac_key": str(c.blob56), "dac_key_use_sss_blob": True})),
    }


IMAGES = _images()


def _inspect_never_crashes(blob: bytes, **kw) -> None:
    try:
        report = inspect.inspect(blob, **kw)
        report.as_dict()
        inspect.format_text(report, show_secrets=True)
        report.raise_if_invalid()
    except HilError as exc:
        assert exc.exit_code in (2, 3, 4) and str(exc) and "\n" not in str(exc)


def _seal(payload: bytes) -> bytes:
    return struct.pack("<II", 0xCE47BA5E, len(payload)) + hashlib.sha256(payload).digest()[:4] + payload


@_SETTINGS
@given(
    blob=st.binary(max_size=3000), key=st.sampled_from([None, KEY]), hw=st.sampled_from([None, True, False])
)
def test_random_bytes(blob, key, hw):
    _inspect_never_crashes(blob, aes_key=key, hw_params=hw)


@_SETTINGS
@given(
    records=st.lists(
        st.tuples(st.integers(0, 255), st.binary(max_size=300)).map(
            lambda r: bytes([r[0]]) + struct.pack("<H", len(r[1])) + r[1]
        ),
        max_size=30,
    ),
    tail=st.binary(max_size=5),
    wrap=st.booleans(),
)
def test_random_records_under_a_valid_header(records, tail, wrap):
    image = _seal(b"".join(records) + tail)
    _inspect_never_crashes(wrap_hw_params(image) if wrap else image, check_verifier=False)


@st.composite
def mutations(draw):
    name = draw(st.sampled_from(sorted(IMAGES)))
    data = bytearray(IMAGES[name])
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
    reseal = draw(st.booleans()) and name in ("plain", "sss") and len(data) >= 12
    if reseal:  # keep the hash right so the content, not the header check, is what is exercised
        data = bytearray(_seal(bytes(data[12:])))
    return name, bytes(data)


@_SETTINGS
@given(case=mutations())
def test_mutated_valid_images(case):
    name, blob = case
    _inspect_never_crashes(blob, aes_key=KEY if name == "aes128" else None)


_RECORDS = parse(IMAGES["plain"]).records


@st.composite
def record_mutations(draw):
    """Valid records, some values (certificates, CD, strings, ints) corrupted, re-sealed with a right hash."""
    out = []
    for rec in _RECORDS:
        value = bytearray(rec.value)
        if value and draw(st.integers(0, 3)) == 0:
            for _ in range(draw(st.integers(1, 6))):
                value[draw(st.integers(0, len(value) - 1))] = draw(st.integers(0, 255))
        if draw(st.integers(0, 19)) == 0:
            value = value[: draw(st.integers(0, len(value)))]
        out.append(bytes([rec.tag]) + struct.pack("<H", len(value)) + bytes(value))
    return _seal(b"".join(out))


@_SETTINGS
@given(blob=record_mutations())
def test_corrupted_values_under_a_valid_hash(blob):
    _inspect_never_crashes(blob, check_verifier=False)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fd-fuzz-cli")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=mutations(), json_out=st.booleans())
def test_cli_exit_codes_on_mutated_files(case, json_out, fuzz_dir, capsys):
    name, blob = case
    path = fuzz_dir / "f.bin"
    path.write_bytes(blob)
    args = ["factory-data", "inspect", str(path)] + (["--json"] if json_out else [])
    if name == "aes128":
        args += ["--aes128_key", AES128]
    code = main(args)
    err = capsys.readouterr().err
    assert code in (0, 2)
    assert (code == 0) == (err == "")
    assert "Traceback" not in err


def test_the_unmutated_images_are_valid():
    for name, blob in IMAGES.items():
        report = inspect.inspect(blob, aes_key=KEY if name == "aes128" else None)
        assert report.valid, (name, [p.message for p in report.errors])
