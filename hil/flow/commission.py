"""Commission a provisioned board with a real commissioner, from what the board itself holds.

Emulated boards: the Matter node runs in a commissioning sandbox (hil.commissioning.sandbox) with the
NodeConfig the board's *firmware* built from its flash at boot (hil.emulator.firmware_link.node_config),
and its signer is the board (control op ``sign``: the plain DAC key or the secure-subsystem blob inside
the board process). Nothing comes from the harness's own copy of the credentials, so the commissioner
judges exactly what was written and converted. The SDK controller comes from a shared ControllerPool
(one per PAA set, tests) or is started for this one attempt (the CLI).

Real boards: chip-tool, the way NXP's guide commissions (`pairing ble-thread` with boards.toml
``options.thread_dataset``, or `onnetwork-long`), against a trust store holding only the given PAA(s).

The passcode is the operator's (from the provisioning record): a commissionable node never reveals it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hil.errors import InputError
from hil.fileio import make_dir
from hil.matter.spake2p import validate_passcode

if TYPE_CHECKING:
    from hil.boards import BoardProfile
    from hil.commissioning.controller import ControllerPool
    from hil.commissioning.trust_store import PaaInput
    from hil.commissioning.verdict import Verdict

COMMISSIONERS = ("controller", "chip-tool")
DEFAULT_TIMEOUT = 60.0
_node_ids: dict[str, int] = {}


def commission_board(
    profile: BoardProfile,
    passcode: int,
    paas: PaaInput | Sequence[PaaInput],
    *,
    discriminator: int | None = None,
    commissioner: str = "controller",
    pool: ControllerPool | None = None,
    by: str = "ip",
    timeout: float = DEFAULT_TIMEOUT,
    log_dir: str | os.PathLike[str] | None = None,
    chip_tool: str | os.PathLike[str] | None = None,
    paa_store: str | os.PathLike[str] | None = None,
) -> Verdict:
    """One commissioning attempt of `profile`'s board trusting exactly `paas`; the Verdict (never raises
    for a commissioning failure: the caller decides; raises HilError when it cannot even try)."""
    if commissioner not in COMMISSIONERS:
        raise InputError.field("--commissioner", commissioner, "one of " + ", ".join(COMMISSIONERS))
    validate_passcode(passcode)  # an impossible passcode is bad input (2), not a failed PASE (4)
    if log_dir is not None:
        make_dir(log_dir)
    if commissioner == "chip-tool":
        return _chip_tool(profile, passcode, paas, discriminator, timeout, log_dir, chip_tool, paa_store)
    if not profile.emulated:
        raise InputError.field(
            "--commissioner",
            commissioner,
            f"chip-tool for the real board {profile.name} (the SDK controller reaches emulated nodes only)",
        )
    from hil.commissioning.controller import commission_emulated
    from hil.emulator.firmware_link import node_config
    from hil.emulator.matter_device import MatterNode

    config = node_config(profile)
    if pool is None:
        return commission_emulated(config, paas, passcode, by=by, log_dir=log_dir, timeout=timeout)
    controller = pool.get(paas)
    log_path = None
    if log_dir is not None:
        log_path = Path(log_dir) / f"node-{profile.name}-{pool.sandbox.next_port()}.log"
    with MatterNode(config, pool.sandbox, log_path=log_path) as node:
        return controller.commission_node(node, passcode, by=by, timeout=timeout)


def _chip_tool(
    profile: BoardProfile,
    passcode: int,
    paas: PaaInput | Sequence[PaaInput],
    discriminator: int | None,
    timeout: float,
    log_dir: str | os.PathLike[str] | None,
    chip_tool: str | os.PathLike[str] | None,
    paa_store: str | os.PathLike[str] | None,
) -> Verdict:
    from hil.commissioning.chip_tool import ChipTool

    if profile.emulated:
        raise InputError.field(
            "--commissioner",
            "chip-tool",
            f"controller for the emulated board {profile.name} (its node lives in a private network "
            "namespace that chip-tool is not started in)",
        )
    tool = ChipTool(chip_tool or profile.options.get("chip_tool"), log_dir=log_dir)
    node_id = _node_ids[profile.name] = _node_ids.get(profile.name, 0) + 1
    dataset = profile.options.get("thread_dataset")
    if dataset:
        if discriminator is None:
            raise InputError(f"{profile.name}: the discriminator is needed for ble-thread pairing")
        return tool.pair_ble_thread(
            node_id, str(dataset), passcode, discriminator, paa=paas, paa_store=paa_store, timeout=timeout
        )
    return tool.pair_onnetwork(
        node_id, passcode, discriminator, paa=paas, paa_store=paa_store, timeout=timeout
    )
