"""The application running on an emulated board: boot from flash, FactoryDataProvider, DAC-key conversion.

Loaded by the board process (`hil.emulator.board` calls `attach(board)` at start-up). From then on the
board behaves like a chip with an NXP Matter app in flash:

* **Boot** at power-on and after every reset (control, J-Link, ROM reset command; after a J-Link reset the
  core runs only once the probe lets it go): read the app image (`hil.emulator.app_image`) at the profile's
  `app_address` from the board's own flash. No image: the ROM keeps the chip. Otherwise the app runs with
  its build options, in a thread of its own; a new reset abandons a boot in progress, as a CPU reset does.
* **Factory data** is read only from the board's flash (its `MemoryMap`, the bytes a programmer wrote),
  through `FactoryDataProvider` with the family's NXP semantics and the profile's AES key.
* **DAC key**: a 32-byte scalar signs as is; a blob (length = the family's blob size) is imported into the
  emulated secure subsystem (`hil.emulator.sss`), and fails clearly if another board's SSS made it.
  With chip_convert_dac_private_key=1 the app replaces the plain key by a blob in flash first (erase and
  program, sector by sector, through the flash model) and validates the result; a key that is already a
  blob is left alone (the tag-4 length tells).
* **Boot log** on the console pty in NXP's ChipLog shape ``[<ms>][<P|E|D>][<module>] <message>``, using
  the firmware's own wording where NXP's sources have one ("Factory data init failed with: ...",
  "SSS: replaced DAC private key with secured blob", "Manufacturing date is not formatted correctly:
  YYYY-MM-DD."). The last line of every boot is ``Boot complete: key=value ...`` or ``Boot failed:
  <reason>``; `hil.boot.wait_for_boot` reads it with pyserial.
* **Node config** for the Matter node (`hil.emulator.matter_device.NodeConfig`): built from the provider's
  getters (never the passcode), served by control op ``node_config`` as NodeConfig.public_dict() (DER as
  base64, no key material). The DAC key stays in this process: control op ``sign`` (message hex -> DER
  signature hex) signs with the plain key or through the SSS blob. That op is the emulated equivalent of
  the chip's own crypto: a node process in a network namespace signs by asking the board over its control
  channel (`hil.emulator.firmware_link.BoardSigner`), as the node on silicon asks its secure element.
* **Fault injection**: control op ``firmware_faults`` with ``power_cut_after_bytes=N`` arms a power cut
  during the next factory-data rewrite: after the erase and N programmed bytes the board process is killed
  (SIGKILL: no clean-up, flash keeps exactly what was programmed).

Control ops added: ``firmware`` (state, for debugging), ``node_config``, ``sign``, ``firmware_faults``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hil.emulator import app_image
from hil.emulator.app_image import AppImageError, AppOptions
from hil.emulator.builtin_credentials import builtin_credentials
from hil.emulator.factory_data_provider import (
    DATE_FORMAT_ERROR,
    PROVIDERS,
    FactoryDataProvider,
    ProviderError,
)
from hil.emulator.flash import MemoryAccessError
from hil.emulator.matter_device import CallableSigner, KeySigner, NodeConfig
from hil.emulator.sss import SecureSubsystem, SssError, blob_format
from hil.errors import BoardError, HilError, InputError
from hil.factory_data.tags import DAC_KEY_PLAIN_LEN

if TYPE_CHECKING:
    from hil.emulator.board import Board
    from hil.emulator.matter_device import Signer

log = logging.getLogger(__name__)

BOOT_COMPLETE = "Boot complete"
BOOT_FAILED = "Boot failed"
INIT_FAILED = "Factory data init failed with"
_GO_POLL = 0.005


class BootAbandoned(Exception):
    """The chip was reset while this boot was running: stop without touching anything else."""


class BootFailure(Exception):
    """The app cannot go on; `reason` is the firmware's own error line (already logged)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class BootState:
    """What the last boot ended in (answered by control op `firmware`; the harness reads the console)."""

    stage: str = "reset"  # reset | rom | booting | running | failed
    app: str | None = None
    reason: str | None = None
    provisioned: bool = False
    credentials: str | None = None  # factory-data | built-in
    dac_key: str | None = None  # plain | sss-blob
    converted: bool = False
    node: NodeConfig | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "app": self.app,
            "reason": self.reason,
            "provisioned": self.provisioned,
            "credentials": self.credentials,
            "dac_key": self.dac_key,
            "converted": self.converted,
        }


class _Console:
    """ChipLog-shaped lines on the board's console, timestamped in ms since the reset."""

    def __init__(self, board: Board, check: Callable[[], None]) -> None:
        self.board = board
        self.check = check
        self.t0 = time.monotonic()

    def line(self, level: str, module: str, message: str) -> None:
        self.check()
        ms = int((time.monotonic() - self.t0) * 1000)
        self.board.console_write(f"[{ms:08d}][{level}][{module}] {message}\r\n".encode())

    def progress(self, message: str, module: str = "DL") -> None:
        self.line("P", module, message)

    def error(self, message: str, module: str = "DL") -> None:
        self.line("E", module, message)


class Firmware:
    """The app model of one board process (see the module docstring)."""

    def __init__(self, board: Board) -> None:
        self.board = board
        profile = board.profile
        self.traits = PROVIDERS[profile.family]
        self.blob = blob_format(profile.family)
        self.sss = SecureSubsystem(board.directory, self.blob) if self.blob else None
        self.state = BootState()
        self.power_cut_after_bytes: int | None = None
        self._generation = 0
        self._state_lock = threading.Lock()

    # -- board hooks -----------------------------------------------------------------------------------
    def attach(self) -> None:
        board = self.board
        board.add_reset_hook(self.on_reset)
        board.control_ops.update(
            {
                "firmware": lambda _req: self.state.as_dict(),
                "node_config": self._op_node_config,
                "sign": self._op_sign,
                "firmware_faults": self._op_faults,
            }
        )
        with board.lock:
            self.on_reset(board)  # power-on

    def on_reset(self, board: Board) -> None:
        """A reset (runs under board.lock): abandon any boot in progress, boot again in a new thread."""
        self._generation += 1
        generation = self._generation
        with self._state_lock:
            self.state = BootState()
        wait_for_go = board.last_reset == "probe"
        threading.Thread(
            target=self._run, args=(generation, wait_for_go), name=f"firmware-{generation}", daemon=True
        ).start()

    # -- the boot --------------------------------------------------------------------------------------
    def _check(self, generation: int) -> None:
        if generation != self._generation:
            raise BootAbandoned

    def _run(self, generation: int, wait_for_go: bool) -> None:
        check = lambda: self._check(generation)  # noqa: E731
        try:
            if wait_for_go:  # after a J-Link reset the core stays halted until the probe says go
                while self.board.probe.halted:
                    check()
                    time.sleep(_GO_POLL)
            console = _Console(self.board, check)
            state = self._boot(console, check)
            console.progress(f"{BOOT_COMPLETE}: " + _fields(state), "APP")
        except BootAbandoned:
            return
        except BootFailure as failure:
            state = BootState("failed", reason=failure.reason, app=self._state_app())
            with contextlib.suppress(BootAbandoned):
                _Console(self.board, check).error(f"{BOOT_FAILED}: {failure.reason}", "APP")
        except Exception as exc:  # a bug in the model: say so on the console rather than hang the harness
            log.exception("firmware boot crashed")
            state = BootState("failed", reason=f"emulated firmware crashed: {type(exc).__name__}: {exc}")
            with contextlib.suppress(BootAbandoned):
                _Console(self.board, check).error(f"{BOOT_FAILED}: {state.reason}", "APP")
        with self._state_lock:
            if generation == self._generation:
                self.state = state

    def _state_app(self) -> str | None:
        return self.state.app

    def _set(self, **changes: Any) -> None:
        with self._state_lock:
            for key, value in changes.items():
                setattr(self.state, key, value)

    def _read(self, address: int, length: int, check: Callable[[], None]) -> bytes:
        with self.board.lock:
            check()
            return self.board.memory.read(address, length)

    def _boot(self, console: _Console, check: Callable[[], None]) -> BootState:
        profile = self.board.profile
        self._set(stage="booting")
        app = self._load_app(console, check)
        with self.board.lock:
            check()
            self.board.mode = "app"
        self._set(app=f"{app.name} {app.version}")
        console.progress(f"hil emulated app {app.describe()} on {profile.name} ({profile.family})", "APP")
        if not app.chip_with_factory_data:
            return self._boot_builtin(app, console)
        provider = self._init_provider(app, console, check)
        provider, signer, dac_kind, converted = self._dac_key(app, provider, console, check)
        node = self._node_config(app, provider, signer, console)
        state = BootState(
            "running", app=f"{app.name} {app.version}", provisioned=True, credentials="factory-data",
            dac_key=dac_kind, converted=converted, node=node,
        )  # fmt: skip
        return state

    def _load_app(self, console: _Console, check: Callable[[], None]) -> AppOptions:
        profile = self.board.profile
        try:
            header = self._read(profile.app_address, app_image.HEADER_LEN, check)
        except MemoryAccessError as exc:
            self._rom_stays(console, f"cannot read the app region: {exc}")
        if not app_image.has_magic(header):
            what = "erased" if header == b"\xff" * len(header) else "no hil app image"
            self._rom_stays(console, f"no application at 0x{profile.app_address:X} ({what})")
        length = min(app_image.body_length(header), app_image.MAX_BODY)
        try:
            app = app_image.parse(self._read(profile.app_address, app_image.HEADER_LEN + length, check))
        except AppImageError as exc:
            self._rom_stays(console, f"application at 0x{profile.app_address:X} not started: {exc}")
        if app.family is not None and app.family != profile.family:
            self._rom_stays(
                console, f"application {app.name!r} was built for {app.family}, not {profile.family}"
            )
        return app

    def _rom_stays(self, console: _Console, reason: str) -> None:
        self._set(stage="rom")
        console.line("E", "ROM", f"{BOOT_FAILED}: {reason}")
        raise BootAbandoned  # the ROM keeps the chip: no app state to record beyond "rom"

    def _boot_builtin(self, app: AppOptions, console: _Console) -> BootState:
        creds = builtin_credentials()
        console.progress(
            "Factory data disabled (chip_with_factory_data=0): using the built-in test credentials"
        )
        assert creds.dac.key is not None
        node = NodeConfig(
            discriminator=0xF00,
            spake2p_salt=b"SPAKE2P Key Salt",
            spake2p_iterations=1000,
            spake2p_verifier=creds.verifier,
            dac_cert=creds.dac.cert_der(),
            pai_cert=creds.pai.cert_der(),
            cd=creds.cd,
            signer=KeySigner(creds.dac.key_der()),
            vendor_id=0xFFF1,
            product_id=0x8000,
            vendor_name="TEST_VENDOR",
            product_name="TEST_PRODUCT",
            hardware_version=0,
            hardware_version_string="TEST_VERSION",
            software_version=app.software_version,
            software_version_string=app.version,
            serial_number="TEST_SN",
        )
        return BootState(
            "running", app=f"{app.name} {app.version}", provisioned=False, credentials="built-in",
            dac_key="plain", node=node,
        )  # fmt: skip

    def _init_provider(
        self, app: AppOptions, console: _Console, check: Callable[[], None]
    ) -> FactoryDataProvider:
        profile = self.board.profile
        region = self._read(profile.factory_data_address, profile.factory_data_size, check)
        provider = FactoryDataProvider(
            region, self.traits, aes_key=profile.aes_key_bytes, hw_params=bool(app.hw_params)
        )
        layout = "HW parameters section" if app.hw_params else "factory data"
        try:
            image = provider.init()
        except ProviderError as exc:
            reason = f"{INIT_FAILED}: {exc.error}"
            console.error(reason)
            console.line("D", "DL", f"{self.traits.impl}: {exc.detail}")
            raise BootFailure(f"{reason} ({exc.detail})") from None
        encrypted = f", {image.parsed.aes}-ECB decrypted" if image.parsed.aes else ""
        console.progress(
            f"{self.traits.impl}: {layout} at 0x{profile.factory_data_address:X}: "
            f"{len(image.payload)} payload bytes, hash OK{encrypted}"
        )
        return provider

    # -- the DAC key -------------------------------------------------------------------------------------
    def _dac_key(
        self, app: AppOptions, provider: FactoryDataProvider, console: _Console, check: Callable[[], None]
    ) -> tuple[FactoryDataProvider, Signer, str, bool]:
        fmt = self.blob
        blob_len = fmt.length if fmt else DAC_KEY_PLAIN_LEN
        key = self._getter(console, "GetDacPrivateKey", lambda: provider.dac_private_key_record(blob_len))
        converted = False
        if app.chip_convert_dac_private_key:
            if fmt is None or self.sss is None:
                self._fail(console, "chip_convert_dac_private_key=1: this chip has no secure subsystem")
            elif len(key) == fmt.length:
                console.progress(
                    f"{fmt.subsystem}: DAC private key is already a {fmt.length}-byte blob; no conversion"
                )
            elif len(key) == DAC_KEY_PLAIN_LEN:
                provider = self._convert(provider, key, console, check)
                key = provider.dac_private_key_record(fmt.length)
                converted = True
        if len(key) == DAC_KEY_PLAIN_LEN:
            console.progress("DAC private key: plain (32 bytes)")
            try:
                signer: Signer = KeySigner(key)
            except InputError:
                self._fail(console, "DAC private key: not a valid P-256 scalar")
            return provider, signer, "plain", converted
        if fmt is not None and self.sss is not None and len(key) == fmt.length:
            try:
                self.sss.check_blob(key)
            except SssError as exc:
                self._fail(console, str(exc))
            console.progress(f"{fmt.subsystem}: imported the DAC private key blob ({fmt.length} bytes)")
            sss, blob = self.sss, key
            return provider, CallableSigner(lambda message: sss.sign(blob, message)), "sss-blob", converted
        expected = (
            f"32 (plain) or {fmt.length} ({fmt.name})" if fmt else "32 (this chip has no secure subsystem)"
        )
        self._fail(console, f"DAC private key: {len(key)} bytes stored, expected {expected}")
        raise AssertionError("unreachable")

    def _convert(
        self, provider: FactoryDataProvider, key: bytes, console: _Console, check: Callable[[], None]
    ) -> FactoryDataProvider:
        """SSS_ConvertDacKey: export the blob, replace tag 4, rewrite the region, validate again."""
        assert self.sss is not None and self.blob is not None
        name, profile = self.blob.subsystem, self.board.profile
        try:
            blob = self.sss.export_blob(key)
        except SssError as exc:
            self._fail(console, str(exc))
        console.error(f"{name}: extracted blob from DAC private key")
        console.error(f"{name}: cached factory data in RAM")
        image = provider.replaced(4, blob)
        if len(image) > profile.factory_data_size:
            self._fail(
                console,
                f"{name}: factory data with the blob ({len(image)} bytes) does not fit the "
                f"0x{profile.factory_data_size:X}-byte region; conversion aborted, flash unchanged",
            )
        console.error(f"{name}: replaced DAC private key with secured blob")
        self._rewrite_region(image, check)
        console.error(f"{name}: updated factory data")
        console.error(f"{name}: sanitized RAM cache")
        region = self._read(profile.factory_data_address, profile.factory_data_size, check)
        fresh = FactoryDataProvider(
            region, self.traits, aes_key=provider.aes_key, hw_params=provider.hw_params
        )
        try:
            fresh.init()
        except ProviderError as exc:
            self._fail(console, f"{INIT_FAILED}: {exc.error} after the DAC key conversion ({exc.detail})")
        return fresh

    def _rewrite_region(self, image: bytes, check: Callable[[], None]) -> None:
        """Erase and program the factory-data region sector by sector (bytes of shared sectors kept)."""
        board, profile = self.board, self.board.profile
        address, size = profile.factory_data_address, profile.factory_data_size
        with board.lock:
            check()
            flash = board.memory.region(address, size)
            sector = flash.sector_size
            start = address - (address - flash.base) % sector
            end = address + size + (-(address + size - flash.base)) % sector
            old = flash.read(start, end - start)
            head = address - start
            target = old[:head] + image + b"\xff" * (size - len(image)) + old[head + size :]
            cut, self.power_cut_after_bytes = self.power_cut_after_bytes, None
            programmed = 0
            for off in range(0, end - start, sector):
                flash.erase(start + off, sector)
                data = target[off : off + sector].rstrip(b"\xff")
                if cut is not None and programmed + len(data) >= cut:
                    flash.program(start + off, data[: cut - programmed])
                    self._power_cut(cut)
                if data:
                    flash.program(start + off, data)
                programmed += len(data)
            flash.flush()

    def _power_cut(self, programmed: int) -> None:
        log.warning(
            "fault injection: power cut after %d programmed bytes of the factory-data rewrite", programmed
        )
        self.board.memory.flush()
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(10)  # never reached: SIGKILL is not catchable

    # -- getters → NodeConfig ------------------------------------------------------------------------------
    def _fail(self, console: _Console, reason: str) -> None:
        console.error(reason)
        raise BootFailure(reason)

    def _getter(
        self, console: _Console, name: str, call: Callable[[], Any], *, optional: bool = False
    ) -> Any:
        try:
            return call()
        except ProviderError as exc:
            if optional and exc.error.name in ("CHIP_ERROR_NOT_FOUND", "CHIP_ERROR_NOT_IMPLEMENTED"):
                return None
            if exc.detail == DATE_FORMAT_ERROR:
                console.error(DATE_FORMAT_ERROR)
                raise BootFailure(f"{DATE_FORMAT_ERROR} ({name} failed: {exc.error})") from None
            self._fail(console, f"{name} failed: {exc.error} ({exc.detail})")

    def _node_config(
        self, app: AppOptions, provider: FactoryDataProvider, signer: Signer, console: _Console
    ) -> NodeConfig:
        g = self._getter
        values: dict[str, Any] = {
            "discriminator": g(console, "GetSetupDiscriminator", provider.setup_discriminator),
            "spake2p_iterations": g(console, "GetSpake2pIterationCount", provider.spake2p_iteration_count),
            "spake2p_salt": g(console, "GetSpake2pSalt", provider.spake2p_salt),
            "spake2p_verifier": g(console, "GetSpake2pVerifier", provider.spake2p_verifier),
            "dac_cert": g(console, "GetDeviceAttestationCert", provider.device_attestation_cert),
            "pai_cert": g(console, "GetProductAttestationIntermediateCert",
                          provider.product_attestation_intermediate_cert),
            "cd": g(console, "GetCertificationDeclaration", provider.certification_declaration),
            "vendor_id": g(console, "GetVendorId", provider.vendor_id),
            "product_id": g(console, "GetProductId", provider.product_id),
            "vendor_name": g(console, "GetVendorName", provider.vendor_name),
            "product_name": g(console, "GetProductName", provider.product_name),
            "hardware_version": g(console, "GetHardwareVersion", provider.hardware_version),
            "hardware_version_string": g(console, "GetHardwareVersionString",
                                         provider.hardware_version_string),
            "serial_number": g(console, "GetSerialNumber", provider.serial_number, optional=True) or "",
            "software_version": app.software_version,
            "software_version_string": app.version,
        }  # fmt: skip
        # Read at start-up like BasicInformation does: a bad value fails the boot with the getter's error.
        date = g(console, "GetManufacturingDate", provider.manufacturing_date, optional=True)
        for name, getter in (
            ("GetRotatingDeviceIdUniqueId", provider.rotating_device_id_unique_id),
            ("GetPartNumber", provider.part_number),
            ("GetProductURL", provider.product_url),
            ("GetProductLabel", provider.product_label),
            ("GetProductFinish", provider.product_finish),
            ("GetProductPrimaryColor", provider.product_primary_color),
        ):
            g(console, name, getter, optional=True)
        if values["discriminator"] > 0xFFF:
            self._fail(console, f"Setup discriminator 0x{values['discriminator']:X} does not fit 12 bits")
        try:
            node = NodeConfig(signer=signer, **values)
        except InputError as exc:
            self._fail(console, f"device instance info rejected: {exc}")
        console.progress(
            f"VID 0x{node.vendor_id:04X} PID 0x{node.product_id:04X} discriminator {node.discriminator} "
            f"serial {node.serial_number!r}"
            + (" manufactured {:04d}-{:02d}-{:02d}".format(*date) if date else ""),
            "SVR",
        )
        return node

    # -- control ops -------------------------------------------------------------------------------------
    def _running_node(self) -> NodeConfig:
        state = self.state
        if state.stage != "running" or state.node is None:
            why = state.reason or {"rom": "no application running", "failed": "boot failed"}.get(
                state.stage, f"firmware is {state.stage}"
            )
            raise BoardError(f"{self.board.profile.name}: no Matter node config: {why}")
        return state.node

    def _op_node_config(self, _request: dict[str, Any]) -> dict[str, Any]:
        state = self.state
        node = self._running_node()
        return {"config": node.public_dict(), "credentials": state.credentials, "dac_key": state.dac_key}

    def _op_sign(self, request: dict[str, Any]) -> dict[str, Any]:
        node = self._running_node()
        try:
            message = bytes.fromhex(str(request["message"]))
        except ValueError:
            raise BoardError("sign: message must be hex") from None
        try:
            der = node.signer.sign(message)  # type: ignore[union-attr]
        except HilError as exc:
            raise BoardError(f"{self.board.profile.name}: sign: {exc}") from None
        return {"der": der.hex()}

    def _op_faults(self, request: dict[str, Any]) -> dict[str, Any]:
        value = request.get("power_cut_after_bytes")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise BoardError(f"firmware_faults: power_cut_after_bytes {value!r} is not a byte count")
        self.power_cut_after_bytes = value
        return {"power_cut_after_bytes": value}


def _fields(state: BootState) -> str:
    parts = [
        f"credentials={state.credentials}",
        f"provisioned={'yes' if state.provisioned else 'no'}",
        f"dac_key={state.dac_key}",
        f"converted={'yes' if state.converted else 'no'}",
    ]
    if state.node is not None:
        parts.append(f"discriminator={state.node.discriminator}")
    return " ".join(parts)


def attach(board: Board) -> Firmware:
    """The board process's extension hook: install the app model on `board` and boot (power-on)."""
    firmware = Firmware(board)
    firmware.attach()
    board.firmware = firmware  # type: ignore[attr-defined]  # for in-process tests and debugging
    return firmware


__all__ = ["BOOT_COMPLETE", "BOOT_FAILED", "INIT_FAILED", "BootState", "Firmware", "attach"]
