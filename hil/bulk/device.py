"""One device of a batch, built in memory: DAC key and certificate, verifier, factory data, HEX, onboarding.

`BatchSpec` is what every device shares, as plain picklable values so worker processes can rebuild their
own `DeviceFactory` once (parsing the PAI and its key once per worker, not per device as
esp-matter-mfg-tool does). `DeviceFactory.build` is the per-device hot path: a P-256 key, one DAC
signature, the SPAKE2+ PBKDF2 (≈90% of the time at 10,000 iterations), the KLV encoding and the text
renderings. It validates nothing the batch check (`check_batch`) has already proven for device 0: every
device differs from device 0 only in values the planner makes valid by construction.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric import ec

from hil.bulk.ihex import to_ihex
from hil.bulk.plan import DevicePlan
from hil.bulk.writer import DEVICE_RECORD, OutFile, device_dir_name
from hil.errors import InputError
from hil.factory_data import FactoryData, encode, rules
from hil.matter import certs, onboarding, spake2p

DAC_KEY_FILE = "dac_key.der"
DAC_CERT_FILE = "dac_cert.der"
FACTORY_DATA_FILE = "factory_data.bin"
FACTORY_DATA_HEX = "factory_data.hex"


@dataclass(frozen=True)
class BatchSpec:
    """The inputs every device of a batch shares (plain values; DER bytes for certificates and keys)."""

    pai_cert: bytes
    pai_key: bytes  # SEC1 DER; secret, handed to workers through a pipe, never written by the batch
    cert_declaration: bytes
    vid: int
    pid: int
    vendor_name: str
    product_name: str
    iterations: int
    hw_version: int
    hw_version_str: str
    date: str = ""  # manufacturing date, YYYY-MM-DD ("" until the batch resolves it)
    valid_from: datetime | None = None  # DAC notBefore (None until the batch resolves it)
    lifetime_days: int = certs.DEFAULT_LIFETIME_DAYS
    #: Optional generate.py fields shared by all devices (part_number, product_url, ...), by FactoryData name.
    extra: dict[str, object] = field(default_factory=dict)
    aes_key: bytes | None = None
    hw_params: bool = False
    address: int | None = None  # where the HEX places the image; None: no HEX
    region_size: int | None = None
    region_name: str = "the factory-data region"
    rendezvous: int = onboarding.RENDEZVOUS_BLE
    flow: int = onboarding.FLOW_STANDARD


@dataclass
class Device:
    """A device built in memory: the files to write and its manifest record."""

    files: list[OutFile]
    record: dict[str, object]
    factory_data: FactoryData
    dac: certs.Credential


class DeviceFactory:
    """Builds devices for one batch; construct once per worker (parses the PAI and its key)."""

    def __init__(self, spec: BatchSpec) -> None:
        self.spec = spec
        self.pai = certs.load_credential(spec.pai_cert, spec.pai_key, what="PAI")

    def build(self, plan: DevicePlan) -> Device:
        s = self.spec
        key = ec.generate_private_key(ec.SECP256R1())
        dac = certs.generate_dac(
            self.pai,
            f"DAC {plan.serial_num}",
            s.vid,
            s.pid,
            valid_from=s.valid_from,
            lifetime_days=s.lifetime_days,
            key=key,
            serial=plan.dac_serial,
        )
        dac_der = dac.cert_der()
        verifier = spake2p.compute_verifier(plan.passcode, plan.salt, s.iterations)
        fd = FactoryData(
            verifier=verifier,
            salt=plan.salt,
            iterations=s.iterations,
            dac_key=key.private_numbers().private_value.to_bytes(32, "big"),
            dac_cert=dac_der,
            pai_cert=s.pai_cert,
            discriminator=plan.discriminator,
            passcode=plan.passcode,
            vid=s.vid,
            pid=s.pid,
            cert_declaration=s.cert_declaration,
            vendor_name=s.vendor_name,
            product_name=s.product_name,
            serial_num=plan.serial_num,
            date=s.date,
            hw_version=s.hw_version,
            hw_version_str=s.hw_version_str,
            unique_id=plan.unique_id,
            **s.extra,  # type: ignore[arg-type]
        )
        image = encode(fd, s.aes_key, s.hw_params)
        record: dict[str, object] = {
            "index": plan.index,
            "serial_num": plan.serial_num,
            "dac_serial": f"{plan.dac_serial:016X}",
            "passcode": plan.passcode,
            "discriminator": plan.discriminator,
            "qr_payload": onboarding.qr_payload(
                s.vid, s.pid, plan.passcode, plan.discriminator, s.flow, s.rendezvous
            ),
            "manual_code": onboarding.manual_code(plan.passcode, plan.discriminator, s.vid, s.pid, s.flow),
            "factory_data_sha256": hashlib.sha256(image).hexdigest(),
            "dir": f"devices/{device_dir_name(plan.index)}",
            "salt": base64.b64encode(plan.salt).decode(),
            "iterations": s.iterations,
            "unique_id": plan.unique_id,
            "factory_data_size": len(image),
            "address": None if s.address is None else f"0x{s.address:X}",
        }
        files = [
            OutFile(DAC_KEY_FILE, dac.key_der(), secret=True),
            OutFile(DAC_CERT_FILE, dac_der),
            # Plain factory data holds the DAC private key in clear (tag 4), so it is a secret too.
            OutFile(FACTORY_DATA_FILE, image, secret=True),
        ]
        if s.address is not None:
            files.append(OutFile(FACTORY_DATA_HEX, to_ihex(image, s.address).encode(), secret=True))
        files.append(OutFile(DEVICE_RECORD, json.dumps(record).encode() + b"\n"))  # C encoder: no indent
        return Device(files, record, fd, dac)


def check_batch(spec: BatchSpec, plan: DevicePlan) -> Device:
    """Build one device in memory and run every factory-data rule on it; InputError on the first violation.

    Called before anything is written, so bad inputs (VID/PID disagreeing across PAI, CD and --vid/--pid,
    strings too long, an image too large for the board, a PAI not valid when the DACs start) cost one
    device's worth of time and leave no output.
    """
    factory = DeviceFactory(spec)
    device = factory.build(plan)
    fd = device.factory_data
    creds = rules.parse_credentials(fd)
    for error in creds.errors.values():
        raise InputError(error)
    violations = [
        *rules.value_violations(fd),
        *rules.credential_violations(fd, creds=creds),
        *rules.size_violation(
            len(encode(fd, spec.aes_key, spec.hw_params)), spec.region_size, spec.region_name
        ),
    ]
    if violations:
        raise InputError(str(violations[0]))
    pai = factory.pai.cert
    start = device.dac.cert.not_valid_before_utc
    if not pai.not_valid_before_utc <= start <= pai.not_valid_after_utc:
        raise InputError(
            f"--pai_cert: not valid when the DACs start ({start:%Y-%m-%d %H:%M:%S} UTC; PAI valid "
            f"{pai.not_valid_before_utc:%Y-%m-%d} .. {pai.not_valid_after_utc:%Y-%m-%d}); pass --valid_from"
        )
    return device


def today_utc() -> datetime:
    """chip-cert's default notBefore: today at 00:00:00 UTC (fixed once per batch)."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
