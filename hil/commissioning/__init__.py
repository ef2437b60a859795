"""Commissioning: prove that a board's credentials are accepted by a real Matter commissioner.

- `sandbox`: a private network + mount namespace (veth pair, tmpfs /data) so nothing leaves the machine;
- `controller`: the CHIP SDK Python controller in a child process, one per PAA trust store;
- `chip_tool`: the SDK's chip-tool binary, for real boards (BLE + Thread);
- `verdict`: the outcome (stage, SDK attestation code by name, timings, log path);
- `trust_store`: PAA directories that hold the PAA under test and nothing else.

The emulated Matter node lives in `hil.emulator.matter_device`.
"""

from __future__ import annotations

from hil.commissioning.sandbox import Sandbox, SandboxUnavailable
from hil.commissioning.verdict import AttestationResult, Stage, Timings, Verdict

__all__ = ["AttestationResult", "Sandbox", "SandboxUnavailable", "Stage", "Timings", "Verdict"]
