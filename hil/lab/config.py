"""boards.toml's `[lab]` table and `labgrid_place`: where the lab's coordinator is, how long a lease lasts.

    [lab]
    coordinator = "10.0.0.1:20408"   # labgrid coordinator (host:port); LG_COORDINATOR overrides it
    lease_seconds = 30               # a holder silent this long is dead: its places may be taken back
    [board.k32w1-03]
    family = "k32w1"
    labgrid_place = "k32w1-03"       # the labgrid place that holds this board's resources

Why the environment overrides the file: the file says where the lab normally is, a CI job or a developer
points one run at another coordinator (a staging lab, a lab on loopback) without editing the inventory.
That is also labgrid's own convention (`labgrid-client` reads LG_COORDINATOR).

The lease (`hil.lab.places`) exists because labgrid 26.0.1 never releases the lock of a killed client
(labgrid issue #1739). `lease_seconds` bounds how long a killed run's places stay blocked; the holder
renews it every `lease_seconds / 6`, so a live but slow run is never mistaken for a dead one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.errors import ConfigError

ENV_COORDINATOR = "LG_COORDINATOR"
DEFAULT_PORT = 20408  # labgrid's coordinator port
DEFAULT_LEASE_SECONDS = 30.0
MIN_LEASE_SECONDS = 2.0

# labgrid accepts any place name; these are the names that are also safe as tags, file names and test ids.
PLACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_ADDRESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:\d{1,5})?$")
_KEYS = {"coordinator": str, "lease_seconds": (int, float)}


@dataclass(frozen=True)
class LabConfig:
    """The `[lab]` table (every key optional)."""

    coordinator: str | None = None
    lease_seconds: float = DEFAULT_LEASE_SECONDS

    def coordinator_address(self) -> str:
        """host:port of the coordinator: LG_COORDINATOR, else the file's, else a ConfigError saying how."""
        address = os.environ.get(ENV_COORDINATOR) or self.coordinator
        if not address:
            raise ConfigError(
                "lab: no labgrid coordinator; set [lab] coordinator = \"host:20408\" in boards.toml "
                f"or {ENV_COORDINATOR}=host:20408"
            )
        where = ENV_COORDINATOR if os.environ.get(ENV_COORDINATOR) else "[lab] coordinator"
        return normalize_address(address, where)


def normalize_address(address: str, where: str = "coordinator") -> str:
    """`host` or `host:port` -> `host:port` (labgrid's default port 20408), checked."""
    address = address.strip()
    if not _ADDRESS.match(address):
        raise ConfigError(f"lab: {where} {address!r} is not host or host:port")
    host_part = address.rsplit("]", 1)[-1]
    if ":" not in host_part:
        return f"{address}:{DEFAULT_PORT}"
    port = int(address.rsplit(":", 1)[1])
    if not 0 < port < 65536:
        raise ConfigError(f"lab: {where} {address!r}: port {port} is not 1-65535")
    return address


def parse_lab_table(path: Path | None, table: Any) -> LabConfig:
    """Validate boards.toml's `[lab]` table; every error names the file and the key."""
    where = str(path) if path else "inventory"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: [lab] must be a table")
    for key, value in table.items():
        typ = _KEYS.get(key)
        if typ is None:
            raise ConfigError(f"{where}: [lab] key {key!r}: unknown key; allowed: {', '.join(_KEYS)}")
        if isinstance(value, bool) or not isinstance(value, typ):
            kind = "a string" if typ is str else "a number of seconds"
            raise ConfigError(f"{where}: [lab] key {key!r}: {value!r} is not {kind}")
    coordinator = table.get("coordinator")
    if coordinator is not None:
        coordinator = normalize_address(coordinator, f"{where}: [lab] coordinator")
    lease = float(table.get("lease_seconds", DEFAULT_LEASE_SECONDS))
    if lease < MIN_LEASE_SECONDS:
        raise ConfigError(
            f"{where}: [lab] key 'lease_seconds': {lease:g} is too short; at least {MIN_LEASE_SECONDS:g}"
        )
    return LabConfig(coordinator=coordinator, lease_seconds=lease)


def check_place_name(value: str) -> str | None:
    """None if `value` is a usable place name, else what is allowed (for the inventory's error message)."""
    if PLACE_NAME.match(value):
        return None
    return "1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
