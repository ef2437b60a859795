"""Commission real boards with the SDK's chip-tool binary (BLE + Thread, on-network, or a setup code).

Real silicon is commissioned the way NXP's guide does it: `chip-tool pairing ble-thread <node-id>
hex:<dataset> <passcode> <discriminator> --paa-trust-store-path <dir>`. This module builds those command
lines, insists that the trust store holds only the PAA under test (otherwise a pass proves nothing), runs
chip-tool, keeps its output as the log, and reads the outcome from it with the same parser as the Python
controller (hil.commissioning.verdict): chip-tool's exit status alone cannot tell a PAA problem from a
wrong passcode, its log can.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from hil.commissioning.trust_store import PaaInput, check_trust_store, write_trust_store
from hil.commissioning.verdict import PASSCODE_REJECTED, Stage, Timings, Verdict, parse_log
from hil.errors import ConfigError, InputError
from hil.matter import spake2p

DEFAULT_TIMEOUT = 180.0  # BLE scanning + Thread attach on real boards take a while
NODE_ID_MAX = 0xFFFF_FFEF_FFFF_FFFF  # largest operational node id (Matter Core §2.5.5)
MODES = ("ble-thread", "ble-wifi", "onnetwork", "onnetwork-long", "code")


def find_chip_tool(configured: str | os.PathLike[str] | None = None) -> Path:
    """The chip-tool binary: the configured path if given, else `chip-tool` on PATH."""
    if configured:
        path = Path(configured)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ConfigError(f"chip-tool: {str(path)!r} is not an executable file; fix the configured path")
        return path
    found = shutil.which("chip-tool")
    if found is None:
        raise ConfigError("chip-tool: not found on PATH; install it or configure its path")
    return Path(found)


def _node_id(node_id: int) -> str:
    if not isinstance(node_id, int) or isinstance(node_id, bool) or not 1 <= node_id <= NODE_ID_MAX:
        raise InputError.field("node_id", node_id, f"allowed 1..0x{NODE_ID_MAX:X} (operational node ids)")
    return str(node_id)


def _discriminator(value: int) -> str:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFF:
        raise InputError.field("discriminator", value, "allowed 0..4095 (12 bits)")
    return str(value)


def _passcode(value: int) -> str:
    spake2p.validate_passcode(value)
    return str(value)


def _dataset(dataset: bytes | str) -> str:
    """`hex:<dataset>` for chip-tool; accepts bytes or a hex string (with or without `hex:`)."""
    if isinstance(dataset, bytes | bytearray):
        raw = bytes(dataset)
    else:
        text = dataset.removeprefix("hex:").strip()
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise InputError.field(
                "thread dataset", dataset, "hex digits (the active operational dataset TLVs)"
            ) from None
    if not raw or len(raw) > 254:
        raise InputError(f"thread dataset: {len(raw)} bytes is not allowed; 1..254 bytes of dataset TLVs")
    return "hex:" + raw.hex()


def pairing_command(
    chip_tool: str | os.PathLike[str],
    mode: str,
    node_id: int,
    *,
    paa_store: str | os.PathLike[str],
    passcode: int | None = None,
    discriminator: int | None = None,
    dataset: bytes | str | None = None,
    ssid: str | None = None,
    password: str | None = None,
    code: str | None = None,
    storage_dir: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
) -> list[str]:
    """The argv for one `chip-tool pairing <mode>` run (validated; nothing is executed)."""
    args: list[str]
    if mode == "ble-thread":
        if dataset is None or passcode is None or discriminator is None:
            raise InputError("ble-thread: needs dataset, passcode and discriminator")
        args = [_node_id(node_id), _dataset(dataset), _passcode(passcode), _discriminator(discriminator)]
    elif mode == "ble-wifi":
        if ssid is None or password is None or passcode is None or discriminator is None:
            raise InputError("ble-wifi: needs ssid, password, passcode and discriminator")
        args = [_node_id(node_id), ssid, password, _passcode(passcode), _discriminator(discriminator)]
    elif mode == "onnetwork":
        if passcode is None:
            raise InputError("onnetwork: needs the passcode")
        args = [_node_id(node_id), _passcode(passcode)]
    elif mode == "onnetwork-long":
        if passcode is None or discriminator is None:
            raise InputError("onnetwork-long: needs passcode and discriminator")
        args = [_node_id(node_id), _passcode(passcode), _discriminator(discriminator)]
    elif mode == "code":
        if not code or not isinstance(code, str):
            raise InputError("code: needs the QR code (MT:...) or the manual pairing code")
        args = [_node_id(node_id), code]
    else:
        raise InputError.field("mode", mode, "one of " + ", ".join(MODES))
    argv = [str(chip_tool), "pairing", mode, *args, "--paa-trust-store-path", str(paa_store)]
    if storage_dir is not None:
        argv += ["--storage-directory", str(storage_dir)]
    if timeout is not None:
        argv += ["--timeout", str(max(1, round(timeout)))]
    return argv


def verdict_from_output(
    text: str,
    returncode: int | None,
    *,
    method: str,
    node_id: int | None,
    log_path: Path | None = None,
    elapsed: float | None = None,
) -> Verdict:
    """A Verdict from chip-tool's output and exit status (None: killed by our timeout)."""
    found = parse_log(text)
    common = {
        "method": method,
        "node_id": node_id,
        "log_path": log_path,
        "timings": Timings(commission_s=elapsed),
    }
    details: dict[str, object] = {"returncode": returncode}
    if found.attestation_code is not None:
        details["attestation_code"] = found.attestation_code
    if found.completed and returncode == 0:
        return Verdict(Stage.COMPLETE, details=details, **common)
    stage = found.stage if found.stage is not Stage.COMPLETE else None
    message = ""
    if "No PAAs found in path" in text:
        stage, message = Stage.CONTROLLER, "chip-tool found no PAA in the trust store"
    elif found.pase_mac_mismatch:
        message = PASSCODE_REJECTED
    if stage is None:
        if returncode is None:
            stage, message = Stage.TIMEOUT, "chip-tool did not finish in time (killed)"
        elif found.chip_error and found.chip_error.startswith("0x00000032") and not found.discovered:
            stage = Stage.DISCOVERY if method in ("onnetwork", "onnetwork-long", "code") else Stage.TIMEOUT
        else:
            stage = Stage.COMMISSIONING
    if not message and returncode not in (0, None) and found.chip_error is None:
        message = f"chip-tool exited {returncode}"
    return Verdict.failed(stage, found, message, details=details, **common)


class ChipTool:
    """chip-tool with a private storage directory and a log per run (under `log_dir`)."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        log_dir: str | os.PathLike[str] | None = None,
        storage_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.path = find_chip_tool(path)
        self.log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="hil-chip-tool-"))
        # chip-tool's default storage is /tmp/chip_tool_config*.ini: shared by every run on the machine.
        self.storage_dir = Path(storage_dir) if storage_dir else self.log_dir / "storage"
        self.kill_grace = 30.0  # chip-tool's own --timeout should end it first; then we kill it

    def _store(self, paa: PaaInput | Sequence[PaaInput], paa_store: str | os.PathLike[str] | None) -> Path:
        if paa_store is not None:
            return check_trust_store(paa_store, paa)
        store = Path(tempfile.mkdtemp(prefix="paa-store-", dir=self._ensure_dirs()))
        return write_trust_store(store, paa)

    def _ensure_dirs(self) -> Path:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        return self.log_dir

    def pair(
        self,
        mode: str,
        node_id: int,
        *,
        paa: PaaInput | Sequence[PaaInput],
        paa_store: str | os.PathLike[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        **fields: object,
    ) -> Verdict:
        """Run `chip-tool pairing <mode>` against a store holding only `paa` (checked, or written fresh)."""
        store = self._store(paa, paa_store)
        argv = pairing_command(
            self.path,
            mode,
            node_id,
            paa_store=store,
            storage_dir=self.storage_dir,
            timeout=timeout,
            **fields,  # type: ignore[arg-type]
        )
        return self.run(argv, method=mode, node_id=node_id, timeout=timeout)

    def pair_ble_thread(
        self, node_id: int, dataset: bytes | str, passcode: int, discriminator: int, **kwargs: object
    ) -> Verdict:
        return self.pair(
            "ble-thread", node_id, dataset=dataset, passcode=passcode, discriminator=discriminator, **kwargs
        )  # type: ignore[arg-type]

    def pair_onnetwork(
        self, node_id: int, passcode: int, discriminator: int | None = None, **kwargs: object
    ) -> Verdict:
        if discriminator is None:
            return self.pair("onnetwork", node_id, passcode=passcode, **kwargs)  # type: ignore[arg-type]
        return self.pair("onnetwork-long", node_id, passcode=passcode, discriminator=discriminator, **kwargs)  # type: ignore[arg-type]

    def pair_code(self, node_id: int, code: str, **kwargs: object) -> Verdict:
        return self.pair("code", node_id, code=code, **kwargs)  # type: ignore[arg-type]

    def run(self, argv: Sequence[str], *, method: str, node_id: int | None, timeout: float) -> Verdict:
        """Run chip-tool, keep its output as the log, and read the verdict from it."""
        self._ensure_dirs()
        log_path = self.log_dir / f"chip-tool-{method}-node-{node_id}.log"
        t0 = time.monotonic()
        returncode: int | None
        with open(log_path, "wb") as log:
            log.write(("$ " + " ".join(argv) + "\n").encode())
            log.flush()
            proc = subprocess.Popen(
                list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
            try:
                returncode = proc.wait(timeout=timeout + self.kill_grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                returncode = None
        elapsed = time.monotonic() - t0
        text = log_path.read_text(errors="replace")
        return verdict_from_output(
            text, returncode, method=method, node_id=node_id, log_path=log_path, elapsed=elapsed
        )
