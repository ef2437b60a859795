"""Failure categories on every test phase, one retry for infrastructure-only failures, redacted reports.

Why a replacement `pytest_runtest_protocol` (the approach of pytest-rerunfailures, minus its options): the
retry decision needs the exception, not the report, and must re-run failed session-scoped fixtures (a
provisioning that hit a programmer timeout), which the default protocol caches. Reports of a test are held
until its last attempt, so the terminal, JUnit XML and the xdist controller see exactly one outcome.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _pytest.runner import runtestprotocol  # what pytest's own protocol calls; rerun plugins use it too

from hil.reports import records
from hil.reports.categories import INFRASTRUCTURE, annotate
from hil.reports.redact import redact

RETRY_PROPERTY = "hil_infrastructure_retry"
_PHASE_CATEGORY = pytest.StashKey[dict[str, str | None]]()


def _categorize(item: pytest.Item, when: str) -> Iterator[None]:
    try:
        return (yield)
    except BaseException as exc:
        item.stash.setdefault(_PHASE_CATEGORY, {})[when] = annotate(exc)
        raise


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    return (yield from _categorize(item, "setup"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    return (yield from _categorize(item, "call"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    return (yield from _categorize(item, "teardown"))


def _infrastructure_only(item: pytest.Item, reports: list[pytest.TestReport]) -> bool:
    """True when some phase failed and every failed phase failed for an infrastructure reason."""
    categories = item.stash.get(_PHASE_CATEGORY, {})
    failed = [r.when for r in reports if r.failed]
    return bool(failed) and all(categories.get(when) == INFRASTRUCTURE for when in failed)


def _first_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return redact(text.splitlines()[0] if text else "infrastructure failure")


def _close_allure_attempt(item: pytest.Item) -> None:
    """Write the first attempt as its own allure result (same history id: shown as a retry of the test).

    allure-pytest opens one result per protocol run and closes it in `pytest_runtest_logfinish`; closing it
    here makes its `pytest_runtest_setup` open a fresh one for the second attempt.
    """
    listener = item.config.pluginmanager.get_plugin("allure_listener")
    cache = getattr(listener, "_cache", None)
    if cache is None:
        return
    test_uuid = cache.pop(item.nodeid)
    if test_uuid:
        listener.allure_logger.close_test(test_uuid)


def _forget_failed_fixtures(item: pytest.Item) -> None:
    """Drop cached fixture failures (a session fixture that timed out) so the retry runs them again."""
    if not hasattr(item, "_initrequest"):
        return
    item._initrequest()
    info = getattr(item, "_fixtureinfo", None)
    for defs in getattr(info, "name2fixturedefs", {}).values():
        for fixturedef in defs:
            cached = fixturedef.cached_result
            if cached is not None and cached[2] is not None:
                fixturedef.finish(item._request)  # type: ignore[attr-defined]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool:
    """pytest's protocol, plus one re-run when the only failures were infrastructure failures."""
    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    item.stash[_PHASE_CATEGORY] = {}
    reports = runtestprotocol(item, nextitem=nextitem, log=False)
    if _infrastructure_only(item, reports):
        first = next(_first_line(r) for r in reports if r.failed)
        _close_allure_attempt(item)
        _forget_failed_fixtures(item)
        item.stash[_PHASE_CATEGORY] = {}
        sink = records.current()
        if sink is not None:
            sink.attempt = 2
        try:
            reports = runtestprotocol(item, nextitem=nextitem, log=False)
        finally:
            if sink is not None:
                sink.attempt = 1
        note = f"attempt 1 failed with an infrastructure error and was retried once: {first}"
        for report in reports:
            report.user_properties.append((RETRY_PROPERTY, first))
            report.sections.append(("hil infrastructure retry", note))
    for report in reports:
        ihook.pytest_runtest_logreport(report=_redacted(item.config, report))
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def _redacted(config: pytest.Config, report: pytest.TestReport) -> pytest.TestReport:
    """The report with secrets removed from tracebacks, messages and captured output, before anyone sees it.

    Done here, in the process that ran the test and registered its secrets, so the terminal, JUnit XML and
    the xdist controller only ever get the redacted report. Goes through pytest's own report serialisation
    (the form xdist ships between processes), so every field is covered without knowing its structure.
    """
    data = config.hook.pytest_report_to_serializable(config=config, report=report)
    if data is None:
        return report
    # Identity fields stay as they are: test names such as test_secret_fields are not secrets, and xdist
    # matches reports to items by node id (a parametrize id may contain a registered test key).
    kept = {k: data.pop(k) for k in ("keywords", "nodeid", "location") if k in data}
    clean = redact(data)
    if clean == data:
        return report
    clean.update(kept)
    return config.hook.pytest_report_from_serializable(config=config, data=clean) or report


def pytest_terminal_summary(terminalreporter: object, config: pytest.Config) -> None:
    retried: dict[str, str] = {}
    for reports in terminalreporter.stats.values():  # type: ignore[attr-defined]
        for report in reports:
            for name, value in getattr(report, "user_properties", ()):
                if name == RETRY_PROPERTY:
                    retried.setdefault(report.nodeid, str(value))
    if retried:
        terminalreporter.section("hil: infrastructure retries")  # type: ignore[attr-defined]
        for nodeid, message in retried.items():
            terminalreporter.line(f"{nodeid}: retried once after: {message}")  # type: ignore[attr-defined]
