"""Writing outputs so that nothing is lost: atomic replace, secrets at mode 0600, no clobbering on failure.

A failing run must never leave a half-written file or damage an existing one, so every output goes to a
temporary file in the destination directory and is renamed into place only when complete. `OutputSet`
extends that to a group of files (e.g. a PAA/PAI/DAC set): all are staged first and committed together.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

SECRET_MODE = 0o600
PUBLIC_MODE = 0o644


def atomic_write(path: str | os.PathLike[str], data: bytes, *, secret: bool = False) -> Path:
    """Write `data` to `path` atomically; mode 0600 when `secret` (private keys, AES keys)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, SECRET_MODE if secret else PUBLIC_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str, *, secret: bool = False) -> Path:
    return atomic_write(path, text.encode(), secret=secret)


class OutputSet:
    """Stage several outputs and write them all only after every one was produced.

    Use as a context manager: `add()` files inside the block; they are written when the block exits
    without an exception, and nothing is written when it raises.
    """

    def __init__(self) -> None:
        self._files: list[tuple[Path, bytes, bool]] = []
        self.written: list[Path] = []

    def add(self, path: str | os.PathLike[str], data: bytes, *, secret: bool = False) -> None:
        self._files.append((Path(path), data, secret))

    def commit(self) -> list[Path]:
        for path, data, secret in self._files:
            self.written.append(atomic_write(path, data, secret=secret))
        self._files.clear()
        return self.written

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self._files.clear()


@contextlib.contextmanager
def staged_dir(final: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary sibling directory renamed to `final` when the block succeeds (crash-safe batches)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
