"""Generate a batch: check the inputs once, then build the missing devices in parallel, then the manifest.

Why this shape (numbers in benchmarks/bench_bulk.py and specs/anchors.md §5.2): per device, PBKDF2 is
≈90% of the work and everything else is about 0.3 ms, so the generator stays in one Python
process per core (no subprocess per device: ≈58 ms of interpreter start each), hands each worker chunks of
device indices (one IPC round trip per chunk, not per device), and lets workers write their devices
themselves, so only a count travels back. Parameters come from `Planner` (index → plan), so workers need
no coordination and a resumed run rebuilds exactly the devices that are missing.

Workers are forked processes. `executor="thread"` exists because hashlib's PBKDF2 releases the GIL and
threads then scale too, but hil.matter.spake2p uses cryptography's PBKDF2 (1.6-1.9x faster per core
here), which holds the GIL: measured, two threads run no faster than one (benchmarks/bench_bulk.py).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import dataclasses
import gc
import hashlib
import itertools
import multiprocessing
import os
import resource
import secrets
import signal
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from hil.bulk.device import BatchSpec, DeviceFactory, check_batch, today_utc
from hil.bulk.plan import KEY_LEN, MAX_DEVICES, SERIAL_WIDTH, Planner, key_from_seed
from hil.bulk.progress import Progress
from hil.bulk.writer import BATCH_FILE, BatchDir
from hil.errors import HilError, InputError
from hil.factory_data.tags import BY_NAME

BATCH_FORMAT = 1
SERIAL_NUM_MAX = BY_NAME["serial_num"].max_len or 32
MAX_CHUNK = 32
Executor = Literal["process", "thread"]


@dataclass
class BatchResult:
    """What a run did: `generated` new devices, `present` ones found from an earlier (killed) run."""

    out: Path
    count: int
    generated: int
    present: int
    removed_partial: int
    seconds: float
    jobs: int
    cpu_seconds: float  # user + system time of this process and its workers while generating
    manifest_csv: Path
    manifest_jsonl: Path

    @property
    def rate(self) -> float:
        """Devices generated per second by this run (after the input check, before the manifest)."""
        return self.generated / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {k: str(v) if isinstance(v, Path) else v for k, v in out.items()} | {"rate": self.rate}


def default_jobs() -> int:
    """All cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _fingerprint(spec: BatchSpec) -> dict[str, object]:
    """The inputs that decide every device's bytes, as JSON values (hashes for files and the AES key)."""

    def sha(data: bytes | None) -> str | None:
        return None if data is None else hashlib.sha256(data).hexdigest()

    return {
        "pai_cert_sha256": sha(spec.pai_cert),
        "pai_key_sha256": sha(spec.pai_key),
        "cert_declaration_sha256": sha(spec.cert_declaration),
        "vid": spec.vid,
        "pid": spec.pid,
        "vendor_name": spec.vendor_name,
        "product_name": spec.product_name,
        "iterations": spec.iterations,
        "hw_version": spec.hw_version,
        "hw_version_str": spec.hw_version_str,
        "date": spec.date,
        "valid_from": spec.valid_from.isoformat() if spec.valid_from else None,
        "lifetime_days": spec.lifetime_days,
        "extra": {k: spec.extra[k] for k in sorted(spec.extra)},
        "aes_key_sha256": sha(spec.aes_key),
        "hw_params": spec.hw_params,
        "address": spec.address,
        "region_size": spec.region_size,
        "rendezvous": spec.rendezvous,
        "flow": spec.flow,
    }


def _resolve(
    spec: BatchSpec, stored: dict[str, object] | None, seed: str | None, serial_prefix: str | None
) -> tuple[BatchSpec, bytes, str]:
    """Fill the batch defaults (dates, key, serial prefix) from a previous run, or fresh for a new batch."""
    inputs = stored.get("inputs", {}) if stored else {}
    assert isinstance(inputs, dict)
    if not spec.date:
        spec = dataclasses.replace(spec, date=str(inputs.get("date") or today_utc().date().isoformat()))
    if spec.valid_from is None:
        vf = inputs.get("valid_from")
        spec = dataclasses.replace(spec, valid_from=datetime.fromisoformat(vf) if vf else today_utc())
    if seed is not None:
        key = key_from_seed(seed)
    elif stored:
        key = bytes.fromhex(str(stored["key"]))
    else:
        key = secrets.token_bytes(KEY_LEN)
    if serial_prefix is None:
        serial_prefix = str(stored["serial_prefix"]) if stored else f"SN{key[:4].hex().upper()}-"
    return spec, key, serial_prefix


def _check_same_batch(out: Path, stored: dict[str, object], record: dict[str, object]) -> None:
    """A resumed batch must be resumed with the arguments it was started with (one line naming the first)."""
    if stored.get("format") != BATCH_FORMAT:
        raise InputError(f"out: {str(out)!r} holds a batch of another format; use a new --out directory")
    if stored.get("key") != record["key"]:
        raise InputError(f"--seed: differs from the one {str(out)!r} was started with")
    if stored.get("serial_prefix") != record["serial_prefix"]:
        raise InputError(
            f"--serial_prefix: {record['serial_prefix']!r} differs from {stored.get('serial_prefix')!r}, "
            f"which {str(out)!r} was started with"
        )
    old, new = stored.get("inputs", {}), record["inputs"]
    assert isinstance(old, dict) and isinstance(new, dict)
    for name, value in new.items():
        if old.get(name) != value:
            raise InputError(
                f"{name}: {value!r} differs from {old.get(name)!r}, which {str(out)!r} was started with; "
                "resume with the same arguments or use a new --out directory"
            )


# ----------------------------------------------------------------------------------------------- workers


@dataclass
class _Worker:
    factory: DeviceFactory
    planner: Planner
    batch: BatchDir

    def run(self, indices: list[int]) -> int:
        for index in indices:
            self.batch.write_device(index, self.factory.build(self.planner.device(index)).files)
        return len(indices)


_WORKER: _Worker | None = None


def _die_with_parent(parent: int) -> None:
    """Linux: be killed when the parent dies, so a killed run leaves no orphan still writing devices
    (and holding the batch lock, which forked workers share)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


def _init_process(spec: BatchSpec, key: bytes, serial_prefix: str, root: str, parent: int) -> None:
    global _WORKER
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates the pool
    _WORKER = _Worker(DeviceFactory(spec), Planner(key, serial_prefix=serial_prefix), BatchDir(root))
    gc.freeze()  # what exists now lives as long as the worker: keep it out of every collection


def _run_chunk(indices: list[int]) -> int:
    assert _WORKER is not None
    return _WORKER.run(indices)


def _chunks(indices: Iterable[int], size: int, total: int = 0, jobs: int = 1) -> Iterator[list[int]]:
    """Lists of up to `size` indices; with `total`, the last chunks shrink (remaining / 2·jobs) so that the
    workers finish together instead of one idling while another ends a full chunk."""
    it = iter(indices)
    remaining = total
    while True:
        want = max(1, min(size, remaining // (2 * jobs))) if total else size
        chunk = list(itertools.islice(it, want))
        if not chunk:
            return
        remaining -= len(chunk)
        yield chunk


# ----------------------------------------------------------------------------------------------- driver


def generate_batch(
    spec: BatchSpec,
    out: str | os.PathLike[str],
    count: int,
    *,
    jobs: int | None = None,
    seed: str | None = None,
    serial_prefix: str | None = None,
    executor: Executor = "process",
    progress: bool = True,
) -> BatchResult:
    """Make devices 0..count-1 in `out`, or only the missing ones if `out` holds the same batch.

    `spec.date`/`spec.valid_from` may be empty/None: today (UTC) for a new batch, the stored ones for a
    resumed batch. `seed` makes passcodes, salts, discriminators and serials reproducible (tests); keys
    stay random. Raises InputError before writing anything when an input is bad.
    """
    out = Path(out)
    if not isinstance(count, int) or not 1 <= count <= MAX_DEVICES:
        raise InputError.field("--count", count, f"allowed 1..{MAX_DEVICES}")
    jobs = default_jobs() if jobs is None else jobs
    if not 1 <= jobs <= 1024:
        raise InputError.field("--jobs", jobs, "allowed 1..1024")
    batch = BatchDir(out)
    stored = batch.read_batch()
    if stored is None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(
            f"out: {str(out)!r} exists and is not a batch directory (no {BATCH_FILE}); "
            "give a new or empty directory, or the directory of the batch to resume"
        )
    spec, key, serial_prefix = _resolve(spec, stored, seed, serial_prefix)
    if len((serial_prefix + "0" * SERIAL_WIDTH).encode()) > SERIAL_NUM_MAX:
        raise InputError.field(
            "--serial_prefix",
            serial_prefix,
            f"at most {SERIAL_NUM_MAX - SERIAL_WIDTH} bytes: the serial "
            f"number is the prefix + {SERIAL_WIDTH} digits, at most {SERIAL_NUM_MAX} bytes in factory data",
        )
    planner = Planner(key, serial_prefix=serial_prefix)
    record = {
        "format": BATCH_FORMAT,
        "key": key.hex(),
        "seeded": seed is not None,
        "serial_prefix": serial_prefix,
        "inputs": _fingerprint(spec),
    }
    if stored:
        _check_same_batch(out, stored, record)
    check_batch(spec, planner.device(0))  # every input rule, in memory: nothing is written on failure

    t0, cpu0 = time.monotonic(), _cpu_seconds()
    with batch.lock():
        current = batch.read_batch()
        if current is None:
            batch.write_batch(record)
        elif stored is None:  # another run created the batch since we looked
            _check_same_batch(out, current, record)
        removed = batch.remove_temporaries()
        done = batch.done_indices()
        beyond = sorted(i for i in done if i >= count)
        if beyond:
            raise InputError.field("--count", count, f"{str(out)!r} already holds device {beyond[0]}")
        todo_n = count - len(done)
        bar = Progress(count, len(done)) if progress else None
        todo = (i for i in range(count) if i not in done)
        if todo_n:
            _execute(spec, key, serial_prefix, batch, todo, todo_n, jobs, executor, bar)
        if bar:
            bar.close()
        seconds, cpu = time.monotonic() - t0, _cpu_seconds() - cpu0
        csv_path, jsonl_path = batch.rebuild_manifest(count)
    return BatchResult(out, count, todo_n, len(done), removed, seconds, jobs, cpu, csv_path, jsonl_path)


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) and its reaped children (pool workers, once joined)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _execute(
    spec: BatchSpec,
    key: bytes,
    serial_prefix: str,
    batch: BatchDir,
    todo: Iterator[int],
    todo_n: int,
    jobs: int,
    executor: Executor,
    bar: Progress | None,
) -> None:
    jobs = min(jobs, todo_n)
    if jobs == 1:  # in-process: no pool start-up, and the single-core figure of the benchmark
        worker = _Worker(DeviceFactory(spec), Planner(key, serial_prefix=serial_prefix), batch)
        gc.freeze()  # the objects loaded so far outlive the batch: keep them out of its collections
        try:
            for chunk in _chunks(todo, MAX_CHUNK):
                worker.run(chunk)
                if bar:
                    bar.update(len(chunk))
        finally:
            gc.unfreeze()  # the caller's process goes back to normal
        return
    # Large enough that one IPC round trip (~0.1 ms) is noise against a chunk's work; `_chunks` shrinks
    # the last ones so no worker idles at the end.
    size = max(1, min(MAX_CHUNK, todo_n // (jobs * 8)))
    pool: concurrent.futures.Executor
    if executor == "thread":
        shared = _Worker(DeviceFactory(spec), Planner(key, serial_prefix=serial_prefix), batch)
        pool, func = concurrent.futures.ThreadPoolExecutor(jobs), shared.run
    elif executor == "process":
        # fork: workers inherit the loaded modules (no re-import per worker); all are started at the first
        # submit, before the executor's own thread exists.
        ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
        initargs = (spec, key, serial_prefix, str(batch.root), os.getpid())
        pool = concurrent.futures.ProcessPoolExecutor(jobs, ctx, _init_process, initargs)
        func = _run_chunk
    else:
        raise InputError.field("executor", executor, "allowed 'process' or 'thread'")
    chunks = _chunks(todo, size, todo_n, jobs)
    with pool:
        try:
            # A bounded window of chunks in flight: memory stays flat whatever the batch size.
            pending = {pool.submit(func, c) for c in itertools.islice(chunks, 2 * jobs)}
            while pending:
                finished, pending = concurrent.futures.wait(pending, return_when="FIRST_COMPLETED")
                for future in finished:
                    n = future.result()
                    if bar:
                        bar.update(n)
                    nxt = next(chunks, None)
                    if nxt is not None:
                        pending.add(pool.submit(func, nxt))
        except BrokenProcessPool:
            raise HilError(
                "a worker process died (killed, or out of memory?); the devices it finished are kept: "
                "run the same command again to complete the batch"
            ) from None
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
