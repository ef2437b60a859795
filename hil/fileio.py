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
from typing import NoReturn

from hil.errors import InputError

SECRET_MODE = 0o600
PUBLIC_MODE = 0o644


def atomic_write(path: str | os.PathLike[str], data: bytes, *, secret: bool = False) -> Path:
    """Write `data` to `path` atomically; mode 0600 when `secret` (private keys, AES keys)."""
    path = Path(path)
    tmp = _stage(path, data, secret)
    try:
        os.replace(tmp, path)
    except BaseException as exc:
        _discard(tmp, path, exc)
    return path


def unwritable(path: Path, exc: OSError) -> InputError:
    """The one-line error for an output that cannot be written (missing/read-only dir, a directory there).

    An output path is user input: a typo'd or read-only directory is exit 2 with the path named, never a
    traceback.
    """
    reason = exc.strerror or str(exc)
    return InputError.field("output", str(path), f"a file path in a writable directory ({reason})")


def make_dir(path: str | os.PathLike[str], *, what: str = "output") -> Path:
    """`mkdir -p path` for an output or state directory; an impossible one is an InputError naming
    `what` (the option or variable the user sets it with)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError.field(
            what, str(path), f"a directory that can be created ({exc.strerror or exc})"
        ) from None
    return path


def _stage(path: Path, data: bytes, secret: bool) -> str:
    """`data` in a complete temporary file beside `path` (its mode set), ready to be renamed over it."""
    if path.is_dir():
        raise unwritable(path, IsADirectoryError(21, "is a directory"))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise unwritable(path, exc) from None
    try:
        os.fchmod(fd, SECRET_MODE if secret else PUBLIC_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as exc:
        _discard(tmp, path, exc)
    return tmp


def _discard(tmp: str, path: Path, exc: BaseException) -> NoReturn:
    """Remove the temporary file of a failed write and re-raise: an OS error as the one-line InputError."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    if isinstance(exc, OSError):
        raise unwritable(path, exc) from None
    raise exc


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
        """Stage every file first, then rename them all: an unwritable one leaves none of the set behind."""
        staged: list[tuple[str, Path]] = []
        try:
            for path, data, secret in self._files:
                staged.append((_stage(path, data, secret), path))
            for tmp, path in staged:
                try:
                    os.replace(tmp, path)
                except OSError as exc:
                    raise unwritable(path, exc) from None
                self.written.append(path)
        finally:
            for tmp, _ in staged:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
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
