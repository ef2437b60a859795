"""Step and environment records: the harness's own results, one JSON line per fact, one file per process.

Why our own records next to allure's: the qualification summary needs facts allure does not model (the
board a step ran on, the factory-data SHA-256, the DAC serial, which attempt it was), and it must be
rebuildable without the allure command line. Each process (the pytest main process or an xdist worker)
appends to its own file, `<dir>/<worker>-<pid>.jsonl`, so writers never interleave; the main process reads
them all at the end of the session. Everything written passes through `redact`.

Record kinds:
    {"kind": "step", "board", "family", "step", "title", "verdict", "category", "message", "duration_s",
     "started", "test", "attempt", "worker", "facts": {...}}
    {"kind": "env", "board", "family", ...facts such as firmware, vid, pid, emulated}
Verdicts: passed, failed (product failure), broken (infrastructure failure), skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hil.reports.redact import redact

VERDICTS = ("passed", "failed", "broken", "skipped")
FACT_FACTORY_DATA_SHA256 = "factory_data_sha256"
FACT_DAC_SERIAL = "dac_serial"


class RecordSink:
    """Appends records of this process to its own file (created lazily, on the first record)."""

    def __init__(self, directory: Path, worker: str) -> None:
        self.directory = Path(directory)
        self.worker = worker
        self.path = self.directory / f"{worker}-{os.getpid()}.jsonl"
        self.attempt = 1
        """Set by the plugin: 2 while a test is re-run after an infrastructure failure."""

    def write(self, record: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        line = json.dumps(redact({**record, "worker": self.worker}), sort_keys=True, default=str)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


_sink: RecordSink | None = None


def configure(sink: RecordSink | None) -> None:
    """Install (or, with None, remove) this process's sink; the plugin does this per session."""
    global _sink
    _sink = sink


def current() -> RecordSink | None:
    return _sink


def emit(record: dict[str, Any]) -> None:
    """Write a record if a sink is installed (outside a pytest session records are simply not kept)."""
    if _sink is not None:
        _sink.write({"attempt": _sink.attempt, **record})


def current_test() -> str | None:
    """The node id of the running test, from the variable pytest sets for every phase."""
    value = os.environ.get("PYTEST_CURRENT_TEST")
    return value.rsplit(" (", 1)[0] if value else None


def board_identity(board: object) -> tuple[str, str | None]:
    """(name, family) of a board given as a profile-like object or as a plain name."""
    if isinstance(board, str):
        return board, None
    return str(board.name), (str(board.family) if getattr(board, "family", None) else None)


def record_environment(board: object, **facts: Any) -> None:
    """Facts about a board for the report environment: firmware, vid, pid, emulated, serial, ..."""
    name, family = board_identity(board)
    emit({"kind": "env", "board": name, "family": family, **facts})


def run_dir(directory: Path) -> Path:
    """The records of one run: `directory` itself if it holds records, else its newest run sub-directory.

    The plugin writes `<reports>/hil-records/<run id>/`; run ids start with a timestamp, so they sort.
    """
    directory = Path(directory)
    if not directory.is_dir() or any(directory.glob("*.jsonl")):
        return directory
    runs = sorted(p for p in directory.iterdir() if p.is_dir() and any(p.glob("*.jsonl")))
    return runs[-1] if runs else directory


def read_records(directory: Path) -> Iterator[dict[str, Any]]:
    """Every record of one run (see `run_dir`); unreadable lines (a killed writer) are skipped."""
    directory = run_dir(directory)
    if not directory.is_dir():
        return
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record
