"""pytest plugin of the harness (registered by conftest.py and the `pytest11` entry point).

Options, markers and fixtures are thin adapters over the library; see ARCHITECTURE.md. This module grows
with the HIL suites; the board-family markers are declared here so `pytest -m k32w1` is always valid.
"""

from __future__ import annotations

import pytest

FAMILY_MARKERS = ("k32w0x1", "k32w1", "rt1060", "rt1170", "rw61x")


def pytest_configure(config: pytest.Config) -> None:
    for family in FAMILY_MARKERS:
        config.addinivalue_line("markers", f"{family}: runs on a {family.upper()} board (set automatically)")
    config.addinivalue_line("markers", "nightly: part of the nightly HIL run")
    config.addinivalue_line("markers", "qualification: part of release qualification")
