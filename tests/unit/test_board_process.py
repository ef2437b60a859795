"""The emulated board as its own process: start on demand, one per state dir, control channel, persistence,
reset hooks, console, `hil emulate` in the foreground, idle exit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import serial
from emulated_boards import assert_other_process, lab, random_image

from hil import programmers
from hil.boards import get_board
from hil.emulator import board as emu
from hil.errors import BoardError

REPO = Path(__file__).resolve().parents[2]
ALL = {
    name: name.removesuffix("-emu")
    for name in ("k32w0x1-emu", "k32w1-emu", "rt1060-emu", "rt1170-emu", "rw61x-emu")
}


def wait_until(predicate, what: str, limit: float = 15.0) -> None:
    """Poll for a state change (a bound for a hung test, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def test_every_default_board_runs_as_its_own_process_and_takes_a_write(tmp_path):
    """All five families: their process starts, serves its ROM/probe, and keeps what its programmer wrote."""
    key = 'aes_key = "2B7E151628AED2A6ABF7158809CF4F3C"'
    with lab(tmp_path, {**ALL, "rt1060-emu": f"rt1060|{key}", "rt1170-emu": f"rt1170|{key}"}) as the_lab:
        for name in ALL:
            profile = the_lab.profile(name)
            handle = the_lab.start(name)
            assert_other_process(handle)
            status = handle.status()
            assert (status["name"], status["family"], status["rom"]) == (
                name,
                profile.family,
                profile.spec.rom,
            )
            state = json.loads((handle.state_dir / "state.json").read_text())
            assert state["pid"] == handle.pid and state["serial"].startswith("/dev/pts/")
            image = random_image(600, seed=len(name))
            programmers.flash(profile, image)
            assert handle.peek(profile.factory_data_address, 600) == image
        pids = {the_lab.running(name).pid for name in ALL}
        assert len(pids) == len(ALL)


def test_ensure_running_is_idempotent_and_safe_against_concurrent_callers(tmp_path):
    with lab(tmp_path, {"k32w1-emu": "k32w1"}) as the_lab:
        profile = the_lab.profile("k32w1-emu")
        handles: list[emu.BoardHandle] = []
        threads = [
            threading.Thread(target=lambda: handles.append(emu.ensure_running(profile, root=the_lab.root)))
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({h.pid for h in handles}) == 1
        # a second process cannot take the same state dir
        with pytest.raises(BoardError, match="already running"):
            emu.start(profile, root=the_lab.root)
        cmd = [sys.executable, "-m", "hil.emulator.board", "--board", "k32w1-emu"]
        cmd += ["--boards", str(the_lab.inventory), "--state-dir", str(handles[0].state_dir)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        assert r.returncode == 3 and "already running" in r.stderr


def test_flash_persists_across_restarts_and_a_killed_board_is_restarted(tmp_path):
    with lab(tmp_path, {"k32w0x1-emu": "k32w0x1"}) as the_lab:
        profile = the_lab.profile("k32w0x1-emu")
        image = random_image(800, seed=21)
        programmers.flash(profile, image)
        first = the_lab.running("k32w0x1-emu")
        os.kill(first.pid, signal.SIGKILL)  # power cut: no clean shutdown, state.json left behind
        wait_until(lambda: not emu._pid_alive(first.pid), "the killed board to exit")
        assert (first.state_dir / "state.json").exists()
        assert emu.find_running("k32w0x1-emu", the_lab.root) is None  # stale state is recognised
        assert programmers.read(profile)[:800] == image  # restarted on demand, flash kept
        second = the_lab.running("k32w0x1-emu")
        assert second.pid != first.pid
        second.stop()
        assert not (second.state_dir / "state.json").exists()
        assert emu.stop("k32w0x1-emu", root=the_lab.root) is False


def test_control_channel(tmp_path):
    with lab(tmp_path, {"k32w0x1-emu": "k32w0x1"}) as the_lab:
        handle = the_lab.start("k32w0x1-emu")
        assert handle.peek(0x9D600, 4) == b"\xff" * 4
        before = handle.status()["resets"]
        handle.reset()
        status = handle.status()
        assert status["resets"] == before + 1 and status["last_reset"] == "control"
        handle.install_faults({"drop_frames": [1]})
        assert handle.status()["faults"] == {"fired": [], "disconnected": False}
        with pytest.raises(BoardError, match="unknown control op"):
            handle.request("frobnicate")
        with pytest.raises(BoardError, match="no memory at 0x10000000"):
            handle.peek(0x10000000, 4)


def test_reset_hooks_console_and_extensions_in_process(tmp_path, monkeypatch):
    """The firmware engineer's hooks: extensions attach at start, hooks run on every reset."""
    ext = tmp_path / "ext"
    ext.mkdir()
    (ext / "fake_firmware_ext.py").write_text(
        "def attach(board):\n"
        "    def boot(b):\n"
        "        b.mode = 'app'\n"
        "        b.console_write(b'booted after ' + b.last_reset.encode() + b' reset\\n')\n"
        "    board.add_reset_hook(boot)\n"
    )
    monkeypatch.syspath_prepend(str(ext))
    monkeypatch.setattr(emu, "EXTENSIONS", ("fake_firmware_ext", "hil.emulator.no_such_module"))
    profile = get_board("k32w0x1-emu", REPO / "boards.toml")
    board = emu.Board(profile, tmp_path / "state").start()
    try:
        assert board.mode == "rom" and len(board.reset_hooks) == 1
        with serial.Serial(board.console.path, 115200, timeout=2) as console:
            board.reset("control")
            assert console.readline() == b"booted after control reset\n"
        assert board.mode == "app"
        assert (tmp_path / "state" / "console.log").read_bytes() == b"booted after control reset\n"
        # a reset puts the serial port back to the ROM before the hooks run
        board.serial_sink = lambda data: None
        board.reset("probe")
        assert board.serial_sink == board.rom.feed
    finally:
        board.close()


def test_hil_emulate_foreground_prints_ports_serves_clients_and_stops_on_sigterm(tmp_path):
    with lab(tmp_path, {"k32w0x1-emu": "k32w0x1"}) as the_lab:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hil", "emulate", "--board", "k32w0x1-emu", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            ports = json.loads(proc.stdout.readline())
            assert ports["board"] == "k32w0x1-emu" and ports["pid"] == proc.pid
            assert ports["serial"].startswith("/dev/pts/") and ports["jlink"].startswith("127.0.0.1:")
            # the harness finds the foreground board like a background one
            profile = the_lab.profile("k32w0x1-emu")
            assert programmers.resolve_connection(profile).port == ports["serial"]
            image = random_image(300, seed=22)
            programmers.flash(profile, image)
            assert the_lab.running("k32w0x1-emu").pid == proc.pid
            second = subprocess.run(
                [sys.executable, "-m", "hil", "emulate", "--board", "k32w0x1-emu"],
                capture_output=True,
                text=True,
            )
            assert second.returncode == 3 and "already running" in second.stderr
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        assert not (the_lab.root / "k32w0x1-emu" / "state.json").exists()
        assert the_lab.flash_file("k32w0x1-emu").read_bytes()[0x9D600 : 0x9D600 + 300] == image


def test_idle_board_process_exits_by_itself(tmp_path, monkeypatch):
    monkeypatch.setenv(emu.ENV_IDLE_TIMEOUT, "0.5")
    with lab(tmp_path, {"rw61x-emu": "rw61x"}) as the_lab:
        handle = the_lab.start("rw61x-emu")
        wait_until(lambda: not emu._pid_alive(handle.pid), "the idle board to exit")
        assert not (handle.state_dir / "state.json").exists()


def test_not_emulated_board_is_refused(tmp_path):
    inv = tmp_path / "boards.toml"
    inv.write_text('[board.lab]\nfamily = "k32w1"\n[board.lab.connection]\njlink_serial = 1\n')
    with pytest.raises(BoardError, match="not an emulated board"):
        emu.ensure_running(get_board("lab", inv), root=tmp_path)
    r = subprocess.run(
        [sys.executable, "-m", "hil", "emulate", "--board", "lab", "--boards", str(inv)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "an emulated board" in r.stderr
