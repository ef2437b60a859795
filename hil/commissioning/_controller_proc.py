"""Child-process side of hil.commissioning.controller: one CHIP SDK stack and one PAA trust store.

The SDK allows one ChipStack per process and binds the PAA store of the *first* controller created in it
(a static FileAttestationTrustStore; emulation-notes §3.6), so every trust store gets its own process.
Started inside a commissioning sandbox by `Controller`; speaks JSON lines on an inherited socket:

    parent -> {"paa_store", "storage", "log", "detail_logs"}       once, first
    child  -> {"op": "ready", "startup_s"} | {"op": "error", "message"}
    parent -> {"op": "commission", "id", "method", "passcode", "node_id", "timeout_s", "log", ...}
    child  -> {"op": "result", "id", "ok", "error", "error_type", "commission_s", "pase_s", "basic_info"}

The SDK's log goes through Python logging (chip.logging.RedirectToPythonLogging) into one file per
commissioning, written in the SDK's own `CHIP:<module>: <message>` shape so hil.commissioning.verdict
parses it exactly like chip-tool output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import select
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

_T0 = time.monotonic()
ADMIN_VENDOR_ID = 0xFFF1  # the commissioner's own (test) vendor id for its fabric
CONTROLLER_NODE_ID = 112233  # chip-tool's default commissioner node id


class _SdkFormatter(logging.Formatter):
    """`[time] CHIP:<module>: message` for SDK records, `[time] PY:<logger>: message` for the rest."""

    def format(self, record: logging.LogRecord) -> str:
        name = record.name
        origin = f"CHIP:{name[len('chip.native.') :]}" if name.startswith("chip.native.") else f"PY:{name}"
        text = f"[{record.created:.6f}] {origin}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class _SwitchableFileHandler(logging.Handler):
    """One handler whose file changes per commissioning (the SDK logs from its own thread)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.setFormatter(_SdkFormatter())
        self._file = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the process

    def switch(self, path: Path) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._file.flush()
            self._file.close()
            self._file = open(path, "a", buffering=1)  # noqa: SIM115

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._file.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


class _Channel:
    def __init__(self, fd: int) -> None:
        self.sock = socket.socket(fileno=fd)
        self._buf = b""
        self._lock = threading.Lock()

    def send(self, msg: dict[str, Any]) -> None:
        with self._lock:
            self.sock.sendall((json.dumps(msg) + "\n").encode())

    def receive(self) -> dict[str, Any] | None:
        while b"\n" not in self._buf:
            select.select([self.sock], [], [])
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)


class _Controller:
    def __init__(self, paa_store: str, storage: str, detail_logs: bool) -> None:
        import chip.CertificateAuthority
        import chip.logging
        import chip.native
        from chip.ChipStack import ChipStack

        chip.native.Init()
        chip.logging.RedirectToPythonLogging()
        chip.logging.SetLogFilter(
            chip.logging.LOG_CATEGORY_DETAIL if detail_logs else chip.logging.LOG_CATEGORY_PROGRESS
        )
        self.stack = ChipStack(persistentStoragePath=storage, enableServerInteractions=False)
        self.cam = chip.CertificateAuthority.CertificateAuthorityManager(chipStack=self.stack)
        self.cam.LoadAuthoritiesFromStorage()
        admin = self.cam.NewCertificateAuthority().NewFabricAdmin(vendorId=ADMIN_VENDOR_ID, fabricId=1)
        self.ctrl = admin.NewController(nodeId=CONTROLLER_NODE_ID, paaTrustStorePath=paa_store)

    async def commission(self, req: dict[str, Any]) -> dict[str, Any]:
        from chip.discovery import FilterType

        node_id = int(req["node_id"])
        method = req["method"]
        passcode = int(req.get("passcode") or 0)
        timeout = float(req["timeout_s"])
        result: dict[str, Any] = {"ok": False, "error": None, "error_type": None, "pase_s": None}
        t0 = time.monotonic()
        try:
            if method == "ip":
                await asyncio.wait_for(
                    self.ctrl.EstablishPASESessionIP(
                        req["address"], passcode, node_id, port=int(req["port"])
                    ),
                    timeout,
                )
                result["pase_s"] = time.monotonic() - t0
                await asyncio.wait_for(
                    self.ctrl.Commission(node_id), max(1.0, timeout - (time.monotonic() - t0))
                )
            elif method == "discriminator":
                await asyncio.wait_for(
                    self.ctrl.CommissionOnNetwork(
                        node_id,
                        passcode,
                        filterType=FilterType.LONG_DISCRIMINATOR,
                        filter=int(req["discriminator"]),
                        discoveryTimeoutMsec=int(req.get("discovery_timeout_s", timeout) * 1000),
                    ),
                    timeout,
                )
            elif method == "code":
                from chip.ChipDeviceCtrl import DiscoveryType

                await asyncio.wait_for(
                    self.ctrl.CommissionWithCode(req["code"], node_id, DiscoveryType.DISCOVERY_NETWORK_ONLY),
                    timeout,
                )
            else:
                raise ValueError(f"unknown method {method!r}")
            result["commission_s"] = time.monotonic() - t0
            result["ok"] = True
        except TimeoutError:
            result["commission_s"] = time.monotonic() - t0
            result["error_type"] = "Timeout"
            result["error"] = f"no outcome within {timeout:.0f} s"
            return result
        except Exception as exc:
            result["commission_s"] = time.monotonic() - t0
            result["error_type"] = type(exc).__name__
            result["error"] = str(exc)
            return result
        if req.get("read_basic_info", True):
            result["basic_info"] = await self._basic_info(node_id)
        return result

    async def _basic_info(self, node_id: int) -> dict[str, Any]:
        """VendorID/ProductID/names read back over CASE: proof the node is operational, and what it says."""
        import chip.clusters as Clusters

        bi = Clusters.BasicInformation.Attributes
        wanted = {
            "vendor_id": bi.VendorID,
            "product_id": bi.ProductID,
            "vendor_name": bi.VendorName,
            "product_name": bi.ProductName,
            "serial_number": bi.SerialNumber,
        }
        try:
            data = await self.ctrl.ReadAttribute(node_id, [(0, attr) for attr in wanted.values()])
            values = data[0][Clusters.BasicInformation]
            return {key: values.get(attr) for key, attr in wanted.items()}
        except Exception as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}

    def shutdown(self) -> None:
        for part in (self.ctrl, self.cam, self.stack):
            try:
                part.Shutdown()
            except Exception:
                logging.getLogger(__name__).exception("shutdown")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CHIP SDK controller child (started by hil Controller)")
    parser.add_argument("--control-fd", type=int, required=True)
    args = parser.parse_args(argv)
    channel = _Channel(args.control_fd)
    hello = channel.receive()
    if hello is None:
        return 1
    handler = _SwitchableFileHandler(Path(hello["log"]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if hello.get("detail_logs") else logging.INFO)
    try:
        controller = _Controller(hello["paa_store"], hello["storage"], bool(hello.get("detail_logs")))
    except BaseException as exc:  # e.g. OSError: libnl-route-3.so.200 missing, /data not writable
        logging.getLogger(__name__).exception("controller start-up failed")
        channel.send({"op": "error", "message": f"{type(exc).__name__}: {exc}"})
        return 1
    loop = asyncio.new_event_loop()
    try:  # from here on, every way out shuts the stack down: a live CHIP stack hangs interpreter exit
        channel.send({"op": "ready", "startup_s": time.monotonic() - _T0})  # parent gone (Ctrl-C): EPIPE
        while (req := channel.receive()) is not None:
            if req.get("op") != "commission":
                continue
            handler.switch(Path(req["log"]))
            logging.getLogger("hil").info("commission %s node_id=%s", req["method"], req["node_id"])
            result = loop.run_until_complete(controller.commission(req))
            logging.getLogger("hil").info("result ok=%s error=%s", result["ok"], result["error"])
            handler.switch(Path(hello["log"]))
            channel.send({"op": "result", "id": req["id"], **result})
    finally:
        controller.shutdown()
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
