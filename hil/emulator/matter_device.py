"""The commissionable Matter node of an emulated board, fed only from its firmware's factory data.

`NodeConfig` is the contract with the emulated firmware: the firmware's FactoryDataProvider yields the
discriminator, the SPAKE2+ salt/iterations/verifier (never the passcode), DAC, PAI, CD, the
BasicInformation strings and numbers, and a way to sign with the DAC key: the key itself (K32W0x1 keeps
it in factory data) or a handle into the emulated secure subsystem (K32W1 / RW61x keep only a blob).
Nothing else reaches the node, so a commissioner judges exactly what the board was provisioned with.

`MatterNode` runs one node as a child process *inside a commissioning sandbox* (hil.commissioning.sandbox)
so that its UDP socket and mDNS responder sit on the sandbox's private link next to the SDK controller.
The engine is circuitmatter (pure Python, emulation-notes §3.8), wrapped so that:
- every run starts from a pristine state file in a fresh temp dir (circuitmatter rewrites it in place);
- the UDP port is ours (one per node) and the mDNS answers carry it;
- mDNS is a zeroconf responder bound to the node address, registering without probing and without
  blocking the packet loop (a blocking register stalls AddNOC ~1.5 s), the commissionable service under
  its `_L<discriminator>` subtype (what discriminator-filtered discovery asks for);
- the PAI, DAC and CD come from the config (circuitmatter hard-codes a PAI), and every DAC signature is
  made by the configured signer. The signer stays in the parent process: the child asks it over a socket
  pair for each signature, so a private key never crosses a process boundary or touches the disk;
- the commissioning window is real: open at start for `window_s` seconds, closed on CommissioningComplete
  or expiry; while closed the node stops advertising `_matterc` and ignores PASE requests.

Run `python -m hil.emulator.matter_device --control-fd N` only through `MatterNode`.
"""

from __future__ import annotations

import argparse
import base64
import ipaddress
import json
import os
import secrets
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from hil.commissioning.sandbox import stop_member
from hil.errors import BoardError, InputError

if TYPE_CHECKING:
    from hil.commissioning.sandbox import Sandbox

DEFAULT_WINDOW_S = 900.0  # Matter's maximum commissioning window (15 min); a factory-new device opens one
_START_TIMEOUT = 20.0
_SIGN_TIMEOUT = 10.0


# ------------------------------------------------------------------------------------------------ config


@runtime_checkable
class Signer(Protocol):
    """Signs for device attestation with the DAC private key, wherever that key lives."""

    def sign(self, message: bytes) -> bytes:
        """ECDSA-P256 with SHA-256 over `message` (the signer hashes); returns a DER Ecdsa-Sig-Value."""
        ...


class KeySigner:
    """A `Signer` over the DAC private key as factory data holds it (DER SEC1/PKCS#8, or raw 32 bytes)."""

    def __init__(self, key_der: bytes) -> None:
        from hil.matter import certs

        self._key = certs.load_private_key(bytes(key_der), what="DAC private key")

    def sign(self, message: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        return self._key.sign(message, ec.ECDSA(hashes.SHA256()))

    def __repr__(self) -> str:
        return "KeySigner(<DAC key>)"


class CallableSigner:
    """A `Signer` over a plain function `message -> DER signature` (e.g. a secure-subsystem call)."""

    def __init__(self, func: Callable[[bytes], bytes]) -> None:
        self._func = func

    def sign(self, message: bytes) -> bytes:
        return self._func(message)


def as_signer(value: Signer | bytes | Callable[[bytes], bytes]) -> Signer:
    """Normalise what NodeConfig accepts: DAC key DER, a `Signer`, or a callable."""
    if isinstance(value, bytes | bytearray | memoryview):
        return KeySigner(bytes(value))
    if isinstance(value, Signer):
        return value
    if callable(value):
        return CallableSigner(value)
    raise InputError(f"signer: {type(value).__name__} is not allowed; DAC key DER, a Signer or a callable")


@dataclass(frozen=True, repr=False)
class NodeConfig:
    """What the firmware's FactoryDataProvider hands to the Matter stack. Never holds the passcode.

    Values are passed through as the firmware read them: checking them is the commissioner's job (a bad
    verifier fails PASE, a bad CD fails attestation), so only what the node needs to run at all is
    validated here.
    """

    discriminator: int
    spake2p_salt: bytes
    spake2p_iterations: int
    spake2p_verifier: bytes
    dac_cert: bytes  # DER
    pai_cert: bytes  # DER
    cd: bytes  # DER (CMS-signed Certification Declaration)
    signer: Signer | bytes | Callable[[bytes], bytes] = field(repr=False)  # DAC key DER or a signing handle
    vendor_id: int
    product_id: int
    vendor_name: str
    product_name: str
    hardware_version: int = 0
    hardware_version_string: str = "1.0"
    software_version: int = 0
    software_version_string: str = "1.0"
    serial_number: str = ""

    def __post_init__(self) -> None:
        def uint(name: str, value: object, bits: int) -> None:
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < (1 << bits):
                raise InputError.field(name, value, f"allowed 0..{(1 << bits) - 1}")

        uint("discriminator", self.discriminator, 12)
        uint("vendor_id", self.vendor_id, 16)
        uint("product_id", self.product_id, 16)
        uint("spake2p_iterations", self.spake2p_iterations, 32)
        uint("hardware_version", self.hardware_version, 16)
        uint("software_version", self.software_version, 32)
        for name in ("spake2p_salt", "spake2p_verifier", "dac_cert", "pai_cert", "cd"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or not value:
                raise InputError(f"{name}: {type(value).__name__} is not allowed; non-empty bytes")
        for name, limit in (("vendor_name", 32), ("product_name", 32), ("serial_number", 32)):
            value = getattr(self, name)
            if not isinstance(value, str) or len(value.encode()) > limit:
                raise InputError.field(name, value, f"a string of at most {limit} bytes (BasicInformation)")
        object.__setattr__(self, "signer", as_signer(self.signer))

    def __repr__(self) -> str:  # byte fields as sizes: logs stay short, and the signer never shows
        parts = []
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name == "signer":
                parts.append(f"signer={type(value).__name__}")
            elif isinstance(value, bytes):
                parts.append(f"{name}=<{len(value)} bytes>")
            else:
                parts.append(f"{name}={value!r}")
        return f"NodeConfig({', '.join(parts)})"

    def public_dict(self) -> dict[str, Any]:
        """Everything but the signer, JSON-able (bytes as base64): what the node process receives."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            if name == "signer":
                continue
            value = getattr(self, name)
            out[name] = base64.b64encode(value).decode() if isinstance(value, bytes) else value
        return out


@dataclass(frozen=True)
class NodeStatus:
    """The node's view of itself, pushed by the node process whenever it changes."""

    window_open: bool = True
    fabrics: int = 0
    commissioned: bool = False  # CommissioningComplete received
    signatures: int = 0  # DAC signatures made (attestation + CSR)


# ------------------------------------------------------------------------------------------------ parent


class MatterNode:
    """One emulated Matter node on a sandbox's private link. Use as a context manager.

        with MatterNode(config, sandbox) as node:
            controller.commission_ip(node.address, node.port, passcode)

    `log_path` receives the node's own log (circuitmatter's output); kept for reports.
    `announce=False` makes the commissionable service answer mDNS queries only, without the unsolicited
    announcements a real device sends at start-up. The SDK's discriminator-filtered discovery accepts an
    announcement of *any* commissionable node without re-checking the discriminator, so a test of
    discovery itself must not let announcements answer for it.
    """

    def __init__(
        self,
        config: NodeConfig,
        sandbox: Sandbox,
        *,
        port: int | None = None,
        window_s: float = DEFAULT_WINDOW_S,
        announce: bool = True,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.config = config
        self.sandbox = sandbox
        self.port = port if port is not None else sandbox.next_port()
        self.window_s = window_s
        self.announce = announce
        self.log_path = Path(log_path) if log_path else sandbox.log_dir / f"node-{self.port}.log"
        self.address = sandbox.node_address
        self.startup_s: float | None = None
        self._signer: Signer = config.signer  # type: ignore[assignment]  # normalised in __post_init__
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._ready = threading.Event()
        self._changed = threading.Condition()
        self._status = NodeStatus()
        self._error: str | None = None
        self._reader: threading.Thread | None = None

    @property
    def discriminator(self) -> int:
        return self.config.discriminator

    @property
    def status(self) -> NodeStatus:
        return self._status

    def start(self, timeout: float = _START_TIMEOUT) -> MatterNode:
        t0 = time.monotonic()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._proc, self._sock = self.sandbox.spawn_member(
            __name__, self.log_path, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        hello = {
            "config": self.config.public_dict(),
            "address": self.address,
            "port": self.port,
            "window_s": self.window_s,
            "announce": self.announce,
        }
        try:  # interrupted (Ctrl-C) or failed, stop the child: `with` has no __exit__ until we return
            self._send(hello)
            self._reader = threading.Thread(
                target=self._read_loop, name=f"matter-node-{self.port}", daemon=True
            )
            self._reader.start()
            if not self._ready.wait(timeout) or self._error:
                why = self._error or f"not ready after {timeout:.0f} s"
                raise BoardError(f"emulated Matter node (port {self.port}): {why}; log {self.log_path}")
        except BaseException:
            self.close()
            raise
        self.startup_s = time.monotonic() - t0
        return self

    def wait_for(self, predicate: Callable[[NodeStatus], bool], timeout: float = 5.0) -> NodeStatus:
        """Block until the node reports a status for which `predicate` holds (or the timeout ends)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self._status):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return self._status

    def close(self) -> None:
        sock, self._sock = self._sock, None
        proc, self._proc = self._proc, None
        stop_member(proc, sock, timeout=5)
        if self._reader is not None:
            self._reader.join(timeout=5)

    def __enter__(self) -> MatterNode:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- control channel -----------------------------------------------------------------------------
    def _send(self, msg: dict[str, Any]) -> None:
        data = (json.dumps(msg) + "\n").encode()
        with self._send_lock:
            if self._sock is not None:
                self._sock.sendall(data)

    def _read_loop(self) -> None:
        sock = self._sock
        assert sock is not None
        buf = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    self._handle(json.loads(line))
        except (OSError, ValueError):
            pass
        finally:
            if not self._ready.is_set():
                self._error = self._error or "node process exited during start-up"
                self._ready.set()

    def _handle(self, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        if op == "sign":
            try:
                der = self._signer.sign(bytes.fromhex(msg["message"]))
                reply: dict[str, Any] = {"op": "signature", "id": msg["id"], "der": der.hex()}
            except Exception as exc:  # the signer's failure becomes the node's (attestation fails)
                reply = {"op": "signature", "id": msg["id"], "error": f"{type(exc).__name__}: {exc}"}
            self._send(reply)
        elif op == "status":
            with self._changed:
                self._status = NodeStatus(**msg["status"])
                self._changed.notify_all()
        elif op == "ready":
            self._ready.set()
        elif op == "error":
            self._error = msg.get("message", "unknown error")
            self._ready.set()


# ------------------------------------------------------------------------------------------------ child


class _Control:
    """The node process's end of the control socket: JSON lines, with out-of-order messages queued."""

    def __init__(self, fd: int) -> None:
        self.sock = socket.socket(fileno=fd)
        self._buf = b""
        self._queue: list[dict[str, Any]] = []
        self._next_id = 0
        self.closed = False

    def send(self, msg: dict[str, Any]) -> None:
        self.sock.sendall((json.dumps(msg) + "\n").encode())

    def _read_one(self, timeout: float | None) -> dict[str, Any] | None:
        while b"\n" not in self._buf:
            r, _, _ = select.select([self.sock], [], [], timeout)
            if not r:
                return None
            chunk = self.sock.recv(65536)
            if not chunk:
                self.closed = True
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def receive(self, timeout: float | None = None) -> dict[str, Any] | None:
        if self._queue:
            return self._queue.pop(0)
        return self._read_one(timeout)

    def sign(self, message: bytes) -> bytes:
        """Ask the parent's signer; blocks (the packet loop is single-threaded, as on a real MCU)."""
        self._next_id += 1
        req_id = self._next_id
        self.send({"op": "sign", "id": req_id, "message": message.hex()})
        deadline = time.monotonic() + _SIGN_TIMEOUT
        while True:
            msg = self._read_one(max(0.0, deadline - time.monotonic()))
            if msg is None:
                raise RuntimeError("no signature from the signer (parent gone or timed out)")
            if msg.get("op") == "signature" and msg.get("id") == req_id:
                if "error" in msg:
                    raise RuntimeError(f"signer failed: {msg['error']}")
                return bytes.fromhex(msg["der"])
            self._queue.append(msg)


class _SignerAsDacKey:
    """Stands in for circuitmatter's ecdsa SigningKey: it only ever calls sign_deterministic(...)."""

    def __init__(self, control: _Control, on_sign: Callable[[], None]) -> None:
        self._control = control
        self._on_sign = on_sign

    def sign_deterministic(self, data: bytes, hashfunc: object = None, sigencode: object = None) -> bytes:
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        r, s = decode_dss_signature(self._control.sign(bytes(data)))
        self._on_sign()
        # circuitmatter passes sigencode_string: Matter sends raw r || s (32 + 32 bytes).
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


class _ZeroconfResponder:
    """circuitmatter's mdns_server interface over python-zeroconf, bound to the node address only."""

    def __init__(self, address: str, port: int, *, announce: bool = True) -> None:
        from zeroconf import IPVersion, Zeroconf

        self.address = address
        self.announce = announce
        self.port = port  # the node's real port (circuitmatter would announce its built-in 5541)
        self.hostname = f"hil-{secrets.token_hex(4)}.local."
        self.zc = Zeroconf(interfaces=[address], ip_version=IPVersion.V6Only)
        self.infos: dict[str, Any] = {}
        self.aliases: dict[str, list[str]] = {}  # instance name -> extra PTR types it answers

    def advertise_service(
        self,
        service_type: str,
        protocol: str,
        port: int,
        txt_records: dict[str, str] | None = None,
        subtypes: list[str] | None = None,
        instance_name: str = "",
    ) -> None:
        import asyncio

        from zeroconf import ServiceInfo

        base = f"{service_type}.{protocol}.local."
        name = f"{instance_name}.{base}"
        if name in self.infos:
            return
        # python-zeroconf registers one PTR type per instance: the commissionable service goes under its
        # long-discriminator subtype, which is what discriminator-filtered discovery browses for.
        reg_type = next((f"{s}.local." for s in subtypes or [] if s.startswith("_L")), base)
        info = ServiceInfo(
            reg_type,
            name,
            port=self.port,
            properties=dict(txt_records or {}),
            server=self.hostname,
            addresses=[ipaddress.IPv6Address(self.address).packed],
        )
        # No probing (the link is private, names cannot clash) and no waiting for the announcements:
        # only for the record to be in the registry, so the SDK's next query is answered.
        if self.announce or service_type != "_matterc":
            coro = self.zc.async_register_service(info, cooperating_responders=True)
        else:
            coro = self._add_silently(info)
        asyncio.run_coroutine_threadsafe(coro, self.zc.loop).result(timeout=5)
        # The other subtypes (`_S<short discriminator>` for manual pairing codes, `_CM`) and the plain type
        # are answered from the same record set. The PTR's owner name stays the `_L` subtype; the SDK's
        # resolver accepts that (tested with a manual code), a strict resolver might not.
        others = [f"{s}.local." for s in subtypes or [] if f"{s}.local." != reg_type]
        if reg_type != base:
            others.append(base)
        asyncio.run_coroutine_threadsafe(self._also_answer(info, others), self.zc.loop).result(timeout=5)
        self.aliases[name] = others
        self.infos[name] = info
        print(f"[hil] mDNS: {name} as {reg_type} -> [{self.address}]:{self.port}", flush=True)

    async def _also_answer(self, info: Any, types: list[str]) -> None:
        """Answer PTR queries for `types` with `info` as well (python-zeroconf indexes one type each)."""
        for type_ in types:
            self.zc.registry.types.setdefault(type_.lower(), {})[info.key] = info

    async def _stop_answering(self, info: Any, types: list[str]) -> None:
        for type_ in types:
            bucket = self.zc.registry.types.get(type_.lower(), {})
            bucket.pop(info.key, None)
            if not bucket:
                self.zc.registry.types.pop(type_.lower(), None)
        await self.zc.async_unregister_service(info)

    async def _add_silently(self, info: Any) -> None:
        """Answer queries only, without unsolicited announcements (see MatterNode `announce`)."""
        info.set_server_if_missing()
        self.zc.registry.async_add(info)

    def withdraw(self, service_type: str, protocol: str) -> None:
        import asyncio

        suffix = f".{service_type}.{protocol}.local."
        for name in [n for n in self.infos if n.endswith(suffix)]:
            info = self.infos.pop(name)
            stop = self._stop_answering(info, self.aliases.pop(name, []))
            asyncio.run_coroutine_threadsafe(stop, self.zc.loop).result(timeout=5)
            print(f"[hil] mDNS: withdrew {name}", flush=True)


def _state_file(cfg: dict[str, Any], workdir: Path) -> Path:
    """A pristine circuitmatter state file for this run; the DAC key slot holds a throwaway key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    # circuitmatter loads a key from the state at start-up; ours never signs (the signer does), so a
    # fresh unrelated key fills the slot and is replaced before any packet is processed.
    placeholder = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    state = {
        "discriminator": cfg["discriminator"],
        "salt": cfg["spake2p_salt"],
        "iteration-count": cfg["spake2p_iterations"],
        "verifier": cfg["spake2p_verifier"],
        "devices": {
            "root": {
                "0x3e": {
                    "dac_cert": cfg["dac_cert"],
                    "cd": cfg["cd"],
                    "dac_key": base64.b64encode(placeholder).decode(),
                }
            }
        },
    }
    path = workdir / "state.json"
    path.write_text(json.dumps(state))
    return path


def _port_socketpool(port: int) -> Any:
    """A `socket` module stand-in whose sockets bind to `port` (circuitmatter hard-codes 5541)."""

    class _Socket(socket.socket):
        def bind(self, address: Any) -> None:
            super().bind((address[0], port, *address[2:]))

    class _Pool:
        def __getattr__(self, name: str) -> Any:
            return getattr(socket, name)

        socket = _Socket

    return _Pool()


def _build_node(control: _Control, hello: dict[str, Any], workdir: Path) -> Any:
    import circuitmatter
    from circuitmatter.clusters.device_management.basic_information import BasicInformationCluster
    from circuitmatter.clusters.device_management.general_commissioning import GeneralCommissioningCluster
    from circuitmatter.device_types.lighting import on_off
    from circuitmatter.device_types.utility.root_node import CertificateChainTypeEnum
    from circuitmatter.message import Message
    from circuitmatter.protocol import ProtocolId, SecureProtocolOpcode

    cfg = hello["config"]
    port = int(hello["port"])
    pai_der = base64.b64decode(cfg["pai_cert"])
    dac_der = base64.b64decode(cfg["dac_cert"])
    mdns = _ZeroconfResponder(hello["address"], port, announce=bool(hello.get("announce", True)))
    status = {"window_open": True, "fabrics": 0, "commissioned": False, "signatures": 0}

    def push() -> None:
        control.send({"op": "status", "status": dict(status)})

    class Node(circuitmatter.CircuitMatter):
        window_deadline = time.monotonic() + float(hello["window_s"])

        def start_commissioning(self) -> None:
            """Open the window: advertise `_matterc` (no passcode, no QR code: the node never has it)."""
            disc = self.nonvolatile["discriminator"]
            txt = {
                "D": str(disc),
                "CM": "1",
                "VP": f"{cfg['vendor_id']}+{cfg['product_id']}",
                "DN": cfg["product_name"],
                "PH": "33",
                "PI": "",
                "SII": "5000",
                "SAI": "300",
                "T": "0",
            }
            self.mdns_server.advertise_service(
                "_matterc",
                "_udp",
                port,
                txt_records=txt,
                instance_name=secrets.token_hex(8).upper(),
                subtypes=[
                    f"_L{disc}._sub._matterc._udp",
                    f"_S{disc >> 8}._sub._matterc._udp",
                    "_CM._sub._matterc._udp",
                ],
            )

        def close_window(self, why: str) -> None:
            if status["window_open"]:
                status["window_open"] = False
                mdns.withdraw("_matterc", "_udp")
                print(f"[hil] commissioning window closed ({why})", flush=True)
                push()

        def process_packet(self, address: Any, data: Any) -> None:
            if not status["window_open"] and _is_pase_request(bytes(data)):
                print("[hil] PASE request ignored: commissioning window closed", flush=True)
                return
            super().process_packet(address, data)
            fabrics = self.root_node.fabric_count
            if fabrics != status["fabrics"]:
                status["fabrics"] = fabrics
                push()

    def _is_pase_request(data: bytes) -> bool:
        message = Message()
        try:
            message.decode(data)
            if message.secure_session:
                return False
            message.parse_protocol_header()
        except Exception:
            return False
        return (
            message.protocol_id == ProtocolId.SECURE_CHANNEL
            and message.protocol_opcode == SecureProtocolOpcode.PBKDF_PARAM_REQUEST
        )

    class Light(on_off.OnOffLight):
        def on(self) -> None:
            print("[hil] light on", flush=True)

        def off(self) -> None:
            print("[hil] light off", flush=True)

    node = Node(
        socketpool=_port_socketpool(port),
        mdns_server=mdns,
        state_filename=str(_state_file(cfg, workdir)),
        vendor_id=cfg["vendor_id"],
        product_id=cfg["product_id"],
        product_name=cfg["product_name"],
    )
    node.UDP_PORT = port
    node.root_node.noc.port = port
    node.add_device(Light("light1"))

    # BasicInformation from factory data (circuitmatter hard-codes its own name and serial).
    basic = next(s for s in node.root_node.servers if isinstance(s, BasicInformationCluster))
    basic.vendor_name = cfg["vendor_name"]
    basic.product_name = cfg["product_name"]
    basic.hardware_version = cfg["hardware_version"]
    basic.hardware_version_string = cfg["hardware_version_string"]
    basic.software_version = cfg["software_version"]
    basic.software_version_string = cfg["software_version_string"]
    basic.serial_number = cfg["serial_number"]

    # Attestation material and signatures from factory data (instance attributes shadow the methods).
    noc = node.root_node.noc

    def on_sign() -> None:
        status["signatures"] += 1
        push()

    noc.dac_key = _SignerAsDacKey(control, on_sign)

    def certificate_chain_request(session: Any, args: Any) -> Any:
        response = type(noc).CertificateChainResponse()
        if args.CertificateType == CertificateChainTypeEnum.PAI:
            response.Certificate = pai_der
        elif args.CertificateType == CertificateChainTypeEnum.DAC:
            response.Certificate = dac_der
        return response

    noc.certificate_chain_request = certificate_chain_request

    general = next(s for s in node.root_node.servers if isinstance(s, GeneralCommissioningCluster))
    original_complete = general.commissioning_complete

    def commissioning_complete(session: Any) -> Any:
        response = original_complete(session)
        status["commissioned"] = True
        node.close_window("CommissioningComplete")
        return response

    general.commissioning_complete = commissioning_complete
    return node, mdns, status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="emulated Matter node (started by hil MatterNode)")
    parser.add_argument("--control-fd", type=int, required=True)
    args = parser.parse_args(argv)
    control = _Control(args.control_fd)
    hello = control.receive(timeout=30)
    if hello is None:
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="hil-node-"))
    try:
        try:
            node, _mdns, status = _build_node(control, hello, workdir)
        except Exception as exc:
            import traceback

            traceback.print_exc()
            control.send({"op": "error", "message": f"start-up failed: {type(exc).__name__}: {exc}"})
            return 1
        control.send({"op": "ready"})
        control.send({"op": "status", "status": dict(status)})
        print(f"[hil] node ready on [{hello['address']}]:{hello['port']}", flush=True)
        while not control.closed:
            r, _, _ = select.select([node.socket, control.sock], [], [], 0.05)
            if control.sock in r:
                control.receive(timeout=0)
            try:
                node.process_packets()  # also runs MRP retransmissions, so call it on every tick
            except Exception:  # a malformed packet must not kill the node (a real one would drop it)
                import traceback

                traceback.print_exc()
            if status["window_open"] and time.monotonic() > node.window_deadline:
                node.close_window("window expired")
        print("[hil] node stopped", flush=True)
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # Power off: no mDNS goodbyes and no waiting for zeroconf's threads (0.25 s per node otherwise);
    # a board that loses power sends no goodbyes either.
    os._exit(code)
