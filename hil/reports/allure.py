"""Allure output of the harness: redacted attachments, the environment and categories files, and a results
writer that redacts everything allure-pytest itself writes (failure messages, traces, captured output).

Attachment helpers are no-ops when allure is not active (no `--alluredir`), so fixtures call them always.
Each helper redacts before handing data to allure; `RedactingFileLogger` is the second line of defence and
covers what the harness does not produce itself (a key printed by a failing assertion, captured logs).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import allure
import allure_commons
from allure_commons.logger import AllureFileLogger
from attr import asdict

from hil.reports.categories import allure_categories
from hil.reports.redact import redact

ENVIRONMENT_FILE = "environment.properties"
CATEGORIES_FILE = "categories.json"


# --- attachments -------------------------------------------------------------------------------------------


def attach_text(body: str, name: str, *, extension: str = "txt", mime: str = "text/plain") -> None:
    """Attach text (a console log, a command line, a PEM certificate) after redaction."""
    allure.attach(redact(body), name=name, attachment_type=mime, extension=extension)


def attach_json(data: Any, name: str) -> None:
    """Attach JSON-like data (the factory-data inspector's output) with secret fields and values removed."""
    body = json.dumps(redact(data), indent=2, sort_keys=True, default=str)
    allure.attach(body, name=name, attachment_type=allure.attachment_type.JSON)


def attach_bytes(data: bytes, name: str, *, extension: str = "bin") -> None:
    """Attach a binary artefact (factory_data.bin); registered secrets inside it are overwritten."""
    body = redact(bytes(data))
    allure.attach(body, name=name, attachment_type="application/octet-stream", extension=extension)


def attach_file(path: str | os.PathLike[str], name: str | None = None) -> None:
    """Attach a file's content (text if it decodes as UTF-8, else bytes), redacted."""
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode()
    except UnicodeDecodeError:
        attach_bytes(data, name or path.name, extension=path.suffix.lstrip(".") or "bin")
    else:
        attach_text(text, name or path.name, extension=path.suffix.lstrip(".") or "txt")


def attach_certificate(cert: Any, name: str) -> None:
    """Attach a certificate as PEM; accepts a `cryptography` certificate, PEM text or DER bytes."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    if isinstance(cert, bytes):
        cert = (
            x509.load_pem_x509_certificate(cert)
            if cert.lstrip().startswith(b"-----")
            else (x509.load_der_x509_certificate(cert))
        )
    elif isinstance(cert, str):
        cert = x509.load_pem_x509_certificate(cert.encode())
    pem = cert.public_bytes(Encoding.PEM).decode()
    attach_text(pem, name, extension="pem", mime="application/x-pem-file")


# --- environment and categories ----------------------------------------------------------------------------


def _escape(text: str, *, key: bool) -> str:
    """Java .properties escaping (allure reads the file with java.util.Properties)."""
    out = []
    for i, ch in enumerate(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch in "\n\r\t\f":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\f": "\\f"}[ch])
        elif ch in "=:#!" or (ch == " " and (key or i == 0)):
            out.append("\\" + ch)
        elif ord(ch) > 0x7E or ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def write_environment(results_dir: str | os.PathLike[str], entries: Mapping[str, object]) -> Path:
    """Write allure's environment.properties (redacted; atomically) and return its path."""
    from hil.fileio import atomic_write_text

    lines = [f"{_escape(str(k), key=True)}={_escape(redact(str(v)), key=False)}" for k, v in entries.items()]
    return atomic_write_text(Path(results_dir) / ENVIRONMENT_FILE, "\n".join(lines) + "\n")


def write_categories(results_dir: str | os.PathLike[str]) -> Path:
    from hil.fileio import atomic_write_text

    body = json.dumps(allure_categories(), indent=2)
    return atomic_write_text(Path(results_dir) / CATEGORIES_FILE, body + "\n")


def environment_entries(
    boards: Mapping[str, Mapping[str, object]], *, harness_version: str, extra: Mapping[str, object] = {}
) -> dict[str, str]:
    """Environment lines: harness version, the boards, and one line per board with its facts.

    `boards` maps a board name to its merged facts (family, firmware, vid, pid, emulated, ...).
    """
    entries: dict[str, str] = {"harness.version": harness_version, **{k: str(v) for k, v in extra.items()}}
    entries["boards"] = ", ".join(sorted(boards)) or "(none)"
    for name in sorted(boards):
        facts = dict(boards[name])
        parts = []
        for key in ("family", "firmware"):
            if facts.get(key) is not None:
                parts.append(f"{key} {facts.pop(key)}")
        vid, pid = facts.pop("vid", None), facts.pop("pid", None)
        if vid is not None or pid is not None:
            parts.append(f"VID/PID {_hex16(vid)}/{_hex16(pid)}")
        emulated = facts.pop("emulated", None)
        if emulated is not None:
            parts.append("emulated" if emulated else "real")
        parts.extend(f"{k} {v}" for k, v in sorted(facts.items()) if v is not None)
        entries[f"board.{name}"] = ", ".join(parts)
    return entries


def _hex16(value: object) -> str:
    return f"0x{value:04X}" if isinstance(value, int) else str(value)


# --- the redacting results writer --------------------------------------------------------------------------


class RedactingFileLogger:
    """Writes allure results like `AllureFileLogger`, with every result, container and attachment redacted."""

    def __init__(self, report_dir: str | os.PathLike[str]) -> None:
        self._report_dir = Path(report_dir).absolute()
        self._report_dir.mkdir(parents=True, exist_ok=True)

    def _write(self, file_name: str, data: bytes) -> None:
        tmp = self._report_dir / f"{file_name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, self._report_dir / file_name)

    def _report_item(self, item: Any) -> None:
        data = redact(asdict(item, filter=lambda _, v: v or v is False))
        name = item.file_pattern.format(prefix=uuid.uuid4())
        self._write(name, json.dumps(data, ensure_ascii=False).encode())

    @allure_commons.hookimpl
    def report_result(self, result: Any) -> None:
        self._report_item(result)

    @allure_commons.hookimpl
    def report_container(self, container: Any) -> None:
        self._report_item(container)

    @allure_commons.hookimpl
    def report_globals(self, globals_item: Any) -> None:
        self._report_item(globals_item)

    @allure_commons.hookimpl
    def report_attached_data(self, body: str | bytes, file_name: str) -> None:
        data = redact(body).encode() if isinstance(body, str) else redact(bytes(body))
        self._write(file_name, data)

    @allure_commons.hookimpl
    def report_attached_file(self, source: str | os.PathLike[str], file_name: str) -> None:
        buf = io.BytesIO()
        with open(source, "rb") as f:
            shutil.copyfileobj(f, buf)
        self._write(file_name, redact(buf.getvalue()))


def install_redacting_logger() -> tuple[Path, Callable[[], None]] | None:
    """Swap allure-pytest's results writer for `RedactingFileLogger` (same directory).

    Call after allure-pytest's own `pytest_configure` (which has already cleaned the directory if asked).
    Returns the results directory and a `restore` callable that puts allure's writer back (register it as
    a config cleanup: allure-pytest's own cleanup expects to find its writer registered). Returns None
    when allure is not writing results.
    """
    pm = allure_commons.plugin_manager
    theirs = next((p for p in pm.get_plugins() if isinstance(p, AllureFileLogger)), None)
    if theirs is None:
        return None
    name = pm.get_name(theirs)
    report_dir = Path(theirs._report_dir)
    pm.unregister(theirs)
    ours = RedactingFileLogger(report_dir)
    pm.register(ours)

    def restore() -> None:
        pm.unregister(ours)
        pm.register(theirs, name=name)

    return report_dir, restore
