"""The one error hierarchy of the harness.

Every failure a user can cause or meet is a `HilError` subclass whose message names the field (or board,
address, step) and what is allowed. The CLI turns it into one line on stderr and the class's exit code;
nothing else is ever shown as a traceback. Exit codes are part of the CLI contract:

    0 ok, 2 bad input, 3 board or programmer failure, 4 attestation or commissioning failure.
"""

from __future__ import annotations


class HilError(Exception):
    """Base class: a failure with a message meant for the user."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(HilError):
    """Bad input: an argument, file or configuration value that is not allowed (exit 2)."""

    exit_code = 2

    @classmethod
    def field(cls, name: str, value: object, allowed: str) -> InputError:
        """The standard shape of a bad-value message: which field, what value, what is allowed."""
        return cls(f"{name}: {value!r} is not allowed; {allowed}")


class ConfigError(InputError):
    """A schema or value error in boards.toml or another configuration file (exit 2)."""


class BoardError(HilError):
    """A board, programmer, probe or emulator failed (exit 3)."""

    exit_code = 3


class ProgrammerError(BoardError):
    """A programmer step failed; the message names board, address and step."""


class TransientError(ProgrammerError):
    """A fault worth retrying (timeout, NAK, garbled frame); retried with a bound, then reported."""


class FirmwareError(BoardError):
    """The firmware on a board rejected its factory data or failed to boot; the message is its reason."""


class AttestationError(HilError):
    """Device attestation failed, offline or in a commissioner (exit 4)."""

    exit_code = 4


class CommissioningError(HilError):
    """Commissioning failed at a named stage (exit 4)."""

    exit_code = 4
