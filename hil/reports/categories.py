"""Failure categories: one table drives the allure categories file, the retry decision and the summary.

A failure's category is decided where the most is known, in this order:

1. the exception says so itself (`hil_category` class attribute, e.g. hil.lab.labgrid.LabError);
2. infrastructure classes (programmer timeout / probe lost after the programmer's own bounded retries, a
   board lock that never came free) are infrastructure wherever they happen;
   1 and 2 (and a category already noted, see below) are also read from the exception's `__cause__`
   chain, so wrapping keeps them: hil.strategy turns a non-HilError into a BoardError raised from it;
3. the harness step it happened in (`hil.reports.step("conversion", ...)`), so an assertion or a
   FirmwareError during the DAC-key conversion lands in "conversion";
4. the exception class (ProgrammerError -> flashing, AttestationError -> attestation, ...).

The category is written into the exception as a note (`[hil category: flashing]`, PEP 678), which pytest
prints and allure-pytest copies into the result's message; the allure categories file matches that note.
Only infrastructure failures are retried (once, by the plugin); product failures never are.
"""

from __future__ import annotations

from dataclasses import dataclass

from hil.errors import (
    AttestationError,
    CommissioningError,
    FirmwareError,
    InputError,
    ProgrammerError,
    TransientError,
)
from hil.lab.locks import BoardLockTimeout

INFRASTRUCTURE = "infrastructure"
_NOTE = "[hil category: {}]"


@dataclass(frozen=True)
class Category:
    name: str
    description: str
    classes: tuple[type[BaseException], ...] = ()


CATEGORIES: tuple[Category, ...] = (
    Category(
        INFRASTRUCTURE,
        "programmer timeout, probe lost, board lock not released: retried once, not a product failure",
        (TransientError, BoardLockTimeout),
    ),
    Category("generation", "credentials or factory data could not be made from the inputs", (InputError,)),
    Category("flashing", "writing or verifying flash failed (not a transient fault)", (ProgrammerError,)),
    Category("firmware", "the firmware rejected its factory data or did not boot", (FirmwareError,)),
    Category("conversion", "DAC private key to secure-subsystem blob conversion failed"),
    Category("attestation", "device attestation failed (offline check or commissioner)", (AttestationError,)),
    Category("commissioning", "commissioning failed at a named stage", (CommissioningError,)),
)
NAMES = tuple(c.name for c in CATEGORIES)
STEPS = NAMES[1:]
"""The harness steps, in flow order; each is also the category of a failure inside it."""


def category_of(exc: BaseException, step: str | None = None) -> str | None:
    """The category of `exc` (see the module docstring for the order), or None (a plain test failure)."""
    declared = _declared_category(exc)
    if declared:
        return declared
    if step in NAMES:
        return step
    for category in CATEGORIES[1:]:
        if category.classes and isinstance(exc, category.classes):
            return category.name
    return None


def _declared_category(exc: BaseException) -> str | None:
    """The category `exc` or a cause of it carries wherever it happens: its own `hil_category`, a note,
    an infrastructure class; the outermost one that has any wins."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        own = getattr(cause, "hil_category", None)
        if own in NAMES:
            return own
        noted = noted_category(cause)
        if noted:
            return noted
        if isinstance(cause, CATEGORIES[0].classes):
            return INFRASTRUCTURE
        cause = cause.__cause__
    return None


def noted_category(exc: BaseException) -> str | None:
    """The category already written into `exc` by `annotate`, if any."""
    for note in getattr(exc, "__notes__", ()):
        for name in NAMES:
            if note == _NOTE.format(name):
                return name
    return None


def annotate(exc: BaseException, step: str | None = None) -> str | None:
    """Write `exc`'s category into it as a note (once; the innermost step wins) and return the category."""
    noted = noted_category(exc)
    if noted:
        return noted
    category = category_of(exc, step)
    if category:
        exc.add_note(_NOTE.format(category))
    return category


def is_infrastructure(exc: BaseException) -> bool:
    return category_of(exc) == INFRASTRUCTURE


def allure_categories() -> list[dict[str, object]]:
    """The allure `categories.json` content: one entry per category, matched on the note."""
    return [
        {
            "name": c.name,
            "description": c.description,
            "matchedStatuses": ["failed", "broken"],
            "messageRegex": r"(?s).*\[hil category: " + c.name + r"\].*",
        }
        for c in CATEGORIES
    ]
