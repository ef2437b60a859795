"""What a board holds and how it got there, kept in its state dir so other processes and commands know.

Why on disk: `hil commission --board X` (another process, maybe another day) must commission against the
PAA that provisioned X, with X's passcode, which X itself never reveals (the passcode is not readable from
a commissionable node). Pytest workers asking for the same board in a state must also agree on whether it
is already there, or broken.

Files in ``<state root>/<board>/`` (the emulated board's own dir; for a real board the same path holds only
these):
    strategy.json     BoardRecord as JSON, mode 0600 (it holds the setup passcode)
    provisioned-paa.der   the PAA of the PKI that provisioned the board (the default trust store)

`plan` is the fingerprint of the plan whose content the board now holds (hil.strategy); `broken` maps plan
fingerprints to the first failure met with that plan.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from hil.errors import InputError
from hil.fileio import atomic_write, atomic_write_text

RECORD_FILE = "strategy.json"
PAA_FILE = "provisioned-paa.der"


def board_dir(name: str) -> Path:
    """The board's state dir (honours $HIL_STATE_DIR, like the emulated board processes)."""
    from hil.emulator.board import state_dir

    return state_dir(name)


@dataclass
class BoardRecord:
    board: str
    plan: str | None = None
    state: str = "off"
    broken: dict[str, str] = field(default_factory=dict)
    pki: str | None = None  # PAA SKID prefix
    vid: int | None = None
    pid: int | None = None
    discriminator: int | None = None
    passcode: int | None = None
    dac_serial: str | None = None
    factory_data_sha256: str | None = None
    converted: bool = False
    updated: float | None = None

    @classmethod
    def load(cls, name: str) -> BoardRecord:
        path = board_dir(name) / RECORD_FILE
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return cls(name)
        except (OSError, ValueError) as exc:
            raise InputError(
                f"{path}: not a readable board record ({exc}); delete it to start over"
            ) from None
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def save(self) -> None:
        from hil.emulator.board import make_state_dir

        path = make_state_dir(self.board) / RECORD_FILE  # a bad $HIL_STATE_DIR: one line, exit 2
        atomic_write_text(path, json.dumps(asdict(self), indent=1, sort_keys=True) + "\n", secret=True)

    def save_paa(self, paa_der: bytes) -> Path:
        path = board_dir(self.board) / PAA_FILE
        atomic_write(path, paa_der)
        return path

    @staticmethod
    def paa_path(name: str) -> Path:
        return board_dir(name) / PAA_FILE

    def public(self) -> dict[str, Any]:
        """For reports: everything but the passcode."""
        out = asdict(self)
        out.pop("passcode")
        return out
