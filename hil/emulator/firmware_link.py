"""The harness's side of the emulated firmware's control ops: Matter node config and DAC signatures.

On silicon the Matter stack runs on the chip and signs attestation challenges with the DAC key (plain in
flash, or inside the secure subsystem). An emulated board's Matter node runs as a separate process in a
network namespace (`hil.emulator.matter_device.MatterNode`), so the chip's part is reached over the board's
control channel instead: `node_config(board)` returns the NodeConfig the firmware built from its factory
data at boot (no key material crosses), and its signer is a `BoardSigner`, which asks the board process to
sign (control op ``sign``): the key, or the SSS blob's key, never leaves the board process.

    report = hil.boot.reboot(profile)           # boot verdict from the console
    config = node_config(profile)               # NodeConfig(signer=BoardSigner(...))
    with MatterNode(config, sandbox) as node: ...
"""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING, Any

from hil.emulator.board import BoardHandle, ensure_running
from hil.emulator.matter_device import NodeConfig
from hil.errors import BoardError

if TYPE_CHECKING:
    from hil.boards.profile import BoardProfile

_BYTES_FIELDS = ("spake2p_salt", "spake2p_verifier", "dac_cert", "pai_cert", "cd")
_BOOTING = ("firmware is reset", "firmware is booting")


def _handle(board: BoardProfile | BoardHandle) -> BoardHandle:
    return board if isinstance(board, BoardHandle) else ensure_running(board)


class BoardSigner:
    """A `matter_device.Signer` that signs inside the board process (plain DAC key or SSS blob)."""

    def __init__(self, board: BoardProfile | BoardHandle) -> None:
        self.handle = _handle(board)

    def sign(self, message: bytes) -> bytes:
        return bytes.fromhex(self.handle.request("sign", message=bytes(message).hex())["der"])

    def __repr__(self) -> str:
        return f"BoardSigner({self.handle.name})"


def firmware_state(board: BoardProfile | BoardHandle) -> dict[str, Any]:
    """The last boot's outcome as the firmware records it (debugging; the harness reads the console)."""
    return _handle(board).request("firmware")


def node_config(board: BoardProfile | BoardHandle, *, timeout: float = 10.0) -> NodeConfig:
    """The NodeConfig of the running app; waits while a boot is in progress, BoardError if it failed."""
    handle = _handle(board)
    deadline = time.monotonic() + timeout
    while True:
        try:
            reply = handle.request("node_config")
            break
        except BoardError as exc:
            if not any(s in str(exc) for s in _BOOTING) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    fields = dict(reply["config"])
    for name in _BYTES_FIELDS:
        fields[name] = base64.b64decode(fields[name])
    return NodeConfig(signer=BoardSigner(handle), **fields)


def arm_power_cut(board: BoardProfile | BoardHandle, after_bytes: int | None) -> None:
    """Fault injection: kill the board process after `after_bytes` bytes of its next factory-data rewrite
    (None disarms). The flash keeps what was programmed, as after a real power cut."""
    _handle(board).request("firmware_faults", power_cut_after_bytes=after_bytes)
