"""Board states as fixtures: a test asks for a board in a state; `hil.strategy` performs what is missing.

Every fixture here is a thin adapter (ARCHITECTURE.md "thin edges"): credentials are `hil.flow`'s, the
image is `hil.flow.factory`'s, transitions are `hil.strategy.Strategy.ensure`'s, commissioning runs in a
`hil.commissioning` ControllerPool. What the fixtures add is pytest's part: scope (each board's
expensive states are reached once per session and reused), locking, skipping, and reporting.

    session, once per process         hil_cd_signer_files, hil_seed, hil_product_ids, pki,
                                      hil_controller_pool, hil_artifacts
    session, once per board           board (allocated + locked), device_credentials, factory_data,
                                      hil_board (the board's Strategy and what it was built from)
    per test (cheap once reached)     provisioned_board, converted_board, commissioned_device -> HilBoard
                                      hil_make_strategy (another plan on this board: negative tests)

Credentials. One PKI per run: every xdist worker derives the same PAA, PAI and CD from the run's seed
(random per run, handed to workers by the main process, registered as a secret; `--hil-seed` repeats a
run), so a board reached by another worker agrees on the plan. The CD is signed with the key given by
`--hil-cd-key/--hil-cd-cert` or $HIL_CD_KEY/$HIL_CD_CERT; without them, with the Matter test CD key
(`hil.matter.test_cd_key`: a published test vector commissioners trust for development CDs, as NXP's
generate_certs.py does), and the run's header says so.

Broken boards. A failed transition fails the test that asked for it (with its category) and the
strategy marks the board broken; every later test on that board is skipped with the first failure's
reason instead of failing in cascade.

Reports. Each step the strategy performs is reported live through `hil.reports.step` (an allure step
opened when the step starts and closed when it ends, so it shows the step's real duration; failure
category; a record for the qualification summary's board x step matrix, with the factory-data SHA-256
and DAC serial as facts); the inspector JSON (redacted), certificates, console log and controller log
are attached. Every generated private key and AES key is registered as a secret first.

Artefacts. Each board's strategy works in `<reports>/hil-artifacts/<run id>/<board>/`; the directory is
deleted when all the board's tests passed, unless `--hil-keep` (secret artefacts are written, mode 0600,
only with `--hil-keep`). Emulated board processes this session started are stopped when it is done
with them, unless `--hil-keep`.

Order. Within each board's group, tests run in the order of the state they ask for (provisioned,
converted, commissioned, then tests that re-flash the board with another plan), so a board walks forward
through its states once.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hil.errors import HilError
from hil.pytest_plugin.state import BOARD_PARAM, state
from hil.reports import (
    FACT_DAC_SERIAL,
    FACT_FACTORY_DATA_SHA256,
    StepResult,
    attach_certificate,
    attach_file,
    attach_json,
    attach_text,
    record_environment,
    register_private_key,
    register_secret,
    step,
)
from hil.reports.categories import annotate

if TYPE_CHECKING:

    from hil.boards import BoardProfile
    from hil.commissioning.controller import ControllerPool
    from hil.commissioning.verdict import Verdict
    from hil.flow import DeviceCredentials, Pki, TestHooks
    from hil.flow.factory import FactoryDataBuild
    from hil.strategy import StepRecord, Strategy

ENV_CD_KEY, ENV_CD_CERT, ENV_SEED = "HIL_CD_KEY", "HIL_CD_CERT", "HIL_SEED"
DEFAULT_VID, DEFAULT_PID = 0xFFF1, 0x8005  # a Matter test vendor id: the SDK controller accepts it
ARTIFACTS = "hil-artifacts"

# hil.strategy's step names -> the report's steps (hil.reports.categories.STEPS, the summary's columns).
REPORT_STEP = {
    "credentials": "generation",
    "factory-data": "generation",
    "app-image": "flashing",
    "flash": "flashing",
    "boot": "firmware",
    "convert": "conversion",
    "commission": "commissioning",
}
# The state a fixture leaves its board in, for ordering each board's tests (see the module docstring).
STATE_RANK = {"provisioned_board": 1, "converted_board": 2, "commissioned_device": 3, "hil_make_strategy": 4}

_SEED = pytest.StashKey[str]()
_FAILED_BOARDS = pytest.StashKey[set[str]]()


# --- options, seed, ordering, failure tracking ---------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil")
    group.addoption(
        "--hil-cd-key",
        metavar="PATH",
        default=None,
        help="private key that signs the session's Certification Declaration (default: "
        f"${ENV_CD_KEY}, else the Matter test CD key: development only)",
    )
    group.addoption(
        "--hil-cd-cert",
        metavar="PATH",
        default=None,
        help=f"certificate of --hil-cd-key (default: ${ENV_CD_CERT})",
    )
    group.addoption(
        "--hil-seed",
        metavar="TEXT",
        default=None,
        help=f"derive the run's credentials from TEXT, to repeat a run (default: ${ENV_SEED}, else random)",
    )


def pytest_configure(config: pytest.Config) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput and "hil_seed" in workerinput:
        seed = workerinput["hil_seed"]
    else:
        seed = config.getoption("hil_seed") or os.environ.get(ENV_SEED) or secrets.token_hex(16)
    config.stash[_SEED] = seed
    config.stash[_FAILED_BOARDS] = set()


def pytest_sessionstart(session: pytest.Session) -> None:
    """One line (even with -q) when the session's CD will be signed with the Matter test CD key."""
    config = session.config
    if hasattr(config, "workerinput") or config.getoption("hil_cd_key") or config.getoption("hil_cd_cert"):
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or os.environ.get(ENV_CD_KEY) or os.environ.get(ENV_CD_CERT):
        return
    from hil.matter import test_cd_key

    how = f"--hil-cd-key/--hil-cd-cert or ${ENV_CD_KEY}/${ENV_CD_CERT}"
    reporter.write_line("hil: " + test_cd_key.NOTICE.format(how=how))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: every worker derives the same PKI from the run's seed."""
    node.workerinput["hil_seed"] = node.config.stash[_SEED]


@pytest.hookimpl(trylast=True)  # after pytest grouped items by their session-scoped board parameter
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep each board's tests together, ordered by the state they ask for (stable otherwise)."""
    first: dict[str, int] = {}
    keys: dict[int, tuple[int, int]] = {}
    for index, item in enumerate(items):
        callspec = getattr(item, "callspec", None)
        board = callspec.params.get(BOARD_PARAM) if callspec else None
        group = index if board is None else first.setdefault(board, index)
        fixtures = getattr(item, "fixturenames", ())
        keys[id(item)] = (group, max((STATE_RANK.get(f, 0) for f in fixtures), default=0))
    items.sort(key=lambda item: keys[id(item)])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    callspec = getattr(item, "callspec", None)
    board = callspec.params.get(BOARD_PARAM) if callspec else None
    if report.failed and board:
        item.config.stash[_FAILED_BOARDS].add(board)
    return report


# --- session: credentials, commissioner, artefacts -------------------------------------------------------


@pytest.fixture(scope="session")
def hil_cd_signer_files(pytestconfig: pytest.Config) -> tuple[Path, Path] | None:
    """(key, certificate) paths of the CD signer from the options or environment; None when not given."""
    key = pytestconfig.getoption("hil_cd_key") or os.environ.get(ENV_CD_KEY)
    cert = pytestconfig.getoption("hil_cd_cert") or os.environ.get(ENV_CD_CERT)
    if not key and not cert:
        return None
    if not key or not cert:
        pytest.fail(
            "--hil-cd-key and --hil-cd-cert: give both (a CD signing key and its certificate)", pytrace=False
        )
    base = pytestconfig.invocation_params.dir
    return base / key, base / cert


@pytest.fixture(scope="session")
def hil_seed(pytestconfig: pytest.Config) -> str:
    """The run's credential seed (the same in every xdist worker); a secret, registered as one."""
    seed = pytestconfig.stash[_SEED]
    with contextlib.suppress(HilError):  # a short --hil-seed given by hand is not worth redacting
        register_secret(seed)
    return seed


@pytest.fixture(scope="session")
def hil_product_ids() -> tuple[int, int]:
    """(VID, PID) of the session's product; override in a conftest for another product."""
    return DEFAULT_VID, DEFAULT_PID


@pytest.fixture(scope="session")
def pki(
    hil_cd_signer_files: tuple[Path, Path] | None, hil_seed: str, hil_product_ids: tuple[int, int]
) -> Pki:
    """The session's PKI: PAA, PAI (VID/PID) and a CD signed by the configured CD key (or the test key)."""
    from hil.flow import Pki
    from hil.matter import credential_set

    key_path, cert_path = hil_cd_signer_files or (None, None)
    try:
        cd_key, cd_cert = credential_set.load_cd_signer(
            key_path, cert_path, flags=("--hil-cd-key", "--hil-cd-cert"), notice=lambda _line: None
        )
        if hil_cd_signer_files is not None:
            register_private_key(cd_key)
        vid, pid = hil_product_ids
        result = Pki.generate(vid, pid, cd_signer=(cd_key, cd_cert), seed=hil_seed)
    except HilError as exc:
        pytest.fail(str(exc), pytrace=False)
    for cred in (result.paa, result.pai):
        if cred.key is not None:
            register_private_key(cred.key)
    attach_certificate(result.paa.cert, "PAA")
    attach_certificate(result.pai.cert, "PAI")
    return result


@pytest.fixture(scope="session")
def hil_artifacts(pytestconfig: pytest.Config) -> Iterator[Path]:
    """This run's artefact directory (`<reports>/hil-artifacts/<run id>`), removed when empty."""
    s = state(pytestconfig)
    root = s.reports_dir / ARTIFACTS / s.run_id
    root.mkdir(parents=True, exist_ok=True)
    yield root
    with contextlib.suppress(OSError):  # another worker's boards still there, or kept: leave it
        root.rmdir()
        root.parent.rmdir()


@pytest.fixture(scope="session")
def hil_controller_pool(pytestconfig: pytest.Config, hil_artifacts: Path) -> Iterator[ControllerPool | str]:
    """A ControllerPool in a commissioning sandbox (one SDK controller per PAA set, started on first use),
    or the reason commissioning cannot run on this machine (commissioned_device skips with it)."""
    from hil.commissioning import controller
    from hil.commissioning.sandbox import Sandbox

    reason = controller.availability()
    if reason is not None:
        yield reason
        return
    s = state(pytestconfig)
    logs = hil_artifacts / f"commissioning-{s.worker}"
    with Sandbox(log_dir=logs) as sandbox, controller.ControllerPool(sandbox, log_dir=logs) as pool:
        yield pool
    if not s.keep and not pytestconfig.stash[_FAILED_BOARDS]:
        shutil.rmtree(logs, ignore_errors=True)


# --- per board ---------------------------------------------------------------------------------------------


def connection_problem(profile: BoardProfile) -> str | None:
    """Why a real board is not reachable at all (its port or probe absent), else None.

    Only absence is a skip; a board that is there and misbehaves is a failure the tests must show.
    """
    if profile.emulated:
        return None
    conn = profile.connection
    if profile.programmer == "jlink":
        if conn.jlink_ip:
            return None  # a network probe: reachability is the programmer's to report
        try:
            import pylink

            probes = pylink.JLink().connected_emulators()
        except Exception as exc:  # no SEGGER library here: pylink raises its own types
            return f"the SEGGER J-Link software is not usable here ({exc})"
        serials = {int(p.SerialNumber) for p in probes}
        if not serials:
            return "no J-Link probe is connected"
        if conn.jlink_serial is not None and conn.jlink_serial not in serials:
            return f"J-Link {conn.jlink_serial} is not connected (connected: {sorted(serials)})"
        return None
    if not conn.port:
        return "boards.toml gives no serial port ([board.NAME.connection] port)"
    if not Path(conn.port).exists():
        return f"serial port {conn.port} does not exist"
    return None


@pytest.fixture(scope="session")
def board(
    hil_board_profile: BoardProfile, hil_board_lock: Any, pytestconfig: pytest.Config
) -> Iterator[BoardProfile]:
    """This run's board, locked for this process; a real board that is not connected is skipped.

    An emulated board's process that this fixture had to start is stopped when the session is done
    with the board (unless --hil-keep), so a run leaves no board processes behind. A lab board
    (`labgrid_place`) is reached through its place, which `hil_board_lock` holds and health-checks: there is
    no local port to look for and no local emulator to start.
    """
    profile = hil_board_profile
    if profile.labgrid_place:
        yield profile
        return
    problem = connection_problem(profile)
    if problem:
        pytest.skip(f"board {profile.name} ({profile.family}, real) is not connected: {problem}")
    started_here = False
    if profile.emulated:
        from hil.emulator.board import ensure_running, find_running

        started_here = find_running(profile.name) is None
        try:
            ensure_running(profile)
        except HilError as exc:
            with step("flashing", profile, title=f"start emulated board {profile.name}"):
                raise exc
    yield profile
    if started_here and not state(pytestconfig).keep:
        from hil.emulator.board import stop

        stop(profile.name)


@pytest.fixture(scope="session")
def device_credentials(hil_board_profile: BoardProfile, pki: Pki, hil_seed: str) -> DeviceCredentials:
    """This board's DAC (+ key), passcode, discriminator, salt and verifier (from the run's seed)."""
    from hil.flow import DeviceCredentials

    with step("generation", hil_board_profile, title="device credentials") as s:
        creds = DeviceCredentials.for_board(pki, hil_board_profile, seed=hil_seed)
        assert creds.dac.key is not None
        register_private_key(creds.dac.key)
        s.facts[FACT_DAC_SERIAL] = creds.dac_serial
        s.facts["discriminator"] = creds.discriminator
    attach_certificate(creds.dac.cert, f"DAC {hil_board_profile.name}")
    return creds


@pytest.fixture(scope="session")
def factory_data(
    hil_board_profile: BoardProfile, pki: Pki, device_credentials: DeviceCredentials
) -> FactoryDataBuild:
    """The factory-data image for this board (its region, AES key and layout), every check run."""
    from hil.flow.factory import build

    profile = hil_board_profile
    with step("generation", profile, title="factory data") as s:
        image = build(pki, device_credentials, profile)
        s.facts[FACT_FACTORY_DATA_SHA256] = image.sha256
        s.facts[FACT_DAC_SERIAL] = device_credentials.dac_serial
        s.facts["layout"] = image.layout
        attach_json(inspect_image(image.image, profile, pki), f"factory data inspector {profile.name}")
    return image


def inspect_image(image: bytes, profile: BoardProfile, pki: Pki) -> dict[str, Any]:
    """The inspector's JSON for `image` as the board's firmware reads it (secrets shown as redacted)."""
    from hil.factory_data.inspect import inspect
    from hil.flow.factory import hw_params

    report = inspect(
        image,
        aes_key=profile.aes_key_bytes,
        hw_params=hw_params(profile),
        paa=pki.paa.cert,
        cd_signer=pki.cd_signer_cert,
        source=f"{profile.name} factory data",
    )
    return report.as_dict()


@dataclass
class HilBoard:
    """A board as a test receives it: its profile, the strategy that moves it, and what it was given."""

    profile: BoardProfile
    strategy: Strategy
    pki: Pki
    device: DeviceCredentials
    factory_data: FactoryDataBuild
    workdir: Path
    verdict: Verdict | None = None  # the commissioning verdict, once commissioned

    @property
    def name(self) -> str:
        return self.profile.name

    @property
    def state(self) -> str:
        return self.strategy.state

    def steps(self, name: str | None = None) -> list[StepRecord]:
        """The strategy's steps so far (named `name`: "flash", "boot", ...)."""
        return [s for s in self.strategy.steps if name is None or s.name == name]


@pytest.fixture(scope="session")
def hil_board(
    board: BoardProfile,
    pki: Pki,
    device_credentials: DeviceCredentials,
    factory_data: FactoryDataBuild,
    hil_controller_pool: ControllerPool | str,
    hil_artifacts: Path,
    pytestconfig: pytest.Config,
) -> Iterator[HilBoard]:
    """This board's Strategy for the session's plan (converting where the family can, as NXP's K32W1 and
    RW61x products do), before any transition. The state fixtures move it forward."""
    from hil.strategy import Strategy, supports_conversion

    s = state(pytestconfig)
    workdir = hil_artifacts / board.name
    workdir.mkdir(parents=True, exist_ok=True)
    pool = None if isinstance(hil_controller_pool, str) else hil_controller_pool
    record_environment(board, vid=pki.vid, pid=pki.pid, emulated=board.emulated, programmer=board.programmer)
    strategy = Strategy(
        board,
        pki,
        workdir=workdir,
        device=device_credentials,
        convert=supports_conversion(board),
        controller_pool=pool,
        keep=s.keep,
        commissioner="controller" if board.emulated else "chip-tool",
        log_dir=workdir / "logs",
    )
    _forget_earlier_session(strategy)
    yield HilBoard(board, strategy, pki, device_credentials, factory_data, workdir)
    close = getattr(strategy, "close", None)
    if close is not None:
        close()
    if not s.keep and board.name not in pytestconfig.stash[_FAILED_BOARDS]:
        shutil.rmtree(workdir, ignore_errors=True)


def _forget_earlier_session(strategy: Strategy) -> None:
    """A session walks each board through the states itself: progress or a broken mark that an earlier
    session with the same plan (the same --hil-seed) left in the board's record is dropped, so every test
    sees the states this session reached (a converted board is not 'just provisioned')."""
    from hil.flow.record import BoardRecord

    record = BoardRecord.load(strategy.profile.name)
    fingerprint = strategy.fingerprint
    if (record.plan == fingerprint and record.state != "off") or fingerprint in record.broken:
        record.broken.pop(fingerprint, None)
        if record.plan == fingerprint:
            record.state = "off"
        record.save()


class _LiveSteps:
    """Reports a strategy's steps as they happen (Strategy `on_step_start` / `on_step`): the allure step
    (hil.reports.step) opens when the strategy starts a step and closes when it ends, so the report shows
    each step's real duration and a failure inside it; the facts (factory-data SHA-256, DAC serial, ...)
    and the evidence are added from the StepRecord before the step closes."""

    def __init__(self, hb: HilBoard) -> None:
        self.hb = hb
        self.failed: BaseException | None = None  # the error a reported step closed with
        self._open: tuple[contextlib.AbstractContextManager[StepResult], StepResult] | None = None

    def start(self, name: str) -> None:
        self.close(None)  # never two open at once (a step that ended without on_step)
        hb = self.hb
        cm = step(REPORT_STEP.get(name, name), hb.profile, title=f"{name}: {hb.name}")
        self._open = (cm, cm.__enter__())

    def finish(self, record: StepRecord) -> None:
        if self._open is None:
            return
        s = self._open[1]
        s.facts.update({k: v for k, v in record.details.items() if k != "error"})
        if record.name == "factory-data" and "sha256" in record.details:
            s.facts[FACT_FACTORY_DATA_SHA256] = record.details["sha256"]
        if "dac_serial" in record.details:
            s.facts[FACT_DAC_SERIAL] = record.details["dac_serial"]
        if record.name == "app-image" and record.details.get("app"):
            record_environment(self.hb.profile, firmware=record.details["app"])
        _attach_evidence(self.hb, record)
        if record.ok:
            self.close(None)
            return
        error: BaseException = record.error if record.error is not None else AssertionError(record.line())
        if _is_attestation(error):  # the commissioner refused the DAC chain: its own summary column
            annotate(error, "attestation")
        self.failed = error
        self.close(error)

    def close(self, error: BaseException | None) -> None:
        """Close the open step, failed with `error` (its category is noted on it), if one is open."""
        if self._open is None:
            return
        cm, _ = self._open
        self._open = None
        if error is None:
            cm.__exit__(None, None, None)
        else:
            cm.__exit__(type(error), error, error.__traceback__)  # records it; does not raise


def _is_attestation(exc: BaseException) -> bool:
    from hil.errors import AttestationError

    return isinstance(exc, AttestationError)


def _attach_evidence(hb: HilBoard, record: StepRecord) -> None:
    """Attach what a step produced: the console log of a boot, the controller's log of a commissioning."""
    boot = getattr(hb.strategy, "boot", None)
    if record.name == "boot" and boot is not None and boot.lines:
        attach_text("\n".join(boot.lines), f"console log {hb.name}")
    log = record.details.get("log")
    if record.name == "commission" and isinstance(log, str) and Path(log).is_file():
        attach_file(log, f"controller log {hb.name}")


def reach(hb: HilBoard, target: str) -> HilBoard:
    """`target` on this board, performing only what is missing; skip when the board is already broken."""
    from hil.strategy import BoardBroken

    strategy = hb.strategy
    if strategy.broken:
        pytest.skip(f"board {hb.name} is broken: {strategy.broken}")
    live = _LiveSteps(hb)
    strategy.on_step_start, strategy.on_step = live.start, live.finish
    try:
        results = strategy.ensure(target)
    except BoardBroken as exc:
        pytest.skip(f"board {hb.name} is broken: {exc}")
    except HilError as exc:
        if exc is not live.failed:  # failed outside any step (a plan refused before the board is touched)
            with step("provisioning", hb.profile, title=f"{hb.name}: {type(exc).__name__}"):
                raise
        raise
    except BaseException as exc:  # an interrupt or a pytest outcome inside a step: close it with that
        live.close(exc)
        raise
    finally:
        strategy.on_step_start = strategy.on_step = None
    if results.verdict is not None:
        hb.verdict = results.verdict
    return hb


@pytest.fixture
def provisioned_board(hil_board: HilBoard) -> HilBoard:
    """This board with the session's credentials in flash, its app running on them (boot report)."""
    return reach(hil_board, "provisioned")


@pytest.fixture
def converted_board(hil_board: HilBoard) -> HilBoard:
    """This board with its DAC key converted into the secure subsystem's blob (K32W1, RW61x)."""
    from hil.strategy import supports_conversion

    if not supports_conversion(hil_board.profile):
        pytest.skip(
            f"{hil_board.profile.family} ({hil_board.name}) has no secure subsystem: "
            "its DAC private key stays plain, there is nothing to convert"
        )
    return reach(hil_board, "converted")


@pytest.fixture
def commissioned_device(hil_board: HilBoard, hil_controller_pool: ControllerPool | str) -> HilBoard:
    """This board commissioned by the real commissioner against the session's PAA (verdict attached)."""
    if isinstance(hil_controller_pool, str) and hil_board.profile.emulated:
        pytest.skip(f"commissioning: {hil_controller_pool}")
    return reach(hil_board, "commissioned")


@pytest.fixture
def hil_make_strategy(
    hil_board: HilBoard, hil_seed: str, hil_controller_pool: ControllerPool | str, tmp_path: Path
) -> Callable[..., Strategy]:
    """Make another plan's Strategy for this board (negative tests): `make(label, hooks=None,
    profile=None, device=None)`. Its device credentials come from the run's seed and `label`, so it
    never shares a plan (or a broken mark) with the session's; its steps are not reported (the test
    reports the refusal it expects)."""
    from hil.flow import DeviceCredentials
    from hil.strategy import Strategy

    pool = None if isinstance(hil_controller_pool, str) else hil_controller_pool

    def make(
        label: str,
        *,
        hooks: TestHooks | None = None,
        profile: BoardProfile | None = None,
        device: DeviceCredentials | None = None,
    ) -> Strategy:
        target = profile or hil_board.profile
        if target.aes_key:
            register_secret(target.aes_key)
        if device is None:
            device = DeviceCredentials.for_board(hil_board.pki, target, seed=f"{hil_seed}|{label}")
        if device.dac.key is not None:
            register_private_key(device.dac.key)
        return Strategy(
            target,
            hil_board.pki,
            workdir=tmp_path / label,
            device=device,
            convert=False,
            hooks=hooks,
            controller_pool=pool,
            keep=False,
        )

    return make


def with_aes_key(profile: BoardProfile, key_hex: str) -> BoardProfile:
    """`profile` with another AES key (a negative test: the harness encrypts with a key the firmware
    does not hold). The key is registered as a secret."""
    register_secret(key_hex)
    return replace(profile, aes_key=key_hex.upper())
