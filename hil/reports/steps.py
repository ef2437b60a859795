"""`step()`: one harness step on one board, as an allure step, a categorised failure and a summary record.

Fixtures (and suites) wrap each manufacturing step in it:

    with step("flashing", board, title="write factory data at 0x9D600") as s:
        write_region(programmer, target, image)
        s.facts["factory_data_sha256"] = sha256(image).hexdigest()

On success the record says `passed`; on an exception the category is written into the exception
(`hil.reports.categories.annotate`) and the record says `broken` for an infrastructure failure, `failed`
otherwise, `skipped` for a pytest skip; the exception always propagates. Titles, messages and facts are
redacted before they are recorded or shown.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import allure
import pytest

from hil.reports import records
from hil.reports.allure import attach_json
from hil.reports.categories import INFRASTRUCTURE, annotate
from hil.reports.redact import redact


@dataclass
class StepResult:
    """What the body of a step may add: facts for the summary (SHA-256, DAC serial, addresses, ...)."""

    step: str
    board: str
    family: str | None
    facts: dict[str, Any] = field(default_factory=dict)
    verdict: str = "passed"
    category: str | None = None
    message: str | None = None
    duration_s: float = 0.0


def _verdict(exc: BaseException, category: str | None) -> str:
    if isinstance(exc, pytest.skip.Exception):
        return "skipped"
    if category == INFRASTRUCTURE or not isinstance(exc, Exception):
        return "broken"
    return "failed"


@contextmanager
def step(
    name: str,
    board: object,
    *,
    title: str | None = None,
    category: str | None = None,
) -> Iterator[StepResult]:
    """Run one step on `board` (a profile-like object with .name/.family, or a board name).

    `name` is the summary column (generation, flashing, firmware, conversion, attestation, commissioning,
    or any other word); `category` overrides the failure category when `name` is not one of those.
    The duration is the time the with-block took: report a step while it runs (the pytest fixtures open
    it from the strategy's `on_step_start`), never after the fact.
    """
    board_name, family = records.board_identity(board)
    result = StepResult(step=name, board=board_name, family=family)
    started = datetime.now(UTC).isoformat(timespec="milliseconds")
    t0 = time.perf_counter()
    try:
        with allure.step(redact(title or f"{name}: {board_name}")):
            try:
                yield result
            except BaseException as exc:
                result.category = annotate(exc, category or name)
                result.verdict = _verdict(exc, result.category)
                result.message = redact(f"{type(exc).__name__}: {exc}".splitlines()[0])
                raise
            finally:
                if result.facts:
                    attach_json(result.facts, f"{name} facts")
    finally:
        result.duration_s = round(time.perf_counter() - t0, 6)
        records.emit(
            {
                "kind": "step",
                "board": board_name,
                "family": family,
                "step": name,
                "title": title,
                "verdict": result.verdict,
                "category": result.category,
                "message": result.message,
                "duration_s": result.duration_s,
                "started": started,
                "test": records.current_test(),
                "facts": result.facts,
            }
        )
