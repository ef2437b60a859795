"""The lab's processes, run from the labgrid package: a coordinator and exporters (with the tuned ser2net).

Used by the lab's own hosts (`hil.lab.host`), the tests and the benchmark. Why processes and not labgrid's
classes in-process: the coordinator and the exporter are labgrid's command-line programs, each with its own
asyncio loop and gRPC server; running them as the lab runs them is the only honest test of the lab.

* `Coordinator`: `labgrid-coordinator -l HOST:PORT`, in its own directory (it keeps places.yaml there).
* `Exporter`: `labgrid-exporter -c COORD -n NAME --hostname ADDR config.yaml` with `hil.lab.ser2net_tuned`
  first on its PATH, supervised: labgrid's exporter exits with code 100 whenever the coordinator goes away
  (or is not up yet) and expects systemd to restart it (lab-notes §10.5); `Exporter` restarts it on 100
  and stops on anything else.

Both are stopped by pid (terminate, then kill), never by name; `stop()` is idempotent and safe in a
`finally:`. The exporter's ser2net children are stopped by the exporter itself on SIGTERM; `stop()` kills
the exporter's whole process group as a last resort so no ser2net survives a test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from hil.errors import BoardError
from hil.lab.ser2net_tuned import write_wrapper

RESTART_CODE = 100
START_TIMEOUT = 20.0


def labgrid_program(name: str) -> str:
    """The labgrid console script next to this interpreter (the venv's), else the one on PATH."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _wait_for_text(path: Path, text: str, timeout: float, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if text in path.read_text(errors="replace"):
                return
        if proc.poll() is not None:
            raise BoardError(f"{what} exited with {proc.returncode}: {_tail(path)}")
        time.sleep(0.02)
    raise BoardError(f"{what} not ready after {timeout:g} s: {_tail(path)}")


def _tail(path: Path, n: int = 3) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(lines[-n:]) if lines else "(empty log)"


def _stop_group(proc: subprocess.Popen[bytes] | None, timeout: float = 5.0) -> None:
    """SIGTERM the process (its own session) and wait; then SIGKILL its whole group."""
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # leftover children (ser2net) of a process that led its group
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(2.0)


class Coordinator:
    """A labgrid coordinator listening on `host:port` (port 0: a free one), run from `directory`."""

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.directory = Path(directory)
        self.host = host
        self.port = port or free_port(host)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "coordinator.log"

    def start(self, timeout: float = START_TIMEOUT) -> Coordinator:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as logfile:
            self.proc = subprocess.Popen(
                [labgrid_program("labgrid-coordinator"), "-l", self.address],
                cwd=self.directory, stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        _wait_for_text(self.log_path, "listening on", timeout, self.proc, f"coordinator {self.address}")
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        _stop_group(proc)

    def __enter__(self) -> Coordinator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class Exporter:
    """A supervised labgrid exporter (restarted when it exits 100), with the tuned ser2net by default."""

    def __init__(
        self,
        coordinator: str,
        name: str,
        config: Path,
        *,
        hostname: str = "127.0.0.1",
        directory: Path | None = None,
        tuned: bool = True,
        netns: str | None = None,
    ) -> None:
        self.coordinator = coordinator
        self.name = name
        self.config = Path(config)
        self.hostname = hostname
        self.directory = Path(directory) if directory else self.config.parent
        self.tuned = tuned
        self.netns = netns  # run inside `ip netns exec NETNS` (a lab host simulated on one machine)
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def log_path(self) -> Path:
        return self.directory / f"exporter-{self.name}.log"

    def _command(self) -> list[str]:
        cmd = [labgrid_program("labgrid-exporter"), "-c", self.coordinator, "-n", self.name,
               "--hostname", self.hostname, str(self.config)]  # fmt: skip
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns, *cmd]
        return cmd

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("LG_COORDINATOR", None)
        if self.tuned:
            wrapper = write_wrapper(self.directory / "ser2net-tuned")
            env["PATH"] = f"{wrapper}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as logfile:
            return subprocess.Popen(
                self._command(), cwd=self.directory, env=self._env(), stdin=subprocess.DEVNULL,
                stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def start(self, timeout: float = START_TIMEOUT) -> Exporter:
        self.directory.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.proc = self._spawn()
        self._supervisor = threading.Thread(target=self._supervise, name=f"exporter-{self.name}", daemon=True)
        self._supervisor.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), self.log_path.open("rb") as fh:
                fh.seek(offset)
                if b"Exporter ready" in fh.read():
                    return self
            if self._supervisor is not None and not self._supervisor.is_alive():
                break
            time.sleep(0.02)
        self.stop()
        raise BoardError(
            f"exporter {self.name} did not connect to {self.coordinator}: {_tail(self.log_path)}"
        )

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            proc = self.proc
            if proc is None:
                return
            code = proc.wait()
            if self._stopping.is_set() or code != RESTART_CODE:
                return
            self._stopping.wait(1.0)  # labgrid's own advice: restart after the coordinator is back
            with self._lock:
                if self._stopping.is_set():
                    return
                self.restarts += 1
                self.proc = self._spawn()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            proc, self.proc = self.proc, None
        _stop_group(proc)
        if self._supervisor is not None:
            self._supervisor.join(5)
            self._supervisor = None

    def __enter__(self) -> Exporter:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
