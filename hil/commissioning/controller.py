"""Commission with the CHIP SDK Python controller (home-assistant-chip-core), one child process per PAA store.

The controller runs in a child process inside a commissioning sandbox (hil.commissioning.sandbox):
- the SDK allows one stack per process and binds the PAA store of the first controller created in it, so a
  `Controller` is one process trusting exactly the PAA(s) it was given (written to a fresh store directory);
  it commissions any number of nodes, so tests reuse one per trust store;
- inside the sandbox its mDNS sees the emulated nodes on the private veth link and nothing leaves the
  machine, and /data is a private tmpfs.

Every attempt returns a `Verdict` (hil.commissioning.verdict): success with timings, or the failing stage
with the SDK's attestation error by name, read from the per-attempt SDK log whose path the verdict keeps.
`verdict.raise_for_failure()` turns a failure into AttestationError / CommissioningError (exit 4).

    with Sandbox() as sandbox, Controller(sandbox, paa_der) as ctrl, MatterNode(cfg, sandbox) as node:
        verdict = ctrl.commission_ip(node.address, node.port, passcode)
"""

from __future__ import annotations

import ctypes
import importlib.util
import itertools
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hil.commissioning import sandbox as sandbox_mod
from hil.commissioning.sandbox import Sandbox, stop_member
from hil.commissioning.trust_store import PaaInput, der, load_paas, write_trust_store
from hil.commissioning.verdict import PASSCODE_REJECTED, Stage, Timings, Verdict, parse_log
from hil.errors import CommissioningError

if TYPE_CHECKING:
    from hil.emulator.matter_device import MatterNode, NodeConfig

START_TIMEOUT = 60.0
COMMISSION_TIMEOUT = 60.0
_MARGIN = 15.0  # the child enforces the timeout; the parent waits this much longer before killing it
_ids = itertools.count(1)


def availability() -> str | None:
    """None when the SDK controller can run here, else the reason (commissioning tests skip with it)."""
    avail = sandbox_mod.availability()
    if not avail.ok:
        return avail.reason
    if importlib.util.find_spec("chip") is None:
        return "the CHIP SDK Python controller (home-assistant-chip-core) is not installed"
    for lib in ("libnl-3.so.200", "libnl-route-3.so.200"):
        try:
            ctypes.CDLL(lib)
        except OSError:
            return f"{lib} is missing (Debian: apt-get install libnl-3-200 libnl-route-3-200)"
    return None


class Controller:
    """One CHIP SDK controller process trusting exactly `paas`. Use as a context manager.

    `log_dir` receives `controller-<n>.log` (start-up and between attempts) and one
    `controller-<n>-node-<id>.log` per attempt; it defaults to the sandbox's log directory.
    """

    def __init__(
        self,
        sandbox: Sandbox,
        paas: PaaInput | Sequence[PaaInput],
        *,
        log_dir: str | os.PathLike[str] | None = None,
        detail_logs: bool = False,
    ) -> None:
        self.sandbox = sandbox
        self.number = next(_ids)
        self.name = f"controller-{self.number}"
        self.log_dir = Path(log_dir) if log_dir else sandbox.log_dir
        self.log_path = self.log_dir / f"{self.name}.log"
        self.detail_logs = detail_logs
        self._paas = paas
        self._private = sandbox.workdir / self.name
        self.paa_store = self._private / "paa-store"
        self.startup_s: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._buf = b""
        self._lock = threading.Lock()  # one attempt at a time per controller
        self._node_ids = itertools.count(1)
        self._t_launch = 0.0
        write_trust_store(self.paa_store, paas)  # validates the PAAs before any process starts

    # -- life cycle ------------------------------------------------------------------------------
    def launch(self) -> Controller:
        """Start the child without waiting (start several controllers in parallel, then `wait_ready`)."""
        if self._proc is not None:
            return self
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._private.mkdir(parents=True, exist_ok=True)
        storage = self._private / "fabric.json"
        storage.unlink(missing_ok=True)
        self._t_launch = time.monotonic()
        self._proc, self._sock = self.sandbox.spawn_member(
            "hil.commissioning._controller_proc", self.log_dir / f"{self.name}.stdout.log", append=True
        )
        self._buf = b""
        self._send(
            {
                "paa_store": str(self.paa_store),
                "storage": str(storage),
                "log": str(self.log_path),
                "detail_logs": self.detail_logs,
            }
        )
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> Controller:
        msg = self._receive(timeout)
        if msg is None or msg.get("op") != "ready":
            why = (msg or {}).get("message") or (
                "process exited"
                if self._proc and self._proc.poll() is not None
                else f"not ready in {timeout:.0f} s"
            )
            self.close()
            raise CommissioningError(f"CHIP controller did not start: {why}; log {self.log_path}")
        self.startup_s = time.monotonic() - self._t_launch
        return self

    def start(self, timeout: float = START_TIMEOUT) -> Controller:
        """Launch and wait until ready. Interrupted (Ctrl-C) or failed, the child is stopped: `with`
        calls `__exit__` only once `__enter__` has returned, so nothing else would stop it."""
        try:
            return self.launch().wait_ready(timeout)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        sock, self._sock = self._sock, None
        proc, self._proc = self._proc, None
        stop_member(proc, sock, timeout=10)

    def __enter__(self) -> Controller:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- commissioning ---------------------------------------------------------------------------
    def commission_ip(
        self,
        address: str,
        port: int,
        passcode: int,
        *,
        node_id: int | None = None,
        timeout: float = COMMISSION_TIMEOUT,
    ) -> Verdict:
        """PASE to `[address]:port` (no discovery), then the full commissioning flow."""
        return self._commission(
            "ip", {"address": address, "port": int(port), "passcode": int(passcode)}, node_id, timeout
        )

    def commission_discriminator(
        self,
        discriminator: int,
        passcode: int,
        *,
        node_id: int | None = None,
        timeout: float = COMMISSION_TIMEOUT,
        discovery_timeout: float | None = None,
    ) -> Verdict:
        """Discover `_L<discriminator>._sub._matterc._udp` over mDNS, then commission."""
        fields = {"discriminator": int(discriminator), "passcode": int(passcode)}
        # Discovery must give up before the whole attempt does, so a missing node reads as DISCOVERY.
        fields["discovery_timeout_s"] = (
            discovery_timeout if discovery_timeout is not None else timeout - min(5.0, timeout / 4)
        )
        return self._commission("discriminator", fields, node_id, timeout)

    def commission_code(
        self, code: str, *, node_id: int | None = None, timeout: float = COMMISSION_TIMEOUT
    ) -> Verdict:
        """Commission from a QR (`MT:...`) or manual pairing code, discovering on the network."""
        return self._commission("code", {"code": code}, node_id, timeout)

    def commission_node(self, node: MatterNode, passcode: int, *, by: str = "ip", **kwargs: Any) -> Verdict:
        """Convenience for an emulated node: `by` is "ip" or "discriminator"."""
        if by == "ip":
            return self.commission_ip(node.address, node.port, passcode, **kwargs)
        if by == "discriminator":
            return self.commission_discriminator(node.discriminator, passcode, **kwargs)
        raise ValueError(f"by: {by!r} is not allowed; 'ip' or 'discriminator'")

    def _commission(
        self, method: str, fields: dict[str, Any], node_id: int | None, timeout: float
    ) -> Verdict:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self.close()
                self.start()
            node_id = node_id if node_id is not None else next(self._node_ids)
            log = self.log_dir / f"{self.name}-node-{node_id}.log"
            log.unlink(missing_ok=True)
            req = {
                "op": "commission",
                "id": node_id,
                "method": method,
                "node_id": node_id,
                "timeout_s": timeout,
                "log": str(log),
                **fields,
            }
            self._send(req)
            result = self._receive(timeout + _MARGIN)
            if result is None:  # hung or died: kill it; the next attempt starts a fresh one
                died = self._proc is not None and self._proc.poll() is not None
                self.close()
                result = {
                    "ok": False,
                    "error_type": "Died" if died else "Timeout",
                    "error": "controller process died"
                    if died
                    else f"no outcome within {timeout + _MARGIN:.0f} s",
                }
            if result.get("error_type") == "Timeout":
                # The SDK has no way to abandon a pairing in progress (no StopPairing in the Python
                # binding): that process now refuses new attempts, so the next one gets a fresh process.
                self.close()
            return self._verdict(method, node_id, log, result)

    def _verdict(self, method: str, node_id: int, log: Path, result: dict[str, Any]) -> Verdict:
        text = log.read_text(errors="replace") if log.exists() else ""
        found = parse_log(text)
        timings = Timings(
            controller_start_s=self.startup_s,
            commission_s=result.get("commission_s"),
            pase_s=result.get("pase_s"),
        )
        common = {"method": method, "node_id": node_id, "log_path": log, "timings": timings}
        if result.get("ok"):
            return Verdict(Stage.COMPLETE, details=result.get("basic_info") or {}, **common)
        stage = found.stage
        message = f"{result.get('error_type')}: {result.get('error')}" if result.get("error") else ""
        if stage is None or stage is Stage.COMPLETE:
            if found.pase_started and not found.pase_succeeded:
                stage = Stage.PASE
                message = (
                    "the node never answered PASE (commissioning window closed, or no node there); " + message
                )
            elif result.get("error_type") in ("Timeout", "Died"):
                stage = Stage.TIMEOUT if result["error_type"] == "Timeout" else Stage.CONTROLLER
            elif method != "ip" and not found.discovered:
                stage = Stage.DISCOVERY
            else:
                stage = Stage.COMMISSIONING
        if found.pase_mac_mismatch:
            message = PASSCODE_REJECTED
        details = {"attestation_code": found.attestation_code} if found.attestation_code is not None else {}
        return Verdict.failed(stage, found, message, details=details, **common)

    # -- channel ---------------------------------------------------------------------------------
    def _send(self, msg: dict[str, Any]) -> None:
        if self._sock is None:
            raise CommissioningError(f"{self.name}: not running")
        self._sock.sendall((json.dumps(msg) + "\n").encode())

    def _receive(self, timeout: float) -> dict[str, Any] | None:
        sock = self._sock
        if sock is None:
            return None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, OSError):
                return None
            if not chunk:
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)


def start_controllers(controllers: Sequence[Controller], timeout: float = START_TIMEOUT) -> None:
    """Start several controllers in parallel (each is ~1 s of SDK start-up, mostly import time)."""
    for c in controllers:
        c.launch()
    for c in controllers:
        c.wait_ready(timeout)


class ControllerPool:
    """One controller per distinct PAA set, started on first use and then reused (session fixtures).

    The SDK binds one trust store per process, so the pool keys controllers by the exact PAA set.
    `warm(...)` starts several in parallel (~1 s each, mostly import time).
    """

    def __init__(self, sandbox: Sandbox, *, log_dir: str | os.PathLike[str] | None = None) -> None:
        self.sandbox = sandbox
        self.log_dir = log_dir
        self._controllers: dict[frozenset[bytes], Controller] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(paas: PaaInput | Sequence[PaaInput]) -> frozenset[bytes]:
        return frozenset(der(c) for c in load_paas(paas))

    def _new(self, paas: PaaInput | Sequence[PaaInput]) -> Controller:
        return Controller(self.sandbox, paas, log_dir=self.log_dir)

    def warm(self, *paa_sets: PaaInput | Sequence[PaaInput]) -> None:
        with self._lock:
            fresh = []
            for paas in paa_sets:
                key = self._key(paas)
                if key not in self._controllers:
                    self._controllers[key] = self._new(paas)
                    fresh.append(self._controllers[key])
            start_controllers(fresh)

    def get(self, paas: PaaInput | Sequence[PaaInput]) -> Controller:
        """The controller trusting exactly `paas` (started now if it is the first request)."""
        self.warm(paas)
        return self._controllers[self._key(paas)]

    def close(self) -> None:
        with self._lock:
            controllers, self._controllers = list(self._controllers.values()), {}
        for c in controllers:
            c.close()

    def __enter__(self) -> ControllerPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def commission_emulated(
    config: NodeConfig,
    paas: PaaInput | Sequence[PaaInput],
    passcode: int,
    *,
    by: str = "ip",
    log_dir: str | os.PathLike[str] | None = None,
    timeout: float = COMMISSION_TIMEOUT,
) -> Verdict:
    """One-shot: a sandbox, a controller trusting `paas`, the node of `config`; the verdict (logs kept).

    The building block of `hil commission` for an emulated board: its firmware's factory data becomes
    `config`, the passcode comes from the operator (the board never has it).
    """
    from hil.emulator.matter_device import MatterNode

    with (
        Sandbox(log_dir=log_dir) as sandbox,
        Controller(sandbox, paas) as ctrl,
        MatterNode(config, sandbox) as node,
    ):
        return ctrl.commission_node(node, passcode, by=by, timeout=timeout)
