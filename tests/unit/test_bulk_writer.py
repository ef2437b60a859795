"""hil.bulk.writer: a device directory appears whole or not at all; the manifest is only ever complete."""

from __future__ import annotations

import json
import os
import stat

import pytest

from hil.bulk.writer import DEVICE_RECORD, MANIFEST_FIELDS, BatchDir, OutFile
from hil.errors import HilError, InputError


def _record(index: int) -> dict[str, object]:
    return {name: f"{name}-{index}" for name in MANIFEST_FIELDS} | {
        "index": index,
        "extra": "not in manifest",
    }


def _files(index: int) -> list[OutFile]:
    return [
        OutFile("key.der", b"secret", secret=True),
        OutFile("cert.der", b"public"),
        OutFile(DEVICE_RECORD, json.dumps(_record(index)).encode()),
    ]


def test_device_directory_is_complete_with_secret_modes(tmp_path) -> None:
    batch = BatchDir(tmp_path / "b")
    with batch.lock():
        batch.write_device(3, _files(3))
        assert batch.done_indices() == {3}
    d = batch.device_dir(3)
    assert sorted(os.listdir(d)) == ["cert.der", DEVICE_RECORD, "key.der"]
    assert stat.S_IMODE(os.stat(d / "key.der").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(d / "cert.der").st_mode) & 0o077 != 0o077  # not made secret
    assert [p.name for p in batch.devices.iterdir()] == ["000003"]  # no temporary left behind


def test_partial_device_is_never_counted_and_is_removed_on_the_next_run(tmp_path) -> None:
    batch = BatchDir(tmp_path / "b")
    with batch.lock():
        # What a kill in the middle of write_device leaves behind: a temporary directory, half filled.
        partial = batch.devices / ".tmp-000000-12345"
        partial.mkdir()
        (partial / "key.der").write_bytes(b"half")
        assert batch.done_indices() == set()
        assert batch.remove_temporaries() == 1
        assert list(batch.devices.iterdir()) == []


def test_failed_write_leaves_nothing(tmp_path) -> None:
    batch = BatchDir(tmp_path / "b")
    with batch.lock():
        batch.write_device(0, _files(0))
        with pytest.raises(HilError, match="already exists"):
            batch.write_device(0, _files(0))
        with pytest.raises(HilError, match="cannot write device 1"):
            batch.write_device(1, [OutFile("a", b"1"), OutFile("a", b"2")])  # duplicate name: O_EXCL fails
        assert batch.done_indices() == {0}
        assert [p.name for p in batch.devices.iterdir()] == ["000000"]


def test_manifest_is_derived_from_devices_and_refuses_gaps(tmp_path) -> None:
    batch = BatchDir(tmp_path / "b")
    with batch.lock():
        for i in (2, 0):
            batch.write_device(i, _files(i))
        with pytest.raises(HilError, match="1 of 3 devices are missing"):
            batch.rebuild_manifest(3)
        assert not (batch.root / "manifest.csv").exists()
        batch.write_device(1, _files(1))
        csv_path, jsonl_path = batch.rebuild_manifest(3)
    lines = csv_path.read_text().splitlines()
    assert lines[0] == ",".join(MANIFEST_FIELDS)
    assert [line.split(",")[0] for line in lines[1:]] == ["0", "1", "2"]
    rows = [json.loads(line) for line in jsonl_path.read_text().splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2] and all("extra" not in r for r in rows)


def test_a_second_run_on_the_same_directory_is_refused(tmp_path) -> None:
    first, second = BatchDir(tmp_path / "b"), BatchDir(tmp_path / "b")
    with first.lock(), pytest.raises(InputError, match="another run"), second.lock():
        pass
    with second.lock():  # released with the first
        pass
