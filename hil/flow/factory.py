"""Factory data for one board: the session's PKI + the board's credentials -> the image its firmware reads.

Why here and not in the strategy: the image is where every input is checked against every other (DAC vs
PAI vs CD VID/PID, key vs certificate, passcode rules, the board's region and AES key), so a bad plan is
refused with an InputError *before* anything touches the board. The checks and the bytes are
hil.factory_data's (`generate` + `for_board`): the board's profile decides the AES key (its firmware's
decryption), the region size, and the K32W1 HW-parameters wrapper (boards.toml `options.hw_params`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hil.factory_data import FactoryData
from hil.factory_data import generate as gen
from hil.factory_data.tags import DAC_KEY_PLAIN_LEN

if TYPE_CHECKING:
    from hil.boards import BoardProfile
    from hil.flow.credentials import DeviceCredentials, Pki, TestHooks

MANUFACTURING_DATE = "2024-01-01"
HW_VERSION, HW_VERSION_STR = 1, "1.0"


def hw_params(profile: BoardProfile) -> bool:
    """Whether the board's app reads the K32W1/MCXW71 HW-parameters section (boards.toml options)."""
    return bool(profile.options.get("hw_params", False))


@dataclass(frozen=True, repr=False)
class FactoryDataBuild:
    """A validated image for one board. `image` holds the DAC private key: never log or attach it."""

    image: bytes = field(repr=False)
    layout: str  # hil.factory_data.generate.describe(): size, plain / AES / hw_params, header hash
    request: gen.GenerateRequest = field(repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.image).hexdigest()

    def __repr__(self) -> str:
        return f"FactoryDataBuild({self.layout}, sha256={self.sha256[:16]})"


def factory_data_fields(pki: Pki, device: DeviceCredentials, hooks: TestHooks | None = None) -> FactoryData:
    """generate.py's fields for this board (its verifier included: no spake2p run needed)."""
    key = device.dac.key
    assert key is not None
    pid = pki.pid
    if hooks is not None and hooks.basic_info_product_id is not None:
        pid = hooks.basic_info_product_id
    return FactoryData(
        verifier=device.verifier,
        salt=device.salt,
        iterations=device.iterations,
        dac_key=key.private_numbers().private_value.to_bytes(DAC_KEY_PLAIN_LEN, "big"),
        dac_cert=device.dac.cert_der(),
        pai_cert=pki.pai.cert_der(),
        discriminator=device.discriminator,
        passcode=device.passcode,
        vid=pki.vid,
        pid=pid,
        cert_declaration=pki.cd,
        vendor_name=pki.vendor_name,
        product_name=pki.product_name,
        serial_num=device.serial_number,
        date=MANUFACTURING_DATE,
        hw_version=HW_VERSION,
        hw_version_str=HW_VERSION_STR,
        unique_id=device.unique_id,
    )


def build(
    pki: Pki, device: DeviceCredentials, profile: BoardProfile, hooks: TestHooks | None = None
) -> FactoryDataBuild:
    """The image for `profile`, every check run (except those a test hook deliberately allows)."""
    req = gen.GenerateRequest(
        data=factory_data_fields(pki, device, hooks),
        hw_params=hw_params(profile),
        allow=hooks.allow if hooks is not None else frozenset(),
        paa=pki.paa.cert,
        cd_signer=pki.cd_signer_cert,
    )
    req = gen.for_board(req, profile)
    image = gen.generate(req)
    layout = gen.describe(image, req)
    if hooks is not None and hooks.corrupt_factory_data is not None:
        image = hooks.corrupt_factory_data(image)
        layout += " (corrupted by test hook)"
    return FactoryDataBuild(image, layout, req)


def flip_payload_byte(image: bytes, offset: int = 40) -> bytes:
    """A test hook for `TestHooks.corrupt_factory_data`: one payload byte inverted (the SHA-256 check
    in the header no longer matches). `offset` counts from the start of the image."""
    data = bytearray(image)
    data[offset] ^= 0xFF
    return bytes(data)
