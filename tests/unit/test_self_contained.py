"""A clone with nothing beside it works: no file of the project reads or names a folder outside it.

Our machines have design notes in a sibling folder; a user's clone does not. A path into it works here and
fails everywhere else, so the check is by name, over every file the project ships or runs.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: What is searched: the library, its tests and benchmarks, and every set-up / CI / config file.
SEARCHED = ["hil", "tests", "benchmarks", ".ci", "Makefile", "conftest.py", "pyproject.toml", "boards.toml"]
OUTSIDE = "../" + "shared"  # split, so this file does not find itself


def _files() -> list[Path]:
    out: list[Path] = []
    for name in SEARCHED:
        path = REPO / name
        out += [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    return [p for p in out if "__pycache__" not in p.parts]


def test_no_project_file_names_a_folder_outside_the_repository():
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for path in _files()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE in line
    ]
    assert offenders == []


def test_the_search_covers_the_library_and_the_tests():
    names = {p.relative_to(REPO).as_posix() for p in _files()}
    assert {"hil/matter/test_cd_key.py", "tests/unit/cd_signing.py", ".ci/run", "Makefile"} <= names
