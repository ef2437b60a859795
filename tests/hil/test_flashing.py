"""Flashing with read back: both regions provisioning writes hold exactly what was written.

The strategy's programmer already verifies each write; these tests read the board again, independently,
through the same programmer a technician would use, and compare whole regions: the factory data followed
by erased flash (no stale bytes of an earlier, longer image), and the application image.
"""

from __future__ import annotations

import hashlib

import pytest

from hil import programmers
from hil.flow.board_io import app_for
from hil.pytest_plugin.fixtures import HilBoard
from hil.reports import FACT_FACTORY_DATA_SHA256, step

pytestmark = [pytest.mark.nightly, pytest.mark.qualification]


def test_factory_data_region_is_the_image_then_erased_flash(provisioned_board: HilBoard) -> None:
    hb = provisioned_board
    image, region = hb.factory_data.image, hb.profile.factory_data_region
    flashes = hb.steps("flash")
    assert flashes and all(s.ok for s in flashes), [s.line() for s in flashes]
    with step("flashing", hb.profile, title=f"read back 0x{region.address:X}+0x{region.size:X}") as s:
        data = programmers.read(hb.profile)
        s.facts[FACT_FACTORY_DATA_SHA256] = hashlib.sha256(data[: len(image)]).hexdigest()
    assert len(data) == region.size
    assert data[: len(image)] == image
    assert data[len(image) :] == b"\xff" * (region.size - len(image)), "stale bytes after the image"


def test_app_region_holds_the_app(provisioned_board: HilBoard) -> None:
    hb = provisioned_board
    app = app_for(hb.profile)
    if app is None:
        pytest.skip(f"{hb.name}: boards.toml gives no app (options.app): the board keeps the app it has")
    target = hb.profile.app_region_for(len(app))
    with step("flashing", hb.profile, title=f"read back the app at 0x{target.address:X}"):
        data = programmers.read(hb.profile, region=target)
    assert data[: len(app)] == app
