"""Test helpers: an inventory of emulated boards in a temporary state root, each board its own process.

The boards are the real thing the harness uses (`hil.emulator.board`, started by `ensure_running` as a
separate process); the tests reach them only through their wires (pty, J-Link probe) and, for assertions,
through the flash files the board process persists and its control channel.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from hil import programmers
from hil.boards import BoardProfile, load_inventory
from hil.emulator.board import BoardHandle, ensure_running, find_running, state_dir
from hil.emulator.faults import FaultPlan
from hil.errors import ProgrammerError, TransientError

# Short per-response timeouts: a dropped frame costs one timeout, and a pty answers in microseconds.
TIMEOUT_MS = 300


def inventory_text(boards: dict[str, str]) -> str:
    """boards.toml for {name: "family[|extra toml lines]"} with a short timeout on every board."""
    out = []
    for name, spec in boards.items():
        family, _, extra = spec.partition("|")
        out.append(
            f'[board.{name}]\nfamily = "{family}"\nemulated = true\n{extra}\n'
            f"[board.{name}.connection]\ntimeout_ms = {TIMEOUT_MS}\n"
        )
    return "\n".join(out)


@dataclass
class Lab:
    """A temporary lab: inventory file + state root (HIL_STATE_DIR) for emulated board processes."""

    root: Path
    inventory: Path
    app: bytes = b""  # the flash a test prefilled (the "application"): the bytes a write must leave alone

    def profile(self, name: str) -> BoardProfile:
        return load_inventory(self.inventory).get(name)

    def flash_file(self, name: str, region: str = "FLASH") -> Path:
        return state_dir(name, self.root) / f"flash-{region}.bin"

    def flash_bytes(self, name: str, region: str = "FLASH") -> bytes:
        return self.flash_file(name, region).read_bytes()

    def prefill(self, name: str, data: bytes, region: str = "FLASH") -> None:
        """Flash content before the board's first start (an 'application' already on the chip)."""
        path = self.flash_file(name, region)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def expected_flash(self, image: bytes, address: int, size: int) -> bytes:
        """The flash after a verified write of `image` into the `size`-byte region at `address`: the
        prefilled bytes outside the region, the image, then erased bytes to the region's end."""
        return self.app[:address] + image + b"\xff" * (size - len(image)) + self.app[address + size :]

    def start(self, name: str) -> BoardHandle:
        return ensure_running(self.profile(name), root=self.root)

    def fault_free(self, name: str) -> Iterator[BoardHandle]:
        """Fixture body: the board started, with no fault plan before or after the test."""
        handle = self.start(name)
        handle.install_faults(None)
        yield handle
        handle.install_faults(None)

    def running(self, name: str) -> BoardHandle | None:
        return find_running(name, self.root)

    def stop_all(self) -> None:
        for profile in load_inventory(self.inventory):
            handle = find_running(profile.name, self.root)
            if handle is not None:
                handle.stop()


@contextmanager
def lab(tmp: Path, boards: dict[str, str]) -> Iterator[Lab]:
    """A lab whose state root is also exported as HIL_STATE_DIR (so `hil.programmers` finds it)."""
    root = tmp / "state"
    root.mkdir(parents=True, exist_ok=True)
    inventory = tmp / "boards.toml"
    inventory.write_text(inventory_text(boards))
    the_lab = Lab(root, inventory)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HIL_STATE_DIR", str(root))
        mp.setenv("HIL_BOARDS", str(inventory))
        try:
            yield the_lab
        finally:
            the_lab.stop_all()


def random_image(n: int, seed: int) -> bytes:
    import random

    return random.Random(seed).randbytes(n)


def assert_other_process(handle: BoardHandle) -> None:
    assert handle.pid != os.getpid()


def cut_write_then_recover(
    the_lab: Lab, board: BoardHandle, image: bytes, *, cut: int, address: int, size: int
) -> ProgrammerError:
    """Flash `image` with the link cut after `cut` bytes: it must fail as infrastructure (TransientError,
    once the retries are spent), leaving the region erased with only its first `cut` bytes programmed; with
    the link back, the same call succeeds at the first attempt. Returns the error of the cut write, for the
    backend's own checks of its message."""
    profile = the_lab.profile(board.name)
    board.install_faults(FaultPlan(disconnect_after_bytes=cut))
    with pytest.raises(TransientError) as exc:
        programmers.flash(profile, image)
    assert board.status()["faults"]["disconnected"]
    region = the_lab.flash_bytes(board.name)[address : address + size]
    assert region[:cut] == image[:cut] and region[cut:] == b"\xff" * (size - cut)
    board.install_faults(None)
    assert programmers.flash(profile, image).attempts == 1
    assert the_lab.flash_bytes(board.name) == the_lab.expected_flash(image, address, size)
    return exc.value
