"""Board states, not scripts: a test asks for a board in a state and the strategy performs what is missing.

States, in order (ARCHITECTURE.md principle 4):

    off ──► provisioned ──► converted ──► commissioned
            credentials,     DAC key moved     the real commissioner (SDK controller or chip-tool)
            factory data,    into the secure   accepts the board: PASE, attestation against the
            flash + app,     subsystem (only   session's PAA, CSR/NOC, CASE
            boot report      where planned)

`converted` exists only for a plan that converts (`convert=True`, or boards.toml `options.convert_dac_key
= true`) on a family whose firmware has a secure subsystem (K32W1, RW61x); for every other plan the
state is skipped: `ensure("commissioned")` goes provisioned → commissioned, and `ensure("converted")` is
an InputError naming the plan.

API (the pytest fixtures and `hil provision` / `hil commission` stand on it):

    from hil.flow import Pki, DeviceCredentials, TestHooks
    from hil.strategy import Strategy, StepRecord, StepResults, STATES

    pki = Pki.generate(vid, pid, cd_signer=(cd_key, cd_cert), seed=None)   # one per session
    strategy = Strategy(profile, pki, workdir=tmp, controller_pool=pool)  # one per board per session
        # optional keywords: seed (deterministic device credentials), device (a DeviceCredentials),
        # convert (None: boards.toml), hooks (TestHooks, negative tests only), keep (artefacts kept in
        # workdir, keys 0600), commissioner ("controller" | "chip-tool"), log_dir
    results = strategy.ensure("provisioned" | "converted" | "commissioned") -> StepResults
        # performs only the missing transitions; StepResults.steps: the StepRecords of this call;
        # StepResults.state: the state reached; StepResults.verdict: the commissioning Verdict, if any.
        # Raises the transition's HilError (InputError 2 before anything touches the board; BoardError /
        # FirmwareError 3; AttestationError / CommissioningError 4) and marks the board broken.
    strategy.state            -> "off" | "provisioned" | "converted" | "commissioned"
    strategy.broken           -> str | None   (the recorded reason; later ensure() raises BoardBroken)
    strategy.steps            -> list[StepRecord]   every step performed by this strategy, for the report
    strategy.commission(paas=None, passcode=None, by="ip", timeout=...) -> Verdict
        # one more attempt without changing the state or marking anything broken: negative tests
        # (a store without our PAA -> 101; a wrong passcode -> PASE) ask for it explicitly
    strategy.node_config()    -> NodeConfig  (from the board's firmware; its signer goes to the board)
    strategy.boot_report()    -> the firmware's last boot report (provisioned, or not provisioned: reason)

    StepRecord(name, ok, seconds, details)   name: "credentials" | "factory-data" | "flash" | "boot" |
        "convert" | "commission"; details: factory-data SHA-256 and size, DAC serial, write reports,
        boot report, verdict summary and log paths; never a secret.

Broken boards: a failed transition records its reason on the strategy and in the board's state dir
(`<state dir>/<board>/strategy.json`, keyed by the plan's fingerprint), so every later `ensure` for that
board and plan fails at once with `BoardBroken` (a BoardError, exit 3) naming the first failure, instead
of failing again in cascade. A different plan (another session's PKI, other test hooks) starts from a
clean record: it re-provisions the board and meets its own faults.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hil.errors import BoardError

if TYPE_CHECKING:
    from hil.boards import BoardProfile
    from hil.commissioning.controller import ControllerPool
    from hil.commissioning.trust_store import PaaInput
    from hil.commissioning.verdict import Verdict
    from hil.emulator.matter_device import NodeConfig
    from hil.flow import DeviceCredentials, Pki, TestHooks

STATES = ("off", "provisioned", "converted", "commissioned")
RECORD_FILE = "strategy.json"


class BoardBroken(BoardError):
    """The board failed an earlier transition for this plan; the message is that first failure."""


@dataclass
class StepRecord:
    """One step of a transition, for reports: what ran, whether it worked, how long, and its facts."""

    name: str
    ok: bool
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        facts = ", ".join(f"{k}={v}" for k, v in self.details.items() if k != "error")
        status = "ok" if self.ok else f"FAILED: {self.details.get('error', '')}"
        return f"{self.name:<13} {self.seconds:7.2f} s  {status}" + (f"  ({facts})" if facts else "")


@dataclass
class StepResults:
    """What one `ensure` call did: the state reached, its steps, and the verdict when it commissioned."""

    state: str
    steps: list[StepRecord] = field(default_factory=list)
    verdict: Verdict | None = None

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)


class Strategy:
    """One board's way through the states for one plan (PKI + device credentials + options).

    `workdir`: where artefacts (factory_data.bin, certificates, logs) go; with `keep=False` secret
    artefacts are not written at all (the image is flashed from memory). `controller_pool`: a
    hil.commissioning ControllerPool shared by the session (one controller per PAA set, in its sandbox);
    without one, each commissioning starts its own sandbox and controller (the CLI's one-shot path).
    """

    def __init__(
        self,
        profile: BoardProfile,
        pki: Pki,
        *,
        workdir: str | Path,
        seed: int | str | bytes | None = None,
        device: DeviceCredentials | None = None,
        convert: bool | None = None,
        hooks: TestHooks | None = None,
        controller_pool: ControllerPool | None = None,
        keep: bool = False,
        commissioner: str = "controller",
        log_dir: str | Path | None = None,
    ) -> None:
        raise NotImplementedError

    @property
    def state(self) -> str:
        raise NotImplementedError

    @property
    def broken(self) -> str | None:
        raise NotImplementedError

    @property
    def steps(self) -> list[StepRecord]:
        raise NotImplementedError

    def ensure(self, state: str) -> StepResults:
        raise NotImplementedError

    def commission(
        self,
        *,
        paas: PaaInput | Sequence[PaaInput] | None = None,
        passcode: int | None = None,
        by: str = "ip",
        timeout: float | None = None,
    ) -> Verdict:
        raise NotImplementedError

    def node_config(self) -> NodeConfig:
        raise NotImplementedError
