"""Test-wide settings.

Hypothesis: on CI (`CI` set, as `.ci/run` and most CI systems do) property tests are derandomized, so a
run is repeatable and a red CI always means a change broke something; at a developer's desk they explore
new random examples every run, which is where the fuzzers find new bugs (and the failing example is
printed for a regression test).
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
