"""The on-disk batch: one directory per device, renamed into place complete, and a manifest derived from them.

Layout of `OUT/`:

    batch.json            what the batch was made with (inputs' hashes, options, batch key); mode 0600
    .lock                 held (flock) while a run writes, so two runs cannot interleave
    devices/000042/       one complete device: dac_key.der (0600), dac_cert.der, factory_data.bin (0600:
                          it holds the DAC private key), factory_data.hex (0600), device.json
    devices/.tmp-000042-<pid>/   a device being written; never trusted, removed by the next run
    manifest.csv, manifest.jsonl  rebuilt from devices/*/device.json at the end of every run

Why this shape: a device directory appears by one `rename(2)`, so after a kill at any instant each index
is either complete or absent, never half-written. The manifest is not appended while running but derived
from the directories at the end, so it cannot disagree with them, hold duplicates, or miss a device that
a killed run finished. Nothing is fsync'ed: this survives the process being killed, not a power cut.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from hil.errors import HilError, InputError
from hil.fileio import atomic_write

DEVICES_DIR = "devices"
BATCH_FILE = "batch.json"
LOCK_FILE = ".lock"
DEVICE_RECORD = "device.json"
MANIFEST_CSV = "manifest.csv"
MANIFEST_JSONL = "manifest.jsonl"
TMP_PREFIX = ".tmp-"
#: The manifest's columns, in order: identity and onboarding of each device, never a secret.
MANIFEST_FIELDS = (
    "index",
    "serial_num",
    "dac_serial",
    "passcode",
    "discriminator",
    "qr_payload",
    "manual_code",
    "factory_data_sha256",
    "dir",
)
SECRET_MODE = 0o600
PUBLIC_MODE = 0o644


@dataclass(frozen=True, slots=True)
class OutFile:
    """One file of a device: its name in the device directory, its bytes, and whether it is secret."""

    name: str
    data: bytes
    secret: bool = False


def device_dir_name(index: int) -> str:
    return f"{index:06d}"


class BatchDir:
    """The output directory of one batch. Use `lock()` around a run; all methods are cheap and local."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.devices = self.root / DEVICES_DIR
        self._devices_str = str(self.devices)
        self._lock_fd: int | None = None

    # ------------------------------------------------------------------------------------ run lifetime

    @contextlib.contextmanager
    def lock(self) -> Iterator[BatchDir]:
        """Create the directory and hold its lock; InputError if another run holds it."""
        try:
            self.devices.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"out: cannot create {str(self.root)!r}: {exc.strerror or exc}") from None
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, PUBLIC_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise InputError(f"out: {str(self.root)!r} is being written by another run") from None
            raise
        self._lock_fd = fd
        try:
            yield self
        finally:
            self._lock_fd = None
            os.close(fd)

    def read_batch(self) -> dict[str, object] | None:
        path = self.root / BATCH_FILE
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise InputError(f"out: {str(path)!r} is unreadable ({exc}); not a batch directory?") from None

    def write_batch(self, record: dict[str, object]) -> None:
        """batch.json, atomically and mode 0600 (it holds the batch key)."""
        atomic_write(
            self.root / BATCH_FILE, json.dumps(record, indent=1, sort_keys=True).encode(), secret=True
        )

    def remove_temporaries(self) -> int:
        """Delete devices a killed run left half-written (only safe while holding the lock)."""
        removed = 0
        for entry in os.scandir(self.devices):
            if entry.name.startswith(TMP_PREFIX):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed += 1
        return removed

    def done_indices(self) -> set[int]:
        """Indices whose device directory exists (complete by construction)."""
        done = set()
        for entry in os.scandir(self.devices):
            if entry.name.isdigit() and entry.is_dir():
                done.add(int(entry.name))
        return done

    # ------------------------------------------------------------------------------------ one device

    def device_dir(self, index: int) -> Path:
        return self.devices / device_dir_name(index)

    def write_device(self, index: int, files: Sequence[OutFile]) -> None:
        """Write all files of one device into a temporary directory, then rename it into place.

        Files are opened relative to the directory's descriptor and paths are plain strings: on this hot
        path (once per device) that halves the Python-side cost of five small files.
        """
        final = self.device_dir(index)
        tmp = os.path.join(self._devices_str, f"{TMP_PREFIX}{device_dir_name(index)}-{os.getpid()}")
        try:
            os.mkdir(tmp)
            dir_fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY)
            try:
                for f in files:
                    mode = SECRET_MODE if f.secret else PUBLIC_MODE
                    fd = os.open(f.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode, dir_fd=dir_fd)
                    try:
                        view = memoryview(f.data)
                        while view:
                            view = view[os.write(fd, view) :]
                    finally:
                        os.close(fd)
            finally:
                os.close(dir_fd)
            os.rename(tmp, final)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if final.is_dir():
                raise HilError(f"out: device {index} already exists in {str(self.devices)!r}") from None
            raise HilError(
                f"out: cannot write device {index} to {str(tmp)!r}: {exc.strerror or exc}"
            ) from None

    def read_record(self, index: int) -> dict[str, object]:
        return json.loads((self.device_dir(index) / DEVICE_RECORD).read_bytes())

    # ------------------------------------------------------------------------------------ manifest

    def rebuild_manifest(self, count: int) -> tuple[Path, Path]:
        """manifest.csv and manifest.jsonl from the device records, streaming, written atomically.

        Raises HilError if any index of 0..count-1 is missing: a manifest is only ever complete.
        """
        done = self.done_indices()
        missing = count - len(done & set(range(count)))
        if missing:
            raise HilError(f"out: {missing} of {count} devices are missing; run the same command again")
        csv_path, jsonl_path = self.root / MANIFEST_CSV, self.root / MANIFEST_JSONL
        csv_tmp, jsonl_tmp = _tmp_name(csv_path), _tmp_name(jsonl_path)
        try:
            with open(csv_tmp, "w", newline="") as fc, open(jsonl_tmp, "w") as fj:
                writer = csv.DictWriter(fc, MANIFEST_FIELDS, extrasaction="ignore", lineterminator="\n")
                writer.writeheader()
                for index in range(count):
                    record = self.read_record(index)
                    row = {k: record[k] for k in MANIFEST_FIELDS}
                    writer.writerow(row)
                    fj.write(json.dumps(row) + "\n")
            os.replace(csv_tmp, csv_path)
            os.replace(jsonl_tmp, jsonl_path)
        except BaseException:
            for p in (csv_tmp, jsonl_tmp):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(p)
            raise
        return csv_path, jsonl_path


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")
