"""A private network (and /data) for Matter commissioning: nothing leaves the machine, runs can be parallel.

Why (emulation-notes §3.3-3.4):
- After AddNOC the CHIP SDK finds the node operationally over mDNS; its minimal mDNS skips `lo*` and
  needs a multicast-capable interface. In the host namespace that means multicast on eth0, i.e. traffic
  leaving the machine. A private network namespace with a veth pair gives a multicast link that exists
  only inside it.
- The controller wheel hard-codes /data/chip_{factory,config,counters}.ini (and /tmp/chip_kvs). A private
  mount namespace gets a tmpfs on /data and its own chip_kvs file, so the host stays clean and several
  controllers can run at once.

How: one *holder* process is started under `unshare --net --mount` (as root) or
`unshare --user --map-root-user --net --mount` (otherwise). It sets up the link and the mounts, prints
`ready`, and then blocks reading its stdin; when the owning `Sandbox` closes (or its process dies) the
pipe closes, the holder exits and the kernel frees the namespaces once the last member exits. Every
process that must live on the private link (the SDK controller, the emulated Matter node) is started
through `nsenter --target <holder> --net --mount [--user]`. A fresh process per member keeps this simple:
Python 3.11 has no os.setns, and the mount namespace cannot be entered by a multi-threaded process.

Each sandbox has its own namespaces, so interface names could never clash; they still carry the
sandbox's tag, and addresses come from a random ULA /64, so logs and packet captures of parallel runs
are told apart at a glance.

Link layout:
    <tag>n  node side        <prefix>::1/64   (emulated Matter nodes bind here; their mDNS answers here)
    <tag>c  controller side  <prefix>::2/64   (the SDK controller's mDNS sees the node through the veth)
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hil.errors import CommissioningError

Mode = Literal["root", "userns"]

# Matter's default operational port; emulated nodes get 5540, 5541, ... within one sandbox.
FIRST_NODE_PORT = 5540
DATA_DIR = "/data"  # compiled into the CHIP controller wheel (no override)
KVS_FILE = "/tmp/chip_kvs"  # compiled into the CHIP controller wheel (no override)
_READY_TIMEOUT = 15.0

_UNSHARE_FLAGS: dict[Mode, list[str]] = {
    "root": ["--net", "--mount", "--propagation", "private"],
    "userns": ["--user", "--map-root-user", "--net", "--mount", "--propagation", "private"],
}
_NSENTER_FLAGS: dict[Mode, list[str]] = {
    "root": ["--net", "--mount"],
    # --preserve-credentials: no setgroups() (denied in an unprivileged user namespace); our uid is
    # already mapped to root inside it.
    "userns": ["--user", "--net", "--mount", "--preserve-credentials"],
}

# The holder. `set -e`: any failing step ends it before `ready`, and its stderr becomes the reason.
_HOLDER_SCRIPT = r"""
set -e
for f in all default; do
  { echo 0 > /proc/sys/net/ipv6/conf/$f/accept_dad; } 2>/dev/null || true
done
"$HIL_IP" link set lo up
"$HIL_IP" link add name "$HIL_NODE_IF" type veth peer name "$HIL_CTRL_IF"
"$HIL_IP" link set "$HIL_NODE_IF" up
"$HIL_IP" link set "$HIL_CTRL_IF" up
"$HIL_IP" -6 addr add "$HIL_NODE_ADDR/64" dev "$HIL_NODE_IF" nodad
"$HIL_IP" -6 addr add "$HIL_CTRL_ADDR/64" dev "$HIL_CTRL_IF" nodad
mount -t tmpfs -o size=16m,mode=0755 hil-chip-data "$HIL_DATA_DIR"
# Private chip_kvs: best effort (the controller works with a shared one, but parallel runs share less).
if { [ -e "$HIL_KVS_FILE" ] || : > "$HIL_KVS_FILE"; } 2>/dev/null; then
  : > "$HIL_PRIVATE_KVS"
  mount --bind "$HIL_PRIVATE_KVS" "$HIL_KVS_FILE" 2>/dev/null || true
fi
echo ready
read -r _ || true
"""


class SandboxUnavailable(CommissioningError):
    """Namespaces cannot be created here; the message says why (tests skip with it)."""


def _ip_binary() -> str | None:
    return shutil.which("ip") or next(
        (p for p in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip") if os.access(p, os.X_OK)), None
    )


def _try_unshare(mode: Mode) -> str | None:
    """None when `unshare` works in this mode, else the reason."""
    try:
        r = subprocess.run(
            ["unshare", *_UNSHARE_FLAGS[mode], "true"], capture_output=True, text=True, timeout=10
        )
    except FileNotFoundError:
        return "util-linux `unshare` is not installed"
    except subprocess.TimeoutExpired:
        return f"`unshare {' '.join(_UNSHARE_FLAGS[mode])}` timed out"
    if r.returncode == 0:
        return None
    return r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"unshare exited {r.returncode}"


@dataclass(frozen=True)
class Availability:
    """Whether a sandbox can be made here, in which mode, and if not, why."""

    mode: Mode | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.mode is not None


@functools.cache
def availability() -> Availability:
    """Probe once per process: root namespaces, else user namespaces, else the reasons both failed."""
    for tool in ("unshare", "nsenter"):
        if shutil.which(tool) is None:
            return Availability(None, f"util-linux `{tool}` is not on PATH")
    if _ip_binary() is None:
        return Availability(None, "iproute2 `ip` is not installed")
    reasons = []
    modes: list[Mode] = ["root", "userns"] if os.geteuid() == 0 else ["userns"]
    for mode in modes:
        why = _try_unshare(mode)
        if why is None:
            if not os.path.isdir(DATA_DIR) and not (mode == "root" and _make_data_dir()):
                return Availability(
                    None,
                    f"{DATA_DIR} does not exist (the CHIP controller wheel hard-codes it; "
                    f"run `mkdir -p {DATA_DIR}` as root)",
                )
            return Availability(mode)
        reasons.append(f"{mode} namespaces: {why}")
    if os.geteuid() != 0:
        reasons.insert(0, "not root")
    return Availability(None, "cannot create a network namespace (" + "; ".join(reasons) + ")")


def _make_data_dir() -> bool:
    """As root, create the empty /data mount point (the Makefile's `system` step does the same)."""
    try:
        os.makedirs(DATA_DIR, exist_ok=True)
    except OSError:
        return False
    return True


def require(mode: Mode | None = None) -> Mode:
    """The mode to use (`mode` forces one, e.g. "userns" as root), or SandboxUnavailable with the reason."""
    avail = availability()
    if avail.mode is None:
        raise SandboxUnavailable(f"commissioning sandbox unavailable: {avail.reason}")
    if mode is None or mode == avail.mode:
        return avail.mode
    if mode not in _UNSHARE_FLAGS:
        raise SandboxUnavailable(f"commissioning sandbox: mode {mode!r} is not allowed; 'root' or 'userns'")
    why = _try_unshare(mode)
    if why is not None:
        raise SandboxUnavailable(f"commissioning sandbox unavailable in {mode} mode: {why}")
    return mode


@dataclass(frozen=True)
class SandboxInfo:
    """Everything another process needs to start members in a sandbox (JSON-able; see `to_dict`)."""

    holder_pid: int
    mode: Mode
    tag: str
    node_ifname: str
    controller_ifname: str
    node_address: str
    controller_address: str

    def nsenter_prefix(self) -> list[str]:
        return ["nsenter", "--target", str(self.holder_pid), *_NSENTER_FLAGS[self.mode]]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SandboxInfo:
        return cls(**d)


def _repo_pythonpath(env: Mapping[str, str]) -> str:
    """PYTHONPATH for members so `python -m hil...` works whatever the cwd (nsenter may reset it)."""
    root = str(Path(__file__).resolve().parents[2])
    rest = env.get("PYTHONPATH", "")
    return root + (os.pathsep + rest if rest else "")


class Sandbox:
    """A private netns + mount ns with one veth pair and a tmpfs /data. Use as a context manager.

    `popen(argv)` starts a member process inside it. `next_port()` hands out unique UDP ports for
    emulated nodes. Several sandboxes may exist at once, in one process or many. `workdir` (private
    files: controller storage, PAA stores, chip_kvs) is removed on close unless given; `log_dir` (member
    logs, kept for reports) is never removed.
    """

    def __init__(
        self,
        *,
        log_dir: str | os.PathLike[str] | None = None,
        workdir: str | os.PathLike[str] | None = None,
        mode: Mode | None = None,
    ) -> None:
        self.tag = "hil" + secrets.token_hex(3)  # 9 chars + 1 suffix: within IFNAMSIZ (15)
        prefix = f"fd42:{secrets.randbits(16):x}:{secrets.randbits(16):x}:{secrets.randbits(16):x}"
        self._node_address = f"{prefix}::1"
        self._controller_address = f"{prefix}::2"
        self._own_workdir = workdir is None
        self._workdir = Path(workdir) if workdir else None
        self._log_dir = Path(log_dir) if log_dir else None
        self._mode = mode
        self._holder: subprocess.Popen[str] | None = None
        self._info: SandboxInfo | None = None
        self._port_lock = threading.Lock()
        self._next_port = FIRST_NODE_PORT

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> Sandbox:
        if self._holder is not None:
            return self
        mode = require(self._mode)
        ip = _ip_binary()
        assert ip is not None  # availability() checked it
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix=f"{self.tag}-"))
        # Logs of members (controller, nodes) outlive the sandbox: verdicts and reports point at them.
        if self._log_dir is None:
            self._log_dir = Path(tempfile.mkdtemp(prefix=f"hil-commissioning-{self.tag}-"))
        self._workdir.mkdir(parents=True, exist_ok=True)
        self._log_dir.mkdir(parents=True, exist_ok=True)
        env = dict(
            os.environ,
            HIL_IP=ip,
            HIL_NODE_IF=f"{self.tag}n",
            HIL_CTRL_IF=f"{self.tag}c",
            HIL_NODE_ADDR=self._node_address,
            HIL_CTRL_ADDR=self._controller_address,
            HIL_DATA_DIR=DATA_DIR,
            HIL_KVS_FILE=KVS_FILE,
            HIL_PRIVATE_KVS=str(self._workdir / "chip_kvs"),
        )
        holder = subprocess.Popen(
            ["unshare", *_UNSHARE_FLAGS[mode], "sh", "-c", _HOLDER_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        line = _readline_with_timeout(holder, _READY_TIMEOUT)
        if line.strip() != "ready":
            holder.kill()
            holder.wait(timeout=5)
            err = holder.stderr.read() if holder.stderr else ""
            raise SandboxUnavailable(
                "commissioning sandbox set-up failed: " + (err.strip().replace("\n", "; ") or line.strip())
            )
        self._holder = holder
        self._info = SandboxInfo(
            holder_pid=holder.pid,
            mode=mode,
            tag=self.tag,
            node_ifname=f"{self.tag}n",
            controller_ifname=f"{self.tag}c",
            node_address=self._node_address,
            controller_address=self._controller_address,
        )
        return self

    def close(self) -> None:
        holder, self._holder = self._holder, None
        if holder is not None:
            with contextlib.suppress(OSError):
                holder.stdin.close()  # type: ignore[union-attr]
            try:
                holder.wait(timeout=5)
            except subprocess.TimeoutExpired:
                holder.kill()
                holder.wait(timeout=5)
            for stream in (holder.stdout, holder.stderr):
                with contextlib.suppress(OSError):
                    stream.close()  # type: ignore[union-attr]
        if self._own_workdir and self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- members ---------------------------------------------------------------------------------
    @property
    def info(self) -> SandboxInfo:
        if self._info is None:
            raise CommissioningError("commissioning sandbox: not started (use `with Sandbox() as sb:`)")
        return self._info

    @property
    def workdir(self) -> Path:
        """Private files of this sandbox's members (removed on close unless given)."""
        if self._workdir is None:
            raise CommissioningError("commissioning sandbox: not started (use `with Sandbox() as sb:`)")
        return self._workdir

    @property
    def log_dir(self) -> Path:
        """Where members write their logs by default (kept after close, for reports)."""
        if self._log_dir is None:
            raise CommissioningError("commissioning sandbox: not started (use `with Sandbox() as sb:`)")
        return self._log_dir

    @property
    def node_address(self) -> str:
        return self.info.node_address

    @property
    def controller_address(self) -> str:
        return self.info.controller_address

    def next_port(self) -> int:
        """A UDP port no other node in this sandbox uses (5540 first, like a real device)."""
        with self._port_lock:
            port, self._next_port = self._next_port, self._next_port + 1
        return port

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv` prefixed so that it runs inside the sandbox."""
        return [*self.info.nsenter_prefix(), f"--wd={os.getcwd()}", "--", *argv]

    def popen(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, **kwargs: Any
    ) -> subprocess.Popen:
        """Start a member process. `env` defaults to ours; PYTHONPATH gains this checkout."""
        full_env = dict(os.environ if env is None else env)
        full_env["PYTHONPATH"] = _repo_pythonpath(full_env)
        return subprocess.Popen(self.command(argv), env=full_env, **kwargs)

    def run(self, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess:
        """Run a short command inside the sandbox (e.g. `ip -br addr`) and wait for it."""
        return subprocess.run(self.command(argv), **kwargs)

    def python(self, module: str, *args: str) -> list[str]:
        """argv for `python -m module args...` with this interpreter."""
        return [sys.executable, "-m", module, *args]

    def spawn_member(
        self, module: str, log: Path, *, append: bool = False, env: Mapping[str, str] | None = None
    ) -> tuple[subprocess.Popen[bytes], socket.socket]:
        """Start `python -m module --control-fd N` inside the sandbox, output to `log`.

        N is the child's end of a Unix socket pair (the members speak JSON lines over it); the parent's end
        is returned with the process. A socket pair rather than pipes: one fd, both directions, and the
        child sees EOF as soon as the parent closes it (or dies), so no member outlives its owner.
        """
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with open(log, "ab" if append else "wb") as out:
                proc = self.popen(
                    self.python(module, "--control-fd", str(child_end.fileno())),
                    env=env,
                    pass_fds=(child_end.fileno(),),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
        except BaseException:
            parent_end.close()
            raise
        finally:
            child_end.close()
        return proc, parent_end


def stop_member(proc: subprocess.Popen[bytes] | None, sock: socket.socket | None, *, timeout: float) -> None:
    """Close a member's control socket (its cue to exit), wait up to `timeout` s for it, then kill it."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
    if proc is not None:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _readline_with_timeout(proc: subprocess.Popen[str], timeout: float) -> str:
    """One line of the holder's stdout, or '' on timeout or exit (no hang if set-up stalls)."""
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    return result[0] if result else ""
