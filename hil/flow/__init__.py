"""The provisioning flow, one module per step; `hil.strategy` strings them together into board states.

- `credentials`: the session's PKI (PAA, PAI, signed CD) and each board's DeviceCredentials; test hooks;
- `factory`:     factory data for a board (its AES key / hw_params / region from the profile), validated;
- `board_io`:    app image, flash through the board's programmer, reset, boot report, DAC conversion,
                 the NodeConfig the board's firmware exposes (its signer goes to the board);
- `commission`:  the emulated board's Matter node in a commissioning sandbox, or chip-tool for a real one;
- `record`:      what a board was provisioned with (state, PAA, passcode, broken reason), in its state dir.
"""

from __future__ import annotations

from hil.flow.credentials import DeviceCredentials, Pki, TestHooks

__all__ = ["DeviceCredentials", "Pki", "TestHooks"]
