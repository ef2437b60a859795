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
        # workdir, keys 0600), commissioner ("controller" | "chip-tool"; None: controller for emulated
        # boards, chip-tool for real ones), log_dir (default workdir/logs), on_step_start (called with
        # the step's name before it runs) and on_step (called with its StepRecord when it has ended, ok or
        # not): a live reporter opens its step on the first and closes it on the second
    results = strategy.ensure("provisioned" | "converted" | "commissioned") -> StepResults
        # performs only the missing transitions; StepResults.steps: the StepRecords of this call;
        # StepResults.state: the state reached; StepResults.verdict: the commissioning Verdict, if any.
        # Raises the transition's HilError (InputError 2 before anything touches the board; BoardError /
        # FirmwareError 3; AttestationError / CommissioningError 4) and marks the board broken (not for
        # an InputError: a refused plan leaves the board untouched; not for an infrastructure failure,
        # hil.reports.is_infrastructure: the failed step is recorded and the plan's state dropped, and
        # the next ensure() performs the transition again).
    strategy.forget()         # drop this plan's record and broken mark (explicit re-runs: hil provision)
    strategy.state            -> "off" | "provisioned" | "converted" | "commissioned"
    strategy.broken           -> str | None   (the recorded reason; later ensure() raises BoardBroken)
    strategy.steps            -> list[StepRecord]   every step performed by this strategy, for the report
    strategy.commission(paas=None, passcode=None, by="ip", timeout=...) -> Verdict
        # one more attempt without changing the state or marking anything broken: negative tests
        # (a store without our PAA -> 101; a wrong passcode -> PASE) ask for it explicitly
    strategy.node_config()    -> NodeConfig  (from the board's firmware; its signer goes to the board)
    strategy.boot             -> the last hil.boot.BootReport read from the console (None before any)
    strategy.verdict          -> the last commissioning Verdict (None before any)
    strategy.device           -> DeviceCredentials (passcode, discriminator, DAC; codes: qr_code(pki))
    strategy.path             -> this plan's states, e.g. ("off", "provisioned", "commissioned")

    StepRecord(name, ok, seconds, details)   name: "credentials" | "factory-data" | "app-image" |
        "flash" | "boot" | "convert" | "commission"; details: factory-data SHA-256 and layout, DAC
        serial, write reports, boot report, verdict summary and log path; never a secret.
        StepRecord.error: the HilError a failed step raises out of ensure() (the same object), else None.
        StepRecord.line() is the one-line form `hil provision` prints.

Test hooks (hil.flow.TestHooks, negative tests only; each documented with the failure it provokes):
    TestHooks(basic_info_product_id=PID)      BasicInformation PID != DAC PID        -> 605 at attestation
    TestHooks(foreign_pai=other_pai)          DAC issued by another PAI              -> 301 at attestation
    TestHooks(corrupt_factory_data=hil.flow.factory.flip_payload_byte)
                                              SHA-256 check fails at boot            -> FirmwareError, broken
    Pki.generate(..., cd_signer=(rogue_key, cert naming the SDK test signer's SKID))
                                              CD signature does not verify           -> 602 at attestation
    Pki.generate(..., cd_signer=(rogue_key, its own cert))  unknown CD signer id    -> 601 at attestation
    strategy.commission(paas=[other_paa])     store without our PAA                  -> 101 at attestation
    strategy.commission(passcode=wrong)       wrong passcode                         -> Stage.PASE

Broken boards: a failed transition records its reason on the strategy and in the board's state dir
(`<state dir>/<board>/strategy.json`, keyed by the plan's fingerprint), so every later `ensure` for that
board and plan fails at once with `BoardBroken` (a BoardError, exit 3) naming the first failure, instead
of failing again in cascade. A different plan (another session's PKI, other test hooks) starts from a
clean record: it re-provisions the board and meets its own faults. An infrastructure failure (a
TransientError such as a lost probe, a board lock that never came free) says nothing about the board: it
is recorded as the failed step, the board's state for the plan becomes "off" (what it holds is unknown),
and it is not marked broken, so the pytest plugin's one infrastructure retry runs the transition again
instead of skipping. A step's non-HilError (a bug, an OS error) becomes a BoardError raised from it, so a
category the original carries (hil.reports.category_of reads the cause) still decides.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hil.errors import BoardError, FirmwareError, HilError, InputError
from hil.fileio import atomic_write, atomic_write_text
from hil.flow import board_io, factory
from hil.flow.commission import COMMISSIONERS, DEFAULT_TIMEOUT, commission_board
from hil.flow.credentials import DeviceCredentials, Pki, TestHooks
from hil.flow.record import BoardRecord

if TYPE_CHECKING:
    from hil.boards import BoardProfile
    from hil.commissioning.controller import ControllerPool
    from hil.commissioning.trust_store import PaaInput
    from hil.commissioning.verdict import Verdict
    from hil.emulator.matter_device import NodeConfig

STATES = ("off", "provisioned", "converted", "commissioned")
T = TypeVar("T")


class BoardBroken(BoardError):
    """The board failed an earlier transition for this plan; the message is that first failure."""


@dataclass
class StepRecord:
    """One step of a transition, for reports: what ran, whether it worked, how long, and its facts."""

    name: str
    ok: bool
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)
    error: HilError | None = field(default=None, repr=False, compare=False)
    """The exception a failed step raises out of `ensure` (the same object): a live reporter closes its
    step with it, so the failure's category is noted on the exception the test sees."""

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


def supports_conversion(profile: BoardProfile) -> bool:
    """Whether the board's firmware can move the DAC key into a secure subsystem (K32W1, RW61x)."""
    from hil.emulator.sss import blob_format

    return blob_format(profile.family) is not None


def _verdict_details(verdict: Verdict) -> dict[str, Any]:
    t = verdict.timings
    out: dict[str, Any] = {"verdict": verdict.summary(), "stage": verdict.stage.value}
    if verdict.attestation is not None:
        out["attestation"] = str(verdict.attestation)
    for name in ("controller_start_s", "pase_s", "commission_s"):
        value = getattr(t, name)
        if value is not None:
            out[name] = round(value, 3)
    out["log"] = str(verdict.log_path) if verdict.log_path else None
    return out


class _StepFailed(Exception):
    """Internal: carries the HilError of a failed step after it was recorded."""


class Strategy:
    """One board's way through the states for one plan (PKI + device credentials + options).

    `workdir`: logs go to `workdir/logs` (or `log_dir`); with `keep=True` the artefacts too (factory
    data, certificates and keys with mode 0600, onboarding codes, boot logs). `controller_pool`: a
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
        commissioner: str | None = None,
        log_dir: str | Path | None = None,
        commission_timeout: float = DEFAULT_TIMEOUT,
        on_step: Callable[[StepRecord], None] | None = None,
        on_step_start: Callable[[str], None] | None = None,
    ) -> None:
        if commissioner is None:  # the SDK controller reaches emulated nodes; real boards: chip-tool
            commissioner = "controller" if profile.emulated else "chip-tool"
        if commissioner not in COMMISSIONERS:
            raise InputError.field("commissioner", commissioner, "one of " + ", ".join(COMMISSIONERS))
        if convert is None:
            convert = bool(profile.options.get("convert_dac_key", False))
        if convert and not supports_conversion(profile):
            raise InputError.field(
                "convert",
                True,
                f"only for K32W1 / RW61x boards; {profile.name} ({profile.family}) keeps its DAC key plain",
            )
        self.profile = profile
        self.pki = pki
        self.hooks = hooks or TestHooks()
        self.convert = convert
        self.workdir = Path(workdir)
        self.log_dir = Path(log_dir) if log_dir is not None else self.workdir / "logs"
        self.keep = keep
        self.commissioner = commissioner
        self.pool = controller_pool
        self.commission_timeout = commission_timeout
        self.on_step = on_step
        self.on_step_start = on_step_start
        self.verdict: Verdict | None = None
        self.boot: Any = None  # the last hil.boot.BootReport seen
        self._steps: list[StepRecord] = []
        self._lock = threading.RLock()
        self._broken: str | None = None
        t0 = time.monotonic()
        if device is None:
            device = DeviceCredentials.for_board(pki, profile, seed, dac_issuer=self.hooks.foreign_pai)
        self.device = device
        self._credentials_s = time.monotonic() - t0
        self.fingerprint = self._fingerprint()

    # -- what the board is -----------------------------------------------------------------------------
    def _fingerprint(self) -> str:
        h = hashlib.sha256()
        for part in (self.profile.name, self.pki.id, self.device.fingerprint(), self.convert, self.hooks):
            h.update(repr(part).encode() + b"|")
        return h.hexdigest()[:16]

    @property
    def path(self) -> tuple[str, ...]:
        """The states this plan goes through, in order."""
        return tuple(s for s in STATES if s != "converted" or self.convert)

    def _record(self) -> BoardRecord:
        return BoardRecord.load(self.profile.name)

    @property
    def state(self) -> str:
        rec = self._record()
        return rec.state if rec.plan == self.fingerprint and rec.state in self.path else "off"

    @property
    def broken(self) -> str | None:
        return self._broken or self._record().broken.get(self.fingerprint)

    @property
    def steps(self) -> list[StepRecord]:
        return list(self._steps)

    # -- transitions -----------------------------------------------------------------------------------
    def ensure(self, state: str) -> StepResults:
        """Bring the board to `state` (or leave it: a later state includes the earlier ones)."""
        if state not in STATES:
            raise InputError.field("state", state, "one of " + ", ".join(STATES))
        if state not in self.path:
            raise InputError.field(
                "state",
                state,
                f"one of {', '.join(self.path)} for this plan (board {self.profile.name}: "
                "convert=False; plan with convert=True on a K32W1 / RW61x board)",
            )
        with self._lock:
            self._fail_fast()
            results = StepResults(self.state)
            path = self.path
            while path.index(results.state) < path.index(state):
                target = path[path.index(results.state) + 1]
                self._transition(target, results)
                results.state = target
            return results

    def forget(self) -> None:
        """Forget what is recorded for this plan (state and broken mark): the next `ensure` provisions
        from scratch. For an explicit re-run (`hil provision`), never for tests in cascade."""
        with self._lock:
            self._broken = None
            rec = self._record()
            rec.broken.pop(self.fingerprint, None)
            if rec.plan == self.fingerprint:
                rec.state = "off"
            rec.save()

    def _fail_fast(self) -> None:
        reason = self.broken
        if reason is not None:
            raise BoardBroken(f"{self.profile.name}: broken earlier in this session: {reason}")

    def _transition(self, target: str, results: StepResults) -> None:
        run = {"provisioned": self._provision, "converted": self._convert, "commissioned": self._commission}
        try:
            run[target](results)
        except _StepFailed as failed:
            exc = failed.args[0]
            from hil.reports.categories import is_infrastructure  # lazily: the CLI need not load allure

            if is_infrastructure(exc):  # the lab failed, not the board: a retry may pass
                self._drop_state()
            elif not isinstance(exc, InputError):  # a bad plan is refused before the board is touched
                self._mark_broken(f"{target}: {exc}")
            raise exc from exc.__cause__  # keep its own cause (and category); hide the _StepFailed
        rec = self._record()
        rec.plan, rec.state = self.fingerprint, target
        rec.updated = time.time()
        if target == "converted":
            rec.converted = True
        rec.save()

    def _mark_broken(self, reason: str) -> None:
        self._broken = reason
        self._drop_state(reason)

    def _drop_state(self, broken: str | None = None) -> None:
        """After a failed transition what the board holds is no longer known to be this plan's."""
        rec = self._record()
        if broken is not None:
            rec.broken[self.fingerprint] = broken
        if rec.plan == self.fingerprint:
            rec.state = "off"
        rec.save()

    def _step(
        self,
        results: StepResults,
        name: str,
        fn: Callable[[dict[str, Any]], T],
        seconds: Callable[[], float | None] = lambda: None,
    ) -> T:
        """Run one step, time it, record it (ok or not); failures become _StepFailed(HilError).
        `seconds`: the step's own measurement when the wall time of `fn` is not it."""
        details: dict[str, Any] = {}
        if self.on_step_start is not None:
            self.on_step_start(name)
        t0 = time.monotonic()
        try:
            value = fn(details)
        except HilError as exc:
            failed = {**details, "error": str(exc)}
            self._add(results, StepRecord(name, False, time.monotonic() - t0, failed, exc))
            raise _StepFailed(exc) from exc
        except Exception as exc:  # a bug or an OS error: still a broken board, with the reason
            error = BoardError(f"{name}: {type(exc).__name__}: {exc}")
            error.__cause__ = exc  # hil.reports.category_of reads a category the cause carries
            failed = {**details, "error": str(error)}
            self._add(results, StepRecord(name, False, time.monotonic() - t0, failed, error))
            raise _StepFailed(error) from exc
        measured = seconds()
        self._add(
            results, StepRecord(name, True, time.monotonic() - t0 if measured is None else measured, details)
        )
        return value

    def _add(self, results: StepResults, record: StepRecord) -> None:
        results.steps.append(record)
        self._steps.append(record)
        if self.on_step is not None:
            self.on_step(record)

    # provisioned: credentials, factory data, flash (+ app), boot report
    def _provision(self, results: StepResults) -> None:
        device, pki, profile = self.device, self.pki, self.profile

        def credentials(d: dict[str, Any]) -> None:
            d.update(
                dac_serial=device.dac_serial,
                discriminator=device.discriminator,
                iterations=device.iterations,
                serial_number=device.serial_number,
                pki=pki.id,
            )
            if self.hooks.active:
                d["test_hooks"] = self.hooks.describe()

        self._step(results, "credentials", credentials, lambda: self._credentials_s)

        def build(d: dict[str, Any]) -> factory.FactoryDataBuild:
            fd = factory.build(pki, device, profile, self.hooks)
            d.update(sha256=fd.sha256, layout=fd.layout)
            if self.keep:
                d["files"] = str(self._keep_artefacts(fd))
            return fd

        fd = self._step(results, "factory-data", build)
        app = self._step(results, "app-image", lambda d: self._app(d))
        flashed: list[board_io.FlashResult] = []

        def flash(d: dict[str, Any]) -> None:
            d["programmer"] = profile.programmer
            result = board_io.flash_and_boot(profile, fd.image, app)
            flashed.append(result)
            d.update(writes=[r.summary() for r in result.reports], app=result.app)

        self._step(results, "flash", flash, lambda: flashed[0].flash_s)
        result = flashed[0]
        self._step(
            results, "boot", lambda d: self._judge_boot(d, result.boot, "plain"), lambda: result.boot_s
        )
        rec = self._record()
        rec.pki, rec.vid, rec.pid = pki.id, pki.vid, pki.pid
        rec.discriminator, rec.passcode = device.discriminator, device.passcode
        rec.dac_serial, rec.factory_data_sha256, rec.converted = device.dac_serial, fd.sha256, False
        rec.save_paa(pki.paa_der)
        rec.save()

    def _app(self, d: dict[str, Any]) -> bytes | None:
        app = board_io.app_for(self.profile)
        d["app"] = board_io.describe_app(app)
        return app

    def _judge_boot(self, d: dict[str, Any], report: Any, dac_key: str | None) -> None:
        self.boot = report
        if report is None:
            d["boot"] = "not observed (no console_port in boards.toml)"
            return
        d["boot"] = report.summary()
        if self.keep:
            atomic_write_text(self.workdir / "boot.log", "\n".join(report.lines) + "\n")
        report.raise_if_not_provisioned()
        if dac_key is not None and report.dac_key not in (None, dac_key):
            raise FirmwareError(
                f"{self.profile.name}: booted with dac_key={report.dac_key}, expected {dac_key}"
            )

    # converted: NXP's conversion app, the blob in flash, the normal app's boot
    def _convert(self, results: StepResults) -> None:
        def convert(d: dict[str, Any]) -> None:
            report = board_io.convert(self.profile)
            d.update(conversion=report.summary(), blob_length=report.blob_length, polls=report.polls)

        self._step(results, "convert", convert)
        self._step(results, "boot", lambda d: self._judge_boot(d, board_io.reboot(self.profile), "sss-blob"))

    # commissioned: the real commissioner against the session's PAA
    def _commission(self, results: StepResults) -> None:
        def attempt(d: dict[str, Any]) -> None:
            verdict = self._attempt(None, None, "ip", self.commission_timeout)
            results.verdict = verdict
            d.update(_verdict_details(verdict))
            verdict.raise_for_failure()

        self._step(results, "commission", attempt)

    def _attempt(
        self,
        paas: PaaInput | Sequence[PaaInput] | None,
        passcode: int | None,
        by: str,
        timeout: float,
    ) -> Verdict:
        verdict = commission_board(
            self.profile,
            self.device.passcode if passcode is None else passcode,
            self.pki.paa if paas is None else paas,
            discriminator=self.device.discriminator,
            commissioner=self.commissioner,
            pool=self.pool,
            by=by,
            timeout=timeout,
            log_dir=self.log_dir,
        )
        self.verdict = verdict
        if self.keep:
            import json

            atomic_write_text(self.workdir / "verdict.json", json.dumps(verdict.to_dict(), indent=1))
        return verdict

    # -- extra attempts, node config ---------------------------------------------------------------------
    def commission(
        self,
        *,
        paas: PaaInput | Sequence[PaaInput] | None = None,
        passcode: int | None = None,
        by: str = "ip",
        timeout: float | None = None,
    ) -> Verdict:
        """One commissioning attempt (after bringing the board to its pre-commissioning state); the
        Verdict, success or not: neither the state nor `broken` changes. Negative tests use it."""
        self.ensure(self.path[-2])
        with self._lock:
            results = StepResults(self.state)

            def attempt(d: dict[str, Any]) -> Verdict:
                verdict = self._attempt(paas, passcode, by, timeout or self.commission_timeout)
                d.update(_verdict_details(verdict))
                return verdict

            try:
                return self._step(results, "commission", attempt)
            except _StepFailed as failed:
                exc = failed.args[0]
                raise exc from exc.__cause__  # as in _transition

    def node_config(self) -> NodeConfig:
        """The NodeConfig the board's firmware built at its last boot (signer: the board itself)."""
        from hil.emulator.firmware_link import node_config

        return node_config(self.profile)

    # -- artefacts -------------------------------------------------------------------------------------
    def _keep_artefacts(self, fd: factory.FactoryDataBuild) -> Path:
        """PKI and device files with generate_certs.py's names, factory_data.bin; secrets mode 0600."""
        out = self.workdir  # atomic_write creates it, and reports an unwritable one as bad input (exit 2)
        for name, data, secret in self.pki.files():
            atomic_write(out / name, data, secret=secret)
        ids = f"{self.pki.vid:X}-{self.pki.pid:X}"
        atomic_write(out / f"Chip-DAC-NXP-{ids}-Cert.der", self.device.dac.cert_der())
        atomic_write(out / f"Chip-DAC-NXP-{ids}-Key.der", self.device.dac.key_der(), secret=True)
        atomic_write(out / "factory_data.bin", fd.image, secret=True)  # holds the DAC private key
        atomic_write_text(
            out / "onboarding.txt",
            f"qr_code={self.device.qr_code(self.pki)}\nmanual_code={self.device.manual_code()}\n"
            f"discriminator={self.device.discriminator}\n",
            secret=True,  # the codes carry the passcode
        )
        return out
