"""The lab's pieces that need no running lab: boards.toml's [lab] and labgrid_place, board selection for
`--hil-target lab`, identities, lease liveness, the ser2net rewrite, exporter YAML, and the pty bridge."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import serial
import yaml
from labgrid.remote.common import Reservation, ReservationState

from hil.boards import load_inventory
from hil.errors import BoardError, ConfigError, InputError
from hil.lab.bridge import PtyBridge
from hil.lab.config import LabConfig, normalize_address
from hil.lab.exporter_config import BoardExport, exporter_yaml, place_matches
from hil.lab.labgrid import is_harness_identity, make_identity
from hil.lab.places import LEASE_TAG, held_place, lease_alive
from hil.lab.selection import select_boards
from hil.lab.ser2net_tuned import tune_args, write_wrapper

LAB_BOARDS = """
[lab]
coordinator = "10.0.0.1"
lease_seconds = 12

[board.k32w1-03]
family = "k32w1"
labgrid_place = "k32w1-03"

[board.rw61x-lab]
family = "rw61x"
emulated = true
labgrid_place = "rw61x-01"

[board.rw61x-emu]
family = "rw61x"
emulated = true

[board.rw61x-real]
family = "rw61x"
[board.rw61x-real.connection]
port = "/dev/ttyUSB0"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "boards.toml"
    path.write_text(text)
    return path


# -- boards.toml ------------------------------------------------------------------------------------------
def test_lab_table_and_places_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LG_COORDINATOR", raising=False)
    inv = load_inventory(write(tmp_path, LAB_BOARDS))
    assert inv.lab == LabConfig("10.0.0.1:20408", 12.0)
    assert inv.lab.coordinator_address() == "10.0.0.1:20408"
    real_lab = inv.get("k32w1-03")
    # A real lab board needs no port or J-Link serial: the place provides them.
    assert real_lab.labgrid_place == "k32w1-03" and not real_lab.emulated
    assert real_lab.connection.port is None
    assert inv.get("rw61x-emu").labgrid_place is None
    monkeypatch.setenv("LG_COORDINATOR", "[::1]:30000")
    assert inv.lab.coordinator_address() == "[::1]:30000"  # the environment points one run elsewhere


def test_inventory_without_lab_table_has_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LG_COORDINATOR", raising=False)
    inv = load_inventory(write(tmp_path, '[board.a]\nfamily = "rw61x"\nemulated = true\n'))
    assert inv.lab == LabConfig()
    with pytest.raises(ConfigError, match=r"no labgrid coordinator; set \[lab\] coordinator"):
        inv.lab.coordinator_address()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[lab]\ncoordinator = 5\n[board.a]\nfamily = "rw61x"\nemulated = true\n', "'coordinator': 5 is not"),
        ('[lab]\nhost = "x"\n[board.a]\nfamily = "rw61x"\nemulated = true\n', "'host': unknown key"),
        ('[lab]\ncoordinator = "a b:1"\n[board.a]\nfamily = "rw61x"\nemulated = true\n', "is not host or"),
        ('[lab]\ncoordinator = "h:70000"\n[board.a]\nfamily = "rw61x"\nemulated = true\n', "port 70000"),
        ('[lab]\nlease_seconds = 0.5\n[board.a]\nfamily = "rw61x"\nemulated = true\n', "too short"),
        ('lab = 3\n[board.a]\nfamily = "rw61x"\nemulated = true\n', "must be a table"),
        ('[board.a]\nfamily = "rw61x"\nlabgrid_place = "a b"\n', "'labgrid_place': 'a b'"),
        ('[board.a]\nfamily = "rw61x"\nlabgrid_place = 3\n', "'labgrid_place': 3 is not a string"),
        ('[labs]\n[board.a]\nfamily = "rw61x"\nemulated = true\n', r"allowed: \[board.NAME\], \[lab\]"),
    ],
)
def test_lab_schema_errors_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_inventory(path)
    assert str(path) in str(info.value)
    assert info.value.exit_code == 2


def test_address_normalisation() -> None:
    assert normalize_address("lab-1.example") == "lab-1.example:20408"
    assert normalize_address(" 10.0.0.1:1234 ") == "10.0.0.1:1234"
    assert normalize_address("[fe80::1]") == "[fe80::1]:20408"


# -- selection ----------------------------------------------------------------------------------------------
def test_lab_target_selects_lab_boards_only(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, LAB_BOARDS))
    names = lambda target, *n: [b.name for b in select_boards(inv, target, n)]  # noqa: E731
    assert names("lab") == ["k32w1-03", "rw61x-lab"]
    assert names("emulated") == ["rw61x-emu"]  # an emulated lab board is reached only through its place
    assert names("real") == ["rw61x-real"]
    assert names("all") == ["k32w1-03", "rw61x-lab", "rw61x-emu", "rw61x-real"]
    with pytest.raises(InputError, match=r"it is lab \(add --hil-target lab or all"):
        names("emulated", "rw61x-lab")


# -- identities and leases -------------------------------------------------------------------------------
def test_identity_is_per_run_and_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LG_HOSTNAME", "ci-host")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    assert make_identity("run7") == "ci-host/hil-run7-gw3"
    assert make_identity("run7", "main") == "ci-host/hil-run7-main"
    assert is_harness_identity("ci-host/hil-run7-gw3")
    assert not is_harness_identity("vm/root") and not is_harness_identity("hil-x/root")


def _res(owner: str, polled: float, state: str = "waiting", lease: bool = True) -> Reservation:
    filters = {"main": {LEASE_TAG: "ab12"} if lease else {"name": "p1"}}
    return Reservation(owner=owner, state=state, filters=filters, timeout=polled + 60.0)


def test_lease_alive_reads_the_coordinators_clock() -> None:
    now = 1000.0
    fresh, stale = _res("h/hil-a-gw0", now - 2), _res("h/hil-b-gw0", now - 9)
    reservations = [fresh, stale, _res("h/hil-c-gw0", now, lease=False), _res("h/hil-d-gw0", now, "expired")]
    assert lease_alive(reservations, "h/hil-a-gw0", now, 5.0)
    assert not lease_alive(reservations, "h/hil-b-gw0", now, 5.0)  # silent for longer than the lease
    assert not lease_alive(reservations, "h/hil-c-gw0", now, 5.0)  # a place reservation is not a lease
    assert not lease_alive(reservations, "h/hil-d-gw0", now, 5.0)  # expired by the coordinator
    assert not lease_alive(reservations, "h/hil-e-gw0", now, 5.0)  # no lease at all: gone
    assert ReservationState.waiting is fresh.state


def test_a_lab_board_without_a_held_place_says_how_to_hold_it(tmp_path: Path) -> None:
    profile = load_inventory(write(tmp_path, LAB_BOARDS)).get("k32w1-03")
    with pytest.raises(BoardError, match=r"does not hold the place\. Run the tests with --hil-target lab"):
        held_place(profile)
    from hil import programmers

    with pytest.raises(BoardError, match="labgrid place k32w1-03"):
        programmers.resolve_connection(profile)


# -- ser2net tuning wrapper ----------------------------------------------------------------------------------
LABGRID_ARGS = [
    "-d", "-n", "-Y", "connection: &con01#  accepter: telnet(rfc2217,mode=server),tcp,40123",
    "-Y", "  connector: serialdev(nouucplock=true),/dev/pts/4,115200n81,local",
    "-Y", "  options:", "-Y", "    max-connections: 10",
]  # fmt: skip


def test_tune_args_rewrites_labgrids_command_line_only() -> None:
    tuned = tune_args(LABGRID_ARGS)
    assert tuned[3] == "connection: &con01#  accepter: telnet(rfc2217,mode=server),tcp(nodelay),40123"
    assert tuned[: len(LABGRID_ARGS)][4:] == LABGRID_ARGS[4:]
    assert tuned[len(LABGRID_ARGS) :] == [
        "-Y", "    chardelay: false",
        "-Y", "    dev-to-net-bufsize: 4096",
        "-Y", "    net-to-dev-bufsize: 4096",
    ]  # fmt: skip
    assert tune_args(["-v"]) == ["-v"]
    assert tune_args(["-c", "/etc/ser2net.yaml"]) == ["-c", "/etc/ser2net.yaml"]


def test_wrapper_execs_the_real_ser2net_with_tuned_arguments(tmp_path: Path) -> None:
    fake = tmp_path / "fake-ser2net"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    wrapper_dir = write_wrapper(tmp_path / "wrap")
    assert (wrapper_dir / "ser2net").stat().st_mode & stat.S_IXUSR
    env = dict(os.environ, SER2NET_REAL=str(fake))
    out = subprocess.run([str(wrapper_dir / "ser2net"), *LABGRID_ARGS], capture_output=True, text=True,
                         env=env, check=True).stdout.splitlines()  # fmt: skip
    assert out == tune_args(LABGRID_ARGS)
    if Path("/usr/sbin/ser2net").exists():  # labgrid's version check goes through the wrapper unchanged
        version = subprocess.run([str(wrapper_dir / "ser2net"), "-v"], capture_output=True, text=True)
        assert version.stdout.startswith("ser2net version ")


# -- exporter YAML -----------------------------------------------------------------------------------------
def test_exporter_yaml_names_the_ports_the_harness_looks_for() -> None:
    text = exporter_yaml([
        BoardExport("k32w1-01", rom="/dev/pts/7", console="/dev/pts/8", jlink=("127.0.0.1", 4242)),
        BoardExport("rw61x-01", rom="/dev/ttyUSB0", speed=1000000, location="shelf 2"),
    ])  # fmt: skip
    data = yaml.safe_load(text)
    assert data["k32w1-01"]["rom"] == {"cls": "RawSerialPort", "port": "/dev/pts/7", "speed": 115200}
    assert data["k32w1-01"]["console"]["port"] == "/dev/pts/8"
    assert data["k32w1-01"]["jlink"] == {"cls": "NetworkService", "address": "127.0.0.1", "port": 4242,
                                         "username": ""}  # fmt: skip
    assert data["rw61x-01"] == {"location": "shelf 2",
                                "rom": {"cls": "RawSerialPort", "port": "/dev/ttyUSB0", "speed": 1000000}}
    assert place_matches("exp1", "rw61x-01") == ["exp1/rw61x-01/*"]
    with pytest.raises(ValueError, match="exported twice: a"):
        exporter_yaml([BoardExport("a", rom="/dev/x"), BoardExport("a", rom="/dev/y")])


# -- pty bridge ----------------------------------------------------------------------------------------------
def test_bridge_carries_bytes_both_ways_and_reports_a_lost_remote() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    received = bytearray()

    def echo_upper() -> None:
        conn, _ = server.accept()
        with conn:
            while data := conn.recv(4096):
                received.extend(data)
                conn.sendall(data.upper())
                if b"bye" in received:
                    server.close()  # gone for good (a released place): reconnecting must fail
                    return

    thread = threading.Thread(target=echo_upper, daemon=True)
    thread.start()
    with PtyBridge(f"socket://127.0.0.1:{port}", name="test") as bridge:
        assert bridge.port.startswith("/dev/pts/")
        with serial.Serial(bridge.port, 115200, timeout=2) as client:  # a path-only client
            payload = bytes(range(97, 123)) * 200
            client.write(payload)
            got = client.read(len(payload))
            assert got == payload.upper()
            client.write(b"bye")
            assert client.read(3) == b"BYE"
        thread.join(5)
        deadline = time.monotonic() + 5
        while bridge.alive and time.monotonic() < deadline:  # the remote closed its end
            time.sleep(0.02)
        assert not bridge.alive
        assert bridge.error and "Connection refused" in bridge.error


def test_bridge_reconnects_when_the_remote_drops_a_connection() -> None:
    """ser2net closing a fresh rfc2217 connection (seen under load right after an acquire) is not the end."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def drop_first_then_echo() -> None:
        first, _ = server.accept()
        first.close()  # the drop
        conn, _ = server.accept()
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data.upper())

    thread = threading.Thread(target=drop_first_then_echo, daemon=True)
    thread.start()
    with PtyBridge(f"socket://127.0.0.1:{port}", name="test") as bridge:
        with serial.Serial(bridge.port, 115200, timeout=0.5) as client:
            deadline = time.monotonic() + 10
            got = b""
            while got != b"PING" and time.monotonic() < deadline:  # a client retries as a protocol would
                client.reset_input_buffer()
                client.write(b"ping")
                got = client.read(4)
            assert got == b"PING"
        assert bridge.alive and bridge.reconnects == 1
    server.close()


def test_bridge_to_nowhere_is_one_board_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connection refused
        with pytest.raises(BoardError, match=f"cannot open the remote serial port socket://127.0.0.1:{port}"):
            PtyBridge(f"socket://127.0.0.1:{port}", name="place x rom").start()


def test_host_cli_refuses_a_bad_board_place_argument() -> None:
    r = subprocess.run([sys.executable, "-m", "hil.lab.host", "--coordinator", "127.0.0.1:1", "--name", "x",
                        "rw61x-emu"], capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith("error: BOARD=PLACE")
