"""End of the session (main process only): allure environment + categories, and the qualification summary
from this run's step records. Workers write records; only the main process reads them, after all workers
have finished."""

from __future__ import annotations

import platform
import shutil
from typing import Any

import pytest

import hil
from hil.pytest_plugin.state import state
from hil.reports import records
from hil.reports.allure import environment_entries, write_categories, write_environment
from hil.reports.qualification import write_summary

_RECORD_META = {"kind", "board", "family", "attempt", "worker"}
KEEP_RUNS = 5


def board_facts(recs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Board name -> merged facts (family, firmware, vid, pid, emulated, ...) from env and step records."""
    boards: dict[str, dict[str, Any]] = {}
    for rec in recs:
        if rec.get("board") and rec.get("kind") in ("env", "step"):
            facts = boards.setdefault(rec["board"], {})
            if rec.get("family"):
                facts["family"] = rec["family"]
            if rec["kind"] == "env":
                facts.update({k: v for k, v in rec.items() if k not in _RECORD_META and v is not None})
    return boards


@pytest.hookimpl(trylast=True)  # after junitxml/allure wrote theirs
def pytest_sessionfinish(session: pytest.Session) -> None:
    s = state(session.config)
    if s.is_worker:
        return
    recs = list(records.read_records(s.records_dir))
    if s.alluredir is not None:
        extra = {"hil.target": s.target, "python": platform.python_version(), "pytest": pytest.__version__}
        entries = environment_entries(board_facts(recs), harness_version=hil.__version__, extra=extra)
        write_environment(s.alluredir, entries)
        write_categories(s.alluredir)
    if recs:
        s.summary = write_summary(s.records_dir, s.reports_dir)
        # Keep the newest few runs' records (run ids sort by time): enough for a run that is still going in
        # another process on the same reports dir, without growing forever.
        runs = sorted(p for p in s.records_dir.parent.iterdir() if p.is_dir())
        for old in runs[:-KEEP_RUNS]:
            if old != s.records_dir:
                shutil.rmtree(old, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    summary = state(config).summary
    if summary:
        terminalreporter.line(f"hil: qualification summary: {summary[0]} and {summary[1]}")
