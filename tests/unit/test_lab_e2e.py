"""A real labgrid lab on loopback: coordinator, two exporters with emulated boards, concurrent pytest runs.

Everything is the real thing: `labgrid-coordinator` and two `labgrid-exporter`s (run from the labgrid
package, ser2net from Debian, the tuned ser2net wrapper), emulated board processes whose ROM and console
ptys the exporters export, and `pytest -n 2 --hil-target lab` runs of an inner suite that builds real
factory data, flashes it through spsdk's own clients over the rfc2217 bridge, and reads it back. The lab is
torn down (exporters, their ser2net, the coordinator, the boards) even when a test fails.

Scenarios: two runs at once (the second waits, never overlapping the first on any place and never using a
place it does not hold), a third that gives up at once and skips naming the holder, a killed run whose
places come back through the lease, a SIGTERMed run that releases at once, and a board whose ROM does not
answer (its place is marked broken for the run, its tests skip, the others pass).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cd_signing import CREDS

from hil.boards import load_inventory
from hil.lab.daemons import Coordinator
from hil.lab.host import EmulatedLabHost
from hil.lab.labgrid import LabClient, make_identity
from hil.lab.places import LabSession

pytestmark = pytest.mark.skipif(
    not Path("/usr/sbin/ser2net").exists(), reason="ser2net (Debian package) is not installed: make setup"
)

REPO = Path(__file__).resolve().parents[2]
PROVISIONING_SUITE = REPO / "tests" / "hil" / "test_provisioning.py"
LEASE = 4.0  # short for the test, long enough that a loaded CI host never looks dead
# exporter name -> (host board name, family, place)
HOSTS = {
    "exp1": [("rw61x-a", "rw61x", "rw61x-01"), ("k32w0x1-a", "k32w0x1", "k32w0x1-01")],
    "exp2": [("rw61x-b", "rw61x", "rw61x-02"), ("k32w0x1-b", "k32w0x1", "k32w0x1-02")],
}

INNER_TEST = textwrap.dedent(
    """
    import json, os, time
    from pathlib import Path

    from hil import programmers

    OUT = Path(os.environ["LAB_OUT"])


    def test_factory_data_round_trip(hil_board_profile, hil_board_lock, factory_data):
        profile, held = hil_board_profile, hil_board_lock
        image = factory_data.image
        start = time.time()
        owner_before = held.session.client.place(held.place).acquired
        report = programmers.flash(profile, image)          # spsdk (mboot / DK6) over the bridge
        back = programmers.read(profile)[: len(image)]
        (OUT / "holding").mkdir(exist_ok=True)
        (OUT / "holding" / profile.name).touch()
        time.sleep(float(os.environ.get("LAB_HOLD", "0")))
        owner_after = held.session.client.place(held.place).acquired
        end = time.time()
        (OUT / f"{profile.name}.json").write_text(json.dumps({
            "board": profile.name, "place": held.place, "identity": held.identity,
            "owners": [owner_before, owner_after], "start": start, "end": end,
            "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"), "attempts": report.attempts,
            "equal": back == image, "bridge": held.bridges["rom"].port,
        }))
        assert back == image
        assert owner_before == owner_after == held.identity
    """
)


@dataclass
class Lab:
    root: Path
    coordinator: Coordinator
    hosts: dict[str, EmulatedLabHost]
    inventory: Path  # the test host's boards.toml: lab boards only

    def client(self, who: str = "observer") -> LabClient:
        return LabClient(self.coordinator.address, make_identity(who)).connect()

    def owners(self) -> dict[str, str | None]:
        with self.client() as client:
            return {name: p.acquired for name, p in client.places().items()}

    def run(
        self, name: str, *extra: str, hold: float = 0.0, workers: int = 2, suite: Path | None = None
    ) -> subprocess.Popen[str]:
        out = self.root / name
        out.mkdir()
        (out / "test_inner.py").write_text(INNER_TEST)
        env = dict(os.environ, HIL_STATE_DIR=str(self.root / f"state-{name}"), LAB_OUT=str(out),
                   LAB_HOLD=str(hold))  # fmt: skip
        for key in ("PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS", "LG_COORDINATOR", "HIL_BOARDS"):
            env.pop(key, None)
        cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "--rootdir", str(out),
               "--hil-target", "lab", "--hil-boards", str(self.inventory),
               "--hil-reports", str(out / "reports"),
               "--hil-cd-key", str(CREDS / "Chip-Test-CD-Signing-Key.pem"),
               "--hil-cd-cert", str(CREDS / "Chip-Test-CD-Signing-Cert.pem")]  # fmt: skip
        if workers:
            cmd += ["-n", str(workers), "--dist", "loadgroup"]
        return subprocess.Popen([*cmd, *extra, str(suite or out)], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip

    def results(self, name: str) -> dict[str, dict[str, object]]:
        return {p.stem: json.loads(p.read_text()) for p in (self.root / name).glob("*.json")}


def lab_boards_toml(coordinator: str) -> str:
    lines = [f'[lab]\ncoordinator = "{coordinator}"\nlease_seconds = {LEASE}\n']
    for boards in HOSTS.values():
        for _board, family, place in boards:
            lines.append(
                f'[board.{place}-lab]\nfamily = "{family}"\nemulated = true\nlabgrid_place = "{place}"\n'
                f"[board.{place}-lab.connection]\ntimeout_ms = 500\n"
            )
    return "\n".join(lines)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("lab")
    host_inventory = root / "host-boards.toml"
    boards = [(b, f) for host_boards in HOSTS.values() for b, f, _ in host_boards]
    host_inventory.write_text("\n".join(f'[board.{b}]\nfamily = "{f}"\nemulated = true\n' for b, f in boards))
    profiles = load_inventory(host_inventory)
    coordinator = Coordinator(root / "coordinator").start()
    hosts: dict[str, EmulatedLabHost] = {}
    try:
        for name, boards in HOSTS.items():
            hosts[name] = EmulatedLabHost(
                coordinator.address, name, [(profiles.get(b), p) for b, _, p in boards], root / name,
                state_root=root / "host-state",
            ).start()  # fmt: skip
            hosts[name].create_places()
        inventory = root / "lab-boards.toml"
        inventory.write_text(lab_boards_toml(coordinator.address))
        yield Lab(root, coordinator, hosts, inventory)
    finally:
        for host in hosts.values():
            host.stop()
        coordinator.stop()


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError(f"inner run did not finish:\n{out}") from None
    return out


def test_two_runs_share_the_lab_and_a_third_skips_busy_places(lab: Lab) -> None:
    places = [p for boards in HOSTS.values() for _, _, p in boards]
    # Someone else (another harness run, here this process) holds rw61x-01 while three runs start.
    blocker = LabSession(load_inventory(lab.inventory).lab, make_identity("blocker"))
    blocker.hold("rw61x-01", timeout=10)
    first = lab.run("first", hold=0.3)
    second = lab.run("second")
    impatient = lab.run("impatient", "--hil-lock-timeout", "0.3", workers=0)
    try:
        out_impatient = finish(impatient)
        released_at = time.time()
        blocker.close()  # now the two patient runs get rw61x-01, one after the other
        out_second = finish(second)
        out_first = finish(first)
    finally:
        blocker.close()
        for proc in (first, second, impatient):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert "4 passed" in out_first, out_first
    assert "4 passed" in out_second, out_second
    a, b = lab.results("first"), lab.results("second")
    assert sorted(r["place"] for r in a.values()) == sorted(places)
    assert sorted(r["place"] for r in b.values()) == sorted(places)
    assert {r["worker"] for r in a.values()} == {"gw0", "gw1"}
    for run in (a, b):  # every board was used only while the coordinator said this worker held it
        for r in run.values():
            assert r["equal"] is True
            assert r["owners"] == [r["identity"], r["identity"]]
        assert run["rw61x-01-lab"]["start"] >= released_at  # both waited for the blocker
    assert {r["identity"] for r in a.values()}.isdisjoint({r["identity"] for r in b.values()})
    for board, r in a.items():  # never two runs on one place at a time
        other = b[board]
        assert r["end"] <= other["start"] or other["end"] <= r["start"], (r, other)
    # The impatient run skipped the blocked place within 0.3 s, naming the holder; whatever else it
    # could get at once it used like the others, and nothing failed.
    assert f"place rw61x-01 is busy: held by {blocker.identity} (a harness run)" in out_impatient
    assert "failed" not in out_impatient and "error" not in out_impatient.lower(), out_impatient
    assert "rw61x-01-lab" not in lab.results("impatient")
    for r in lab.results("impatient").values():
        assert r["owners"] == [r["identity"], r["identity"]]
    assert all(owner is None for owner in lab.owners().values())  # every run released everything


def test_killed_run_places_come_back_and_sigterm_releases_at_once(lab: Lab) -> None:
    killed = lab.run("killed", "--hil-board", "rw61x-01-lab", hold=60, workers=0)
    termed = lab.run("termed", "--hil-board", "rw61x-02-lab", hold=60, workers=0)
    for run, board in (("killed", "rw61x-01-lab"), ("termed", "rw61x-02-lab")):
        wait_for(lambda r=run, b=board: (lab.root / r / "holding" / b).exists(), 60, f"{run} to hold {board}")
    holder = lab.owners()["rw61x-01"]
    assert holder and "/hil-" in holder and lab.owners()["rw61x-02"]
    # SIGTERM: the run releases its place itself before it dies; no lease needed.
    os.killpg(termed.pid, signal.SIGTERM)
    termed.communicate(timeout=30)
    assert termed.returncode == -signal.SIGTERM
    assert lab.owners()["rw61x-02"] is None
    # SIGKILL: no code of the run executes; the place stays locked until its lease lapses.
    os.killpg(killed.pid, signal.SIGKILL)
    killed.communicate()
    assert lab.owners()["rw61x-01"] == holder  # labgrid itself never releases it (issue #1739)
    session = LabSession(load_inventory(lab.inventory).lab, make_identity("next-run"))
    try:
        held = session.hold("rw61x-01", timeout=LEASE * 10)
        assert held.recovered_from == [holder]
        assert lab.owners()["rw61x-01"] == session.identity
    finally:
        session.close()
    assert lab.owners()["rw61x-01"] is None


@pytest.mark.skipif(not PROVISIONING_SUITE.exists(), reason="the HIL provisioning suite is not in this tree")
def test_the_provisioning_suite_runs_on_the_lab_and_a_dead_board_is_broken_for_the_run(lab: Lab) -> None:
    """The repository's own provisioning suite (generate, flash factory data + app, boot read on the
    console, read back, inspect) on the lab's boards, two workers; one board's ROM does not answer."""
    host = lab.hosts["exp2"]
    handle = host.handles["k32w0x1-02"]
    handle.stop()  # the exporter still exports the pty path; nothing answers behind it
    out = finish(lab.run("broken", suite=PROVISIONING_SUITE))
    assert "3 passed, 1 skipped" in out, out
    assert "place k32w0x1-02 failed its health check, marked broken for this run" in out
    assert (lab.root / "broken" / "reports" / "hil-lab").is_dir()
    # lab boards are reached through their places: the run started no local emulator for them
    assert not list((lab.root / "state-broken").glob("*/board.log"))
    assert all(owner is None for owner in lab.owners().values())
