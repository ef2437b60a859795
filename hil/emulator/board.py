"""One emulated board, run as its own process: flash, ROM on a pty, J-Link probe, console, control channel.

Why a process per board: a real board outlives the command that flashed it, keeps its flash, and is reached
only over its wires. So an emulated board is a process (`python -m hil.emulator.board --board NAME`) whose
flash is a file in its state dir, reached over the same wires as silicon:

* serial port (a pty) with the family's ROM bootloader on it (`ROMS`: dk6 | mboot | sdp);
* a J-Link probe endpoint on 127.0.0.1 (`hil.emulator.probe`), for pylink's real `JLink` class;
* a console pty for the firmware's log (`Board.console_write`), also appended to console.log;
* a control channel (TCP 127.0.0.1, one JSON object per line) for the harness itself: status, install a
  fault plan, reset, stop, and `peek` (a read-only side door for tests and debugging; programmers never
  use it, they go through the ROM or the probe).

State dir: ``$HIL_STATE_DIR/<board>`` (default ``$XDG_STATE_HOME/nxp-matter-hil/<board>``) holds the flash
files (``flash-<REGION>.bin``), ``state.json`` (pid and ports, present while the board runs), board.log and
console.log. One process per state dir (an flock); `ensure_running` starts it on demand under a second lock,
so concurrent callers (xdist workers, `hil flash` in two shells) never start it twice.

ROM-emulator contract (rom_dk6 / rom_mboot / rom_sdp):

    rom = RomClass(port: PtyPort, memory: MemoryMap, faults: FaultPlan, *, on_reset=callable, **rom_options)
      rom_options = the family's `rom_options` (hil.boards.families) updated with boards.toml
      [board.NAME.emulator]. on_reset: call it when the host asks the ROM to reset the chip (DK6 RESET,
      mboot reset) after answering, so the board's reset hooks run.
    rom.feed(data: bytes)      bytes from the host; answer with port.send(...) after faults.outgoing(frame)
                               (None: drop it); called under board.lock, so it may touch memory freely.
    rom.faults                 the board assigns a new FaultPlan to this attribute when one is installed:
                               read it at each use, do not cache it.
    rom.reset()                optional: back to the power-on state; the board calls it on resets that do
                               not come from the ROM itself (control channel, J-Link).

Reset hooks (for the firmware model): `Board.add_reset_hook(fn)`, fn(board) runs on every reset (control
`reset`, J-Link reset, ROM reset command) after the ROM is back in its power-on state; `board.last_reset`
says which. A firmware model that boots the app sets `board.mode = "app"` and may take over the serial port
by replacing `board.serial_sink` (default: the ROM's feed). Extensions: if a module `hil.emulator.firmware`
exists and defines ``attach(board)``, the board process calls it at start-up (`EXTENSIONS`). An extension
may add control ops: ``board.control_ops[name] = handler``, handler(request: dict) -> dict (raise HilError).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib
import importlib.util
import json
import logging
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hil.emulator.faults import FaultPlan
from hil.emulator.flash import MemoryAccessError, MemoryMap, Region
from hil.emulator.probe import ProbeServer
from hil.emulator.pty import PtyPort
from hil.errors import BoardError, HilError
from hil.fileio import atomic_write_text, make_dir

if TYPE_CHECKING:
    from hil.boards.families import Family
    from hil.boards.profile import BoardProfile

log = logging.getLogger(__name__)

ROMS: dict[str, str] = {
    "dk6": "hil.emulator.rom_dk6:Dk6Rom",
    "mboot": "hil.emulator.rom_mboot:MbootRom",
    "sdp": "hil.emulator.rom_sdp:SdpRom",
}
EXTENSIONS: tuple[str, ...] = ("hil.emulator.firmware",)

ENV_STATE_DIR = "HIL_STATE_DIR"
ENV_IDLE_TIMEOUT = "HIL_EMU_IDLE_TIMEOUT"  # seconds without traffic after which a board process exits
STATE_FILE, LOG_FILE, CONSOLE_LOG = "state.json", "board.log", "console.log"
START_TIMEOUT = 20.0
SERIAL_WRITE_TIMEOUT = 5.0  # a ROM answer nobody reads for this long is dropped (the host went away)

ResetHook = Callable[["Board"], None]


def state_root(root: Path | str | None = None) -> Path:
    """Where the harness keeps per-board state (board processes, strategy records, lock files):
    `root`, else $HIL_STATE_DIR, else $XDG_STATE_HOME/nxp-matter-hil (~/.local/state/nxp-matter-hil)."""
    if root is not None:
        return Path(root)
    env = os.environ.get(ENV_STATE_DIR)
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "nxp-matter-hil"


def state_dir(name: str, root: Path | str | None = None) -> Path:
    return state_root(root) / name


def make_state_dir(name: str, root: Path | str | None = None) -> Path:
    """`state_dir`, created; one that cannot be (a bad $HIL_STATE_DIR) is bad input naming the variable."""
    return make_dir(state_dir(name, root), what=f"board state dir (${ENV_STATE_DIR})")


def build_memory(family: Family, directory: Path) -> MemoryMap:
    """The family's memory map; flash regions are files in `directory`, so they persist across runs."""
    regions = [
        Region(
            m.name, m.base, m.size, m.sector_size, directory / f"flash-{m.name}.bin" if m.is_flash else None
        )
        for m in family.memory
    ]
    return MemoryMap(regions)


def rom_class(protocol: str) -> Any:
    target = ROMS.get(protocol)
    if target is None:
        raise BoardError(f"no ROM emulator for protocol {protocol!r}; known: {', '.join(ROMS)}")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise BoardError(f"ROM emulator {module_name} is not available ({exc})") from None
    return getattr(module, class_name)


class Board:
    """An emulated board inside the current process (the board process's main object)."""

    def __init__(self, profile: BoardProfile, directory: Path, faults: FaultPlan | None = None) -> None:
        self.profile = profile
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.faults = faults or FaultPlan()
        self.memory = build_memory(profile.spec, self.directory)
        self.mode = "rom"
        self.resets = 0
        self.last_reset: str | None = None
        self.reset_hooks: list[ResetHook] = []
        self.control_ops: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}  # added by extensions
        self._last_activity = time.monotonic()
        self._stop = threading.Event()
        self._lock_fd: int | None = None
        self.serial = PtyPort()
        self.serial.write_timeout = SERIAL_WRITE_TIMEOUT
        self.console = PtyPort()
        self.console.write_timeout = 0.0  # a UART with no listener loses its output; never block the board
        options = {**profile.spec.rom_options, **profile.emulator}
        self.rom = rom_class(profile.spec.rom)(
            self.serial, self.memory, self.faults, on_reset=lambda: self.reset("rom"), **options
        )
        self.serial_sink: Callable[[bytes], None] = self.rom.feed
        self.probe = ProbeServer(self)
        self.control = _ControlServer(self)

    # -- behaviour -------------------------------------------------------------------------------------
    def add_reset_hook(self, hook: ResetHook) -> None:
        self.reset_hooks.append(hook)

    def reset(self, reason: str = "control") -> None:
        """Reset the chip: ROM back to power-on state, then every reset hook (which may boot the app)."""
        with self.lock:
            self.resets += 1
            self.last_reset = reason
            self.mode = "rom"
            self.serial_sink = self.rom.feed
            reset = getattr(self.rom, "reset", None)
            if reset is not None and reason != "rom":
                reset()
            self.probe.halted = True
            self.memory.flush()
            for hook in list(self.reset_hooks):
                hook(self)

    def install_faults(self, plan: FaultPlan) -> None:
        with self.lock:
            self.faults = plan
            self.rom.faults = plan

    def console_write(self, data: bytes) -> None:
        """Firmware output: to the console pty (dropped if nobody reads) and to console.log."""
        with (self.directory / CONSOLE_LOG).open("ab") as fh:
            fh.write(data)
        self.console.send(data)

    def touch(self) -> None:
        self._last_activity = time.monotonic()

    def status(self) -> dict[str, Any]:
        return {
            "name": self.profile.name,
            "family": self.profile.family,
            "pid": os.getpid(),
            "rom": self.profile.spec.rom,
            "serial": self.serial.path,
            "console": self.console.path,
            "probe_port": self.probe.port,
            "control_port": self.control.port,
            "mode": self.mode,
            "resets": self.resets,
            "last_reset": self.last_reset,
            "faults": {"fired": list(self.faults.fired), "disconnected": self.faults.disconnected},
            "state_dir": str(self.directory),
        }

    # -- life cycle ------------------------------------------------------------------------------------
    def _on_serial(self, data: bytes) -> None:
        with self.lock:
            self.touch()
            try:
                self.serial_sink(data)
            except Exception:  # a bug in a ROM model must not kill the port thread silently
                log.error("serial handler failed:\n%s", traceback.format_exc())

    def start(self) -> Board:
        """Claim the state dir, start every endpoint, load extensions, publish state.json."""
        fd = os.open(self.directory / "board.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BoardError(f"{self.profile.name}: already running (state dir {self.directory})") from None
        self._lock_fd = fd
        self.serial.start(self._on_serial, name="serial")
        self.console.start(lambda data: None, name="console")
        self.probe.start()
        self.control.start()
        self._load_extensions()
        atomic_write_text(self.directory / STATE_FILE, json.dumps(self.status(), indent=1) + "\n")
        return self

    def _load_extensions(self) -> None:
        for name in EXTENSIONS:
            try:
                found = importlib.util.find_spec(name) is not None
            except ModuleNotFoundError:
                found = False
            if found:
                attach = getattr(importlib.import_module(name), "attach", None)
                if attach is not None:
                    attach(self)

    def wait(self, idle_timeout: float | None = None) -> None:
        """Serve until `stop()` (or SIGTERM via the caller), or until idle for `idle_timeout` seconds."""
        while not self._stop.wait(0.5):
            if idle_timeout and time.monotonic() - self._last_activity > idle_timeout:
                log.warning("%s: idle for %.0f s, stopping", self.profile.name, idle_timeout)
                break

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(FileNotFoundError):
            state = json.loads((self.directory / STATE_FILE).read_text())
            if state.get("pid") == os.getpid():
                (self.directory / STATE_FILE).unlink()
        self.control.close()
        self.probe.close()
        self.serial.close()
        self.console.close()
        with self.lock:
            self.memory.flush()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def handle_control(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        self.touch()
        if op == "status":
            return self.status()
        if op == "faults":
            plan = request.get("plan")
            self.install_faults(FaultPlan.from_dict(plan) if plan else FaultPlan())
            return {"installed": bool(plan)}
        if op == "reset":
            self.reset(str(request.get("reason", "control")))
            return {"resets": self.resets}
        if op == "peek":
            address, length = int(request["address"]), int(request["length"])
            with self.lock:
                try:
                    return {"data": self.memory.read(address, length).hex()}
                except MemoryAccessError as exc:
                    raise BoardError(str(exc)) from None
        if op == "stop":
            self.stop()
            return {"stopping": True}
        extension_op = self.control_ops.get(str(op))
        if extension_op is not None:
            return extension_op(request)
        raise BoardError(f"unknown control op {op!r}")


class _ControlHandler(socketserver.StreamRequestHandler):
    server: _ControlTCPServer

    def handle(self) -> None:
        for line in self.rfile:
            try:
                reply = {"ok": True, **self.server.board.handle_control(json.loads(line))}
            except (HilError, ValueError, KeyError, TypeError) as exc:
                reply = {"ok": False, "error": str(exc)}
            self.wfile.write(json.dumps(reply).encode() + b"\n")


class _ControlTCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, board: Board) -> None:
        super().__init__(("127.0.0.1", 0), _ControlHandler)
        self.board = board


class _ControlServer:
    def __init__(self, board: Board) -> None:
        self.server = _ControlTCPServer(board)
        self.port: int = self.server.server_address[1]

    def start(self) -> None:
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="control", daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- the harness side: find, start, talk to, stop a board process ------------------------------------------
_children: dict[int, subprocess.Popen[bytes]] = {}  # board processes this process started (to reap them)


@dataclass(frozen=True)
class BoardHandle:
    """A running board process, as seen from the harness (read from its state.json)."""

    name: str
    family: str
    pid: int
    serial_port: str
    console_port: str
    probe_port: int
    control_port: int
    state_dir: Path

    @classmethod
    def from_state(cls, directory: Path) -> BoardHandle | None:
        try:
            s = json.loads((directory / STATE_FILE).read_text())
            return cls(
                s["name"], s["family"], int(s["pid"]), s["serial"], s["console"],
                int(s["probe_port"]), int(s["control_port"]), directory,
            )  # fmt: skip
        except (OSError, ValueError, KeyError):
            return None

    @property
    def ports(self) -> dict[str, Any]:
        return {
            "serial": self.serial_port,
            "console": self.console_port,
            "jlink": f"127.0.0.1:{self.probe_port}",
            "control": f"127.0.0.1:{self.control_port}",
        }

    def request(self, op: str, timeout: float = 10.0, **args: Any) -> dict[str, Any]:
        try:
            with socket.create_connection(("127.0.0.1", self.control_port), timeout=timeout) as sock:
                sock.sendall(json.dumps({"op": op, **args}).encode() + b"\n")
                line = sock.makefile("rb").readline()
        except OSError as exc:
            raise BoardError(f"{self.name}: control channel (port {self.control_port}): {exc}") from None
        if not line:
            raise BoardError(f"{self.name}: control channel closed without answering {op!r}")
        reply = json.loads(line)
        if not reply.pop("ok", False):
            raise BoardError(f"{self.name}: {op}: {reply.get('error')}")
        return reply

    def status(self) -> dict[str, Any]:
        return self.request("status")

    def install_faults(self, plan: FaultPlan | dict[str, Any] | None) -> None:
        """Install a fault plan (a FaultPlan, its dict form, or None to clear faults)."""
        if isinstance(plan, FaultPlan):
            plan = _plan_dict(plan)
        self.request("faults", plan=plan)

    def reset(self) -> None:
        self.request("reset")

    def peek(self, address: int, length: int) -> bytes:
        """Read memory directly (tests/debugging only; programmers go through the ROM or the probe)."""
        return bytes.fromhex(self.request("peek", address=address, length=length)["data"])

    def alive(self) -> bool:
        if not _pid_alive(self.pid):
            return False
        try:
            status = self.request("status", timeout=3.0)
        except BoardError:
            return False
        return status.get("pid") == self.pid and status.get("name") == self.name

    def stop(self, timeout: float = 10.0) -> None:
        with contextlib.suppress(BoardError):
            self.request("stop", timeout=3.0)
        deadline = time.monotonic() + timeout
        while _pid_alive(self.pid):
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
        _reap(self.pid)


def _plan_dict(plan: FaultPlan) -> dict[str, Any]:
    return {
        "drop_frames": sorted(plan.drop_frames),
        "garble_frames": sorted(plan.garble_frames),
        "stall_frames": {str(k): v for k, v in plan.stall_frames.items()},
        "disconnect_after_bytes": plan.disconnect_after_bytes,
        "flip_bit": list(plan.flip_bit) if plan.flip_bit else None,
        "seed": plan.seed,
    }


def _pid_alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # an exited process whose parent has not reaped it yet (a zombie) is not alive
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _reap(pid: int) -> None:
    child = _children.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)


def find_running(name: str, root: Path | str | None = None) -> BoardHandle | None:
    """The handle of the running board process `name`, or None (stale state files are ignored)."""
    handle = BoardHandle.from_state(state_dir(name, root))
    return handle if handle is not None and handle.alive() else None


def ensure_running(profile: BoardProfile, *, root: Path | str | None = None) -> BoardHandle:
    """The board's process, started if it is not running (safe against concurrent callers)."""
    if not profile.emulated:
        raise BoardError(f"{profile.name}: not an emulated board (boards.toml emulated = false)")
    directory = make_state_dir(profile.name, root)
    with _flock(directory / "start.lock"):
        handle = find_running(profile.name, root)
        if handle is not None and handle.family == profile.family:
            return handle
        if handle is not None:  # the inventory changed the board's family: restart it
            handle.stop()
        return _spawn(profile, directory)


def start(profile: BoardProfile, *, root: Path | str | None = None) -> BoardHandle:
    """Start the board's process; BoardError if it is already running."""
    directory = make_state_dir(profile.name, root)
    with _flock(directory / "start.lock"):
        running = find_running(profile.name, root)
        if running is not None:
            raise BoardError(f"{profile.name}: already running (pid {running.pid})")
        return _spawn(profile, directory)


def stop(name: str, *, root: Path | str | None = None) -> bool:
    """Stop the board process `name`; False if it was not running."""
    handle = find_running(name, root)
    if handle is None:
        return False
    handle.stop()
    return True


@contextlib.contextmanager
def _flock(path: Path) -> Any:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _spawn(profile: BoardProfile, directory: Path) -> BoardHandle:
    cmd = [sys.executable, "-m", "hil.emulator.board", "--board", profile.name, "--state-dir", str(directory)]
    if profile.source is not None:
        cmd += ["--boards", str(profile.source)]
    with (directory / LOG_FILE).open("ab") as logfile:
        child = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=logfile, stderr=logfile, start_new_session=True
        )
    _children[child.pid] = child
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        handle = BoardHandle.from_state(directory)
        if handle is not None and handle.pid == child.pid:
            return handle
        if child.poll() is not None:
            _children.pop(child.pid, None)
            raise BoardError(f"{profile.name}: emulated board failed to start: {_log_tail(directory)}")
        time.sleep(0.02)
    child.kill()
    _reap(child.pid)
    raise BoardError(f"{profile.name}: emulated board did not start within {START_TIMEOUT:.0f} s")


def _log_tail(directory: Path) -> str:
    try:
        lines = (directory / LOG_FILE).read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return lines[-1] if lines else "(empty log)"


def run(
    profile: BoardProfile,
    directory: Path,
    *,
    announce: Callable[[Board], None] | None = None,
    idle_timeout: float | None = None,
) -> int:
    """Run a board in this process until stopped (control `stop`, SIGTERM, Ctrl-C or idle timeout)."""
    board = Board(profile, directory).start()
    previous = signal.signal(signal.SIGTERM, lambda *_: board.stop())
    try:
        if announce is not None:
            announce(board)
        board.wait(idle_timeout)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        board.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one emulated board (normally started by the harness).")
    parser.add_argument("--board", required=True)
    parser.add_argument("--boards", help="inventory file (default: the default inventory)")
    parser.add_argument("--state-dir", required=True, type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from hil.boards import get_board

    try:
        profile = get_board(args.board, args.boards)
        idle = float(os.environ.get(ENV_IDLE_TIMEOUT, "0") or 0) or None
        return run(profile, args.state_dir, idle_timeout=idle)
    except HilError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
