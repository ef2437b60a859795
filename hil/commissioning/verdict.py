"""The outcome of one commissioning attempt, read from the commissioner's own log.

Why the log: every attestation failure surfaces in Python (and in chip-tool's exit status) as one generic
`CHIP Error 0x00000020: Failed Device Attestation`; the specific AttestationVerificationResult appears
only in the SDK log line `Failed in verifying 'Attestation Information' ...: err NNN (text)`
(emulation-notes §3.7). The CHIP SDK Python controller and chip-tool share the SDK's log format
(`CHIP:<module>: <message>`), so one parser serves both.

`AttestationResult` is the one table of codes: the SDK's `AttestationVerificationResult` enum
(src/credentials/attestation_verifier/DeviceAttestationVerifier.h) with its names minus the `k`, and the
description strings the SDK prints (the order and texts match the strings in the 2025.7.0 wheel).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.errors import AttestationError, CommissioningError


class AttestationResult(enum.IntEnum):
    """The SDK's AttestationVerificationResult: `str(r)` is e.g. '101 PaaNotFound'."""

    description: str

    def __new__(cls, code: int, description: str) -> AttestationResult:
        obj = int.__new__(cls, code)
        obj._value_ = code
        obj.description = description
        return obj

    def __str__(self) -> str:
        return f"{self.value} {self.name}"

    Success = 0, "Success"
    PaaUntrusted = 100, "PAA is untrusted (OBSOLETE: consider using a different error)"
    PaaNotFound = 101, "PAA not found in DCL and/or local PAA trust store"
    PaaExpired = 102, "PAA is expired"
    PaaSignatureInvalid = 103, "PAA signature is invalid"
    PaaRevoked = 104, "PAA is revoked (consider removing from DCL or PAA trust store!)"
    PaaFormatInvalid = 105, "PAA format is invalid"
    PaaArgumentInvalid = 106, "PAA argument is invalid in some way according to X.509 backend"
    PaiExpired = 200, "PAI is expired"
    PaiSignatureInvalid = 201, "PAI signature is invalid"
    PaiRevoked = 202, "PAI is revoked"
    PaiFormatInvalid = 203, "PAI format is invalid"
    PaiArgumentInvalid = 204, "PAI argument is invalid in some way according to X.509 backend"
    PaiVendorIdMismatch = 205, "PAI vendor ID mismatch (did not match VID present in PAA)"
    PaiAuthorityNotFound = 206, "PAI authority not found (OBSOLETE: consider using a different error)"
    PaiMissing = 207, "PAI is missing/empty from attestation information data"
    PaiAndDacRevoked = 208, "Both PAI and DAC are revoked"
    DacExpired = 300, "DAC is expired"
    DacSignatureInvalid = 301, "DAC signature is invalid"
    DacRevoked = 302, "DAC is revoked"
    DacFormatInvalid = 303, "DAC format is invalid"
    DacArgumentInvalid = 304, "DAC is invalid in some way according to X.509 backend"
    DacVendorIdMismatch = (
        305,
        "DAC vendor ID mismatch (either between DAC and PAI, or between DAC and Basic Information cluster)",
    )
    DacProductIdMismatch = (
        306,
        "DAC product ID mismatch (either between DAC and PAI, or between DAC and Basic Information cluster)",
    )
    DacAuthorityNotFound = 307, "DAC authority not found (OBSOLETE: consider using a different error)"
    FirmwareInformationMismatch = 400, "Firmware information mismatch"
    FirmwareInformationMissing = 401, "Firmware information missing"
    AttestationSignatureInvalid = (
        500,
        "Attestation signature failed to validate against DAC subject public key",
    )
    AttestationElementsMalformed = 501, "Attestation elements payload is malformed"
    AttestationNonceMismatch = 502, "Attestation nonce does not match the one from Attestation Request"
    AttestationSignatureInvalidFormat = (
        503,
        "Attestation signature format is invalid (likely wrong signature algorithm in certificate)",
    )
    CertificationDeclarationNoKeyId = (
        600,
        "Certification declaration missing the required key ID in CMS envelope",
    )
    CertificationDeclarationNoCertificateFound = (
        601,
        "Could not find matching trusted verification certificate for the certification declaration's key ID",
    )
    CertificationDeclarationInvalidSignature = (
        602,
        "Certification declaration signature failed to validate against the verification certificate",
    )
    CertificationDeclarationInvalidFormat = 603, "Certification declaration format is invalid"
    CertificationDeclarationInvalidVendorId = (
        604,
        "Certification declaration vendor ID failed to cross-reference with DAC and/or PAI and/or Basic "
        "Information cluster",
    )
    CertificationDeclarationInvalidProductId = (
        605,
        "Certification declaration product ID failed to cross-reference with DAC and/or PAI and/or Basic "
        "Information cluster",
    )
    CertificationDeclarationInvalidPAA = (
        606,
        "Certification declaration required a fixed allowed PAA which does not match the final PAA found",
    )
    NoMemory = 700, "Failed to allocate memory to process attestation verification"
    InvalidArgument = (
        800,
        "Some unexpected invalid argument was provided internally to the device attestation procedure "
        "(likely malformed input data from candidate device)",
    )
    InternalError = (
        900,
        "An internal error arose in the device attestation procedure (likely malformed input data from "
        "candidate device)",
    )
    NotImplemented = 0xFFFF, "Reached a critical-but-unimplemented part of the device attestation procedure!"

    @classmethod
    def lookup(cls, code: int) -> AttestationResult | None:
        try:
            return cls(code)
        except ValueError:
            return None


class Stage(enum.StrEnum):
    """Where commissioning ended. COMPLETE is success; every other stage is a failure."""

    COMPLETE = "complete"
    CONTROLLER = "controller"  # the commissioner itself could not start or run
    DISCOVERY = "discovery"  # the commissionable node was not found (mDNS / BLE)
    PASE = "pase"  # the passcode session failed (wrong passcode, verifier or parameters)
    ATTESTATION = "attestation"  # device attestation failed (see the AttestationResult)
    COMMISSIONING = "commissioning"  # a later commissioning step failed (see `step`)
    TIMEOUT = "timeout"  # no outcome within the time limit


@dataclass(frozen=True)
class Timings:
    """Seconds. `controller_start_s`: commissioner process start to ready; `commission_s`: the call."""

    controller_start_s: float | None = None
    commission_s: float | None = None
    pase_s: float | None = None


@dataclass(frozen=True)
class Verdict:
    """One commissioning attempt: success, or the failing stage with the SDK's own reason."""

    stage: Stage
    method: str  # "ip", "discriminator", "code", "ble-thread", "onnetwork", ...
    node_id: int | None = None
    step: str | None = None  # the SDK commissioning step that failed, e.g. 'AttestationVerification'
    attestation: AttestationResult | None = None
    chip_error: str | None = None  # e.g. "0x00000020: Failed Device Attestation"
    message: str = ""
    log_path: Path | None = None
    timings: Timings = field(default_factory=Timings)
    details: dict[str, Any] = field(default_factory=dict)  # e.g. BasicInformation read over CASE

    @property
    def ok(self) -> bool:
        return self.stage is Stage.COMPLETE

    def summary(self) -> str:
        """One line for logs, reports and CLI errors."""
        if self.ok:
            t = self.timings.commission_s
            return f"commissioned node {self.node_id} by {self.method}" + (
                f" in {t:.2f} s" if t is not None else ""
            )
        parts = [f"commissioning by {self.method} failed at {self.stage.value}"]
        if self.attestation is not None:
            parts.append(f"attestation error {self.attestation} ({self.attestation.description})")
        if self.step and self.stage is not Stage.ATTESTATION:
            parts.append(f"step {self.step!r}")
        if self.message:
            parts.append(self.message)
        elif self.chip_error:
            parts.append(f"CHIP Error {self.chip_error}")
        if self.log_path:
            parts.append(f"log {self.log_path}")
        return "; ".join(parts)

    @classmethod
    def failed(cls, stage: Stage, found: LogFindings, message: str, **common: Any) -> Verdict:
        """A failure at `stage`, with what the commissioner's log names: failed step, attestation result,
        CHIP error (`common`: method, node_id, log_path, timings, details)."""
        return cls(
            stage,
            step=found.failed_step,
            attestation=found.attestation,
            chip_error=found.chip_error,
            message=message,
            **common,
        )

    def raise_for_failure(self) -> Verdict:
        """Return self on success; raise AttestationError / CommissioningError (both exit 4) otherwise."""
        if self.ok:
            return self
        if self.stage is Stage.ATTESTATION:
            raise AttestationError(self.summary())
        raise CommissioningError(self.summary())

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for reports."""
        return {
            "ok": self.ok,
            "stage": self.stage.value,
            "method": self.method,
            "node_id": self.node_id,
            "step": self.step,
            "attestation": None
            if self.attestation is None
            else {
                "code": int(self.attestation),
                "name": self.attestation.name,
                "text": self.attestation.description,
            },
            "chip_error": self.chip_error,
            "message": self.message,
            "log": str(self.log_path) if self.log_path else None,
            "timings": self.timings.__dict__,
            "details": self.details,
        }


# ----------------------------------------------------------------------------------------- log parsing

_RX_ATTESTATION = re.compile(
    r"Failed in verifying 'Attestation Information' command received from the device: err (\d+)"
)
_RX_STEP_ERROR = re.compile(r"Error on commissioning step '([^']+)'")
_RX_STEP_DONE = re.compile(r"Successfully finished commissioning step '([^']+)'")
_RX_CHIP_ERROR = re.compile(r"CHIP Error (0x[0-9A-Fa-f]{8}): ([^'\n]*?)'?\s*$")
_PASE_FAILED = (
    "Failed to verify peer's MAC",
    "Failed during PASE session setup",
    "Secure Pairing Failed",
)
_DISCOVERY_TIMED_OUT = ("Mdns discovery timed out",)
_COMPLETED = (
    re.compile(r"Commissioning complete for node ID 0x[0-9A-Fa-f]+: success"),
    re.compile(r"Device commissioning completed with success"),  # chip-tool
)
_DISCOVERED = re.compile(r"Discovered Device:|Discovered commissionable/commissioner node|OnNodeDiscovered")
# The SDK's "Failed to verify peer's MAC" in words a user can act on (both commissioners log it).
PASSCODE_REJECTED = "the node rejected the passcode (SPAKE2+ MAC mismatch: wrong passcode or verifier)"
_ATTESTATION_STEPS = {"AttestationVerification", "AttestationRevocationCheck", "SendAttestationRequest"}


@dataclass(frozen=True)
class LogFindings:
    """What a commissioner's log says happened (facts only; `classify` turns them into a Stage)."""

    completed: bool = False
    attestation: AttestationResult | None = None
    attestation_code: int | None = None  # kept even when unknown to our table
    failed_step: str | None = None
    pase_failed: bool = False
    pase_mac_mismatch: bool = False
    pase_succeeded: bool = False
    pase_started: bool = False  # a PBKDFParamRequest went out
    discovered: bool = False
    discovery_timed_out: bool = False
    steps_done: tuple[str, ...] = ()
    chip_error: str | None = None  # the last "CHIP Error 0x...: text" seen on a failure line

    @property
    def stage(self) -> Stage | None:
        """The stage the log proves, or None when it shows no outcome (e.g. cut off by a timeout)."""
        if self.completed:
            return Stage.COMPLETE
        if self.discovery_timed_out and not self.discovered:
            return Stage.DISCOVERY
        if self.attestation_code is not None or (self.failed_step in _ATTESTATION_STEPS):
            return Stage.ATTESTATION
        if self.pase_failed and not self.pase_succeeded:
            return Stage.PASE
        if self.failed_step is not None:
            return Stage.COMMISSIONING
        return None


def parse_log(text: str) -> LogFindings:
    """Read a CHIP SDK log (Python controller or chip-tool) into LogFindings."""
    completed = pase_failed = mac = pase_ok = pase_started = discovered = discovery_timeout = False
    attestation_code: int | None = None
    failed_step: str | None = None
    steps: list[str] = []
    chip_error: str | None = None
    for line in text.splitlines():
        if (m := _RX_ATTESTATION.search(line)) and attestation_code is None:
            attestation_code = int(m.group(1))
        if (m := _RX_STEP_ERROR.search(line)) and failed_step is None:
            failed_step = m.group(1)
        if m := _RX_STEP_DONE.search(line):
            steps.append(m.group(1))
        if any(p in line for p in _PASE_FAILED):
            pase_failed = True
            mac = mac or "Failed to verify peer's MAC" in line
        if "Remote device completed SPAKE2+ handshake" in line or "Secure Pairing Success" in line:
            pase_ok = True
        if "Sent PBKDF param request" in line:
            pase_started = True
        if any(rx.search(line) for rx in _COMPLETED):
            completed = True
        if _DISCOVERED.search(line):
            discovered = True
        if any(p in line for p in _DISCOVERY_TIMED_OUT):
            discovery_timeout = True
        if ("Fail" in line or "Error on" in line or "failure" in line) and (m := _RX_CHIP_ERROR.search(line)):
            chip_error = f"{m.group(1)}: {m.group(2).strip()}"
    return LogFindings(
        completed=completed,
        attestation=None if attestation_code is None else AttestationResult.lookup(attestation_code),
        attestation_code=attestation_code,
        failed_step=failed_step,
        pase_failed=pase_failed,
        pase_mac_mismatch=mac,
        pase_succeeded=pase_ok,
        pase_started=pase_started,
        discovered=discovered,
        discovery_timed_out=discovery_timeout,
        steps_done=tuple(steps),
        chip_error=chip_error,
    )
