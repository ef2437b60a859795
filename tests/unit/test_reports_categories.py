"""Failure categories (one table: allure categories, retry decision, summary) and the environment file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hil.errors import (
    AttestationError,
    BoardError,
    CommissioningError,
    ConfigError,
    FirmwareError,
    ProgrammerError,
    TransientError,
)
from hil.lab.locks import BoardLockTimeout
from hil.reports.allure import environment_entries, write_environment
from hil.reports.categories import NAMES, STEPS, allure_categories, annotate, category_of, is_infrastructure


@pytest.mark.parametrize(
    ("exc", "step", "category"),
    [
        (TransientError("timeout"), None, "infrastructure"),
        (TransientError("timeout"), "flashing", "infrastructure"),  # infrastructure wherever it happens
        (BoardLockTimeout("b", 1.0, None, Path("/x")), "commissioning", "infrastructure"),
        (ProgrammerError("read-back differs"), None, "flashing"),
        (FirmwareError("bad hash"), "conversion", "conversion"),  # the step wins over the class
        (AssertionError("1 != 2"), "attestation", "attestation"),
        (FirmwareError("bad hash"), None, "firmware"),
        (AttestationError("PAA"), None, "attestation"),
        (CommissioningError("CASE"), None, "commissioning"),
        (ConfigError("boards.toml"), None, "generation"),
        (AssertionError("plain"), None, None),
        (BoardError("emulator exited"), None, None),
    ],
)
def test_category_order(exc: BaseException, step: str | None, category: str | None) -> None:
    assert category_of(exc, step) == category
    assert is_infrastructure(exc) == (category == "infrastructure")


def test_an_exception_may_declare_its_category() -> None:
    class EmulatorCrashed(BoardError):
        hil_category = "infrastructure"

    assert category_of(EmulatorCrashed("board process died"), "flashing") == "infrastructure"


def test_a_wrapper_keeps_the_category_its_cause_carries() -> None:
    """hil.strategy wraps a non-HilError in a BoardError raised from it: a category the cause carries
    (its own, a note, an infrastructure class) survives the wrapping; otherwise the step decides."""

    class LabLinkDown(OSError):
        hil_category = "infrastructure"

    def wrapped(cause: BaseException) -> BoardError:
        error = BoardError(f"flash: {type(cause).__name__}: {cause}")
        error.__cause__ = cause
        return error

    assert category_of(wrapped(LabLinkDown("gone")), "flashing") == "infrastructure"
    assert category_of(wrapped(wrapped(TransientError("probe lost"))), "flashing") == "infrastructure"
    noted = AssertionError("blob size")
    annotate(noted, "conversion")
    assert category_of(wrapped(noted), "commissioning") == "conversion"
    assert category_of(wrapped(OSError("disk full")), "flashing") == "flashing"
    assert category_of(wrapped(OSError("disk full"))) is None


def test_annotate_once_innermost_wins_and_allure_regex_matches() -> None:
    exc = FirmwareError("rejected")
    assert annotate(exc, "conversion") == "conversion"
    assert annotate(exc, "commissioning") == "conversion"  # an outer step does not re-categorise
    assert exc.__notes__ == ["[hil category: conversion]"]
    message = f"hil.errors.FirmwareError: rejected\n{exc.__notes__[0]}"  # what allure-pytest records
    matching = [c["name"] for c in allure_categories() if re.fullmatch(c["messageRegex"], message)]
    assert matching == ["conversion"]
    assert annotate(AssertionError("x")) is None and not hasattr(AssertionError("x"), "__notes__")


def test_the_table_names_the_issue_categories() -> None:
    assert NAMES == (
        "infrastructure",
        "generation",
        "flashing",
        "firmware",
        "conversion",
        "attestation",
        "commissioning",
    )
    assert NAMES[1:] == STEPS
    assert all(c["matchedStatuses"] == ["failed", "broken"] for c in allure_categories())


def test_environment_file(tmp_path: Path) -> None:
    entries = environment_entries(
        {
            "k32w1-emu": {"family": "k32w1", "firmware": "lighting 1.4", "vid": 0xFFF1, "pid": 0x8005},
            "rt1060-lab1": {"family": "rt1060", "emulated": False, "serial": "A1=B2"},
        },
        harness_version="0.1.0",
        extra={"hil.target": "all"},
    )
    assert entries["boards"] == "k32w1-emu, rt1060-lab1"
    assert entries["board.k32w1-emu"] == "family k32w1, firmware lighting 1.4, VID/PID 0xFFF1/0x8005"
    assert entries["board.rt1060-lab1"] == "family rt1060, real, serial A1=B2"
    path = write_environment(tmp_path, {**entries, "note": "µ: dac_private_key=abc"})
    lines = path.read_text().splitlines()
    assert "harness.version=0.1.0" in lines and "hil.target=all" in lines
    assert r"board.rt1060-lab1=family rt1060, real, serial A1\=B2" in lines  # java.util.Properties escaping
    assert r"note=\u00b5\: dac_private_key\=[REDACTED]" in lines
